// Parsing of the device options of `ringvisor run`:
//   --disk PATH[,ro][,iface=virtio|ide][,cache=none|writeback]
//   --net tap=NAME[,mac=52:54:00:12:34:56][,model=virtio|e1000]
#pragma once

#include <string_view>

#include "base/error.h"
#include "vmm/vm_config.h"

namespace rv {

Result<DiskConfig> parse_disk_arg(std::string_view text);
Result<NetConfig> parse_net_arg(std::string_view text);
Result<std::array<uint8_t, 6>> parse_mac(std::string_view text);

}  // namespace rv
