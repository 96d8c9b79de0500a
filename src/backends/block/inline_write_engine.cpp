// cache=writeback's engine: small writes are copied into the page cache
// inline (pwritev, the synchronous engine), everything else goes through
// io_uring.
//
// Why: io_uring completes a buffered read that hits the page cache inside the
// submitting system call, but on the kernels users run (Linux 6.1: block
// devices, ext4) it cannot start a buffered write without blocking, so it
// hands every one to an io-wq worker thread: a thread wake-up and two
// context switches per write, for what is a copy into the page cache.
// Measured in the test host (docs/BENCHMARKS.md, "buffered writes inline"):
// 4 KiB writes at QD1 cost the VMM 1.4x the CPU through the workers, and
// ran 1.5x as fast inline. kvmtool and
// Firecracker's default engine write synchronously the same way. The cost:
// a write the kernel throttles (too many dirty pages) holds the event loop
// for that time.
//
// Only writes up to kInlineWriteMax: a large write's copy costs far more
// than the hand-off, and done inline each one completes on its own loop
// turn with its own interrupt, where the workers' completions come in
// batches (sequential 1 MiB writes lost a fifth inline, measured in the
// same section).
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/block/io_engine.h"

namespace rv::block_detail {
namespace {

class InlineWriteEngine final : public IoEngine {
  public:
    InlineWriteEngine(std::unique_ptr<IoEngine> ring, std::unique_ptr<IoEngine> writes)
        : m_ring(std::move(ring)), m_writes(std::move(writes)) {}

    void start(const IoStep& step) override {
        (inline_write(step) ? *m_writes : *m_ring).start(step);
    }
    void reap(std::vector<StepResult>& out) override {
        out.insert(out.end(), m_ready.begin(), m_ready.end());
        m_ready.clear();
        m_writes->reap(out);
        m_ring->reap(out);
    }
    // Inline writes have finished already: wait for the ring only when none
    // is waiting to be reaped.
    void wait() override {
        m_writes->reap(m_ready);
        if (m_ready.empty()) m_ring->wait();
    }
    void plug() override { m_ring->plug(); }
    void unplug() override { m_ring->unplug(); }

  private:
    static bool inline_write(const IoStep& step) {
        if (step.kind != IoStep::Kind::Writev) return false;
        uint64_t bytes = 0;
        for (unsigned i = 0; i < step.iovcnt && bytes <= kInlineWriteMax; ++i)
            bytes += step.iov[i].iov_len;
        return bytes <= kInlineWriteMax;
    }

    std::unique_ptr<IoEngine> m_ring;
    std::unique_ptr<IoEngine> m_writes;
    std::vector<StepResult> m_ready;  // inline writes' results taken by wait()
};

}  // namespace

std::unique_ptr<IoEngine> make_inline_write_engine(std::unique_ptr<IoEngine> ring,
                                                   std::unique_ptr<IoEngine> writes) {
    return std::make_unique<InlineWriteEngine>(std::move(ring), std::move(writes));
}

}  // namespace rv::block_detail
