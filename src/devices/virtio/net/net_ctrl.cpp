// The control queue (5.1.6.5), switching queue pairs on and off, and
// announcing the guest: only VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET and
// VIRTIO_NET_CTRL_ANNOUNCE_ACK are understood, everything else is ERR.
#include <array>

#include "base/log.h"
#include "devices/virtio/net/net_wire.h"
#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

namespace {

// Class, command and the largest data we understand, with room to spare:
// a longer command is none of ours.
constexpr size_t kCtrlMaxCommand = 64;

}  // namespace

void VirtioNet::process_ctrl(Active& a) {
    const GuestMemory& mem = *a.memory;
    Queue& ctrl = *a.ctrl;
    bool used = false;
    unsigned budget = kCtrlBudget;
    for (;;) {
        if (budget == 0) {
            resume_later(a.ctrl_resume);
            break;
        }
        auto popped = ctrl.pop(mem);
        if (!popped) return fail(a, "control queue", popped.error());
        if (!*popped) {
            auto more = ctrl.enable_notification(mem);
            if (!more) return fail(a, "control queue", more.error());
            if (*more) continue;
            break;
        }
        const DescriptorChain& chain = **popped;
        --budget;
        ++m_counters.ctrl_commands;
        if (chain.writable_bytes() == 0) {
            // Nowhere to say ERR: give the chain back and stop, as QEMU does
            // (the driver would otherwise wait for an answer for good).
            ++m_counters.ctrl_errors;
            if (auto r = ctrl.add_used(mem, chain.head, 0); !r)
                return fail(a, "control queue", r.error());
            signal_used(a, ctrl, a.ctrl_index);
            if (a.failed) return;
            return fail(
                a, "control queue",
                Error(fmt::format("command chain {} has no writable ack byte", chain.head)));
        }
        const uint8_t ack = handle_ctrl_command(a, chain);
        if (ack != kNetCtrlOk) ++m_counters.ctrl_errors;
        ChainWriter writer(mem, chain);
        if (auto w = writer.write(std::span(&ack, 1)); !w)
            return fail(a, "writing a control queue ack", w.error());
        if (auto r = ctrl.add_used(mem, chain.head, 1); !r)
            return fail(a, "control queue", r.error());
        used = true;
        if (a.failed) return;  // set_active_pairs could not register a backend
    }
    if (used) signal_used(a, ctrl, a.ctrl_index);
}

// Reads and carries out one command; returns the ack.
uint8_t VirtioNet::handle_ctrl_command(Active& a, const DescriptorChain& chain) {
    const uint64_t len = chain.readable_bytes();
    if (len < 2)
        return ctrl_refuse(kWarnCtrlBadChain,
                           fmt::format("a {}-byte command (class and command take 2)", len));
    if (len > kCtrlMaxCommand)
        return ctrl_refuse(kWarnCtrlBadChain, fmt::format("a {}-byte command", len));
    std::array<uint8_t, kCtrlMaxCommand> cmd{};
    ChainReader reader(*a.memory, chain);
    auto got = reader.read(std::span(cmd).first(len));
    if (!got || *got != len) return ctrl_refuse(kWarnCtrlBadChain, "an unreadable command");
    const uint8_t cls = cmd[0];
    const uint8_t command = cmd[1];
    const auto data = std::span<const uint8_t>(cmd).subspan(2, len - 2);
    if (cls == kNetCtrlMq && command == kNetCtrlMqVqPairsSet) return ctrl_pairs_set(a, data);
    if (cls == kNetCtrlAnnounce && command == kNetCtrlAnnounceAck)
        return ctrl_announce_ack(a, data);
    return ctrl_refuse(kWarnCtrlRefused,
                       fmt::format("class {} command {}, which is not offered", cls, command));
}

