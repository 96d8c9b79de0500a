#include "snapshot/memory_rebase.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "base/fd.h"

namespace rv::snapshot {

namespace {

Result<Fd> open_file(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0)
        return std::unexpected(Error::from_errno(path).with_kind(ErrorKind::InvalidInput));
    return Fd(fd);
}

Result<uint64_t> size_of(const Fd& fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return errno_error(path);
    return static_cast<uint64_t>(st.st_size);
}

}  // namespace

Result<uint64_t> rebase_memory_file(const std::string& base_path, const std::string& diff_path) {
    Fd base = RV_TRY(open_file(base_path, O_WRONLY));
    Fd diff = RV_TRY(open_file(diff_path, O_RDONLY));
    const uint64_t size = RV_TRY(size_of(diff, diff_path));
    if (RV_TRY(size_of(base, base_path)) != size)
        return input_error("{} and {} differ in size: not the memory files of one VM", base_path,
                           diff_path);
    std::vector<uint8_t> buf(1 << 20);
    uint64_t copied = 0;
    off_t at = 0;
    while (static_cast<uint64_t>(at) < size) {
        off_t data = ::lseek(diff.get(), at, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) break;  // only a hole is left
            return errno_error(fmt::format("{}: SEEK_DATA", diff_path));
        }
        off_t hole = ::lseek(diff.get(), data, SEEK_HOLE);
        if (hole < 0) return errno_error(fmt::format("{}: SEEK_HOLE", diff_path));
        for (off_t pos = data; pos < hole;) {
            size_t want = static_cast<size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(buf.size())));
            ssize_t n = ::pread(diff.get(), buf.data(), want, pos);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return errno_error(fmt::format("{}: read", diff_path));
            RV_TRY_VOID(with_context(write_all_at(base.get(), std::span(buf).first(static_cast<size_t>(n)),
                                                  static_cast<uint64_t>(pos)),
                                     base_path));
            pos += n;
            copied += static_cast<uint64_t>(n);
        }
        at = hole;
    }
    if (::fsync(base.get()) < 0) return errno_error(fmt::format("{}: fsync", base_path));
    return copied;
}

}  // namespace rv::snapshot
