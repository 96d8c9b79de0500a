#include "vmm/config_json_reader.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>

namespace rv::config_json {

std::string join_path(std::string_view prefix, std::string_view key) {
    if (prefix.empty()) return std::string(key);
    return fmt::format("{}.{}", prefix, key);
}

std::string index_path(std::string_view prefix, size_t index) {
    return fmt::format("{}[{}]", prefix, index);
}

namespace {

// How a value the parser did not expect is described: "expected a string,
// got a number" tells a user which quoting went wrong.
std::string_view type_name(const json& value) {
    switch (value.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::object:
            return "an object";
        case json::value_t::array:
            return "an array";
        case json::value_t::string:
            return "a string";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "an integer";
        case json::value_t::number_float:
            return "a number";
        default:
            return "a value";
    }
}

std::unexpected<Error> expected(std::string_view path, std::string_view what, const json& got) {
    return input_error("{}: expected {}, got {}", path, what, type_name(got));
}

std::unexpected<Error> missing(std::string_view path) {
    return input_error("{}: missing (required)", path);
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return std::ranges::equal(a, b, [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

Result<uint64_t> as_uint(const json& value, std::string_view path, uint64_t min, uint64_t max) {
    if (!value.is_number_integer()) return expected(path, "an integer", value);
    // Parsed text keeps non-negative integers unsigned, but a json built in
    // code from an int is signed whatever its value.
    if (!value.is_number_unsigned() && value.get<int64_t>() < 0)
        return input_error("{}: {} is out of range {}..{}", path, value.get<int64_t>(), min, max);
    auto v = value.get<uint64_t>();
    if (v < min || v > max) return input_error("{}: {} is out of range {}..{}", path, v, min, max);
    return v;
}

}  // namespace

Result<ObjectReader> ObjectReader::open(const json& value, std::string path,
                                        std::initializer_list<std::string_view> known) {
    if (!value.is_object()) {
        if (path.empty()) return input_error("expected a JSON object, got {}", type_name(value));
        return expected(path, "an object", value);
    }
    for (const auto& [key, _] : value.items()) {
        if (std::ranges::find(known, std::string_view(key)) != known.end()) continue;
        if (path.empty()) return input_error("unknown field '{}'", key);
        return input_error("unknown field '{}' in {}", key, path);
    }
    return ObjectReader(value, std::move(path));
}

const json* ObjectReader::find(std::string_view key) const {
    auto it = m_object->find(key);
    if (it == m_object->end() || it->is_null()) return nullptr;
    return &*it;
}

Result<std::string> ObjectReader::string(std::string_view key) const {
    auto value = RV_TRY(opt_string(key));
    if (!value) {
        // Null is "not given" for optional fields only: say what was wrong.
        auto it = m_object->find(key);
        if (it != m_object->end()) return expected(path(key), "a string", *it);
        return missing(path(key));
    }
    return std::move(*value);
}

Result<std::optional<std::string>> ObjectReader::opt_string(std::string_view key) const {
    const json* value = find(key);
    if (!value) return std::optional<std::string>{};
    if (!value->is_string()) return expected(path(key), "a string", *value);
    return std::optional<std::string>{value->get<std::string>()};
}

Result<std::optional<bool>> ObjectReader::opt_bool(std::string_view key) const {
    const json* value = find(key);
    if (!value) return std::optional<bool>{};
    if (!value->is_boolean()) return expected(path(key), "a boolean", *value);
    return std::optional<bool>{value->get<bool>()};
}

Result<uint64_t> ObjectReader::uint(std::string_view key, uint64_t min, uint64_t max) const {
    const json* value = find(key);
    if (!value) {
        auto it = m_object->find(key);
        if (it != m_object->end()) return expected(path(key), "an integer", *it);
        return missing(path(key));
    }
    return as_uint(*value, path(key), min, max);
}

Result<std::optional<uint64_t>> ObjectReader::opt_uint(std::string_view key, uint64_t min,
                                                       uint64_t max) const {
    const json* value = find(key);
    if (!value) return std::optional<uint64_t>{};
    return std::optional<uint64_t>{RV_TRY(as_uint(*value, path(key), min, max))};
}

Result<void> ObjectReader::refuse(std::string_view key, std::string_view why) const {
    if (find(key)) return input_error("{}: {}", path(key), why);
    return {};
}

Result<size_t> ObjectReader::choice_index(std::string_view key, std::string_view name,
                                          const std::vector<std::string_view>& names,
                                          bool ignore_case) const {
    for (size_t i = 0; i < names.size(); ++i)
        if (ignore_case ? equal_ignoring_case(name, names[i]) : name == names[i]) return i;
    return input_error("{}: '{}' is not one of {}", path(key), name, fmt::join(names, ", "));
}

}  // namespace rv::config_json
