// Private to vmm/config_json*.cpp: strict, typed reading of one JSON object
// with the path of the field in every error ("drives[1].path_on_host:
// expected a string"), and the section parsers the --config-file document
// and the API's bodies share (each takes the path its section sits at; ""
// for a request body).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "vmm/vm_config.h"
#include "vmm/vmm_api.h"

namespace rv::config_json {

using nlohmann::json;

// "drives[1]" + "path_on_host" -> "drives[1].path_on_host"; a body's own
// fields have no prefix.
std::string join_path(std::string_view prefix, std::string_view key);
std::string index_path(std::string_view prefix, size_t index);

// A string value among fixed names, e.g. cache_type's "Unsafe" | "Writeback".
template <typename E, size_t N>
using Choices = std::array<std::pair<std::string_view, E>, N>;

class ObjectReader {
  public:
    // Fails unless `value` is an object whose keys are all in `known`.
    static Result<ObjectReader> open(const json& value, std::string path,
                                     std::initializer_list<std::string_view> known);

    // The field's value; nullptr when absent or null: an optional field
    // given as null means "not given", as serde's Option does in Firecracker.
    const json* find(std::string_view key) const;
    std::string path(std::string_view key) const { return join_path(m_path, key); }
    const std::string& path() const { return m_path; }

    Result<std::string> string(std::string_view key) const;  // required
    Result<std::optional<std::string>> opt_string(std::string_view key) const;
    Result<std::optional<bool>> opt_bool(std::string_view key) const;
    Result<uint64_t> uint(std::string_view key, uint64_t min, uint64_t max) const;  // required
    Result<std::optional<uint64_t>> opt_uint(std::string_view key, uint64_t min,
                                             uint64_t max) const;

    template <typename E, size_t N>
    Result<std::optional<E>> opt_choice(std::string_view key, const Choices<E, N>& choices,
                                        bool ignore_case = false) const {
        auto name = RV_TRY(opt_string(key));
        if (!name) return std::optional<E>{};
        std::vector<std::string_view> names;
        for (const auto& c : choices) names.push_back(c.first);
        auto index = RV_TRY(choice_index(key, *name, names, ignore_case));
        return std::optional<E>{choices[index].second};
    }

    // A field ringvisor does not implement: an error naming it unless it is
    // absent or null.
    Result<void> refuse(std::string_view key, std::string_view why) const;

  private:
    ObjectReader(const json& object, std::string path)
        : m_object(&object), m_path(std::move(path)) {}

    Result<size_t> choice_index(std::string_view key, std::string_view name,
                                const std::vector<std::string_view>& names, bool ignore_case) const;

    const json* m_object;
    std::string m_path;
};

// The name of a choice, for the *_to_json side.
template <typename E, size_t N>
std::string_view choice_name(const Choices<E, N>& choices, E value) {
    for (const auto& c : choices)
        if (c.second == value) return c.first;
    return {};
}

// Section parsers, shared by the document and the bodies (config_json_devices.cpp).
Result<RateLimiterConfig> parse_rate_limiter(const json& value, std::string path);
Result<DiskConfig> parse_drive(const json& value, std::string path);
Result<NetConfig> parse_net(const json& value, std::string path);
Result<EntropyConfig> parse_entropy(const json& value, std::string path);
Result<RateLimitGroupConfig> parse_rate_limit_group(const json& value, std::string path);
json drive_to_json(const DiskConfig& disk);
json net_to_json(const NetConfig& net);
json entropy_to_json(const EntropyConfig& entropy);

// (config_json.cpp)
Result<BootSourceConfig> parse_boot_source(const json& value, std::string path);
Result<MachineConfigUpdate> parse_machine_config(const json& value, std::string path, bool partial);
Result<LoggerConfig> parse_logger(const json& value, std::string path);
Result<MetricsConfig> parse_metrics(const json& value, std::string path);

}  // namespace rv::config_json
