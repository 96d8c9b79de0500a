#include "base/fd.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

namespace rv {

Result<Fd> Fd::open(const std::string& path, int flags, int mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return errno_error(path);
    return Fd(fd);
}

Result<void> write_all_at(int fd, std::span<const uint8_t> bytes, uint64_t offset) {
    for (size_t done = 0; done < bytes.size();) {
        ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                             static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("write");
        if (n == 0) return make_error("write: no progress");
        done += static_cast<size_t>(n);
    }
    return {};
}

Result<std::string> read_file(const std::string& path) {
    Fd fd = RV_TRY(Fd::open(path, O_RDONLY));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error(path);
    if (S_ISDIR(st.st_mode)) return make_error("{}: is a directory", path);
    // Until EOF, not st_size: /proc and sysfs files report 0 or 4096.
    std::string data;
    data.resize(std::max<size_t>(static_cast<size_t>(st.st_size), 4096));
    size_t done = 0;
    for (;;) {
        if (done == data.size()) data.resize(data.size() * 2);
        ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error(path);
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    data.resize(done);
    return data;
}

Result<EventFd> EventFd::create(int flags) {
    int fd = ::eventfd(0, flags | EFD_CLOEXEC);
    if (fd < 0) return errno_error("eventfd");
    return EventFd(Fd(fd));
}

Result<void> EventFd::write(uint64_t value) const {
    if (::write(m_fd.get(), &value, sizeof value) != sizeof value) return errno_error("eventfd write");
    return {};
}

Result<uint64_t> EventFd::read() const {
    uint64_t value = 0;
    if (::read(m_fd.get(), &value, sizeof value) != sizeof value) return errno_error("eventfd read");
    return value;
}

}  // namespace rv
