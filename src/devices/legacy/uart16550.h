// 16550A UART: the guest's serial console, as Linux's 8250 driver expects it
// (COM1 at port 0x3f8, 8 registers, ISA IRQ 4).
//
// Transmission is instantaneous: a byte written to THR goes straight to the
// output sink, so THR and the transmitter are always empty again by the time
// the guest looks. Input arrives from the VMM's event-loop thread through
// enqueue_input(); the caller applies backpressure with input_capacity() and
// the input-space callback instead of overrunning the guest.
//
// Interrupt line: driven high while IIR reports a pending, enabled
// interrupt, regardless of MCR OUT2. On a PC, OUT2 gates the UART's IRQ onto
// the ISA bus; we skip the gate (as QEMU does) because Linux sets OUT2
// whenever it uses the IRQ and its probing works either way, and an ungated
// line cannot strand a guest that forgets OUT2.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "bus/bus.h"
#include "devices/interrupt.h"
#include "snapshot/state_codec.h"

namespace rv {

class Uart16550 final : public BusDevice {
  public:
    static constexpr uint64_t kCom1Base = 0x3f8;
    static constexpr uint64_t kRegisterCount = 8;  // length of the bus range
    static constexpr unsigned kCom1Irq = 4;
    static constexpr size_t kRxFifoSize = 64;

    // Receives every transmitted byte, on the vCPU thread that wrote THR.
    // Calls are serialised and in THR-write order, outside the device lock:
    // the sink may call enqueue_input() (e.g. to echo) but must not write
    // to the UART's registers.
    using OutputSink = std::function<void(std::span<const uint8_t>)>;

    Uart16550(std::shared_ptr<IrqLine> irq, OutputSink output);

    std::string_view name() const override { return "uart16550"; }
    // A multi-byte access is split into byte accesses to consecutive
    // registers, as the ISA bus does for an 8-bit device.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Host side, thread-safe. Bytes beyond input_capacity() are dropped and
    // set LSR.OE, as a real receiver overrun does. In loopback mode the
    // receiver is cut off from the line and host input is discarded.
    void enqueue_input(std::span<const uint8_t> bytes);
    // Bytes the receiver can take now: free RX FIFO slots (one holding
    // register when the guest has FIFOs off; zero in loopback mode).
    size_t input_capacity() const;
    bool input_space() const { return input_capacity() > 0; }
    // Called (outside the device lock, on a vCPU thread) whenever the guest
    // makes room after input_capacity() had dropped to zero, so a caller
    // that paused reading its input source knows when to resume.
    void set_input_space_callback(std::function<void()> callback);

    // Everything the guest can observe; the IRQ level is derived from it.
    struct State {
        static constexpr uint32_t kVersion = 1;
        std::vector<uint8_t> rx;  // received bytes not yet read, oldest first
        uint16_t divisor{12};
        uint8_t ier{0};
        uint8_t lcr{0};
        uint8_t mcr{0};
        uint8_t scr{0};
        uint8_t msr_delta{0};
        uint8_t rx_trigger{1};
        bool fifo_enabled{false};
        bool overrun{false};
        bool thr_ipending{false};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // Into a UART made with the same arguments, before the guest runs; drives
    // the IRQ line to match. Values no 16550 could hold are refused
    // (InvalidInput) and leave the device as it was.
    Result<void> restore(const State& state);

  private:
    struct Effects {  // work done after the device lock is released
        bool has_tx{false};
        uint8_t tx{0};
        bool space_freed{false};
    };

    uint8_t read_register(uint64_t reg);
    void write_register(uint64_t reg, uint8_t value, Effects& effects);
    void write_fcr(uint8_t value);
    void write_mcr(uint8_t value);
    void receive_byte(uint8_t byte);
    uint8_t pop_rx();
    void clear_rx();
    uint8_t iir() const;
    uint8_t modem_lines() const;
    size_t capacity_locked() const;
    void update_irq();
    void finish(std::unique_lock<std::mutex>& lock, const Effects& effects);

    mutable std::mutex m_mutex;
    std::mutex m_sink_mutex;  // keeps sink calls in THR order without holding m_mutex
    std::shared_ptr<IrqLine> m_irq;
    OutputSink m_output;
    std::function<void()> m_on_input_space;

    std::array<uint8_t, kRxFifoSize> m_rx{};
    size_t m_rx_head{0};
    size_t m_rx_count{0};

    uint16_t m_divisor{12};  // 9600 baud from a 1.8432 MHz clock, the BIOS default
    uint8_t m_ier{0};
    uint8_t m_lcr{0};
    uint8_t m_mcr{0};
    uint8_t m_scr{0};
    uint8_t m_msr_delta{0};  // MSR bits 0-3, cleared by reading MSR
    uint8_t m_rx_trigger{1};
    bool m_fifo_enabled{false};
    bool m_overrun{false};
    bool m_thr_ipending{false};  // THRE interrupt armed and not yet acknowledged
    bool m_irq_level{false};
};

}  // namespace rv
