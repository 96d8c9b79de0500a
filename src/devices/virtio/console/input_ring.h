// A fixed-size byte FIFO for console input waiting for the guest's receive
// buffers. Fixed so that input_capacity() is an honest, bounded promise: the
// VMM stops reading its terminal when the ring is full instead of the device
// growing without limit while a guest never posts buffers.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rv::virtio {

template <size_t N>
class InputRing {
  public:
    size_t size() const { return m_count; }
    size_t free_space() const { return N - m_count; }
    bool empty() const { return m_count == 0; }

    // Appends as much of `bytes` as fits; returns how many were taken.
    size_t push(std::span<const uint8_t> bytes) {
        size_t n = std::min(bytes.size(), free_space());
        for (size_t i = 0; i < n; ++i) m_data[(m_head + m_count + i) % N] = bytes[i];
        m_count += n;
        return n;
    }
    // The oldest bytes that are contiguous in storage (all of them unless
    // they wrap), for copying straight into a guest buffer.
    std::span<const uint8_t> front() const {
        return std::span<const uint8_t>(m_data).subspan(m_head, std::min(m_count, N - m_head));
    }
    void consume(size_t n) {
        n = std::min(n, m_count);
        m_head = (m_head + n) % N;
        m_count -= n;
    }
    void clear() { m_head = m_count = 0; }

  private:
    std::array<uint8_t, N> m_data{};
    size_t m_head{0};
    size_t m_count{0};
};

}  // namespace rv::virtio
