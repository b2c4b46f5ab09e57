/*
 * examples/crash_dummy/crash_dummy.c: each supervision strategy and each restart type,
 * through the example's dummies and supervisors.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "examples/crash_dummy/crash_dummy.h"

#include "bl_test.h"

static bl_config quiet = {.quiet = true};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Child id as the supervisor sees it once it has handled the exit: -ENOENT
 * (gone), or its entry with *out filled, polled for up to 5 s until done(out)
 * holds.  The exit reaches the supervisor as a signal from the child, our
 * which_children calls come from us: not ordered, hence the bounded loop.
 */
typedef bool (*child_pred)(int rc, const bl_sup_child *c, bl_pid old);

static int settle(bl_pid sup, const char *id, child_pred done, bl_pid old, bl_sup_child *out)
{
    int rc = -ETIMEDOUT;
    for (int64_t end = mono_ms() + 5000; mono_ms() < end; bl_yield()) {
        rc = crash_dummy_child(sup, id, out);
        if (done(rc, out, old)) return rc;
    }
    return -ETIMEDOUT;
}

static bool restarted(int rc, const bl_sup_child *c, bl_pid old)
{
    return rc == 0 && c->status == BL_CHILD_RUNNING && c->pid != old;
}

static bool undefined(int rc, const bl_sup_child *c, bl_pid old)
{
    return rc == 0 && c->status == BL_CHILD_UNDEFINED;
}

static bool gone(int rc, const bl_sup_child *c, bl_pid old)
{
    return rc == -ENOENT;
}

static const char *const names[] = {"dummy1", "dummy2", "dummy3"};

/* Crash dummy2 under s; expect[i] says whether dummy i+1 is restarted. */
static void crash_under(bl_sup_strategy s, const bool expect[3])
{
    bl_pid sup, before[3];
    long state[3];
    BL_CHECK_EQ(crash_dummy_supervisor_start_link(&sup, s), 0);
    bl_sup_counts counts;
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &counts), 0);
    BL_CHECK_EQ(counts.active, 3);
    for (int i = 0; i < 3; i++) {
        before[i] = bl_whereis(names[i]);
        state[i] = crash_dummy_state(names[i]);
        BL_CHECK(before[i] != BL_PID_NONE && state[i] > 0);
    }
    /* Watch dummy2 die, then wait until the last dummy to restart has. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(before[1], &ref), 0);
    BL_CHECK_EQ(crash_dummy_boom("dummy2"), 0);
    bl_msg *down = NULL;
    bl_reason why;
    BL_CHECK_EQ(bl_recv(&down, bl_match_ref, &ref, 5000, 0), 0);
    BL_CHECK(down && bl_msg_reason(down, &why) == 0 && why.kind == BL_CUSTOM);
    bl_msg_free(down);
    int last = expect[2] ? 2 : 1;
    bl_sup_child c;
    BL_CHECK_EQ(settle(sup, names[last], restarted, before[last], &c), 0);

    for (int i = 0; i < 3; i++) {
        bl_pid now = bl_whereis(names[i]);
        BL_CHECK(now != BL_PID_NONE);
        BL_CHECK_EQ(now != before[i], expect[i]);
        BL_CHECK_EQ(crash_dummy_state(names[i]) != state[i], expect[i]);
        BL_CHECK_EQ(bl_is_alive(before[i]), !expect[i]);
    }
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, BL_INFINITY), 0);
    for (int i = 0; i < 3; i++) BL_CHECK(bl_whereis(names[i]) == BL_PID_NONE);
}

static void one_for_one(void *arg)
{
    crash_under(BL_ONE_FOR_ONE, (const bool[]){false, true, false});
}

static void one_for_all(void *arg)
{
    crash_under(BL_ONE_FOR_ALL, (const bool[]){true, true, true});
}

static void rest_for_one(void *arg)
{
    crash_under(BL_REST_FOR_ONE, (const bool[]){false, true, true});
}

Test(crash_dummy, one_for_one)
{
    bl_test_run(&quiet, one_for_one, NULL);
}

Test(crash_dummy, one_for_all)
{
    bl_test_run(&quiet, one_for_all, NULL);
}

Test(crash_dummy, rest_for_one)
{
    bl_test_run(&quiet, rest_for_one, NULL);
}

/* Stops dummy (crash or graceful) and waits for the supervisor's verdict. */
static int stop_and_settle(bl_pid sup, const char *dummy, bool crash, child_pred done,
                           bl_sup_child *c)
{
    bl_pid before = bl_whereis(dummy);
    BL_CHECK(before != BL_PID_NONE);
    BL_CHECK_EQ(crash ? crash_dummy_boom(dummy) : crash_dummy_stop_gracefully(dummy), 0);
    int rc = settle(sup, dummy, done, before, c);
    BL_CHECK(!bl_is_alive(before));
    return rc;
}

