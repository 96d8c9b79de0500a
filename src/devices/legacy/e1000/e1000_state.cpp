// The e1000's snapshot State: what it holds and why is in e1000.h; the
// parts' own states are in eeprom.cpp, phy.cpp and tx.cpp.
#include <sys/timerfd.h>

#include "devices/legacy/e1000/e1000.h"

namespace rv {

using namespace e1000;

void E1000::State::encode(snapshot::Writer& w) const {
    pci.encode(w);
    for (uint32_t v : regs) w.u32(v);
    for (uint32_t v : {icr, ims, mdic, io_addr}) w.u32(v);
    w.boolean(irq_level);
    w.boolean(tx_pending);
    w.u64(itr_wait_ns);
    eeprom.encode(w);
    phy.encode(w);
    tx.encode(w);
}

E1000::State E1000::State::decode(snapshot::Reader& r) {
    State s;
    s.pci = PciConfigSpace::State::decode(r);
    for (uint32_t& v : s.regs) v = r.u32();
    for (uint32_t* v : {&s.icr, &s.ims, &s.mdic, &s.io_addr}) *v = r.u32();
    s.irq_level = r.boolean();
    s.tx_pending = r.boolean();
    s.itr_wait_ns = r.u64();
    s.eeprom = Eeprom::State::decode(r);
    s.phy = Phy::State::decode(r);
    s.tx = TxEngine::State::decode(r);
    return s;
}

E1000::State E1000::save() const {
    std::lock_guard lock(m_mutex);
    State s;
    s.pci = m_pci.save();
    s.regs = m_regs.words();
    s.icr = m_icr;
    s.ims = m_ims;
    s.mdic = m_mdic;
    s.io_addr = m_io_addr;
    s.irq_level = m_level;
    s.tx_pending = m_tx_throttled;
    const uint64_t now = now_ns();
    s.itr_wait_ns = m_next_irq_ns > now ? std::min(m_next_irq_ns - now, kItrMaxWaitNs) : 0;
    s.eeprom = m_eeprom.save();
    s.phy = m_phy.save();
    s.tx = m_tx.save();
    return s;
}

// What the guest can put in the image: the registers the model keeps, with
// the width their writes leave them. Ring heads and tails are checked
// against the register's 16 bits, not against the ring: a guest may write
// any of them (the device then ignores the ring until it is put right), so
// refusing one would let a guest make its own snapshot unrestorable.
Result<void> E1000::check_registers(const RegisterFile::Words& regs) {
    for (uint32_t i = 0; i < regs.size(); ++i) {
        if (regs[i] != 0 && !kept_in_file(4 * i))
            return input_error(
                "e1000 state: register {:#06x} holds {:#x}; the device keeps none there", 4 * i,
                regs[i]);
    }
    for (uint32_t offset : {reg::kItr, reg::kVet, reg::kRdh, reg::kRdt, reg::kTdh, reg::kTdt}) {
        if (regs[offset / 4] > 0xFFFF)
            return input_error("e1000 state: register {:#06x} is {:#x}, wider than its 16 bits",
                               offset, regs[offset / 4]);
    }
    if (regs[reg::kCtrl / 4] & (kCtrlRst | kCtrlPhyRst))
        return input_error("e1000 state: CTRL {:#x} with a self-clearing reset bit",
                           regs[reg::kCtrl / 4]);
    return {};
}

Result<void> E1000::restore(const State& s) {
    RV_TRY_VOID(check_registers(s.regs));
    if ((s.icr | s.ims) & ~kIntMask)
        return input_error("e1000 state: ICR {:#x} / IMS {:#x} name causes an 82540 lacks", s.icr,
                           s.ims);
    if (!(s.mdic & kMdicReady)) return input_error("e1000 state: MDIC {:#x} not ready", s.mdic);
    if (s.io_addr & ~0x1FFFCu) return input_error("e1000 state: IOADDR {:#x}", s.io_addr);
    if (s.itr_wait_ns > kItrMaxWaitNs)
        return input_error("e1000 state: {} ns left of an ITR hold-off of at most {}",
                           s.itr_wait_ns, kItrMaxWaitNs);
    // The line is only ever raised for an unmasked cause with INTx enabled,
    // and lowered as soon as that ends. (Low with a cause pending is the ITR
    // hold-off.)
    const uint16_t command = load_le(std::span(s.pci.bytes).subspan(pci_reg::kCommand, 2));
    if (s.irq_level && (!(s.icr & s.ims) || (command & kPciCommandIntxDisable)))
        return input_error("e1000 state: INTx high with ICR {:#x}, IMS {:#x}, command {:#x}", s.icr,
                           s.ims, command);
    RV_TRY_VOID(Eeprom::check(s.eeprom));
    RV_TRY_VOID(Phy::check(s.phy));
    RV_TRY_VOID(TxEngine::check(s.tx));

    std::lock_guard lock(m_mutex);
    // Pending TX resumes from the tx limiter's timer, as it would have in
    // the original; without a limiter in force it is attached just for this
    // (and, never armed by an unlimited limiter, stays quiet afterwards).
    // A failure here is the host's, and leaves the guest's view unchanged.
    if (s.tx_pending) RV_TRY_VOID(attach_limiter_timer(false));
    RV_TRY_VOID(m_pci.restore(s.pci));  // the last refusal: nothing else has changed yet

    m_regs.load(s.regs);
    m_icr = s.icr;
    m_ims = s.ims;
    m_mdic = s.mdic;
    m_io_addr = s.io_addr;
    m_eeprom.restore(s.eeprom);
    m_phy.restore(s.phy);
    m_tx.restore(s.tx);
    // A packet read from the backend that had no descriptors yet is dropped,
    // and with it whatever the rx limiter held.
    m_rx_pending = false;
    m_rx_paid = false;
    m_rx_throttled = false;
    m_rx_limit.timer.disarm();
    m_tx_throttled = s.tx_pending;
    if (s.tx_pending)
        m_tx_limit.timer.arm(0);
    else
        m_tx_limit.timer.disarm();

    // ITR: the hold-off continues for what was left of it; an armed timer
    // of this device's past must not cut it short.
    if (m_timer_armed) {
        itimerspec off{};
        (void)::timerfd_settime(m_timer.get(), 0, &off, nullptr);
        m_timer_armed = false;
    }
    m_next_irq_ns = s.itr_wait_ns ? now_ns() + s.itr_wait_ns : 0;
    m_level = s.irq_level;
    if (m_intx) m_intx->set_level(m_level);
    update_irq();  // a cause held back by ITR: arms the timer for the rest

    update_rx_interest();
    if (rx_starved()) arm_rx_retry();
    return {};
}

}  // namespace rv
