// virtio-console (virtio 1.2, 5.3) with a single port and no MULTIPORT, so
// Linux binds it to hvc0 and `console=hvc0` works. receiveq (0) carries host
// input to the guest, transmitq (1) guest output to the host.
//
// Host-side API mirrors Uart16550 so the VMM can drive both consoles alike:
// an output sink, enqueue_input(), input_capacity() and an input-space
// callback. Input is held in a bounded ring (kInputBufferSize) until the
// driver posts receive buffers; it survives a device reset (a driver reload
// should not eat what the user typed) and is never dropped while
// input_capacity() said there was room.
//
// Guest errors: a malformed ring (pop/add_used failure) sets needs_reset()
// and raises a config-change interrupt; the device then ignores the queues
// until reset. A chain with the wrong direction (TX without readable bytes,
// RX without writable bytes) is returned with used length 0 and counted.
// Each kind of problem is logged once per device.
//
// Fairness: one notify handles at most one queue's worth of chains and
// kTxBudgetPerNotify output bytes; leftover work is rescheduled through a
// private eventfd registered with the event loop, so a flooding guest cannot
// starve other devices and its remaining chains are not stranded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/fd.h"
#include "devices/virtio/console/input_ring.h"
#include "devices/virtio/virtio_device.h"

namespace rv::virtio {

// Device configuration layout (5.3.4).
struct ConsoleConfig {
    uint16_t cols;
    uint16_t rows;
    uint32_t max_nr_ports;
    uint32_t emerg_wr;
};
static_assert(sizeof(ConsoleConfig) == 12);

inline constexpr uint64_t kConsoleFSize = 1ull << 0;
inline constexpr uint64_t kConsoleFMultiport = 1ull << 1;
inline constexpr uint64_t kConsoleFEmergWrite = 1ull << 2;

class VirtioConsole final : public VirtioDevice {
  public:
    static constexpr uint16_t kReceiveQueue = 0;
    static constexpr uint16_t kTransmitQueue = 1;
    static constexpr uint16_t kQueueSize = 256;
    static constexpr size_t kInputBufferSize = 4096;
    // Linux sends at most a page per chain; more is a guest trying to make
    // us copy gigabytes (one buffer repeated), so the excess is discarded.
    static constexpr uint32_t kMaxTxChainBytes = 64 * 1024;
    static constexpr size_t kTxBudgetPerNotify = 256 * 1024;

    // Receives the guest's output, in order, outside the device lock (it may
    // call enqueue_input(), but not queue_notify() or activate()). Called on the event-loop thread,
    // or on a vCPU thread for chains already queued when the driver sets DRIVER_OK.
    using OutputSink = std::function<void(std::span<const uint8_t>)>;

    struct Stats {
        uint64_t tx_bytes{0};
        uint64_t tx_chains{0};
        uint64_t tx_truncated_bytes{0};  // beyond kMaxTxChainBytes in one chain
        uint64_t rx_bytes{0};
        uint64_t rx_chains{0};
        uint64_t input_dropped{0};  // enqueue_input() beyond input_capacity()
        uint64_t malformed_chains{0};
        uint64_t queue_errors{0};
        uint64_t config_changes{0};
        size_t input_buffered{0};
    };

    explicit VirtioConsole(OutputSink output, uint16_t cols = 80, uint16_t rows = 25);
    ~VirtioConsole() override;

    std::string_view name() const override { return "virtio-console"; }
    uint32_t device_type() const override { return kTypeConsole; }
    uint64_t device_features() const override;
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize}; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateArgs args) override;
    void reset() override;
    void queue_notify(uint16_t index) override;
    bool needs_reset() const override;
    std::vector<Queue::State> queue_states() const override;
    // Host input the guest has not taken yet: saved, so nothing typed is lost.
    std::vector<uint8_t> save_state() const override;
    Result<void> restore_state(std::span<const uint8_t> state) override;

    // Host side, thread-safe (normally the event-loop thread). Bytes beyond
    // input_capacity() are dropped and counted; callers apply backpressure.
    void enqueue_input(std::span<const uint8_t> bytes);
    // Free bytes in the input ring.
    size_t input_capacity() const;
    bool input_space() const { return input_capacity() > 0; }
    // Called, outside the device lock, when the guest takes input after an
    // enqueue_input() had filled the ring: the caller that paused its input
    // source should resume. May run inside enqueue_input() itself (buffers
    // were already posted), in queue_notify() or in activate().
    void set_input_space_callback(std::function<void()> callback);

    // Host terminal resized: updates cols/rows and, once the driver is
    // running, raises a config-change interrupt (F_SIZE).
    void set_size(uint16_t cols, uint16_t rows);
    Stats stats() const;

  private:
    struct Active {
        const GuestMemory* memory;
        std::shared_ptr<Interrupt> interrupt;
        std::vector<Queue> queues;
        EventRegistrar* events;
        EventFd kick;  // reschedules work left over by a budgeted pass
    };
    struct Effects {  // done after the device lock is released
        std::vector<uint8_t> output;
        bool signal_rx{false};
        bool signal_tx{false};
        bool config_change{false};
        bool space_freed{false};
    };
    enum Warning : uint32_t {
        kWarnTxNoData = 1,
        kWarnRxNoSpace = 2,
        kWarnTxTruncated = 4,
        kWarnQueue = 8,
        kWarnBadQueue = 16
    };

    void on_kick();
    void deliver_input_locked(Effects& fx);
    void process_tx_locked(Effects& fx);
    void fail_locked(Effects& fx, std::string_view what, const Error& error);
    void warn_once_locked(Warning kind, std::string_view text);
    void reschedule_locked();
    void finish(std::unique_lock<std::mutex>& lock, Effects& fx);

    mutable std::mutex m_mutex;
    // Serialises transmit processing and its sink call; always taken before
    // m_mutex, never while holding it, so a sink calling enqueue_input()
    // cannot deadlock.
    std::mutex m_tx_mutex;
    OutputSink m_output;
    std::function<void()> m_on_input_space;
    std::optional<Active> m_active;
    InputRing<kInputBufferSize> m_input;
    bool m_waiting_for_space{false};  // an enqueue_input() left the ring full
    bool m_needs_reset{false};
    uint32_t m_warned{0};
    uint16_t m_cols;
    uint16_t m_rows;
    Stats m_stats;
};

}  // namespace rv::virtio
