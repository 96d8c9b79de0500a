// What the user asked for: everything needed to build and boot one VM.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/block/block_backend.h"

namespace rv {

struct DiskConfig {
    // Virtio: a virtio-blk PCI device each. Ide: an ATA disk on the PIIX IDE
    // controller (primary master, primary slave, secondary master, slave).
    enum class Interface { Virtio, Ide };
    static constexpr size_t kMaxIdeDisks = 4;
    std::string path;
    bool read_only{false};
    Interface iface{Interface::Virtio};
    BlockOptions::Cache cache{BlockOptions::Cache::Writeback};
};

struct NetConfig {
    std::string tap;
    std::optional<std::array<uint8_t, 6>> mac;  // default: derived from the TAP name
    enum class Model { Virtio, E1000 } model{Model::Virtio};
};

enum class ConsoleKind { Serial, Virtio };

// What a triple fault the guest did not ask for means: a crash (exit status
// 4, the default) or, for users who want the old behaviour, a reset (treated
// as the guest's own reboot: status 0).
enum class TripleFaultAction { Crash, Reset };

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
    std::vector<DiskConfig> disks;
    std::vector<NetConfig> nets;
    ConsoleKind console{ConsoleKind::Serial};  // where console input goes (the UART always exists)
    bool rng{false};
    TripleFaultAction on_triple_fault{TripleFaultAction::Crash};
    std::optional<std::string> stats_path;  // JSON counters written at exit
    int console_in{0};                      // guest console input (stdin); -1 for none
    int console_out{1};                     // guest console output (stdout)
};

inline constexpr uint64_t kMinMemoryBytes = 32ull << 20;

}  // namespace rv
