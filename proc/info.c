/*
 * proc/info.c - process info, the process list, statistics.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/msg.h"
#include "core/names.h"
#include "proc/proc.h"

#define INFO_REPLY (BL_TAG_SYSTEM | 3u) /* the answer to BL_SIG_INFO: a bl_process_info */

/* Lists the pids of mons, leaving out the monitor `skip` (the request's own). */
static uint32_t list(bl_pid *out, const bl_mon *mons, uint32_t n, bl_ref skip)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (mons[i].ref == skip) continue;
        if (k < BL_INFO_MAX_PIDS) out[k] = mons[i].pid;
        k++;
    }
    return k;
}

/* Fills *o from p's own context (p is the running process); `asking` is
 * the monitor the request came with, which is not part of the answer. */
static void fill(bl_proc *p, bl_proc_info *o, bl_ref asking)
{
    memset(o, 0, sizeof *o);
    /* Count, do not drain: this runs while bl__drain is handling signals,
     * and a nested drain would queue newer messages ahead of the rest of
     * the batch being handled.  Only the owner takes from the inbox, so
     * walking it from a snapshot of its top is safe. */
    size_t bytes = sizeof(bl_proc);
    size_t queued = p->q_len;
    for (bl_msg *m = p->q_head; m; m = m->next) bytes += sizeof(bl_msg) + m->len;
    for (bl_msg *m = bl__box_load(p).top; m; m = m->next) {
        if (bl__is_signal(m->tag)) continue;
        queued++;
        bytes += sizeof(bl_msg) + m->len;
    }
    o->status = BL_PROC_RUNNING;
    o->message_queue_len = queued;
    o->priority = (bl_priority)p->prio;
    o->reductions = p->reductions + (uint64_t)(p->sched->reductions - p->reds);
    o->trap_exit = p->trap_exit;
    o->handler = p->handler != NULL;
    o->scheduler = (int)p->sched->index;
    /* An idle handler or a hibernated process borrowed this stack to answer. */
    bool stackless = (p->handler || p->hibernated) && queued == 0;
    o->stack_bytes = p->stack && !stackless ? p->stack->size : 0;
    bytes += o->stack_bytes;
    if (p->sig) {
        bl_psig *g = p->sig;
        o->nlinks = g->nlinks;
        for (uint32_t i = 0; i < g->nlinks && i < BL_INFO_MAX_PIDS; i++) o->links[i] = g->links[i];
        o->nmonitors = list(o->monitors, g->mons, g->nmons, BL_REF_NONE);
        o->nmonitored_by = list(o->monitored_by, g->watchers, g->nwatch, asking);
        bytes += sizeof *g + g->caplinks * sizeof(bl_pid) +
                 (g->capmons + g->capwatch) * sizeof(bl_mon) +
                 g->capaliases * sizeof(bl_alias_ent) + g->ncallers * sizeof(bl_pid);
        o->ncallers = g->ncallers;
        for (uint32_t i = 0; i < g->ncallers && i < BL_CALLERS_MAX; i++)
            o->callers[i] = g->callers[i];
    }
    o->total_bytes = bytes;
    if (atomic_load_explicit(&p->named, memory_order_relaxed))
        bl__names_name_of(bl__proc_pid(p), o->registered_name, sizeof o->registered_name);
}

/* ---- asking a process about itself (process info, its queue) ---- */

void bl__answer(bl_proc *p, bl_pid to, bl_ref ref, uint32_t tag, bl_msg *m)
{
    int err;
    bl_proc *t = bl__target(to, &err);
    if (!t) {
        bl__msg_free(bl__tls_sched ? &bl__tls_sched->slab : NULL, m);
        return;
    }
    m->from = bl__proc_pid(p);
    m->ref = ref;
    m->tag = tag;
    bl__push(t, to, m, false);
}

typedef struct answer_key {
    bl_ref ref;   /* the request's monitor */
    uint32_t tag; /* the answer's tag */
} answer_key;

static bool match_answer(const bl_msg *m, void *arg)
{
    const answer_key *k = arg;
    return m->ref == k->ref && (m->tag == k->tag || m->tag == BL_TAG_DOWN);
}