uint8_t VirtioNet::ctrl_pairs_set(Active& a, std::span<const uint8_t> data) {
    // A one-pair NIC has a control queue too, but no pairs to switch to.
    if (!(a.features & kNetFMq))
        return ctrl_refuse(kWarnCtrlRefused, "VQ_PAIRS_SET without MQ negotiated");
    if (data.size() != 2)
        return ctrl_refuse(
            kWarnCtrlBadChain,
            fmt::format("VQ_PAIRS_SET with {} bytes of data (2 expected)", data.size()));
    const unsigned pairs = data[0] | (data[1] << 8);  // le16
    if (pairs < 1 || pairs > a.pairs.size())
        return ctrl_refuse(kWarnCtrlRefused, fmt::format("VQ_PAIRS_SET {} (the device has 1..{})",
                                                         pairs, a.pairs.size()));
    set_active_pairs(a, pairs);
    return kNetCtrlOk;
}

// The driver has seen VIRTIO_NET_S_ANNOUNCE and sent its announcements.
uint8_t VirtioNet::ctrl_announce_ack(Active& a, std::span<const uint8_t> data) {
    if (!announce_negotiated(a.features))
        return ctrl_refuse(kWarnCtrlRefused, "ANNOUNCE_ACK without GUEST_ANNOUNCE negotiated");
    if (!data.empty())
        return ctrl_refuse(
            kWarnCtrlBadChain,
            fmt::format("ANNOUNCE_ACK with {} bytes of data (none expected)", data.size()));
    // Also OK with nothing pending (a second ACK): clearing a clear bit
    // harms nothing.
    a.announce = false;
    return kNetCtrlOk;
}

bool VirtioNet::announce_negotiated(uint64_t features) {
    // 5.1.3.1: GUEST_ANNOUNCE needs CTRL_VQ, where the ACK comes back; a
    // driver with the one and not the other could not clear the bit.
    return (features & kNetFGuestAnnounce) && (features & kNetFCtrlVq);
}

bool VirtioNet::announce() {
    std::lock_guard lock(m_mutex);
    // A failed device processes no control queue and waits for a reset,
    // which would clear the bit anyway.
    if (!m_active || m_active->failed || !announce_negotiated(m_active->features)) return false;
    Active& a = *m_active;
    a.announce = true;
    ++m_counters.announces;
    // Also when the bit was already set: the driver may have read the
    // status before it was, and a second round of gratuitous packets is
    // harmless (QEMU repeats its announce rounds too).
    a.interrupt->signal_config_change();
    return true;
}

uint8_t VirtioNet::ctrl_refuse(unsigned warn_bit, std::string_view why) {
    warn_once(warn_bit, fmt::format("virtio-net: control queue: refusing {}", why));
    return kNetCtrlErr;
}

// Serves pairs [0, pairs) from now on. A pair switched on resumes from a
// clean slate (whatever it waited for may have come and gone unseen) and
// looks at its rings and backend at once; one switched off is left as it
// is, its backend unregistered and its tap queue detached.
void VirtioNet::set_active_pairs(Active& a, unsigned pairs) {
    const unsigned old = a.active_pairs;
    a.active_pairs = pairs;
    a.flows.clear();  // pinned to pairs that may be gone
    for (Pair& p : a.pairs) {
        if (p.index < pairs && p.index >= old) {
            attach_queue(p, true);
            p.rx_stalled = p.rx_throttled = p.tx_throttled = false;
            p.rx_resume = p.tx_resume = false;
            if (!p.tx_blocked) process_tx(a, p);
            if (!a.failed) process_rx(a, p);
            if (!a.failed) update_interest(a, p);
        } else if (p.index >= pairs && p.index < old) {
            update_interest(a, p);  // not active: unregisters
            attach_queue(p, false);
        }
        if (a.failed) return;
    }
}

void VirtioNet::attach_queue(Pair& p, bool attached) {
    if (auto r = p.backend->set_queue_attached(attached); !r)
        warn_once(kWarnQueueAttach,
                  fmt::format("virtio-net: pair {}: {}", p.index, r.error().message()));
}

}  // namespace rv::virtio
