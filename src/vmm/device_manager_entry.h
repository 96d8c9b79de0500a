// DeviceManager::Entry, shared by device_manager.cpp and
// device_snapshot.cpp (internal to vmm/).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "devices/legacy/e1000/e1000.h"
#include "devices/legacy/ide/piix_ide.h"
#include "devices/virtio/blk/blk_device.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "vmm/device_manager.h"

namespace rv {

// A PCI device in the table: its id (a drive's or NIC's, else the kind) and
// the typed handle the VM needs to change it while it runs.
struct DeviceManager::Entry {
    std::string id;
    std::string kind;
    std::shared_ptr<PciDevice> pci;
    std::shared_ptr<virtio::VirtioPciTransport> transport;  // virtio devices
    std::shared_ptr<virtio::VirtioBlk> blk;
    std::shared_ptr<virtio::VirtioNet> net;
    std::shared_ptr<E1000> e1000;
    std::shared_ptr<PiixIde> ide;
    std::vector<std::string> ide_drive_ids;  // by position: primary master, slave, ...
};

}  // namespace rv
