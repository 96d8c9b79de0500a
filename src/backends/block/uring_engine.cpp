// The io_uring engine: one ring of `depth` entries whose completions are
// announced on the backend's eventfd (io_uring_register_eventfd). At most
// `depth` steps are in the kernel at once, so the completion ring (twice the
// submission ring) can never overflow; further steps wait in a local queue
// and are started as completions free slots.
#include <liburing.h>

#include <deque>

#include "backends/block/io_engine.h"
#include "base/log.h"

namespace rv::block_detail {
namespace {

class UringEngine final : public IoEngine {
  public:
    UringEngine(int file_fd, unsigned depth) : m_file_fd(file_fd), m_depth(depth) {}
    ~UringEngine() override {
        if (m_initialized) io_uring_queue_exit(&m_ring);
    }

    Result<void> init(int event_fd) {
        int err = io_uring_queue_init(m_depth, &m_ring, 0);
        if (err < 0) return errno_error("io_uring_queue_init", -err);
        m_initialized = true;
        err = io_uring_register_eventfd(&m_ring, event_fd);
        if (err < 0) return errno_error("io_uring_register_eventfd", -err);
        return {};
    }

    void start(const IoStep& step) override {
        if (m_in_kernel >= m_depth || !m_pending.empty()) {
            m_pending.push_back(step);
            return;
        }
        prepare(step);
        submit();
    }

    void reap(std::vector<StepResult>& out) override {
        io_uring_cqe* cqe;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&m_ring, head, cqe) {
            out.push_back({cqe->user_data, cqe->res});
            ++seen;
        }
        io_uring_cq_advance(&m_ring, seen);
        m_in_kernel -= seen;
        bool started = false;
        while (!m_pending.empty() && m_in_kernel < m_depth) {
            prepare(m_pending.front());
            m_pending.pop_front();
            started = true;
        }
        if (started || m_unsubmitted) submit();
    }

    void wait() override {
        if (m_in_kernel == 0) return;
        io_uring_cqe* cqe;
        int err = io_uring_wait_cqe(&m_ring, &cqe);
        if (err < 0 && err != -EINTR)
            log::warn("block: io_uring_wait_cqe: {}", std::strerror(-err));
    }

  private:
    void prepare(const IoStep& step) {
        // Cannot fail: fewer than `depth` entries are in the kernel and each
        // prepared entry is submitted before the next start().
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        switch (step.kind) {
            case IoStep::Kind::Readv:
                io_uring_prep_readv(sqe, m_file_fd, step.iov, step.iovcnt, step.offset);
                break;
            case IoStep::Kind::Writev:
                io_uring_prep_writev(sqe, m_file_fd, step.iov, step.iovcnt, step.offset);
                break;
            case IoStep::Kind::Fdatasync:
                io_uring_prep_fsync(sqe, m_file_fd, IORING_FSYNC_DATASYNC);
                break;
            case IoStep::Kind::Fallocate:
                io_uring_prep_fallocate(sqe, m_file_fd, step.mode, static_cast<off_t>(step.offset),
                                        static_cast<off_t>(step.len));
                break;
        }
        io_uring_sqe_set_data64(sqe, step.user);
        ++m_in_kernel;
        m_unsubmitted = true;
    }

    void submit() {
        int n = io_uring_submit(&m_ring);
        if (n >= 0) {
            m_unsubmitted = false;
            return;
        }
        // EAGAIN/EBUSY are transient (kernel memory, CQ backlog): the entries
        // stay in the submission ring and the next reap() submits them again.
        log::warn("block: io_uring_submit: {}", std::strerror(-n));
    }

    int m_file_fd;
    unsigned m_depth;
    io_uring m_ring{};
    bool m_initialized{false};
    bool m_unsubmitted{false};
    unsigned m_in_kernel{0};
    std::deque<IoStep> m_pending;
};

}  // namespace

Result<std::unique_ptr<IoEngine>> make_uring_engine(int file_fd, int event_fd, unsigned depth) {
    auto engine = std::make_unique<UringEngine>(file_fd, depth);
    RV_TRY_VOID(engine->init(event_fd));
    return std::unique_ptr<IoEngine>(std::move(engine));
}

}  // namespace rv::block_detail
