#include "vmm/vm_config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <set>

namespace rv {

const DiskConfig* VmConfig::find_disk(std::string_view id) const {
    for (const auto& d : disks)
        if (d.id == id) return &d;
    return nullptr;
}

unsigned DiskConfig::queue_count(unsigned cpus) const {
    if (num_queues) return *num_queues;
    return std::clamp(cpus, 1u, kMaxQueues);
}

unsigned NetConfig::queue_pairs(unsigned cpus) const {
    if (queues) return *queues;
    if (model == Model::E1000) return 1;
    return std::clamp(cpus, 1u, kMaxQueues);
}

const NetConfig* VmConfig::find_net(std::string_view id) const {
    for (const auto& n : nets)
        if (n.id == id) return &n;
    return nullptr;
}

const RateLimitGroupConfig* VmConfig::find_rate_limit_group(std::string_view id) const {
    for (const auto& g : rate_limit_groups)
        if (g.id == id) return &g;
    return nullptr;
}

Result<MacAddress> parse_mac(std::string_view text) {
    MacAddress mac{};
    // Exactly "xx:xx:xx:xx:xx:xx": 17 characters, a colon after each byte.
    if (text.size() != 17)
        return input_error("invalid MAC address '{}': expected six hex bytes", text);
    for (size_t i = 0; i < 6; ++i) {
        std::string_view byte = text.substr(i * 3, 2);
        if (i < 5 && text[i * 3 + 2] != ':')
            return input_error("invalid MAC address '{}': expected six hex bytes", text);
        unsigned v = 0;
        auto [end, ec] = std::from_chars(byte.data(), byte.data() + byte.size(), v, 16);
        if (ec != std::errc() || end != byte.data() + byte.size())
            return input_error("invalid MAC address '{}'", text);
        mac[i] = static_cast<uint8_t>(v);
    }
    if (mac[0] & 1) return input_error("invalid MAC address '{}': multicast", text);
    return mac;
}

std::string format_mac(const MacAddress& mac) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                       mac[4], mac[5]);
}

MacAddress default_mac(std::string_view tap) {
    // std::hash of a std::string, as the builder always did, so NICs keep the
    // MAC they had before ids and resolved defaults existed.
    size_t h = std::hash<std::string>{}(std::string(tap));
    return {0x02, 0x72, 0x76, uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h)};
}

namespace {

// virtio-blk's GET_ID returns 20 bytes; longer serials would be cut by the
// device anyway, so the config says what the guest really sees.
constexpr size_t kMaxSerialBytes = 20;

// Fills empty ids with prefix0, prefix1, ..: the counter moves on in order
// and skips ids that some entry already has, so explicit ids keep theirs.
template <typename Entry>
void fill_ids(std::vector<Entry>& entries, std::string_view prefix) {
    std::set<std::string, std::less<>> taken;
    for (const auto& e : entries)
        if (!e.id.empty()) taken.insert(e.id);
    size_t next = 0;
    for (auto& e : entries) {
        if (!e.id.empty()) continue;
        std::string id;
        do id = fmt::format("{}{}", prefix, next++);
        while (taken.contains(id));
        taken.insert(id);
        e.id = std::move(id);
    }
}

// Firecracker's rule for resource ids (they become API paths such as
// /drives/{id}): letters, digits and '_', at most 64 of them.
bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

Result<void> check_bucket(const std::optional<TokenBucketConfig>& bucket, std::string_view field) {
    if (bucket && bucket->size > 0 && bucket->refill_time_ms == 0)
        return input_error("{}.refill_time: must be > 0 when size is > 0 (size {})", field,
                           bucket->size);
    return {};
}

Result<void> check_limiter(const std::optional<RateLimiterConfig>& limiter,
                           std::string_view field) {
    if (!limiter) return {};
    RV_TRY_VOID(check_bucket(limiter->bandwidth, fmt::format("{}.bandwidth", field)));
    RV_TRY_VOID(check_bucket(limiter->ops, fmt::format("{}.ops", field)));
    return {};
}

// Ids may still be empty here (resolve_defaults fills them); given ones must
// be well formed and unique.
template <typename Entry>
Result<void> check_ids(const std::vector<Entry>& entries, std::string_view section,
                       std::string_view id_field) {
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& id = entries[i].id;
        if (id.empty()) continue;
        if (!valid_id(id))
            return input_error(
                "{}[{}].{}: '{}' is not a valid id (letters, digits and '_', at most 64)", section,
                i, id_field, id);
        for (size_t j = 0; j < i; ++j)
            if (entries[j].id == id)
                return input_error("{}[{}].{}: '{}' is already the id of {}[{}]", section, i,
                                   id_field, id, section, j);
    }
    return {};
}

