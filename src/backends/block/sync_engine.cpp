// The synchronous engine: each step runs inline in start() (preadv, pwritev,
// fdatasync, fallocate) and its result is queued and announced on the same
// eventfd io_uring would use, so devices cannot tell the engines apart.
// Used where io_uring is unavailable (seccomp, old kernels) and in tests,
// where it makes completion order deterministic.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "backends/block/io_engine.h"
#include "base/log.h"

namespace rv::block_detail {
namespace {

int64_t run_step(int fd, const IoStep& step) {
    ssize_t n = 0;
    do {
        switch (step.kind) {
            case IoStep::Kind::Readv:
                n = ::preadv(fd, step.iov, static_cast<int>(step.iovcnt),
                             static_cast<off_t>(step.offset));
                break;
            case IoStep::Kind::Writev:
                n = ::pwritev(fd, step.iov, static_cast<int>(step.iovcnt),
                              static_cast<off_t>(step.offset));
                break;
            case IoStep::Kind::Fdatasync:
                n = ::fdatasync(fd);
                break;
            case IoStep::Kind::Fallocate:
                n = ::fallocate(fd, step.mode, static_cast<off_t>(step.offset),
                                static_cast<off_t>(step.len));
                break;
        }
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

class SyncEngine final : public IoEngine {
  public:
    SyncEngine(int file_fd, int event_fd) : m_file_fd(file_fd), m_event_fd(event_fd) {}

    void start(const IoStep& step) override {
        m_done.push_back({step.user, run_step(m_file_fd, step)});
        uint64_t one = 1;
        if (::write(m_event_fd, &one, sizeof(one)) < 0)
            log::warn("block: eventfd write: {}", std::strerror(errno));
    }

    void reap(std::vector<StepResult>& out) override {
        out.insert(out.end(), m_done.begin(), m_done.end());
        m_done.clear();
    }

    void wait() override {}  // everything finished inside start()

  private:
    int m_file_fd;
    int m_event_fd;
    std::vector<StepResult> m_done;
};

}  // namespace

std::unique_ptr<IoEngine> make_sync_engine(int file_fd, int event_fd) {
    return std::make_unique<SyncEngine>(file_fd, event_fd);
}

}  // namespace rv::block_detail
