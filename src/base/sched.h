// The scheduling class of the VMM's threads (`ringvisor run --sched`).
//
// By default every thread of `ringvisor run` is SCHED_BATCH: a thread that
// wakes does not preempt the thread running on its CPU; it runs when that one
// sleeps or at the scheduler's next tick. Where the event loop and the vCPUs
// share a CPU, a queue kick then no longer hands the CPU to the loop in the
// middle of the guest's burst of requests (so the guest queues several, and
// with EVENT_IDX kicks once), and a completion no longer hands it back to a
// vCPU before the loop has finished the batch. Where a CPU is idle nothing
// changes: a waking thread is placed on it either way. The cost is that a
// thread woken on a busy CPU waits for the running one to sleep or for the
// tick. Measured in docs/BENCHMARKS.md ("SCHED_BATCH").
#pragma once

#include "base/error.h"

namespace rv {

enum class ThreadSched {
    Batch,   // SCHED_BATCH (the default)
    Normal,  // the policy the process was started with, untouched
};

// Puts the calling thread, and every thread it creates afterwards, in the
// given class. Batch applies only over SCHED_OTHER: a policy the process was
// started with (chrt: idle, FIFO, RR, or batch already) is left as it is, and
// so is the nice value. Call before the process creates its threads.
Result<void> apply_thread_sched(ThreadSched sched);

}  // namespace rv