// Ids required (they name a file shared with other VMs), unique, and each
// group limits something.
Result<void> validate_rate_limit_groups(const std::vector<RateLimitGroupConfig>& groups) {
    for (size_t i = 0; i < groups.size(); ++i)
        if (groups[i].id.empty()) return input_error("rate-limit-groups[{}].id: empty", i);
    RV_TRY_VOID(check_ids(groups, "rate-limit-groups", "id"));
    for (size_t i = 0; i < groups.size(); ++i) {
        const auto field = fmt::format("rate-limit-groups[{}].rate_limiter", i);
        RV_TRY_VOID(check_limiter(groups[i].limits, field));
        if (groups[i].limits.unlimited())
            return input_error("{}: limits nothing (give bandwidth or ops a size and a "
                               "refill_time)",
                               field);
    }
    return {};
}

Result<void> validate_disks(const std::vector<DiskConfig>& disks,
                            const std::vector<RateLimitGroupConfig>& groups) {
    RV_TRY_VOID(check_ids(disks, "drives", "drive_id"));
    size_t ide = 0;
    std::optional<size_t> root;
    for (size_t i = 0; i < disks.size(); ++i) {
        const auto& d = disks[i];
        if (d.path.empty()) return input_error("drives[{}].path_on_host: empty", i);
        if (d.is_root_device) {
            if (root)
                return input_error(
                    "drives[{}].is_root_device: drives[{}] is already the root device (at most "
                    "one)",
                    i, *root);
            root = i;
        }
        if (d.iface == DiskConfig::Interface::Ide) ++ide;
        if (d.num_queues && d.iface == DiskConfig::Interface::Ide)
            return input_error("drives[{}].num_queues: an IDE disk has no queues (virtio only)", i);
        if (d.num_queues && (*d.num_queues < 1 || *d.num_queues > DiskConfig::kMaxQueues))
            return input_error("drives[{}].num_queues: {} is not in 1..{}", i, *d.num_queues,
                               DiskConfig::kMaxQueues);
        RV_TRY_VOID(check_limiter(d.rate_limiter, fmt::format("drives[{}].rate_limiter", i)));
        if (d.rate_limit_group &&
            std::ranges::none_of(groups, [&](const auto& g) { return g.id == *d.rate_limit_group; }))
            return input_error(
                "drives[{}].rate_limit_group: no rate limit group '{}' is defined "
                "(rate-limit-groups, --rate-limit-group)",
                i, *d.rate_limit_group);
    }
    if (ide > DiskConfig::kMaxIdeDisks)
        return input_error("drives: {} IDE disks, but the IDE controller has room for {}", ide,
                           DiskConfig::kMaxIdeDisks);
    return {};
}

Result<void> validate_nets(const std::vector<NetConfig>& nets) {
    RV_TRY_VOID(check_ids(nets, "network-interfaces", "iface_id"));
    for (size_t i = 0; i < nets.size(); ++i) {
        const auto& n = nets[i];
        if (n.tap.empty()) return input_error("network-interfaces[{}].host_dev_name: empty", i);
        for (size_t j = 0; j < i; ++j)
            if (nets[j].tap == n.tap)
                return input_error(
                    "network-interfaces[{}].host_dev_name: TAP '{}' is already used by "
                    "network-interfaces[{}]",
                    i, n.tap, j);
        if (n.mac) {
            if ((*n.mac)[0] & 1)
                return input_error("network-interfaces[{}].guest_mac: {} is a multicast address", i,
                                   format_mac(*n.mac));
            if (*n.mac == MacAddress{})
                return input_error("network-interfaces[{}].guest_mac: 00:00:00:00:00:00", i);
        }
        if (n.queues && (*n.queues < 1 || *n.queues > NetConfig::kMaxQueues))
            return input_error("network-interfaces[{}].queues: {} is not from 1 to {}", i,
                               *n.queues, NetConfig::kMaxQueues);
        if (n.queues > 1u && n.model == NetConfig::Model::E1000)
            return input_error(
                "network-interfaces[{}].queues: {} queue pairs, but the e1000 "
                "model has one (multiqueue needs model virtio)",
                i, *n.queues);
        RV_TRY_VOID(check_limiter(n.rx_rate_limiter,
                                  fmt::format("network-interfaces[{}].rx_rate_limiter", i)));
        RV_TRY_VOID(check_limiter(n.tx_rate_limiter,
                                  fmt::format("network-interfaces[{}].tx_rate_limiter", i)));
    }
    return {};
}

}  // namespace

