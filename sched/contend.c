/*
 * sched/contend.c - whether this scheduler's CPU is contended: idle
 * spinning (the loop's spin, the mailbox watches) is then turned off.
 */
#include "sched/sched.h"

#include <stdlib.h>
#include <unistd.h>

/* The thread's run-queue delay so far (ns), from /proc; false if unknown. */
static bool run_delay(bl_sched *s, uint64_t *out)
{
    char buf[96];
    if (s->schedstat_fd < 0) return false;
    ssize_t n = pread(s->schedstat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return false;
    buf[n] = 0;
    /* "<on-cpu ns> <run-queue delay ns> <timeslices>" */
    char *end;
    (void)strtoull(buf, &end, 10);
    *out = strtoull(end, NULL, 10);
    return true;
}

/*
 * Whether idle spinning would take the CPU from other threads: in the last
 * window of 10 ms or more, this thread spent over a tenth of the time
 * runnable but waiting for a CPU (the kernel's schedstat run delay).  Then
 * the cores are oversubscribed, and spinning only delays whoever wants the
 * CPU (a load generator, the network stack's work on this core) and their
 * answers with it: no spinning for the next 100 ms, the scheduler sleeps in
 * its ring at once when idle.  A pread every 10 ms at most, on the idle
 * path only.  Preemptions alone say little: kernel threads cause dozens a
 * second on a quiet machine.
 */
bool bl__sched_spin_contended(bl_sched *s, uint64_t now)
{
    if (now < s->no_spin_until) return true;
    uint64_t window = now - s->cpu_check_ns;
    if (window < 10000000u) return false;
    uint64_t delay;
    if (!run_delay(s, &delay)) return false;
    bool busy = s->cpu_check_ns && (delay - s->cpu_delay_ns) * 10 > window;
    s->cpu_check_ns = now;
    s->cpu_delay_ns = delay;
    if (busy) {
        s->no_spin_until = now + 100000000u;
        BL_STAT_ADD(s, spin_offs, 1);
    }
    return busy;
}