int bl__ask(bl_proc *self, bl_proc *t, bl_pid pid, uint32_t sig, const void *data, size_t len,
            uint32_t reply, bl_msg **answer)
{
    *answer = NULL;
    /* Like a call: monitor, ask, wait for the answer or the DOWN.  The mark
     * first: it drains the mailbox, where a kill already queued ends the
     * caller at once, and the request below would be lost so. */
    bl_recv_mark();
    answer_key k = {BL_REF_NONE, reply};
    int rc = bl_monitor(pid, &k.ref);
    if (rc) return rc;
    bl_msg *req = bl__msg_alloc(&self->sched->slab, len);
    if (!req) {
        bl_demonitor(k.ref, BL_DEMONITOR_FLUSH);
        return -ENOMEM;
    }
    if (len) memcpy(req->data, data, len);
    req->from = bl__proc_pid(self);
    req->ref = k.ref;
    req->tag = sig;
    bl__push(t, pid, req, true); /* dead by now: the DOWN answers */
    bl_msg *m = NULL;
    rc = bl_recv(&m, match_answer, &k, 5000, BL_RECV_MARKED);
    bl_demonitor(k.ref, BL_DEMONITOR_FLUSH);
    if (rc) return rc;
    if (m->tag == BL_TAG_DOWN) {
        bl_msg_free(m);
        return -ESRCH;
    }
    *answer = m;
    return 0;
}

void bl__info_answer(bl_proc *p, bl_pid to, bl_ref ref)
{
    bl_sched *s = bl__tls_sched;
    bl_msg *m = bl__msg_alloc(s ? &s->slab : NULL, sizeof(bl_proc_info));
    if (!m) return;
    fill(p, m->data, ref);
    bl__answer(p, to, ref, INFO_REPLY, m);
}

int bl_process_info(bl_pid pid, bl_proc_info *out)
{
    if (!out) return -EINVAL;
    bl_proc *self = bl__self();
    if (self && pid == bl__proc_pid(self)) {
        fill(self, out, BL_REF_NONE);
        return 0;
    }
    if (!self) return bl__proc_lookup(pid) ? -EPERM : -EINVAL;
    int err;
    bl_proc *t = bl__target(pid, &err);
    if (err) return err;
    if (!t) return -ESRCH;
    /* Read before asking: answering makes the target run. */
    uint8_t st = atomic_load_explicit(&t->status, memory_order_relaxed);
    bl_msg *m;
    int rc = bl__ask(self, t, pid, BL_SIG_INFO, NULL, 0, INFO_REPLY, &m);
    if (rc) return rc;
    memcpy(out, m->data, sizeof *out);
    bl_msg_free(m);
    out->status = st == BL_STATUS_EXITING   ? BL_PROC_EXITING
                  : st == BL_STATUS_WAITING ? BL_PROC_WAITING
                  : st == BL_STATUS_RUNNING ? BL_PROC_RUNNING
                                            : BL_PROC_RUNNABLE;
    return 0;
}

typedef struct collect {
    bl_pid *out;
    size_t max, n;
} collect;

static void collect_one(bl_proc *p, void *ctx)
{
    collect *c = ctx;
    bl_box b = bl__box_load(p);
    if (bl__meta_state(b.meta) == BL_ST_FREE) return;
    if (c->n < c->max) c->out[c->n] = bl__pid_make(p->index, bl__meta_gen(b.meta));
    c->n++;
}

size_t bl_processes(bl_pid *out, size_t max)
{
    if (!bl__rt) return 0;
    collect c = {out, out ? max : 0, 0};
    bl__ptab_each(collect_one, &c);
    return c.n;
}

int bl_scheduler_stats_get(unsigned i, bl_scheduler_stats *out)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return -ESRCH;
    if (!out || i >= rt->nsched) return -EINVAL;
    bl_sched *s = rt->scheds[i];
    *out = (bl_scheduler_stats){
        .switches = BL_STAT(s, switches),
        .steals = BL_STAT(s, steals),
        .stolen = BL_STAT(s, stolen),
        .pulled = BL_STAT(s, pulled),
        .sleeps = BL_STAT(s, sleeps),
        .wakeups_sent = BL_STAT(s, wakeups_sent),
        .timers_fired = BL_STAT(s, timers_fired),
        .mail_spins = BL_STAT(s, mail_spins),
        .mail_spin_hits = BL_STAT(s, mail_spin_hits),
        .spin_offs = BL_STAT(s, spin_offs),
        .stack_keeps = BL_STAT(s, stack_keeps),
        .stack_sheds = BL_STAT(s, stack_sheds),
        .timers = BL_STAT(s, timers),
        .idle_ns = BL_STAT(s, idle_ns),
        .uptime_ns = bl__now_ns() - rt->start_ns,
        .runq_len = bl__runq_len(&s->rq),
        .envelopes = atomic_load_explicit(&s->slab.envelopes, memory_order_relaxed),
        .io_inflight = BL_STAT(s, io_inflight),
        .stacks_pooled = BL_STAT(s, stacks_pooled),
        .stacks_cold = BL_STAT(s, stacks_cold),
        .stack_pool_bytes = BL_STAT(s, stack_pool_bytes),
        .slab_bytes = BL_STAT(s, slab_bytes),
        .long_schedules = BL_STAT(s, long_schedules),
    };
    bl_proc *cur = bl__sched_current(s);
    if (cur) out->current = bl__proc_pid_peek(cur); /* a hint */
    out->utilization = out->uptime_ns ? 1.0 - (double)out->idle_ns / (double)out->uptime_ns : 0.0;
    if (out->utilization < 0) out->utilization = 0;
    return 0;
}

