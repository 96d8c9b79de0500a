// The KVM ioctl ABI where linux-libc-dev 6.1's C++ view of it is wrong,
// shared by kvm.cpp and kvm_state.cpp (internal to kvm/).
//
// linux-libc-dev 6.1 declares the variable-length KVM structs with
// __DECLARE_FLEX_ARRAY, which in C++ adds a 1-byte empty member: sizeof and
// the entries' offset differ from the kernel's, and so do the ioctl numbers
// that encode sizeof. So these use our own 8-byte (or 4-byte) headers.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace rv::kvm::abi {

struct CpuidHeader {
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
};
struct MsrListHeader {
    uint32_t nmsrs;
};
struct RoutingHeader {
    uint32_t nr;
    uint32_t flags;
};
inline constexpr size_t kXsaveBytes = 4096;  // KVM_GET_XSAVE's legacy area (no AMX)
struct Xsave {
    uint32_t region[kXsaveBytes / 4];
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(RoutingHeader) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);
static_assert(sizeof(Xsave) == 4096);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);

// A header followed by n entries, laid out as the kernel expects.
template <typename Header, typename Entry>
struct VarBuffer {
    explicit VarBuffer(size_t n) : bytes(sizeof(Header) + n * sizeof(Entry), 0) {}
    Header* header() { return reinterpret_cast<Header*>(bytes.data()); }
    Entry* entries() { return reinterpret_cast<Entry*>(bytes.data() + sizeof(Header)); }
    std::vector<uint8_t> bytes;
};

// ioctl, retried on EINTR (but KVM_RUN, whose EINTR means "a signal asked
// the vCPU out").
template <typename Arg>
int do_ioctl(int fd, unsigned long request, Arg arg) {
    int ret;
    do {
        ret = ::ioctl(fd, request, arg);
    } while (ret < 0 && errno == EINTR && request != KVM_RUN);
    return ret;
}

}  // namespace rv::kvm::abi
