// MSR values each vCPU gets before entering the Linux 64-bit entry point.
// The kernel programs the syscall MSRs itself; these are reset values that
// KVM does not guarantee, plus the two that firmware normally sets up
// (fast strings in MISC_ENABLE, write-back default memory type).
#pragma once

#include <cstdint>
#include <vector>

namespace rv::x86 {

struct MsrValue {
    uint32_t index;
    uint64_t value;
};

inline constexpr uint32_t kMsrIa32Tsc = 0x10;
inline constexpr uint32_t kMsrIa32SysenterCs = 0x174;
inline constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
inline constexpr uint32_t kMsrIa32SysenterEip = 0x176;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1A0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2FF;
inline constexpr uint32_t kMsrStar = 0xC0000081;
inline constexpr uint32_t kMsrLstar = 0xC0000082;
inline constexpr uint32_t kMsrCstar = 0xC0000083;
inline constexpr uint32_t kMsrSyscallMask = 0xC0000084;
inline constexpr uint32_t kMsrKernelGsBase = 0xC0000102;

inline constexpr uint64_t kMiscEnableFastString = 1ull << 0;
inline constexpr uint64_t kMtrrDefTypeEnable = 1ull << 11;
inline constexpr uint64_t kMtrrTypeWriteBack = 6;

// In the order KVM_SET_MSRS should apply them.
inline std::vector<MsrValue> boot_msrs() {
    return {
        {kMsrIa32SysenterCs, 0},
        {kMsrIa32SysenterEsp, 0},
        {kMsrIa32SysenterEip, 0},
        {kMsrStar, 0},
        {kMsrCstar, 0},
        {kMsrKernelGsBase, 0},
        {kMsrSyscallMask, 0},
        {kMsrLstar, 0},
        {kMsrIa32Tsc, 0},
        {kMsrIa32MiscEnable, kMiscEnableFastString},
        // Without MTRRs enabled all memory would be uncached.
        {kMsrMtrrDefType, kMtrrDefTypeEnable | kMtrrTypeWriteBack},
    };
}

}  // namespace rv::x86