static void restart_types(void *arg)
{
    bl_pid sup;
    bl_sup_child c;
    BL_CHECK_EQ(crash_dummy_restarts_supervisor_start_link(&sup), 0);
    /* permanent: restarted after a graceful stop and after a crash. */
    BL_CHECK_EQ(stop_and_settle(sup, "permanent_dummy", false, restarted, &c), 0);
    BL_CHECK_EQ(bl_whereis("permanent_dummy"), c.pid);
    BL_CHECK_EQ(stop_and_settle(sup, "permanent_dummy", true, restarted, &c), 0);
    BL_CHECK_EQ(bl_whereis("permanent_dummy"), c.pid);
    /* temporary: never restarted, and dropped. */
    BL_CHECK_EQ(stop_and_settle(sup, "temporary_dummy", false, gone, &c), -ENOENT);
    /* transient: a graceful stop leaves it undefined. */
    BL_CHECK_EQ(stop_and_settle(sup, "transient_dummy", false, undefined, &c), 0);
    BL_CHECK_EQ(c.pid, BL_PID_NONE);
    BL_CHECK(bl_whereis("transient_dummy") == BL_PID_NONE);
    bl_sup_counts counts;
    BL_CHECK_EQ(bl_supervisor_count_children(sup, &counts), 0);
    BL_CHECK_EQ(counts.specs, 2);
    BL_CHECK_EQ(counts.active, 1);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, BL_INFINITY), 0);

    BL_CHECK_EQ(crash_dummy_restarts_supervisor_start_link(&sup), 0);
    /* temporary: not restarted after a crash either. */
    BL_CHECK_EQ(stop_and_settle(sup, "temporary_dummy", true, gone, &c), -ENOENT);
    /* transient: restarted after a crash. */
    BL_CHECK_EQ(stop_and_settle(sup, "transient_dummy", true, restarted, &c), 0);
    BL_CHECK_EQ(bl_whereis("transient_dummy"), c.pid);
    BL_CHECK_EQ(bl_supervisor_stop(sup, NULL, BL_INFINITY), 0);
}

Test(crash_dummy, restart_types)
{
    bl_test_run(&quiet, restart_types, NULL);
}

/* The dummy on its own. */
static void dummy_alone(void *arg)
{
    BL_CHECK_EQ(crash_dummy_state("lonely"), -ESRCH);
    BL_CHECK_EQ(crash_dummy_boom("lonely"), -ESRCH);
    bl_pid pid, other;
    BL_CHECK_EQ(crash_dummy_start_link("lonely", &pid), 0);
    BL_CHECK(crash_dummy_state("lonely") > 0);
    BL_CHECK_EQ(crash_dummy_start_link("lonely", &other), -EEXIST);
    BL_CHECK_EQ(other, pid);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    BL_CHECK_EQ(crash_dummy_stop_gracefully("lonely"), 0);
    bl_msg *down = bl_test_recv_tag(BL_TAG_DOWN, 5000);
    bl_reason why;
    BL_CHECK(down && bl_msg_reason(down, &why) == 0 && why.kind == BL_NORMAL);
    bl_msg_free(down);
}

Test(crash_dummy, dummy_alone)
{
    bl_test_run(&quiet, dummy_alone, NULL);
}
