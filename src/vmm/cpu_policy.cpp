#include "vmm/cpu_policy.h"

#include "base/parse.h"

namespace rv {

Result<CpuPolicy::Max> parse_cpu_max(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos)
        return input_error("cpu_max {:?}: expected QUOTA/PERIOD in microseconds, e.g. 25000/100000",
                           text);
    auto quota = parse_u64(text.substr(0, slash));
    auto period = parse_u64(text.substr(slash + 1));
    if (!quota || !period)
        return input_error("cpu_max {:?}: QUOTA and PERIOD must be whole microseconds", text);
    CpuPolicy::Max max{*quota, *period};
    if (max.period_us < 1000 || max.period_us > 1000000)
        return input_error("cpu_max {:?}: the period must be 1000..1000000 us", text);
    if (max.quota_us < 1000)
        return input_error("cpu_max {:?}: the quota must be at least 1000 us", text);
    return max;
}

std::string format_cpu_max(const CpuPolicy::Max& max) {
    return fmt::format("{}/{}", max.quota_us, max.period_us);
}

Result<CpuPolicy::IoMax> parse_io_max(std::string_view text) {
    CpuPolicy::IoMax max;
    auto fail = [&](std::string_view why) {
        return input_error("io_max {:?}: {} (expected rbps=N,wbps=N,riops=N,wiops=N: bytes and "
                           "operations per second, any of them)",
                           text, why);
    };
    if (text.empty()) return fail("empty");
    for (std::string_view rest = text;;) {
        const auto comma = rest.find(',');
        const std::string_view part = rest.substr(0, comma);
        const auto eq = part.find('=');
        if (eq == std::string_view::npos) return fail(fmt::format("{:?} has no value", part));
        const std::string_view key = part.substr(0, eq);
        auto value = parse_u64(part.substr(eq + 1));
        if (!value || *value == 0 || *value > (uint64_t{1} << 62))
            return fail(fmt::format("{}: not a number of 1..2^62", key));
        std::optional<uint64_t>* slot = key == "rbps"    ? &max.rbps
                                        : key == "wbps"  ? &max.wbps
                                        : key == "riops" ? &max.riops
                                        : key == "wiops" ? &max.wiops
                                                         : nullptr;
        if (!slot) return fail(fmt::format("unknown key {:?}", key));
        if (*slot) return fail(fmt::format("{} given twice", key));
        *slot = *value;
        if (comma == std::string_view::npos) return max;
        rest = rest.substr(comma + 1);
    }
}

std::string format_io_max(const CpuPolicy::IoMax& max) {
    std::string out;
    auto add = [&](const char* key, const std::optional<uint64_t>& v) {
        if (v) out += fmt::format("{}{}={}", out.empty() ? "" : ",", key, *v);
    };
    add("rbps", max.rbps);
    add("wbps", max.wbps);
    add("riops", max.riops);
    add("wiops", max.wiops);
    return out;
}

Result<void> check_cpu_list(std::string_view text) {
    if (text.empty()) return input_error("cpuset is empty");
    for (std::string_view rest = text;;) {
        auto comma = rest.find(',');
        std::string_view part = rest.substr(0, comma);
        auto dash = part.find('-');
        auto first = parse_u64(part.substr(0, dash));
        auto last = dash == std::string_view::npos ? first : parse_u64(part.substr(dash + 1));
        if (!first || !last || *last < *first || *last > 8191)
            return input_error("cpuset {:?}: expected CPU numbers and ranges, e.g. 0-3,6", text);
        if (comma == std::string_view::npos) return {};
        rest = rest.substr(comma + 1);
    }
}

Result<void> check_policy(const CpuPolicy& policy) {
    if (policy.weight &&
        (*policy.weight < CpuPolicy::kMinWeight || *policy.weight > CpuPolicy::kMaxWeight))
        return input_error("cpu_weight {}: must be {}..{}", *policy.weight, CpuPolicy::kMinWeight,
                           CpuPolicy::kMaxWeight);
    if (policy.io_weight &&
        (*policy.io_weight < CpuPolicy::kMinWeight || *policy.io_weight > CpuPolicy::kMaxWeight))
        return input_error("io_weight {}: must be {}..{}", *policy.io_weight, CpuPolicy::kMinWeight,
                           CpuPolicy::kMaxWeight);
    if (policy.max) RV_TRY(parse_cpu_max(format_cpu_max(*policy.max)));
    if (policy.cpuset) RV_TRY_VOID(check_cpu_list(*policy.cpuset));
    if (policy.io_max) RV_TRY(parse_io_max(format_io_max(*policy.io_max)));
    return {};
}

}  // namespace rv
