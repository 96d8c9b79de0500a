// The io_uring engine: one ring of `depth` entries whose completions are
// announced on the backend's eventfd (io_uring_register_eventfd). At most
// `depth` steps are in the rings at once (prepared or in the kernel), so the
// completion ring (twice the submission ring) can never overflow; further
// steps wait in a local queue and are started as completions free slots.
//
// Accounting is exact, because drain() (virtio-blk reset, IDE SRST, under
// device and PCI locks) blocks in wait(): a step counted as in the kernel
// that the kernel never took would block it forever and wedge the VMM. So
// what the kernel accepted is read from the ring itself (its SQ head moves
// past every entry it consumed, whatever io_uring_submit returned), and each
// step is in exactly one place:
//   m_waiting  not yet prepared (no room in the rings)
//   m_in_ring  prepared in the SQ ring, not yet taken by the kernel
//   m_in_kernel  taken; exactly one CQE will come for each
//   m_done     finished without a CQE (refused), handed out by reap()
// Refusals: EAGAIN/EBUSY (and EINTR) are transient, so we reap what has
// completed (freeing kernel memory and CQ room) and submit again; a partial
// submit is retried the same way. When that makes no progress and nothing
// is in the kernel whose completion could help, or on any other error, the
// refused steps are taken back out of the SQ ring and completed with -EIO,
// so the device reports an I/O error to the guest.
#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "backends/block/io_engine.h"
#include "base/log.h"

namespace rv::block_detail {
namespace {

// Submissions in a row that may be refused without progress before the
// refused steps fail (if nothing in the kernel can complete and free room).
constexpr unsigned kSubmitAttempts = 4;

class UringEngine final : public IoEngine {
  public:
    UringEngine(int file_fd, int event_fd, unsigned depth, UringSubmitHook hook)
        : m_file_fd(file_fd),
          m_event_fd(event_fd),
          m_depth(depth),
          m_submit_hook(std::move(hook)) {}
    ~UringEngine() override {
        if (m_initialized) io_uring_queue_exit(&m_ring);
    }

    Result<void> init() {
        int err = io_uring_queue_init(m_depth, &m_ring, 0);
        if (err < 0) return errno_error("io_uring_queue_init", -err);
        m_initialized = true;
        err = io_uring_register_eventfd(&m_ring, m_event_fd);
        if (err < 0) return errno_error("io_uring_register_eventfd", -err);
        return {};
    }

    void start(const IoStep& step) override {
        if (!m_waiting.empty() || occupied() >= m_depth) {
            m_waiting.push_back(step);
            return;
        }
        prepare(step);
        if (m_plugged == 0) submit();
    }

    void plug() override { ++m_plugged; }
    void unplug() override {
        if (m_plugged == 0 || --m_plugged > 0) return;
        pump();
    }

    void reap(std::vector<StepResult>& out) override {
        reap_cqes(out);
        // Completions freed slots: start waiting steps, and retry entries a
        // transient refusal left in the ring (once unplugged, if plugged).
        if (m_plugged == 0) pump();
        if (!m_done.empty()) {
            out.insert(out.end(), m_done.begin(), m_done.end());
            m_done.clear();
        }
    }

    void wait() override {
        if (m_plugged > 0) {  // nothing queued may wait for a submission that never comes
            m_plugged = 0;
            pump();
        }
        // Only the kernel's steps can be waited for. Every call leaves refused
        // entries in the ring only while a step is in the kernel (see
        // submit()), so with none there nothing will come: return at once.
        if (!m_done.empty() || m_in_kernel == 0 || io_uring_cq_ready(&m_ring) != 0) return;
        io_uring_cqe* cqe;
        int err = io_uring_wait_cqe(&m_ring, &cqe);
        if (err < 0 && err != -EINTR)
            log::warn("block: io_uring_wait_cqe: {}", std::strerror(-err));
    }

  private:
    unsigned occupied() const { return m_in_kernel + static_cast<unsigned>(m_in_ring.size()); }

    void prepare(const IoStep& step) {
        // Cannot fail: fewer than `depth` entries are in the SQ ring (see occupied()).
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        if (!sqe) return complete_now(step.user);
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
        m_in_ring.push_back(step.user);
    }

    // Moves waiting steps into free slots and submits until everything is in
    // the kernel or failed, or a transient refusal waits for a completion.
    void pump() {
        for (;;) {
            while (!m_waiting.empty() && occupied() < m_depth) {
                prepare(m_waiting.front());
                m_waiting.pop_front();
            }
            if (m_in_ring.empty()) return;
            submit();
            // Refused entries stay only while the kernel holds steps; failed
            // ones freed their slots for the waiting steps.
            if (!m_in_ring.empty() || m_waiting.empty()) return;
        }
    }

