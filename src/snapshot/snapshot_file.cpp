#include "snapshot/snapshot_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>

#include "base/fd.h"
#include "snapshot/state_codec.h"

namespace rv::snapshot {

namespace {

constexpr size_t kHeaderSize = 8 + 4 + 4;
constexpr size_t kCrcSize = 8;

bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= SnapshotFile::kMaxIdLength &&
           std::ranges::all_of(id, [](char c) { return c > 0x20 && c < 0x7f; });
}

Result<void> write_all(int fd, std::span<const uint8_t> bytes, const std::string& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error(fmt::format("writing {}", path));
        bytes = bytes.subspan(static_cast<size_t>(n));
    }
    return {};
}

}  // namespace

uint64_t crc64(std::span<const uint8_t> bytes) {
    boost::crc_optimal<64, 0x42F0E1EBA9EA3693ULL, ~0ULL, ~0ULL, true, true> crc;
    crc.process_bytes(bytes.data(), bytes.size());
    return crc.checksum();
}

Result<void> SnapshotFile::add(std::string id, uint32_t version, std::vector<uint8_t> data) {
    if (!valid_id(id)) return make_error("snapshot: invalid section id '{}'", id);
    if (find(id)) return make_error("snapshot: section '{}' added twice", id);
    if (sections.size() >= kMaxSections) return make_error("snapshot: more than {} sections", kMaxSections);
    sections.push_back(Section{std::move(id), version, std::move(data)});
    return {};
}

const Section* SnapshotFile::find(std::string_view id) const {
    const auto it = std::ranges::find(sections, id, &Section::id);
    return it == sections.end() ? nullptr : &*it;
}

std::vector<uint8_t> SnapshotFile::encode() const {
    Writer w;
    w.raw(kMagic);
    w.u32(kFormatVersion);
    w.u32(static_cast<uint32_t>(sections.size()));
    for (const Section& s : sections) {
        w.u16(static_cast<uint16_t>(s.id.size()));
        w.raw(std::span(reinterpret_cast<const uint8_t*>(s.id.data()), s.id.size()));
        w.u32(s.version);
        w.u64(s.data.size());
        w.raw(s.data);
    }
    w.u64(crc64(w.bytes()));
    return w.take();
}

Result<SnapshotFile> SnapshotFile::parse(std::span<const uint8_t> bytes) {
    if (bytes.size() < kHeaderSize + kCrcSize)
        return input_error("snapshot: {} bytes is too short for a snapshot file (truncated?)", bytes.size());
    if (!std::ranges::equal(bytes.first(kMagic.size()), kMagic))
        return input_error("snapshot: not a ringvisor snapshot file (bad magic)");
    Reader header(bytes.subspan(kMagic.size(), 8), "snapshot header");
    const uint32_t version = header.u32();
    const uint32_t count = header.u32();
    if (version != kFormatVersion)
        return input_error("snapshot: format version {}; this ringvisor reads version {}", version,
                           kFormatVersion);
    const auto body = bytes.first(bytes.size() - kCrcSize);
    Reader trailer(bytes.last(kCrcSize), "snapshot checksum");
    const uint64_t stored = trailer.u64();
    if (const uint64_t actual = crc64(body); actual != stored)
        return input_error("snapshot: checksum mismatch (stored {:#018x}, computed {:#018x}): the file is "
                           "corrupt or truncated",
                           stored, actual);
    if (count > kMaxSections) return input_error("snapshot: {} sections (at most {})", count, kMaxSections);

    SnapshotFile file;
    Reader r(body.subspan(kHeaderSize), "snapshot");
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
        const uint16_t id_len = r.u16();
        if (id_len == 0 || id_len > kMaxIdLength) {
            r.fail(fmt::format("section {}: id length {}", i, id_len));
            break;
        }
        std::string id(id_len, '\0');
        r.raw(std::span(reinterpret_cast<uint8_t*>(id.data()), id.size()));
        const uint32_t section_version = r.u32();
        const uint64_t len = r.u64();
        if (!r.ok()) break;
        if (!valid_id(id)) {
            r.fail(fmt::format("section {}: id is not printable ASCII", i));
            break;
        }
        if (len > r.remaining()) {
            r.fail(fmt::format("section '{}': {} bytes, only {} left", id, len, r.remaining()));
            break;
        }
        std::vector<uint8_t> data(static_cast<size_t>(len));
        r.raw(data);
        if (file.find(id)) {
            r.fail(fmt::format("section '{}' appears twice", id));
            break;
        }
        file.sections.push_back(Section{std::move(id), section_version, std::move(data)});
    }
    RV_TRY_VOID(r.finish());
    return file;
}

Result<void> SnapshotFile::write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    auto written = [&]() -> Result<void> {
        Fd fd = RV_TRY(as_input_error(Fd::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
                                      "creating the snapshot file"));
        RV_TRY_VOID(write_all(fd.get(), encode(), tmp));
        if (::fsync(fd.get()) != 0) return errno_error(fmt::format("fsync {}", tmp));
        if (::rename(tmp.c_str(), path.c_str()) != 0)
            return errno_error(fmt::format("renaming {} to {}", tmp, path));
        return {};
    }();
    if (!written) {
        ::unlink(tmp.c_str());
        return written;
    }
    // The rename itself is durable once the directory is synced.
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (auto d = Fd::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); d && ::fsync(d->get()) != 0)
        return errno_error(fmt::format("fsync {}", dir));
    return {};
}

Result<SnapshotFile> SnapshotFile::read(const std::string& path) {
    const std::string bytes = RV_TRY(as_input_error(read_file(path), "reading the snapshot file"));
    return with_context(parse(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())), path);
}

}  // namespace rv::snapshot
