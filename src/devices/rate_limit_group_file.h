// Rate limit groups between VMM processes: each group is a file of
// RateLimitGroup::state_size() bytes, <run_dir>/rate-limit-groups/<id>
// (run_dir: $RINGVISOR_RUN_DIR or /run/ringvisor, where `ringvisor top`
// finds API sockets; top looks at sockets only), mode 0600 (VMMs of one
// user share a group), mapped MAP_SHARED by every member.
//
// Who may touch the file is settled with flock(2) on it:
//   - a member holds it shared (LOCK_SH) for as long as it is a member; the
//     kernel drops that lock when the process dies, however it dies;
//   - making the state (a new or empty file, or one whose creator died
//     half-way) needs it exclusive (LOCK_EX), so nobody maps a half-made
//     state; a joiner that finds another making it waits and looks again;
//   - the last member to leave takes it exclusive without waiting (so no
//     other member holds it) and removes the file. A VM exiting leaves the
//     group to the others; with the last one the group goes, and the next
//     VM to name it starts with full buckets.
// A joiner re-checks after each lock that the path still names the file it
// locked (a leaver may have removed it meanwhile) and starts over if not.
//
// A file whose last members were killed (SIGKILL cannot remove it) is taken
// over: its buckets carry on, and if the new VM defines other limits for the
// group, the file is made again with them (there is nobody to disagree).
// With members, other limits are an input error naming both. A file that is
// not a group (wrong size, foreign magic, another layout version, damaged
// buckets) is an error and is left alone.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "devices/rate_limit_group.h"
#include "devices/rate_limiter.h"

namespace rv {

// "<run_dir>/rate-limit-groups".
std::string rate_limit_group_dir(std::string_view run_dir);

// Joins group config.id in `dir` (made if missing), making its file if no
// member has. `clock` (CLOCK_MONOTONIC if empty) times a new state's buckets.
// The membership lasts as long as the returned group.
Result<std::shared_ptr<RateLimitGroup>> join_rate_limit_group(const std::string& dir,
                                                              const RateLimitGroupConfig& config,
                                                              NsClock clock = {});

}  // namespace rv