    // Hands the prepared entries to the kernel. On return they are all in
    // the kernel or failed, or some are still in the ring and m_in_kernel > 0
    // (a completion will come, and its reap() submits them again).
    void submit() {
        unsigned attempts = 0;
        while (!m_in_ring.empty()) {
            const int n = m_submit_hook ? m_submit_hook(m_ring) : io_uring_submit(&m_ring);
            const bool progress = take_accepted();
            if (m_in_ring.empty()) return;
            // A short count means the kernel stopped early (it could not
            // allocate a request, or failed one at once, which then has a
            // CQE): as transient as EAGAIN.
            const int err = n < 0 ? -n : EAGAIN;
            if (err != EAGAIN && err != EBUSY && err != EINTR) return fail_in_ring(err);
            if (progress) attempts = 0;
            if (++attempts >= kSubmitAttempts) {
                if (m_in_kernel > 0) return;
                return fail_in_ring(err);
            }
            // EBUSY: the CQ (or its overflow list) is full until we reap;
            // EAGAIN: completions free the kernel's request memory.
            reap_cqes(m_done);
        }
    }

    // The kernel's SQ head has passed every entry it consumed, including
    // ones it failed at once (those get a CQE too): they are the kernel's now.
    bool take_accepted() {
        const size_t left = io_uring_sq_ready(&m_ring);
        if (left >= m_in_ring.size()) return false;
        const size_t accepted = m_in_ring.size() - left;
        m_in_ring.erase(m_in_ring.begin(), m_in_ring.begin() + static_cast<long>(accepted));
        m_in_kernel += static_cast<unsigned>(accepted);
        return true;
    }

    // The kernel will not take the entries still in the SQ ring: take them
    // back, so no later submit runs them after we reported them failed (the
    // caller frees their buffers), and complete them with -EIO. Not the
    // errno: a step result of -EINVAL or -EOPNOTSUPP means something else to
    // the backend (the write-zeroes and discard fallbacks).
    void fail_in_ring(int err) {
        // Logged at the 1st, 2nd, 4th, 8th... time: a broken ring fails
        // every request, and the guest decides how many it sends.
        ++m_refusals;
        if ((m_refusals & (m_refusals - 1)) == 0) {
            log::warn("block: io_uring_submit: {}; failing {} request(s) with EIO ({} time(s))",
                      std::strerror(err), m_in_ring.size(), m_refusals);
        }
        // Rewind the SQ tail to the kernel's head. Safe without SQPOLL: the
        // kernel reads the SQ ring only inside io_uring_enter, which only we
        // call and never concurrently (the backend's owner serialises every
        // call), and it has consumed nothing past its head.
        const unsigned head = io_uring_smp_load_acquire(m_ring.sq.khead);
        m_ring.sq.sqe_head = head;
        m_ring.sq.sqe_tail = head;
        io_uring_smp_store_release(m_ring.sq.ktail, head);
        for (uint64_t user : m_in_ring) m_done.push_back({user, -EIO});
        m_in_ring.clear();
        signal();
    }

    void complete_now(uint64_t user) {
        log::warn("block: io_uring submission ring full; failing a request with EIO");
        m_done.push_back({user, -EIO});
        signal();
    }

    // Results that did not come through the CQ must still wake the event
    // loop, which reaps only when the eventfd is readable.
    void signal() {
        uint64_t one = 1;
        if (::write(m_event_fd, &one, sizeof(one)) < 0)
            log::warn("block: eventfd write: {}", std::strerror(errno));
    }

    void reap_cqes(std::vector<StepResult>& out) {
        io_uring_cqe* cqe;
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&m_ring, head, cqe) {
            out.push_back({cqe->user_data, cqe->res});
            ++seen;
        }
        io_uring_cq_advance(&m_ring, seen);
        m_in_kernel -= std::min(seen, m_in_kernel);
    }

    int m_file_fd;
    int m_event_fd;
    unsigned m_depth;
    UringSubmitHook m_submit_hook;
    unsigned m_plugged{0};  // plug() depth: submissions wait for the last unplug()
    io_uring m_ring{};
    bool m_initialized{false};
    unsigned m_in_kernel{0};
    std::deque<uint64_t> m_in_ring;  // user values, in SQ order
    std::deque<IoStep> m_waiting;
    std::vector<StepResult> m_done;
    uint64_t m_refusals{0};  // fail_in_ring calls, for the log
};

}  // namespace

Result<std::unique_ptr<IoEngine>> make_uring_engine(int file_fd, int event_fd, unsigned depth,
                                                    UringSubmitHook submit_hook) {
    auto engine = std::make_unique<UringEngine>(file_fd, event_fd, depth, std::move(submit_hook));
    RV_TRY_VOID(engine->init());
    return std::unique_ptr<IoEngine>(std::move(engine));
}

}  // namespace rv::block_detail
