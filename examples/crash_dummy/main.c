/*
 * main.c - crash_dummy, the program: the supervisors of crash_dummy.h at
 * work, each strategy and each restart type.
 *
 * Part 1, strategies: dummy1, dummy2, dummy3 under a supervisor; dummy2
 * crashes, and
 *   one_for_one   restarts dummy2 only,
 *   one_for_all   restarts all three,
 *   rest_for_one  restarts dummy2 and dummy3 (the ones started after it).
 * Part 2, restart types (one_for_one): a child that stops gracefully or
 * crashes is
 *   permanent  restarted either way,
 *   temporary  never restarted (and dropped from the supervisor),
 *   transient  restarted after a crash only.
 *
 * Run: ./crash_dummy  (exits 1 if a supervisor does not behave as described)
 */
#include <beamline.h>
#include <beamline/supervisor.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "crash_dummy.h"

/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "crash_dummy: expected %s (line %d)\n", #cond, __LINE__);              \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_child's status for "no longer in the supervisor". */
#define GONE ((bl_child_status)-1)

/*
 * What the supervisor says about child id, once it says what we expect:
 * the supervisor learns of a death by an exit signal while our questions
 * are calls from us, and the two are not ordered, so ask until the answer
 * is the expected one (5 s at most) instead of sleeping as the seed does.
 */
static bl_sup_child wait_child(bl_pid sup, const char *id, bl_child_status status, bl_pid not_pid)
{
    bl_sup_child c = {.status = BL_CHILD_UNDEFINED};
    for (int64_t end = now_ms() + 5000; now_ms() < end; bl_yield()) {
        int rc = crash_dummy_child(sup, id, &c);
        if (rc == -ENOENT && status == GONE) break;
        if (rc == 0 && c.status == status && c.pid != not_pid) break;
    }
    return c;
}

static const char *const dummies[] = {"dummy1", "dummy2", "dummy3"};

/* Part 1: crash dummy2 under strategy; restarted[i] says whether dummy i+1 should be new. */
static void strategy(const char *label, bl_sup_strategy s, const bool restarted[3])
{
    printf("\n== %s ==\n", label);
    bl_pid sup, before[3];
    long state[3];
    EXPECT(crash_dummy_supervisor_start_link(&sup, s) == 0);
    for (int i = 0; i < 3; i++) {
        before[i] = bl_whereis(dummies[i]);
        state[i] = crash_dummy_state(dummies[i]);
        printf("%s state: %ld\n", dummies[i], state[i]);
    }

    EXPECT(crash_dummy_boom("dummy2") == 0);
    /* The last dummy to be restarted is dummy3 (or dummy2 alone): wait for its new pid. */
    const char *last = restarted[2] ? "dummy3" : "dummy2";
    wait_child(sup, last, BL_CHILD_RUNNING, before[restarted[2] ? 2 : 1]);

    for (int i = 0; i < 3; i++) {
        long now = crash_dummy_state(dummies[i]);
        bool is_new = bl_whereis(dummies[i]) != before[i];
        printf("%s state: %ld%s\n", dummies[i], now, is_new ? " (restarted)" : "");
        EXPECT(is_new == restarted[i] && (now != state[i]) == restarted[i]);
    }
    EXPECT(bl_supervisor_stop(sup, NULL, BL_INFINITY) == 0);
}

/* Part 2: stops dummy (gracefully or with a crash), then expects status, or GONE. */
static void restart_type(bl_pid sup, const char *dummy, bool crash, bl_child_status expect)
{
    bl_pid before = bl_whereis(dummy);
    EXPECT((crash ? crash_dummy_boom(dummy) : crash_dummy_stop_gracefully(dummy)) == 0);
    bl_sup_child c = wait_child(sup, dummy, expect, before);
    const char *seen = "not restarted (undefined)";
    if (expect == GONE) {
        seen = "not restarted, gone from the supervisor";
        EXPECT(crash_dummy_child(sup, dummy, &c) == -ENOENT);
    } else if (expect == BL_CHILD_RUNNING) {
        seen = "restarted";
        EXPECT(c.status == BL_CHILD_RUNNING && c.pid != before && bl_is_alive(c.pid));
    } else {
        EXPECT(c.status == BL_CHILD_UNDEFINED && !bl_whereis(dummy));
    }
    printf("%s after %s: %s\n", dummy, crash ? "a crash" : "a graceful stop", seen);
}

static void scenario(void *arg)
{
    strategy("one_for_one", BL_ONE_FOR_ONE, (const bool[]){false, true, false});
    strategy("one_for_all", BL_ONE_FOR_ALL, (const bool[]){true, true, true});
    strategy("rest_for_one", BL_REST_FOR_ONE, (const bool[]){false, true, true});

    printf("\n== restart types ==\n");
    bl_pid sup;
    EXPECT(crash_dummy_restarts_supervisor_start_link(&sup) == 0);
    restart_type(sup, "permanent_dummy", false, BL_CHILD_RUNNING);
    restart_type(sup, "permanent_dummy", true, BL_CHILD_RUNNING);
    restart_type(sup, "temporary_dummy", false, GONE);
    restart_type(sup, "transient_dummy", false, BL_CHILD_UNDEFINED);
    EXPECT(bl_supervisor_stop(sup, NULL, BL_INFINITY) == 0);

    /* A fresh supervisor, so that every dummy runs again. */
    EXPECT(crash_dummy_restarts_supervisor_start_link(&sup) == 0);
    restart_type(sup, "temporary_dummy", true, GONE);
    restart_type(sup, "transient_dummy", true, BL_CHILD_RUNNING);
    EXPECT(bl_supervisor_stop(sup, NULL, BL_INFINITY) == 0);
}

int main(void)
{
    /* The crashes are on purpose: keep their crash reports off the screen. */
    bl_config cfg = {.quiet = true};
    int rc = bl_main(&cfg, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