int bl_runtime_stats_get(bl_runtime_stats *out)
{
    bl_runtime *rt = bl__rt;
    if (!rt) return -ESRCH;
    if (!out) return -EINVAL;
    memset(out, 0, sizeof *out);
    out->schedulers = rt->nsched;
    out->processes = bl__live(rt);
    out->uptime_ns = bl__now_ns() - rt->start_ns;
    for (unsigned i = 0; i < rt->nsched; i++) {
        bl_scheduler_stats s;
        bl_scheduler_stats_get(i, &s);
        out->switches += s.switches;
        out->steals += s.steals;
        out->utilization += s.utilization / rt->nsched;
    }
    return 0;
}

#define PRINT_BUF  (64u << 10) /* bl_print_processes writes this much at a time */
#define PRINT_LINE 512u        /* room a line takes at most */

static const char *const status_names[] = {"runnable", "running", "waiting", "exiting"};
static const char *const prio_names[] = {"normal", "low", "high", "max"};

/* Writes all of buf; the caller is a process, so a short write is retried. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int bl_print_processes(int fd)
{
    if (!bl__self()) return -EPERM;
    /* Read from the table, asking nobody (proc/snapshot.c): 100,000
     * processes take milliseconds, and a process stuck in a loop is listed
     * as the others are.  Room for some spawned meanwhile. */
    int64_t live = bl__live(bl__rt);
    size_t n = (size_t)(live > 0 ? live : 0) + 64;
    bl_proc_snap *ps = malloc(n * sizeof *ps);
    char *buf = malloc(PRINT_BUF);
    if (!ps || !buf) {
        free(ps);
        free(buf);
        return -ENOMEM;
    }
    int64_t got = bl_processes_snapshot(ps, n);
    size_t total = got < 0 ? 0 : (size_t)got < n ? (size_t)got : n;
    size_t len =
        (size_t)snprintf(buf, PRINT_BUF, "%-20s %-20s %-10s %-9s %8s %12s %-7s %9s %10s\n", "pid",
                         "name", "kind", "status", "msgs", "reductions", "prio", "stack", "bytes");
    int rc = 0;
    for (size_t i = 0; i < total && rc == 0; i++) {
        const bl_proc_snap *in = &ps[i];
        char pid[32];
        bl_pid_format(in->pid, pid, sizeof pid);
        len += (size_t)snprintf(buf + len, PRINT_BUF - len,
                                "%-20s %-20.20s %-10s %-9s %8u %12llu %-7s %9zu %10zu\n", pid,
                                in->name, bl_proc_kind_name(in->kind), status_names[in->status & 3],
                                in->message_queue_len, (unsigned long long)in->reductions,
                                prio_names[in->priority & 3], in->stack_bytes, in->memory);
        if (len > PRINT_BUF - PRINT_LINE) {
            /* A buffer at a time, and the scheduler back between them: a
             * long listing must not hold it (a long schedule). */
            rc = write_all(fd, buf, len);
            len = 0;
            bl_yield();
        }
    }
    if (rc == 0) {
        len += (size_t)snprintf(buf + len, PRINT_BUF - len, "%zu processes\n", total);
        rc = write_all(fd, buf, len);
    }
    free(buf);
    free(ps);
    return rc ? rc : (int)total;
}

const char *bl_wake_name(bl_wake w)
{
    return w == BL_WAKE_EVENTFD ? "eventfd" : "msg_ring";
}

int bl_io_settings_get(bl_io_settings *out)
{
    bl_runtime *rt = bl__rt;
    if (!out) return -EINVAL;
    if (!rt) return -ESRCH;
    *out = (bl_io_settings){
        .wake = rt->msg_ring ? BL_WAKE_MSG_RING : BL_WAKE_EVENTFD,
        .sqpoll = rt->ring_flags & IORING_SETUP_SQPOLL,
        .defer_taskrun = rt->ring_flags & IORING_SETUP_DEFER_TASKRUN,
        .single_issuer = rt->ring_flags & IORING_SETUP_SINGLE_ISSUER,
        .ring_entries = rt->cfg.ring_entries,
        .io_buffers = rt->cfg.io_buffers,
        .iowq_max = rt->cfg.iowq_max,
        .dirty_threads = rt->cfg.dirty_threads ? rt->cfg.dirty_threads : rt->nsched,
    };
    return 0;
}
