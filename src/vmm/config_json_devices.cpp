// The device parts of Firecracker's JSON: Drive, PartialDrive,
// NetworkInterface, PartialNetworkInterface, EntropyDevice and their
// RateLimiter / TokenBucket, both ways; and ringvisor's rate limit groups.
#include <limits>

#include "vmm/config_json.h"
#include "vmm/config_json_reader.h"

namespace rv {

using config_json::Choices;
using config_json::json;
using config_json::ObjectReader;

namespace {

constexpr uint64_t kAnyU64 = std::numeric_limits<uint64_t>::max();

constexpr Choices<DiskConfig::Cache, 3> kCacheTypes{{
    {"Unsafe", DiskConfig::Cache::Unsafe},
    {"Writeback", DiskConfig::Cache::Writeback},
    {"None", DiskConfig::Cache::None},  // ringvisor's extension: O_DIRECT
}};
// Firecracker's "Async" is its io_uring engine, as ours is.
constexpr Choices<BlockOptions::Engine, 2> kIoEngines{{
    {"Sync", BlockOptions::Engine::Sync},
    {"Async", BlockOptions::Engine::IoUring},
}};
constexpr Choices<DiskConfig::Interface, 2> kDiskInterfaces{{
    {"virtio", DiskConfig::Interface::Virtio},
    {"ide", DiskConfig::Interface::Ide},
}};
constexpr Choices<NetConfig::Model, 2> kNetModels{{
    {"virtio", NetConfig::Model::Virtio},
    {"e1000", NetConfig::Model::E1000},
}};

Result<TokenBucketConfig> parse_bucket(const json& value, std::string path) {
    auto in = RV_TRY(
        ObjectReader::open(value, std::move(path), {"size", "one_time_burst", "refill_time"}));
    TokenBucketConfig bucket;
    bucket.size = RV_TRY(in.uint("size", 0, kAnyU64));
    bucket.one_time_burst = RV_TRY(in.opt_uint("one_time_burst", 0, kAnyU64)).value_or(0);
    bucket.refill_time_ms = RV_TRY(in.uint("refill_time", 0, kAnyU64));
    return bucket;
}

json bucket_to_json(const TokenBucketConfig& bucket) {
    return {{"size", bucket.size},
            {"one_time_burst", bucket.one_time_burst},
            {"refill_time", bucket.refill_time_ms}};
}

Result<std::optional<RateLimiterConfig>> opt_limiter(const ObjectReader& in, std::string_view key) {
    const json* value = in.find(key);
    if (!value) return std::optional<RateLimiterConfig>{};
    return std::optional<RateLimiterConfig>{
        RV_TRY(config_json::parse_rate_limiter(*value, in.path(key)))};
}

json opt_limiter_to_json(const std::optional<RateLimiterConfig>& limiter) {
    return limiter ? rate_limiter_to_json(*limiter) : json(nullptr);
}

// drive_id / iface_id: required, non-empty.
Result<std::string> id_field(const ObjectReader& in, std::string_view key) {
    auto id = RV_TRY(in.string(key));
    if (id.empty()) return input_error("{}: empty", in.path(key));
    return id;
}

// A body sent to /drives/{id} or /network-interfaces/{id} names the same id
// as the path: Firecracker refuses a mismatch, and so do we.
Result<void> check_path_id(std::string_view path_id, std::string_view key, std::string_view id) {
    if (path_id != id)
        return input_error("{}: '{}' does not match the id in the path, '{}'", key, id, path_id);
    return {};
}

}  // namespace

namespace config_json {

Result<RateLimiterConfig> parse_rate_limiter(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(value, std::move(path), {"bandwidth", "ops"}));
    RateLimiterConfig limiter;
    if (const json* b = in.find("bandwidth"))
        limiter.bandwidth = RV_TRY(parse_bucket(*b, in.path("bandwidth")));
    if (const json* o = in.find("ops")) limiter.ops = RV_TRY(parse_bucket(*o, in.path("ops")));
    return limiter;
}

// Absent optional fields keep DiskConfig's defaults (cache Writeback, the
// io_uring engine) rather than Firecracker's (Unsafe, Sync): with them a
// flush reaches the disk, and the engine is invisible to the guest.
Result<DiskConfig> parse_drive(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(
        value, std::move(path),
        {"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid", "cache_type",
         "io_engine", "rate_limiter", "socket", "iface", "num_queues", "rate_limit_group"}));
    RV_TRY_VOID(in.refuse("socket", "vhost-user block devices are not supported"));
    RV_TRY_VOID(
        in.refuse("partuuid", "not supported: name the root partition in boot_args (root=...)"));
    DiskConfig disk;
    disk.id = RV_TRY(id_field(in, "drive_id"));
    disk.path = RV_TRY(in.string("path_on_host"));
    disk.is_root_device = RV_TRY(in.opt_bool("is_root_device")).value_or(false);
    disk.read_only = RV_TRY(in.opt_bool("is_read_only")).value_or(false);
    disk.cache = RV_TRY(in.opt_choice("cache_type", kCacheTypes)).value_or(disk.cache);
    disk.engine = RV_TRY(in.opt_choice("io_engine", kIoEngines)).value_or(disk.engine);
    disk.iface = RV_TRY(in.opt_choice("iface", kDiskInterfaces)).value_or(disk.iface);
    disk.rate_limiter = RV_TRY(opt_limiter(in, "rate_limiter"));
    // ringvisor's extension (virtio only): request queues, default one per vCPU.
    if (auto n = RV_TRY(in.opt_uint("num_queues", 1, DiskConfig::kMaxQueues)))
        disk.num_queues = static_cast<unsigned>(*n);
    // ringvisor's extension: a rate limit group the drive draws from too.
    disk.rate_limit_group = RV_TRY(in.opt_string("rate_limit_group"));
    if (disk.rate_limit_group && disk.rate_limit_group->empty())
        return input_error("{}: empty", in.path("rate_limit_group"));
    return disk;
}

