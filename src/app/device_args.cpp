#include "app/device_args.h"

#include <charconv>
#include <vector>

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

}  // namespace

Result<DiskConfig> parse_disk_arg(std::string_view text) {
    auto parts = split(text, ',');
    DiskConfig disk;
    disk.path = std::string(parts[0]);
    if (disk.path.empty()) return make_error("--disk '{}': no image path", text);
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view opt = parts[i];
        if (opt == "ro") {
            disk.read_only = true;
        } else if (opt == "rw") {
            disk.read_only = false;
        } else if (opt == "iface=virtio") {
            disk.iface = DiskConfig::Interface::Virtio;
        } else if (opt == "iface=ide") {
            disk.iface = DiskConfig::Interface::Ide;
        } else if (opt == "cache=none") {
            disk.cache = DiskConfig::Cache::None;
        } else if (opt == "cache=writeback") {
            disk.cache = DiskConfig::Cache::Writeback;
        } else if (opt.starts_with("iface=")) {
            return make_error("--disk '{}': unsupported interface '{}' (supported: virtio, ide)",
                              text, opt.substr(6));
        } else {
            return make_error(
                "--disk '{}': unknown option '{}' (ro, iface=virtio|ide, cache=none|writeback)",
                text, opt);
        }
    }
    return disk;
}

Result<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
    auto parts = split(text, ':');
    std::array<uint8_t, 6> mac{};
    if (parts.size() != 6)
        return make_error("invalid MAC address '{}': expected six hex bytes", text);
    for (size_t i = 0; i < 6; ++i) {
        auto p = parts[i];
        unsigned v = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v, 16);
        if (p.size() != 2 || ec != std::errc() || end != p.data() + p.size())
            return make_error("invalid MAC address '{}'", text);
        mac[i] = static_cast<uint8_t>(v);
    }
    if (mac[0] & 1) return make_error("invalid MAC address '{}': multicast", text);
    return mac;
}

Result<NetConfig> parse_net_arg(std::string_view text) {
    NetConfig net;
    for (auto opt : split(text, ',')) {
        if (opt.starts_with("tap=")) {
            net.tap = std::string(opt.substr(4));
        } else if (opt.starts_with("mac=")) {
            net.mac =
                RV_TRY(with_context(parse_mac(opt.substr(4)), fmt::format("--net '{}'", text)));
        } else if (opt == "model=virtio") {
            net.model = NetConfig::Model::Virtio;
        } else if (opt == "model=e1000") {
            net.model = NetConfig::Model::E1000;
        } else if (opt.starts_with("model=")) {
            return make_error("--net '{}': unsupported model '{}' (supported: virtio, e1000)", text,
                              opt.substr(6));
        } else {
            return make_error(
                "--net '{}': unknown option '{}' (tap=NAME, mac=XX:XX:XX:XX:XX:XX, "
                "model=virtio|e1000)",
                text, opt);
        }
    }
    if (net.tap.empty()) return make_error("--net '{}': tap=NAME is required", text);
    return net;
}

}  // namespace rv
