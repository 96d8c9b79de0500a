// Watches the guest console byte stream for the kernel's panic banner, so a
// guest kernel panic ends the VMM with a non-zero status and a clear message
// even when the guest then resets (panic=-1) instead of stopping.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace rv {

class ConsoleMonitor {
public:
    enum class Event { None, PanicStarted, PanicEnded };

    // Feeds guest output; returns the most significant event in this chunk.
    Event feed(std::span<const uint8_t> bytes);

    bool panicked() const { return m_panic_line.has_value(); }
    // The "Kernel panic - not syncing: ..." line, without the timestamp prefix.
    const std::optional<std::string>& panic_line() const { return m_panic_line; }

private:
    Event end_line();

    std::string m_line;
    std::optional<std::string> m_panic_line;
};

}  // namespace rv
