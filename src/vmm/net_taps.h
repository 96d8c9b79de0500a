// The tap queues a virtio-net NIC is built on: one per queue pair, as many
// as the config asks for (NetConfig::queue_pairs). A NIC left at the default
// (one pair per vCPU) on a tap that cannot have that many queues (a
// persistent single-queue tap, a kernel without multi-queue taps) falls back
// to one pair with a warning, so taps made before multiqueue keep working;
// a count the user gave is an error there instead.
#pragma once

#include <memory>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/error.h"
#include "vmm/vm_config.h"

namespace rv {

Result<std::vector<std::unique_ptr<NetBackend>>> open_virtio_net_taps(const NetConfig& net,
                                                                      unsigned cpus);

}  // namespace rv
