#include "app/device_args.h"

#include <charconv>
#include <vector>

#include "base/parse.h"

namespace rv {

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (;;) {
        size_t at = text.find(sep, start);
        parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
        if (at == std::string_view::npos) return parts;
        start = at + 1;
    }
}

// id=NAME: checked for its characters by VmConfig::validate, like an id
// from the JSON; only an empty one is refused here.
Result<std::string> parse_id(std::string_view flag, std::string_view text, std::string_view opt) {
    auto id = opt.substr(3);
    if (id.empty()) return input_error("{} '{}': id= needs a name", flag, text);
    return std::string(id);
}

// One of LIMITS (see the header) into `limits`; false if `opt` is none of
// them. A bucket given any key exists; what it leaves out is 0.
Result<bool> parse_limit(std::string_view flag, std::string_view text, std::string_view opt,
                         RateLimiterConfig& limits) {
    const auto eq = opt.find('=');
    const std::string_view key = opt.substr(0, eq);
    std::optional<TokenBucketConfig>* bucket = nullptr;
    std::string_view field;
    for (auto [prefix, b] : {std::pair{"bw_", &limits.bandwidth}, std::pair{"ops_", &limits.ops}})
        if (key.starts_with(prefix)) {
            bucket = b;
            field = key.substr(std::string_view(prefix).size());
        }
    if (!bucket || eq == std::string_view::npos ||
        (field != "size" && field != "one_time_burst" && field != "refill_time"))
        return false;
    auto value = parse_u64(opt.substr(eq + 1));
    if (!value) return input_error("{} '{}': {}= needs a whole number", flag, text, key);
    if (!*bucket) bucket->emplace();
    (field == "size" ? (*bucket)->size
                     : field == "one_time_burst" ? (*bucket)->one_time_burst
                                                 : (*bucket)->refill_time_ms) = *value;
    return true;
}

constexpr std::string_view kLimitKeys =
    "bw_size=, bw_one_time_burst=, bw_refill_time=, ops_size=, ops_one_time_burst=, "
    "ops_refill_time=";

// queues=N: virtio-net queue pairs, 1..NetConfig::kMaxQueues.
Result<unsigned> parse_queues(std::string_view text, std::string_view value) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 1 ||
        n > NetConfig::kMaxQueues)
        return input_error("--net '{}': queues= needs a number from 1 to {}, not '{}'", text,
                           NetConfig::kMaxQueues, value);
    return n;
}

}  // namespace

