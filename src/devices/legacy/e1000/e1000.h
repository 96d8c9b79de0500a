// An emulated Intel 82540EM gigabit NIC (the "e1000" every OS has a driver
// for) on the PCI bus: BAR0 is the 128 KiB register file, BAR1 the 64-byte
// I/O window (IOADDR/IODATA) that Linux uses for the reset on this chip.
// The device raises its level-triggered INTx line while ICR & IMS is
// non-zero, no more often than ITR allows.
//
// Pieces: eeprom (microwire + EERD), phy (MDIC), tx (ring walk, offloads,
// TSO), rx (filters, ring fill); this class is the register file,
// interrupts and the glue to the backend and event loop.
//
// Threads: vCPU threads access config space and BARs, and run TX on a TDT
// write (as QEMU does: the guest pays for its own transmits). RX runs on the
// event-loop thread when the backend fd is readable; the fd is registered
// only while RCTL.EN is set and the ring has free descriptors, so a full
// ring leaves packets queued in the tap until the guest writes RDT, and that
// write reads them into the new descriptors on the vCPU thread. The ITR
// timer is a timerfd on the same loop. One mutex guards all device state;
// handlers hold only a weak reference to the device.
//
// Rate limiting (optional, as virtio-net's): a packet costs its frame bytes
// and 1 op. TX asks at a packet's EOP descriptor; refused, TDH stays there
// and TX waits for its limiter timer (TDT writes meanwhile do nothing). RX
// asks once a received packet passed the filters; refused, the packet stays
// held, the backend fd is not polled and RX waits for its timer. Both
// timers are registered only once a limiter is in force; the device mutex
// guards the limiters and timers too (set_*_rate_limiter take it).
//
// RDT writes may be posted (posted_write_ranges; KVM coalesced MMIO, as
// QEMU does): the driver's refills reach us at its next register access
// instead of costing an exit each. While a packet waits for descriptors a
// second timerfd asks for the posted writes (every 1 ms, backing off while
// nothing arrives), so a driver that refills and then waits without touching
// another register still gets its packets.
#pragma once

#include <array>
#include <bitset>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/error.h"
#include "base/fd.h"
#include "devices/event_registrar.h"
#include "devices/interrupt.h"
#include "devices/legacy/e1000/e1000_regs.h"
#include "devices/legacy/e1000/eeprom.h"
#include "devices/legacy/e1000/phy.h"
#include "devices/legacy/e1000/rx.h"
#include "devices/legacy/e1000/tx.h"
#include "devices/pci/config_space.h"
#include "devices/pci/pci_device.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "memory/guest_memory.h"

namespace rv {

struct E1000Config {
    std::array<uint8_t, 6> mac{};
    // Monotonic time in nanoseconds, for interrupt throttling (ITR). Empty:
    // CLOCK_MONOTONIC. Tests inject a manual clock.
    std::function<uint64_t()> clock_ns;
    // Applies the VMM's posted writes to this device; called with no device
    // lock held. Empty: RDT writes are never posted.
    std::function<void()> flush_posted;
    // Packets to the guest / from the guest; none: unlimited. They use
    // clock_ns too.
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
};

// Bytes count the Ethernet frames as they cross the TAP, as virtio-net's
// do, so the two models bill the same traffic alike: no virtio-net header
// and no FCS. rx_bytes leave out what the device adds for the guest (the
// padding to 60 bytes, the CRC-32 appended unless RCTL.SECRC) and include a
// VLAN tag it strips into the descriptor; tx_bytes include the tag and the
// padding it inserts (e1000::TxCounters).
struct E1000Stats {
    uint64_t tx_packets{0};
    uint64_t tx_bytes{0};
    uint64_t tx_dropped{0};
    uint64_t rx_packets{0};
    uint64_t rx_bytes{0};      // of the rx_packets, as read from the backend
    uint64_t rx_filtered{0};   // not for us (address / VLAN filter)
    uint64_t rx_dropped{0};    // too long, or could never fit the ring
    uint64_t interrupts{0};    // INTx assertions
    uint64_t throttled{0};     // assertions ITR held back
    uint64_t rx_retries{0};    // RX retry timer runs (posted RDT writes asked for)
    uint64_t rx_throttled{0};  // packets the rx rate limiter held back (each try counts)
    uint64_t tx_throttled{0};  // the same for tx
    uint64_t rx_throttled_us{0};  // time the rx limiter held traffic back (hold in progress too)
    uint64_t tx_throttled_us{0};  // the same for tx
};

class E1000 final : public PciDevice, public std::enable_shared_from_this<E1000> {
  public:
    // memory and events must outlive the device.
    static Result<std::shared_ptr<E1000>> create(const GuestMemory& memory,
                                                 std::unique_ptr<NetBackend> backend,
                                                 const E1000Config& config, EventRegistrar& events);
    ~E1000() override;

    // The INTx line (PciRoot::intx_line); called once the device is placed.
    void assign_intx(std::shared_ptr<IrqLine> line) override;

    // PciDevice
    std::string_view name() const override { return "e1000"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override;
    void config_write(uint16_t offset, std::span<const uint8_t> data) override;
    std::vector<PciBarInfo> bars() const override;
    void bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) override;
    DeviceCounters counters() const override;
    std::vector<PciBarRange> posted_write_ranges(uint8_t index) const override;

    // Event-loop entry points (registered by the device; public for tests).
    void on_backend_event(uint32_t events);
    void on_itr_timer();
    void on_rx_retry_timer();
    int itr_timer_fd() const { return m_timer.get(); }
    int rx_retry_timer_fd() const { return m_rx_retry.get(); }
    // The rate limiter timers' fds, -1 while not registered (tests fire them).
    int rx_limiter_timer_fd() const;
    int tx_limiter_timer_fd() const;

