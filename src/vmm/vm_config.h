// What the user asked for: everything needed to build and boot one VM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rv {

struct VmConfig {
    std::string kernel_path;
    std::optional<std::string> initrd_path;
    std::string cmdline{"console=ttyS0"};
    uint64_t memory_bytes{512ull << 20};
    unsigned cpus{1};
    std::string kvm_path{"/dev/kvm"};
    // Where decompressed kernels are cached (vmm/kernel_cache.h); nullopt
    // boots the bzImage as is and lets the guest decompress it.
    std::optional<std::string> kernel_cache_dir;
    int console_in{0};   // guest console input (stdin); -1 for none
    int console_out{1};  // guest console output (stdout)
};

inline constexpr uint64_t kMinMemoryBytes = 32ull << 20;

}  // namespace rv