json drive_to_json(const DiskConfig& disk) {
    return {{"drive_id", disk.id},
            {"path_on_host", disk.path},
            {"is_root_device", disk.is_root_device},
            {"is_read_only", disk.read_only},
            {"partuuid", nullptr},
            {"cache_type", choice_name(kCacheTypes, disk.cache)},
            {"io_engine", choice_name(kIoEngines, disk.engine)},
            {"rate_limiter", opt_limiter_to_json(disk.rate_limiter)},
            {"socket", nullptr},
            {"iface", choice_name(kDiskInterfaces, disk.iface)},
            {"num_queues", disk.num_queues ? json(*disk.num_queues) : json(nullptr)},
            {"rate_limit_group",
             disk.rate_limit_group ? json(*disk.rate_limit_group) : json(nullptr)}};
}

Result<NetConfig> parse_net(const json& value, std::string path) {
    auto in =
        RV_TRY(ObjectReader::open(value, std::move(path),
                                  {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
                                   "tx_rate_limiter", "mtu", "model", "queues"}));
    RV_TRY_VOID(in.refuse("mtu", "not supported: the guest chooses its MTU"));
    NetConfig net;
    net.id = RV_TRY(id_field(in, "iface_id"));
    net.tap = RV_TRY(in.string("host_dev_name"));
    if (auto mac = RV_TRY(in.opt_string("guest_mac")))
        net.mac = RV_TRY(with_context(parse_mac(*mac), in.path("guest_mac")));
    net.model = RV_TRY(in.opt_choice("model", kNetModels)).value_or(net.model);
    // ringvisor's extension: virtio-net queue pairs (absent or null: one per vCPU).
    if (auto queues = RV_TRY(in.opt_uint("queues", 1, NetConfig::kMaxQueues)))
        net.queues = static_cast<unsigned>(*queues);
    if (net.queues > 1u && net.model == NetConfig::Model::E1000)
        return input_error(
            "{}: {} queue pairs, but the e1000 model has one (multiqueue needs "
            "model virtio)",
            in.path("queues"), *net.queues);
    net.rx_rate_limiter = RV_TRY(opt_limiter(in, "rx_rate_limiter"));
    net.tx_rate_limiter = RV_TRY(opt_limiter(in, "tx_rate_limiter"));
    return net;
}

