// `ringvisor migrate`: live-migrates the VM behind an API socket to a
// `ringvisor run --incoming ADDR` process, printing the progress.
#pragma once

#include <cstdint>
#include <string>

namespace rv::app {

struct MigrateOptions {
    std::string api_sock;
    std::string to;               // unix:PATH or tcp:HOST:PORT
    uint32_t downtime_ms{300};
    uint64_t bandwidth_mib_s{0};  // 0: no cap
    uint32_t timeout_s{0};        // 0: none
};

// 0 when the destination runs the VM; 1 when the migration failed or was
// cancelled (the source VM runs on); 2 for bad input.
int migrate_vm(const MigrateOptions& options);

}  // namespace rv::app
