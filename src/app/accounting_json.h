// Reading GET /accounting replies and ledger records (src/vmm/accounting.h
// writes both): a missing or non-numeric field reads as 0, so a record from
// an older or newer ringvisor still sums.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace rv::app {

// j[key] as an unsigned number, 0 when absent or of another type.
inline uint64_t json_u64(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// The sum of `field` over the devices of one counter table, e.g.
// section["block"][<drive id>]["read_bytes"] over every drive.
inline uint64_t json_sum_field(const nlohmann::json& section, const char* table,
                               const char* field) {
    uint64_t total = 0;
    if (auto it = section.find(table); it != section.end() && it->is_object())
        for (const auto& [id, counters] : it->items())
            if (counters.is_object()) total += json_u64(counters, field);
    return total;
}

}  // namespace rv::app
