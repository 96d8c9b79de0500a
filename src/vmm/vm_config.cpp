#include "vmm/vm_config.h"

namespace rv {

const DiskConfig* VmConfig::find_disk(std::string_view id) const {
    for (const auto& d : disks)
        if (d.id == id) return &d;
    return nullptr;
}

const NetConfig* VmConfig::find_net(std::string_view id) const {
    for (const auto& n : nets)
        if (n.id == id) return &n;
    return nullptr;
}

}  // namespace rv