void VmConfig::resolve_defaults() {
    // The root device goes first (Firecracker's order), so it is the first
    // disk the guest finds: /dev/vda (or /dev/sda).
    std::stable_partition(disks.begin(), disks.end(),
                          [](const DiskConfig& d) { return d.is_root_device; });
    fill_ids(disks, "drive");
    fill_ids(nets, "net");
    size_t ide = 0;
    for (auto& d : disks) {
        // The IDE position counts every IDE disk, so a disk keeps its serial
        // whether or not the ones before it had theirs resolved already.
        bool is_ide = d.iface == DiskConfig::Interface::Ide;
        size_t position = is_ide ? ide++ : 0;
        if (!d.serial.empty()) continue;
        d.serial = is_ide ? fmt::format("RV-HD{}", position)
                          : fmt::format("ringvisor-{}", d.id).substr(0, kMaxSerialBytes);
    }
    for (auto& n : nets)
        if (!n.mac) n.mac = default_mac(n.tap);
}

std::string VmConfig::kernel_cmdline() const {
    auto root = std::ranges::find_if(disks, [](const DiskConfig& d) { return d.is_root_device; });
    if (root == disks.end()) return cmdline;
    std::string_view rest = cmdline;
    while (!rest.empty()) {
        const size_t start = rest.find_first_not_of(' ');
        if (start == std::string_view::npos) break;
        rest.remove_prefix(start);
        const std::string_view word = rest.substr(0, rest.find(' '));
        if (word.starts_with("root=")) return cmdline;
        rest.remove_prefix(word.size());
    }
    // The root device is the first disk of its kind (resolve_defaults).
    const bool ide = root->iface == DiskConfig::Interface::Ide;
    const bool first_of_kind = std::ranges::find_if(disks, [&](const DiskConfig& d) {
                                   return d.iface == root->iface;
                               }) == root;
    if (!first_of_kind) return cmdline;
    return fmt::format("{}{}root={} {}", cmdline, cmdline.empty() ? "" : " ",
                       ide ? "/dev/sda" : "/dev/vda", root->read_only ? "ro" : "rw");
}

Result<void> VmConfig::validate(unsigned max_cpus) const {
    if (kernel_path.empty())
        return input_error("boot-source.kernel_image_path (--kernel): missing");
    // Worded as the CLI always did (tests/cli/bad_input.sh matches it), then the field.
    if (cpus < 1 || cpus > max_cpus)
        return input_error("--cpus {}: must be between 1 and {} (machine-config.vcpu_count)", cpus,
                           max_cpus);
    if (smt) return input_error("machine-config.smt: smt is not supported (one thread per core)");
    if (auto policy = check_policy(cpu_policy); !policy)
        return std::unexpected(policy.error().context("machine-config"));
    if (cgroup_parent) {
        std::string_view rest = *cgroup_parent;
        while (!rest.empty()) {
            auto slash = rest.find('/');
            std::string_view part = rest.substr(0, slash);
            if (part == "." || part == ".." || part.find('\n') != std::string_view::npos)
                return input_error("--cgroup-parent {:?}: '.' and '..' are not allowed",
                                   *cgroup_parent);
            if (slash == std::string_view::npos) break;
            rest = rest.substr(slash + 1);
        }
    }
    if (ledger_interval_s < 1 || ledger_interval_s > 86400)
        return input_error("--ledger-interval {}: must be 1..86400 seconds", ledger_interval_s);
    if (!cpu_policy.empty() && !cgroup_parent)
        return input_error(
            "machine-config: cpu_weight, cpu_max, cpuset, io_weight and io_max need the VM's cgroup "
            "(--no-cgroup was given)");
    if (memory_bytes < kMinMemoryBytes)
        return input_error(
            "machine-config.mem_size_mib (--memory): {} MiB is too small: a Linux guest needs at "
            "least {} MiB",
            memory_bytes >> 20, kMinMemoryBytes >> 20);
    if (memory_bytes % 4096)
        return input_error(
            "machine-config.mem_size_mib (--memory): {} bytes is not a whole number of 4 KiB "
            "pages",
            memory_bytes);
    RV_TRY_VOID(validate_rate_limit_groups(rate_limit_groups));
    RV_TRY_VOID(validate_disks(disks, rate_limit_groups));
    RV_TRY_VOID(validate_nets(nets));
    if (entropy) RV_TRY_VOID(check_limiter(entropy->rate_limiter, "entropy.rate_limiter"));
    if (logger && logger->log_path && logger->log_path->empty())
        return input_error("logger.log_path: empty");
    if (metrics && metrics->metrics_path.empty()) return input_error("metrics.metrics_path: empty");
    return {};
}

}  // namespace rv