    // Replace a direction's rate limiter (nullopt: unlimited) while the VM
    // runs, from any thread; a packet it holds back is retried under the new
    // limits at once, from the event loop. Fails only if the limiter's timer
    // cannot be set up (the limits then stay as they were).
    Result<void> set_rx_rate_limiter(std::optional<RateLimiterConfig> config);
    Result<void> set_tx_rate_limiter(std::optional<RateLimiterConfig> config);

    E1000Stats stats() const;

    // Everything the guest can observe (e1000_state.cpp). The config space
    // (an 82540EM has no MSI or MSI-X; INTx only), the whole register image
    // (control, rings, RDTR/RADV/TIDV/TADV and ITR, the filter tables, the
    // statistics), the registers kept apart from it, the EEPROM, the PHY,
    // the TX contexts and partial packet, the line level and what is left
    // of the ITR hold-off. Not state: the backend (reopened from the
    // config), the limiters and host-side counters (the VMM's), the timers
    // (re-armed from this) and a received packet waiting for descriptors
    // (dropped, as a NIC may drop what is in its FIFO).
    struct State {
        static constexpr uint32_t kVersion = 1;
        PciConfigSpace::State pci;
        e1000::RegisterFile::Words regs{};
        uint32_t icr{0};
        uint32_t ims{0};
        uint32_t mdic{e1000::kMdicReady};
        uint32_t io_addr{0};  // IOADDR: the register IODATA reaches
        bool irq_level{false};
        // TX stopped short of TDT for the rate limiter and goes on by itself,
        // without another TDT write.
        bool tx_pending{false};
        // How long an assertion must still wait for ITR, as of save(): the
        // device clock's absolute time means nothing to another process.
        uint64_t itr_wait_ns{0};
        e1000::Eeprom::State eeprom;
        e1000::Phy::State phy;
        e1000::TxEngine::State tx;

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // Into an e1000 made with the same config (the backend open), once guest
    // memory is in place and before the guest runs. Drives INTx to match,
    // re-arms the ITR hold-off for what was left of it, polls the backend if
    // the ring has room, and resumes pending TX from the event loop (through
    // the tx limiter's timer, attached for it if no limiter is in force). A
    // state no 82540EM could be in is refused (InvalidInput) and leaves the
    // device as it was.
    Result<void> restore(const State& state);

  private:
    E1000(const GuestMemory& memory, std::unique_ptr<NetBackend> backend, const E1000Config& config,
          EventRegistrar& events, Fd timer, Fd rx_retry);

    // registers.cpp: the register file with its side effects.
    void access(uint64_t offset, std::span<uint8_t> data, bool write);
    uint32_t read_reg(uint32_t offset);
    uint32_t peek_reg(uint32_t offset) const;
    void write_reg(uint32_t offset, uint32_t value);
    void io_access(uint64_t offset, std::span<uint8_t> data, bool write);
    void reset_locked();
    void note_unknown(uint32_t offset, bool write);
    // Whether the register image keeps a value at this offset; the rest of
    // it stays zero (registers with side effects live elsewhere).
    static bool kept_in_file(uint32_t offset);
    static Result<void> check_registers(const e1000::RegisterFile::Words& regs);

    // e1000.cpp: interrupts, TX/RX glue.
    void raise(uint32_t causes);
    void update_irq();
    void set_line(bool high);
    void arm_timer(uint64_t delay_ns);
    void arm_rx_retry();
    bool rx_starved() const;
    uint64_t now_ns() const;
    void process_tx();
    void process_rx(bool read_backend);
    void update_rx_interest();

    // rate_limit.cpp: the limiters' timers and runtime changes.
    struct Limit {
        RateLimiter limiter;
        LimiterTimer timer;  // attached once a limiter is in force
    };
    Result<void> attach_limiter_timer(bool rx);
    Result<void> set_rate_limiter(bool rx, const std::optional<RateLimiterConfig>& config);
    void on_limiter_timer(bool rx);

    const GuestMemory& m_memory;
    const std::unique_ptr<NetBackend> m_backend;
    EventRegistrar& m_events;
    const E1000Config m_config;
    const Fd m_timer;
    const Fd m_rx_retry;

    mutable std::mutex m_mutex;  // everything below
    PciConfigSpace m_pci;
    e1000::RegisterFile m_regs;
    e1000::Eeprom m_eeprom;
    e1000::Phy m_phy;
    e1000::TxEngine m_tx;
    e1000::RxEngine m_rx;
    uint32_t m_icr{0};
    uint32_t m_ims{0};
    uint32_t m_mdic{0};
    uint32_t m_io_addr{0};

    std::shared_ptr<IrqLine> m_intx;
    bool m_level{false};
    bool m_timer_armed{false};
    uint64_t m_next_irq_ns{0};  // ITR: no new assertion before this

    bool m_rx_retry_armed{false};
    uint64_t m_rx_retry_ns{0};  // next retry interval
    bool m_rx_registered{false};
    bool m_backend_gone{false};
    bool m_rx_pending{false};  // m_rx_buf holds a packet waiting for descriptors
    size_t m_rx_len{0};
    std::vector<uint8_t> m_rx_buf;

    Limit m_rx_limit;
    Limit m_tx_limit;
    bool m_rx_paid{false};       // the held packet has its tokens (it waits for descriptors)
    bool m_rx_throttled{false};  // the held packet waits for the rx limiter timer
    bool m_tx_throttled{false};  // TX waits for the tx limiter timer

    E1000Stats m_stats;
    std::bitset<e1000::kMmioBarSize / 4> m_unknown_logged;
};

}  // namespace rv
