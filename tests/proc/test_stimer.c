/*
 * send_after, cancel_timer, read_timer.
 */
#include <errno.h>
#include <stdlib.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_TICK = 1, T_LATER, T_REF, T_DONE };

static void basics_main(void *arg)
{
    bl_pid self = bl_self();
    bl_ref t;
    uint64_t t0 = bl__now_ns();
    BL_CHECK_EQ(bl_send_after(self, T_TICK, "tick", 5, 30, &t), 0);
    int64_t left = bl_read_timer(t);
    BL_CHECK(left > 0 && left <= 30);
    bl_msg *m = bl_test_recv_tag(T_TICK, 5000);
    BL_CHECK(m && !strcmp(m->data, "tick") && m->from == self);
    BL_CHECK(bl__now_ns() - t0 >= 30000000u);
    bl_msg_free(m);
    /* Fired: no longer found. */
    BL_CHECK_EQ(bl_read_timer(t), -ENOENT);
    BL_CHECK_EQ(bl_cancel_timer(t), -ENOENT);

    /* Cancelled: reports what was left and never delivers. */
    bl_ref a, b;
    BL_CHECK_EQ(bl_send_after(self, T_TICK, NULL, 0, 40, &a), 0);
    BL_CHECK_EQ(bl_send_after(self, T_LATER, NULL, 0, 80, &b), 0);
    left = bl_cancel_timer(a);
    BL_CHECK(left > 0 && left <= 40);
    BL_CHECK_EQ(bl_cancel_timer(a), -ENOENT);
    BL_CHECK_EQ(bl_read_timer(a), -ENOENT);
    m = bl_test_recv_tag(T_LATER, 5000); /* a would have come first */
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK(bl_test_recv_tag(T_TICK, 0) == NULL);

    /* Zero delay, dead destination, bad input. */
    BL_CHECK_EQ(bl_send_after(self, T_TICK, NULL, 0, 0, NULL), 0);
    m = bl_test_recv_tag(T_TICK, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_send_after(self, T_TICK, NULL, 0, -1, NULL), -EINVAL);
    BL_CHECK_EQ(bl_send_after(0, T_TICK, NULL, 0, 1, NULL), -EINVAL);
    BL_CHECK_EQ(bl_send_after(self, BL_TAG_SYSTEM, NULL, 0, 1, NULL), -EINVAL);
    BL_CHECK_EQ(bl_cancel_timer(bl_make_ref()), -EINVAL);
    BL_CHECK_EQ(bl_read_timer(~0ull), -EINVAL);
    /* Pending at shutdown: freed with the runtime (ASan checks). */
    BL_CHECK_EQ(bl_send_after(self, T_TICK, "x", 2, 60000, NULL), 0);
}

Test(stimer, send_after_cancel_read)
{
    bl_test_run(NULL, basics_main, NULL);
    cr_assert_eq(bl_send_after(1, T_TICK, NULL, 0, 1, NULL), -EPERM);
}

/* Cancelled from a process on another scheduler. */
typedef struct xarg {
    bl_ref ref;
    bl_pid owner;
} xarg;

static void canceller(void *arg)
{
    xarg *x = arg;
    int64_t left = bl_cancel_timer(x->ref);
    bl_send(x->owner, T_DONE, &left, sizeof left);
}

static void cross_main(void *arg)
{
    bl_pid self = bl_self();
    for (int i = 0; i < 100; i++) {
        xarg x = {0, self};
        BL_CHECK_EQ(bl_send_after(self, T_TICK, NULL, 0, 50, &x.ref), 0);
        bl_spawn_opts other = {.scheduler = 1 + (bl_current_scheduler() + 1) % 2};
        BL_CHECK_EQ(bl_spawn(NULL, canceller, &x, &other), 0);
        bl_msg *m = bl_test_recv_tag(T_DONE, 5000);
        BL_CHECK(m && *(int64_t *)m->data > 0);
        bl_msg_free(m);
    }
    /* None of the hundred is delivered: a timer set after them, for later,
     * arrives with nothing before it. */
    BL_CHECK_EQ(bl_send_after(self, T_LATER, NULL, 0, 100, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_LATER, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK(bl_test_recv_tag(T_TICK, 0) == NULL);
}

Test(stimer, cancel_from_another_scheduler)
{
    bl_test_run(NULL, cross_main, NULL);
}

/* Many timers: each delivered once, none early. */
static void many_main(void *arg)
{
    enum { N = 20000 };
    bl_pid self = bl_self();
    uint64_t start = bl__now_ns();
    for (int i = 0; i < N; i++) {
        int ms = (int)(((unsigned)i * 2654435761u) % 200);
        uint64_t due = start + (uint64_t)ms * 1000000u;
        BL_CHECK_EQ(bl_send_after(self, T_TICK, &due, sizeof due, ms, NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        bl_msg *m = bl_test_recv_tag(T_TICK, 10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        BL_CHECK(bl__now_ns() >= *(uint64_t *)m->data);
        bl_msg_free(m);
    }
    BL_CHECK(bl_test_recv_tag(T_TICK, 0) == NULL);
}

Test(stimer, many_timers_each_once_never_early)
{
    bl_test_run(NULL, many_main, NULL);
}
