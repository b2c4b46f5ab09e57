/*
 * tests/otp/sup_worker.h - the child the supervisor tests start, and what
 * they check its reports with.
 *
 * A worker is a plain process (or, with C_GENSERV, a gen_server) numbered
 * by the low 16 bits of its start argument, whose flags (C_*) choose how it
 * starts and stops.  It reports to g_test: T_STARTED when its start
 * function succeeded, T_STOPPED when an exit signal reached it (it traps
 * exits unless C_NOTRAP), each with a report {i, pid}.  It exits on
 * T_CRASH (code 7), T_NORMAL (normal) and T_SHUTDOWN ({shutdown, "x"}).
 * A test's own tags start at T_WORKER_LAST.
 */
#ifndef SUP_WORKER_H
#define SUP_WORKER_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "beamline/gen_server.h"
#include "bl_test.h"

/* Each test program uses some of these. */
#define SUPW static __attribute__((unused))

enum { T_STARTED = 1, T_STOPPED, T_CRASH, T_NORMAL, T_SHUTDOWN, T_HELLO, T_READY, T_WORKER_LAST };

/* Flags in a child's arg, beside its number i in the low 16 bits. */
#define C_FAIL    0x010000 /* start returns -EIO */
#define C_IGNORE  0x020000 /* start returns BL_GS_IGNORED */
#define C_SLOW    0x040000 /* takes 200 ms to stop after its exit signal */
#define C_STUCK   0x080000 /* never stops after its exit signal (only kill works) */
#define C_FLAKY   0x100000 /* start fails while g_flaky is set */
#define C_NOTRAP  0x200000 /* does not trap exits */
#define C_GENSERV 0x400000 /* a gen_server instead of a plain process */
/* Bits from 0x800000 up are free for a test's own flags (the worker ignores them). */

#define ARG(x) ((void *)(intptr_t)(x))

SUPW bl_pid g_test;       /* the test process, where children report */
SUPW _Atomic int g_flaky; /* C_FLAKY children fail to start while set */

typedef struct report {
    int i;
    bl_pid pid;
} report;

SUPW void say(uint32_t tag, int i, bl_pid pid)
{
    report r = {i, pid};
    bl_send(g_test, tag, &r, sizeof r);
}

/* On the exit signal from its supervisor: report, maybe linger, exit with its reason. */
SUPW void on_exit_signal(int code, const bl_msg *m)
{
    bl_reason r = BL_REASON(BL_NORMAL);
    bl_msg_reason(m, &r);
    bl_reason copy = {.kind = r.kind, .code = r.code};
    say(T_STOPPED, code & 0xffff, bl_self());
    if (code & C_SLOW) bl_sleep(200);
    if (code & C_STUCK) bl_sleep(60000);
    bl_exit_reason(&copy);
}

SUPW void worker(void *arg)
{
    int code = (int)(intptr_t)arg;
    if (!(code & C_NOTRAP)) bl_trap_exit(true);
    /* Initialised: tell the start function (proc_lib's init_ack). */
    bl_msg *hello = bl_test_recv_tag(T_HELLO, BL_INFINITY);
    if (!hello) return;
    bl_send(hello->from, T_READY, NULL, 0);
    bl_msg_free(hello);
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        uint32_t tag = m->tag;
        if (tag == BL_TAG_EXIT) on_exit_signal(code, m);
        bl_msg_free(m);
        if (tag == T_CRASH) bl_exit(7);
        if (tag == T_NORMAL) return;
        if (tag == T_SHUTDOWN) {
            bl_reason r = {.kind = BL_SHUTDOWN, .detail = "x", .detail_len = 1};
            bl_exit_reason(&r);
        }
    }
}

/* ---- a gen_server child ---- */

SUPW void gs_init(void *arg, void **state, bl_gs_result *r)
{
    bl_trap_exit(true);
    *state = arg;
}

SUPW void gs_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    bl_reason crash = {.kind = BL_CUSTOM, .code = 9};
    if (m->tag == T_CRASH) bl_gs_stop(r, &crash);
}

SUPW void gs_terminate(void **state, const bl_reason *reason)
{
    say(T_STOPPED, (int)(intptr_t)*state & 0xffff, bl_self());
}

SUPW const bl_gen_server gs_child = {
    .init = gs_init, .handle_cast = gs_cast, .terminate = gs_terminate};

/* T_READY from the pid in *arg. */
SUPW bool match_ready(const bl_msg *m, void *arg)
{
    return m->tag == T_READY && m->from == *(bl_pid *)arg;
}

/* Spawns a worker linked to the caller and waits until it is initialised. */
SUPW int spawn_worker(bl_pid *pid, void *arg)
{
    int rc = bl_spawn_link(pid, worker, arg, NULL);
    if (rc) return rc;
    bl_send(*pid, T_HELLO, NULL, 0);
    bl_msg *m = NULL;
    rc = bl_recv(&m, match_ready, pid, 5000, 0);
    bl_msg_free(m);
    return rc;
}

SUPW int start_worker(void *arg, bl_pid *pid)
{
    int code = (int)(intptr_t)arg;
    if (code & C_FAIL) return -EIO;
    if ((code & C_FLAKY) && atomic_load(&g_flaky)) return -EAGAIN;
    if (code & C_IGNORE) return BL_GS_IGNORED;
    int rc = code & C_GENSERV ? bl_gen_server_start_link(pid, &gs_child, arg, NULL)
                              : spawn_worker(pid, arg);
    if (rc == 0) say(T_STARTED, code & 0xffff, *pid);
    return rc;
}

/* Waits for the report `tag` of child i; returns its pid (0 if none). */
SUPW bl_pid expect(uint32_t tag, int i)
{
    bl_msg *m = bl_test_recv_tag(tag, 5000);
    BL_CHECK(m != NULL);
    if (!m) return 0;
    report r;
    memcpy(&r, m->data, sizeof r);
    bl_msg_free(m);
    BL_CHECK_EQ(r.i, i);
    return r.pid;
}

#define expect_started(i) expect(T_STARTED, (i))
#define expect_stopped(i) expect(T_STOPPED, (i))

/*
 * Checks that no report is queued.  Called right after a call to the
 * supervisor returned: whatever it (or a child it waited for) sent before
 * replying is already here.
 */
SUPW void expect_quiet(void)
{
    BL_CHECK(bl_test_recv_tag(T_STARTED, 0) == NULL);
    BL_CHECK(bl_test_recv_tag(T_STOPPED, 0) == NULL);
}

/* Waits for the DOWN of ref; its reason kind (and code, if asked for), or -1. */
SUPW int wait_down(bl_ref ref, int *code)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    if (code) *code = r.code;
    bl_msg_free(m);
    return r.kind;
}

/*
 * Sends tag to child and waits for its DOWN.  A dying process signals its
 * links before its monitors, so the supervisor has the EXIT before any call
 * made after this returns.
 */
SUPW void send_wait_exit(bl_pid child, uint32_t tag)
{
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(child, &ref), 0);
    bl_send(child, tag, NULL, 0);
    BL_CHECK(wait_down(ref, NULL) >= 0);
}

#endif /* SUP_WORKER_H */
