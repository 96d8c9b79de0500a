#include "base/sched.h"

#include <sched.h>

namespace rv {

Result<void> apply_thread_sched(ThreadSched sched) {
    if (sched == ThreadSched::Normal) return {};
    int policy = ::sched_getscheduler(0);
    if (policy < 0) return errno_error("sched_getscheduler");
    if (policy != SCHED_OTHER) return {};
    sched_param param{};
    // (Per thread on Linux; the nice value is kept.)
    if (::sched_setscheduler(0, SCHED_BATCH, &param) < 0)
        return errno_error("sched_setscheduler(SCHED_BATCH)");
    return {};
}

}  // namespace rv