json net_to_json(const NetConfig& net) {
    return {{"iface_id", net.id},
            {"host_dev_name", net.tap},
            {"guest_mac", net.mac ? json(format_mac(*net.mac)) : json(nullptr)},
            {"rx_rate_limiter", opt_limiter_to_json(net.rx_rate_limiter)},
            {"tx_rate_limiter", opt_limiter_to_json(net.tx_rate_limiter)},
            {"model", choice_name(kNetModels, net.model)},
            {"queues", net.queues ? json(*net.queues) : json(nullptr)}};
}

Result<EntropyConfig> parse_entropy(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(value, std::move(path), {"rate_limiter"}));
    EntropyConfig entropy;
    entropy.rate_limiter = RV_TRY(opt_limiter(in, "rate_limiter"));
    return entropy;
}

json entropy_to_json(const EntropyConfig& entropy) {
    return {{"rate_limiter", opt_limiter_to_json(entropy.rate_limiter)}};
}

// {"id": "g", "rate_limiter": {"bandwidth": {...}, "ops": {...}}}: both required.
Result<RateLimitGroupConfig> parse_rate_limit_group(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(value, std::move(path), {"id", "rate_limiter"}));
    RateLimitGroupConfig group;
    group.id = RV_TRY(id_field(in, "id"));
    const json* limits = in.find("rate_limiter");
    if (!limits) return input_error("{}: missing (required)", in.path("rate_limiter"));
    group.limits = RV_TRY(parse_rate_limiter(*limits, in.path("rate_limiter")));
    return group;
}

}  // namespace config_json

Result<RateLimiterConfig> rate_limiter_from_json(const json& body, std::string_view field) {
    return config_json::parse_rate_limiter(body, std::string(field));
}

json rate_limiter_to_json(const RateLimiterConfig& limiter) {
    json out = json::object();
    if (limiter.bandwidth) out["bandwidth"] = bucket_to_json(*limiter.bandwidth);
    if (limiter.ops) out["ops"] = bucket_to_json(*limiter.ops);
    return out;
}

Result<RateLimitGroupConfig> rate_limit_group_from_json(std::string_view path_id,
                                                        const json& body) {
    auto group = RV_TRY(config_json::parse_rate_limit_group(body, ""));
    RV_TRY_VOID(check_path_id(path_id, "id", group.id));
    return group;
}

json rate_limit_group_to_json(const RateLimitGroupConfig& group) {
    return {{"id", group.id}, {"rate_limiter", rate_limiter_to_json(group.limits)}};
}

Result<DiskConfig> drive_from_json(std::string_view path_id, const json& body) {
    auto disk = RV_TRY(config_json::parse_drive(body, ""));
    RV_TRY_VOID(check_path_id(path_id, "drive_id", disk.id));
    return disk;
}

Result<DriveUpdate> drive_update_from_json(std::string_view path_id, const json& body) {
    auto in = RV_TRY(ObjectReader::open(body, "", {"drive_id", "path_on_host", "rate_limiter"}));
    DriveUpdate update;
    update.id = RV_TRY(id_field(in, "drive_id"));
    RV_TRY_VOID(check_path_id(path_id, "drive_id", update.id));
    update.path_on_host = RV_TRY(in.opt_string("path_on_host"));
    if (update.path_on_host && update.path_on_host->empty())
        return input_error("path_on_host: empty");
    update.rate_limiter = RV_TRY(opt_limiter(in, "rate_limiter"));
    return update;
}

Result<NetConfig> net_from_json(std::string_view path_id, const json& body) {
    auto net = RV_TRY(config_json::parse_net(body, ""));
    RV_TRY_VOID(check_path_id(path_id, "iface_id", net.id));
    return net;
}

Result<NetUpdate> net_update_from_json(std::string_view path_id, const json& body) {
    auto in =
        RV_TRY(ObjectReader::open(body, "", {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
    NetUpdate update;
    update.id = RV_TRY(id_field(in, "iface_id"));
    RV_TRY_VOID(check_path_id(path_id, "iface_id", update.id));
    update.rx_rate_limiter = RV_TRY(opt_limiter(in, "rx_rate_limiter"));
    update.tx_rate_limiter = RV_TRY(opt_limiter(in, "tx_rate_limiter"));
    return update;
}

Result<EntropyConfig> entropy_from_json(const json& body) {
    return config_json::parse_entropy(body, "");
}

}  // namespace rv
