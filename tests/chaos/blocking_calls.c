/*
 * tests/chaos/blocking_calls.c - a process killed in every blocking call,
 * at a random moment (see blocking.h for the table and the iteration).
 *
 * The scenario's time is shared out evenly between the calls; each call
 * runs as many iterations as fit (at most MAX_ITER).  Printed per call:
 * the kills, and how many of them found the victim still in its call (the
 * others landed after it returned: the completion won the race).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocking.h"

enum { T_ENTER = 0x4200 };

#define MAX_ITER CHAOS_SCALE(4000)

void bc_close_ptr(void *arg)
{
    int fd = *(int *)arg;
    if (fd >= 0) close(fd);
}

typedef struct victim_arg {
    bc_fix *x;
    const bc_call *call;
} victim_arg;

/* Says it is about to call, calls, then waits to be killed. */
static void victim(void *arg)
{
    victim_arg *v = arg;
    bc_calling(v->x);
    bl_send(v->x->killer, T_ENTER, NULL, 0);
    v->call->enter(v->x);
    bc_returned(v->x);
    chaos_wait_never();
}

/* Drops the EXIT messages of linked processes (the killer traps exits). */
static void flush_exits(void)
{
    uint32_t tag = BL_TAG_EXIT;
    bl_msg *m;
    while (bl_recv(&m, bl_match_tag, &tag, 0, 0) == 0) bl_msg_free(m);
}

/* Runs one call's iterations until its share of time is over. */
static void run_call(chaos_run *r, bc_fix *x, const bc_call *c, int64_t until, int c_kills,
                     int c_in)
{
    uint64_t kills = 0, in_call = 0;
    int rc = c->setup ? c->setup(x) : 0;
    if (rc != 0) {
        chaos_note(r, "  %-14s %-40s skipped (setup: %s)", c->header, c->name, strerror(-rc));
        return;
    }
    unsigned nsched = bl_schedulers();
    for (int it = 0; it < MAX_ITER && chaos_ms() < until; it++) {
        x->seq++;
        if (c->prepare) c->prepare(x);
        atomic_store(&x->stage, 0);
        victim_arg va = {x, c};
        bl_spawn_opts o = {.scheduler = 1 + (int)chaos_below(&x->g, nsched)};
        bl_pid v;
        bl_ref ref;
        if (bl_spawn_monitor(&v, &ref, victim, &va, &o) != 0) {
            chaos_fail(r, "blocking_calls: %s: spawn failed", c->name);
            break;
        }
        bl_msg *m = chaos_recv_tag(T_ENTER, 10000);
        if (!m) chaos_fail(r, "blocking_calls: %s: the victim never started", c->name);
        bl_msg_free(m);
        /* 0 (one in eight) to 2 ms: before, in, or after the call. */
        if (!chaos_one_in(&x->g, 8)) chaos_delay_us((int64_t)chaos_below(&x->g, 2001));
        if (c->poke && chaos_one_in(&x->g, 3)) c->poke(x);
        bl_exit_pid(v, &BL_REASON(BL_KILL));
        if (chaos_wait_down(ref, 10000) != 0) {
            chaos_fail(r, "blocking_calls: %s: a killed victim did not go down", c->name);
            break;
        }
        kills++;
        if (atomic_load(&x->stage) == 1) in_call++;
        if (c->after) c->after(x);
        flush_exits();
    }
    if (c->teardown) c->teardown(x);
    flush_exits();
    chaos_add(r, c_kills, kills);
    chaos_add(r, c_in, in_call);
    chaos_note(r, "  %-14s %-40s kills=%llu in_call=%llu", c->header, c->name,
               (unsigned long long)kills, (unsigned long long)in_call);
}

void chaos_blocking_calls(chaos_run *r)
{
    int c_calls = chaos_counter(r, CHAOS_WORK, "calls");
    int c_kills = chaos_counter(r, CHAOS_FAULT, "kills");
    int c_in = chaos_counter(r, CHAOS_FAULT, "in_call");
    static bc_fix x; /* victims point into it */
    memset(&x, 0, sizeof x);
    x.r = r;
    x.killer = bl_self();
    x.g = chaos_rng_for(r, 1);
    x.lfd = x.a = x.b = x.file = -1;
    bl_trap_exit(true); /* supervisors the victims stop are linked to us */
    const bc_call *tables[] = {bc_io_calls, bc_otp_calls};
    /* CHAOS_CALLS=text runs only the calls whose name contains text (to chase one). */
    const char *only = getenv("CHAOS_CALLS");
    size_t n = 0;
    for (size_t t = 0; t < 2; t++)
        for (const bc_call *c = tables[t]; c->name; c++) n += !only || strstr(c->name, only);
    int64_t start = chaos_ms(), span = r->end_ms - start;
    size_t i = 0;
    for (size_t t = 0; t < 2; t++) {
        for (const bc_call *c = tables[t]; c->name; c++) {
            if (only && !strstr(c->name, only)) continue;
            i++;
            int64_t until = start + span * (int64_t)i / (int64_t)n;
            run_call(r, &x, c, until, c_kills, c_in);
            chaos_add(r, c_calls, 1);
        }
    }
    bl_trap_exit(false);
    flush_exits();
}
