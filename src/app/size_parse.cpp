#include "app/size_parse.h"

#include <cctype>
#include <charconv>
#include <string>

namespace rv {

Result<uint64_t> parse_memory_size(std::string_view text) {
    uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end == text.data())
        return make_error("invalid memory size '{}': expected a number like 512M or 2G", text);
    std::string unit(end, text.data() + text.size());
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    unsigned shift;
    if (unit.empty() || unit == "m" || unit == "mb" || unit == "mib")
        shift = 20;
    else if (unit == "k" || unit == "kb" || unit == "kib")
        shift = 10;
    else if (unit == "g" || unit == "gb" || unit == "gib")
        shift = 30;
    else if (unit == "t" || unit == "tb" || unit == "tib")
        shift = 40;
    else
        return make_error("invalid memory size '{}': unknown unit '{}'", text, unit);
    if (number > (UINT64_MAX >> shift)) return make_error("memory size '{}' is too large", text);
    return number << shift;
}

}  // namespace rv
