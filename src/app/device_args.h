// Parsing of the device options of `ringvisor run`:
//   --disk PATH[,ro|rw][,iface=virtio|ide][,cache=none|writeback|unsafe]
//          [,engine=uring|sync][,id=NAME][,root][,LIMITS][,rate_limit_group=NAME]
//   --net tap=NAME[,mac=52:54:00:12:34:56][,model=virtio|e1000][,queues=N][,id=NAME]
//         (queues: virtio-net queue pairs, 1..16; left out, one per vCPU)
//   --rate-limit-group id=NAME,LIMITS
// LIMITS are Cloud Hypervisor's keys for the two token buckets, in bytes,
// operations and milliseconds: bw_size=, bw_one_time_burst=, bw_refill_time=,
// ops_size=, ops_one_time_burst=, ops_refill_time= (a drive's rate_limiter,
// a group's limits). They fill the same DiskConfig / NetConfig /
// RateLimitGroupConfig as --config-file and the API; an id left out stays
// empty for VmConfig::resolve_defaults ("drive0", "net0"..). Errors are
// ErrorKind::InvalidInput. (parse_mac, which --net uses, is in
// vmm/vm_config.h, shared with the JSON's guest_mac.)
#pragma once

#include <string_view>

#include "base/error.h"
#include "vmm/vm_config.h"

namespace rv {

Result<DiskConfig> parse_disk_arg(std::string_view text);
Result<NetConfig> parse_net_arg(std::string_view text);
Result<RateLimitGroupConfig> parse_rate_limit_group_arg(std::string_view text);

}  // namespace rv
