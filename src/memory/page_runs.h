// Walking guest RAM a run of pages at a time: writers of memory files and
// the migration stream visit the pages of a region that are dirty (or hold
// data) in runs, so that each run is one write or one frame.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"

namespace rv {

// Bit `page` of a dirty bitmap (one bit per page, 64 pages a word).
inline bool page_bit(const std::vector<uint64_t>& bits, uint64_t page) {
    return (bits[page / 64] >> (page % 64) & 1) != 0;
}

// Calls fn(first, end, kind) for each run [first, end) of pages 0..pages
// whose kind(page) is the same non-zero value, at most max_run pages long;
// pages of kind 0 are skipped. Stops at fn's first error.
template <typename Kind, typename Fn>
Result<void> for_each_page_run(uint64_t pages, uint64_t max_run, Kind&& kind, Fn&& fn) {
    for (uint64_t page = 0; page < pages;) {
        const auto k = kind(page);
        if (!k) {
            ++page;
            continue;
        }
        uint64_t end = page + 1;
        while (end < pages && end - page < max_run && kind(end) == k) ++end;
        RV_TRY_VOID(fn(page, end, k));
        page = end;
    }
    return {};
}

}  // namespace rv