Result<DiskConfig> parse_disk_arg(std::string_view text) {
    auto parts = split(text, ',');
    DiskConfig disk;
    disk.path = std::string(parts[0]);
    if (disk.path.empty()) return input_error("--disk '{}': no image path", text);
    RateLimiterConfig limits;
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view opt = parts[i];
        if (RV_TRY(parse_limit("--disk", text, opt, limits))) {
            disk.rate_limiter = limits;
        } else if (opt.starts_with("rate_limit_group=")) {
            // Checked against the defined groups by VmConfig::validate.
            disk.rate_limit_group = std::string(opt.substr(17));
            if (disk.rate_limit_group->empty())
                return input_error("--disk '{}': rate_limit_group= needs a name", text);
        } else if (opt == "ro") {
            disk.read_only = true;
        } else if (opt == "rw") {
            disk.read_only = false;
        } else if (opt == "root") {
            disk.is_root_device = true;
        } else if (opt == "iface=virtio") {
            disk.iface = DiskConfig::Interface::Virtio;
        } else if (opt == "iface=ide") {
            disk.iface = DiskConfig::Interface::Ide;
        } else if (opt == "cache=none") {
            disk.cache = DiskConfig::Cache::None;
        } else if (opt == "cache=writeback") {
            disk.cache = DiskConfig::Cache::Writeback;
        } else if (opt == "cache=unsafe") {
            disk.cache = DiskConfig::Cache::Unsafe;
        } else if (opt == "engine=uring") {
            disk.engine = BlockOptions::Engine::IoUring;
        } else if (opt == "engine=sync") {
            disk.engine = BlockOptions::Engine::Sync;
        } else if (opt.starts_with("id=")) {
            disk.id = RV_TRY(parse_id("--disk", text, opt));
        } else if (opt.starts_with("num_queues=")) {
            // The range is VmConfig::validate's, as for the JSON field.
            unsigned n = 0;
            auto v = opt.substr(11);
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc{} || end != v.data() + v.size())
                return input_error("--disk '{}': num_queues= needs a number, not '{}'", text, v);
            disk.num_queues = n;
        } else if (opt.starts_with("iface=")) {
            return input_error("--disk '{}': unsupported interface '{}' (supported: virtio, ide)",
                               text, opt.substr(6));
        } else if (opt.starts_with("cache=")) {
            return input_error(
                "--disk '{}': unsupported cache '{}' (supported: none, writeback, unsafe)", text,
                opt.substr(6));
        } else if (opt.starts_with("engine=")) {
            return input_error("--disk '{}': unsupported engine '{}' (supported: uring, sync)",
                               text, opt.substr(7));
        } else {
            return input_error(
                "--disk '{}': unknown option '{}' (ro, rw, root, iface=virtio|ide, "
                "cache=none|writeback|unsafe, engine=uring|sync, id=NAME, num_queues=N, {}, "
                "rate_limit_group=NAME)",
                text, opt, kLimitKeys);
        }
    }
    return disk;
}

Result<NetConfig> parse_net_arg(std::string_view text) {
    NetConfig net;
    for (auto opt : split(text, ',')) {
        if (opt.starts_with("tap=")) {
            net.tap = std::string(opt.substr(4));
        } else if (opt.starts_with("mac=")) {
            net.mac =
                RV_TRY(with_context(parse_mac(opt.substr(4)), fmt::format("--net '{}'", text)));
        } else if (opt.starts_with("id=")) {
            net.id = RV_TRY(parse_id("--net", text, opt));
        } else if (opt == "model=virtio") {
            net.model = NetConfig::Model::Virtio;
        } else if (opt == "model=e1000") {
            net.model = NetConfig::Model::E1000;
        } else if (opt.starts_with("model=")) {
            return input_error("--net '{}': unsupported model '{}' (supported: virtio, e1000)",
                               text, opt.substr(6));
        } else if (opt.starts_with("queues=")) {
            net.queues = RV_TRY(parse_queues(text, opt.substr(7)));
        } else {
            return input_error(
                "--net '{}': unknown option '{}' (tap=NAME, mac=XX:XX:XX:XX:XX:XX, "
                "model=virtio|e1000, queues=N, id=NAME)",
                text, opt);
        }
    }
    if (net.tap.empty()) return input_error("--net '{}': tap=NAME is required", text);
    if (net.queues > 1u && net.model == NetConfig::Model::E1000)
        return input_error(
            "--net '{}': model=e1000 has one queue pair; queues={} needs "
            "model=virtio",
            text, *net.queues);
    return net;
}

Result<RateLimitGroupConfig> parse_rate_limit_group_arg(std::string_view text) {
    RateLimitGroupConfig group;
    for (auto opt : split(text, ',')) {
        if (opt.starts_with("id=")) {
            group.id = RV_TRY(parse_id("--rate-limit-group", text, opt));
        } else if (!RV_TRY(parse_limit("--rate-limit-group", text, opt, group.limits))) {
            return input_error("--rate-limit-group '{}': unknown option '{}' (id=NAME, {})", text,
                               opt, kLimitKeys);
        }
    }
    // What the limits must be is VmConfig::validate's, as for the JSON.
    if (group.id.empty()) return input_error("--rate-limit-group '{}': id=NAME is required", text);
    return group;
}

}  // namespace rv
