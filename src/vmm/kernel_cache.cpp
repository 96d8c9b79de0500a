#include "vmm/kernel_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string_view>

#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/kernel_payload.h"
#include "base/fd.h"
#include "base/log.h"

namespace rv {

std::string default_kernel_cache_dir() {
    if (const char* d = std::getenv("RINGVISOR_CACHE_DIR"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/ringvisor";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/ringvisor";
    return "/tmp/ringvisor-cache";
}

namespace {

// Writes data to path atomically (temp file + rename): concurrent VMMs never
// see a half-written kernel.
Result<void> store(const std::string& path, const std::string& data) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        auto fd = RV_TRY(Fd::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ::unlink(tmp.c_str());
                return errno_error(tmp);
            }
            done += static_cast<size_t>(n);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return errno_error(path);
    }
    return {};
}

}  // namespace

Result<std::optional<CachedKernel>> cached_vmlinux(std::span<const uint8_t> bzimage,
                                                   const std::string& dir) {
    auto image = RV_TRY(x86::parse_bzimage(bzimage));
    auto payload = x86::find_payload(image, bzimage);
    if (!payload || payload->compression == x86::Compression::Unknown) return std::nullopt;

    // Keyed by contents, not path or mtime: a rebuilt kernel never hits a stale entry.
    size_t hash = std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(bzimage.data()), bzimage.size()));
    std::string path = fmt::format("{}/vmlinux-{:016x}-{}", dir, hash, bzimage.size());

    if (::access(path.c_str(), R_OK) == 0) {
        log::debug("kernel cache hit: {}", path);
        return CachedKernel{path, std::nullopt, true};
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK) != 0) {
        log::debug("kernel cache {} not writable; the guest decompresses the kernel", dir);
        return std::nullopt;
    }
    auto elf = RV_TRY(with_context(x86::decompress(*payload), "decompressing the kernel"));
    RV_TRY(with_context(x86::parse_elf_kernel(elf), "kernel payload"));
    CachedKernel result{path, std::string(elf.begin(), elf.end()), false};
    if (auto stored = store(path, *result.contents); !stored) {
        log::warn("kernel cache: {}", stored.error().message());
        result.path.clear();
    }
    return result;
}

}  // namespace rv
