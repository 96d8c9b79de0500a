#include "devices/rate_limit_group_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <span>
#include <thread>

#include "base/fd.h"
#include "base/log.h"

namespace rv {

namespace {

// A joiner that finds the file being made (or removed) looks again after a
// millisecond; this many times (5 s) before it gives up.
constexpr unsigned kAttempts = 5000;

int flock_retrying(int fd, int op) {
    int r;
    do r = ::flock(fd, op);
    while (r != 0 && errno == EINTR);
    return r;
}

// Whether `path` still names the file open as `fd` (not removed, not made
// again by someone else since we opened it).
bool same_file(const std::string& path, int fd) {
    struct stat at_path {}, ours {};
    return ::stat(path.c_str(), &at_path) == 0 && ::fstat(fd, &ours) == 0 &&
           at_path.st_dev == ours.st_dev && at_path.st_ino == ours.st_ino;
}

Result<void> make_dirs(const std::string& dir) {
    for (size_t at = 1; at <= dir.size(); ++at) {
        if (at != dir.size() && dir[at] != '/') continue;
        const std::string part = dir.substr(0, at);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
            return errno_error(fmt::format("making {} (set RINGVISOR_RUN_DIR to a directory "
                                           "ringvisor may write)",
                                           part));
    }
    return {};
}

// One process's hold on a group's file: the descriptor (and its flock), the
// mapping, and whether it joined (only a member removes the file, and only
// as the last one out).
class Membership {
  public:
    // Opens (or creates, empty) the file and locks it shared; nullptr if the
    // path names another file by then (start over).
    static Result<std::shared_ptr<Membership>> open(const std::string& path) {
        // O_NONBLOCK: a FIFO planted there must not block the VMM; O_NOFOLLOW: nor a symlink.
        int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (raw < 0) return errno_error(path);
        auto m = std::shared_ptr<Membership>(new Membership(path, Fd(raw)));
        struct stat st {};
        if (::fstat(raw, &st) != 0) return errno_error(path);
        if (!S_ISREG(st.st_mode)) return make_error("{}: not a regular file", path);
        if (flock_retrying(raw, LOCK_SH) != 0) return errno_error(fmt::format("flock {}", path));
        if (!same_file(path, raw)) return std::shared_ptr<Membership>();
        return m;
    }
    ~Membership() {
        if (m_map) ::munmap(m_map, m_size);
        // The last member out: nobody else holds the file, so nobody uses it.
        if (m_joined && ::flock(m_fd.get(), LOCK_EX | LOCK_NB) == 0 && same_file(m_path, m_fd.get()))
            ::unlink(m_path.c_str());
    }

    Result<uint64_t> size() const {
        struct stat st {};
        if (::fstat(m_fd.get(), &st) != 0) return errno_error(m_path);
        return static_cast<uint64_t>(st.st_size);
    }
    Result<std::span<std::byte>> map() {
        if (!m_map) {
            const size_t size = RateLimitGroup::state_size();
            void* at = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m_fd.get(), 0);
            if (at == MAP_FAILED) return errno_error(fmt::format("mmap {}", m_path));
            m_map = at;
            m_size = size;
        }
        return std::span<std::byte>(static_cast<std::byte*>(m_map), m_size);
    }
    // The file to ourselves: no other member. (On failure we hold no lock.)
    bool exclusive() {
        return flock_retrying(m_fd.get(), LOCK_EX | LOCK_NB) == 0 && same_file(m_path, m_fd.get());
    }
    // Back to shared after making the state; false if the file went meanwhile.
    Result<bool> share() {
        if (flock_retrying(m_fd.get(), LOCK_SH) != 0)
            return errno_error(fmt::format("flock {}", m_path));
        return same_file(m_path, m_fd.get());
    }
    // Under exclusive(): a fresh state with `limits`.
    Result<std::span<std::byte>> make(const RateLimiterConfig& limits, uint64_t now_ns) {
        if (::ftruncate(m_fd.get(), static_cast<off_t>(RateLimitGroup::state_size())) != 0)
            return errno_error(fmt::format("ftruncate {}", m_path));
        auto memory = RV_TRY(map());
        RV_TRY_VOID(RateLimitGroup::initialize(memory, limits, now_ns));
        return memory;
    }
    void joined() { m_joined = true; }

  private:
    Membership(std::string path, Fd fd) : m_path(std::move(path)), m_fd(std::move(fd)) {}

    std::string m_path;
    Fd m_fd;
    void* m_map{nullptr};
    size_t m_size{0};
    bool m_joined{false};
};

// Letters, digits and '_' (VmConfig's rule for ids): a plain file name.
bool plain_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

}  // namespace

std::string rate_limit_group_dir(std::string_view run_dir) {
    std::string dir(run_dir);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir + "/rate-limit-groups";
}

Result<std::shared_ptr<RateLimitGroup>> join_rate_limit_group(const std::string& dir,
                                                              const RateLimitGroupConfig& config,
                                                              NsClock clock) {
    if (!plain_id(config.id))
        return input_error("rate limit group '{}': not a valid id (letters, digits and '_', at "
                           "most 64)",
                           config.id);
    const std::string what = fmt::format("rate limit group '{}'", config.id);
    if (config.limits.unlimited())
        return input_error("{}: limits nothing (give bandwidth or ops a size and a refill_time)",
                           what);
    RV_TRY_VOID(as_input_error(make_dirs(dir), what));
    const std::string path = dir + "/" + config.id;
    auto now = [&] { return clock ? clock() : monotonic_ns(); };
    for (unsigned attempt = 0; attempt < kAttempts; ++attempt) {
        auto member = RV_TRY(with_context(Membership::open(path), what));
        if (!member) continue;  // removed by its last member meanwhile
        const uint64_t size = RV_TRY(member->size());
        if (size != 0 && size != RateLimitGroup::state_size())
            return make_error("{}: {} bytes, not a ringvisor rate limit group ({} bytes); remove "
                              "it once no VM uses it",
                              path, size, RateLimitGroup::state_size());
        std::span<std::byte> memory;
        if (size != 0) memory = RV_TRY(member->map());
        if (size != 0 && RateLimitGroup::initialized(memory)) {
            auto group = RateLimitGroup::open(memory, config, path, member);
            if (group) {
                member->joined();
                return group;
            }
            // Other limits: the members' limits hold, unless there are none.
            if (!group.error().is_input() || !member->exclusive()) return group;
            log::warn("{}: {} was left by VMs that were killed; made again with this VM's limits",
                      what, path);
        } else if (!member->exclusive()) {
            // Another VM is making it: look again in a moment.
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        // No other member: the state is ours to make.
        memory = RV_TRY(with_context(member->make(config.limits, now()), what));
        if (!RV_TRY(member->share())) continue;
        auto group = RV_TRY(RateLimitGroup::open(memory, config, path, member));
        member->joined();
        return group;
    }
    return make_error("{}: could not join it at {}: it kept being made and removed", what, path);
}

}  // namespace rv
