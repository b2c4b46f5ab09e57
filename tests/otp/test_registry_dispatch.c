/*
 * Parallel dispatch (Elixir's dispatch/4 with parallel: true): one task per
 * partition holding the key, running side by side, all awaited; a
 * callback that dies does not take the caller down.
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/registry.h"
#include "bl_test.h"

enum { T_CMD = 1, T_REPLY, T_STOP };

static const bl_config quiet = {.quiet = true};

#define PARTS  4
#define AGENTS 16

/* Registers under "topic" when told, replies, then waits to be stopped. */
static void agent(void *arg)
{
    bl_registry *reg = arg;
    bl_msg *m = bl_test_recv_tag(T_CMD, 10000);
    int rc = bl_registry_register(reg, "topic", 5, "v", 1, NULL);
    if (m) bl_send(m->from, T_REPLY, &rc, sizeof rc);
    bl_msg_free(m);
    bl_msg_free(bl_test_recv_tag(T_STOP, 10000));
}

/* What the callbacks saw. */
typedef struct seen {
    bl_pid caller;         /* the dispatching process */
    int expect;            /* callbacks to wait for before returning (0: none) */
    bool die_once;         /* the first callback exits instead */
    _Atomic int calls;     /* callbacks started */
    _Atomic int entries;   /* entries they got */
    _Atomic int in_caller; /* callbacks that ran in the caller */
    _Atomic int timed_out; /* callbacks that waited for the others in vain */
    _Atomic int died;      /* a callback has exited */
} seen;

static void on_entries(const bl_registry_entry *e, size_t n, void *arg)
{
    seen *s = arg;
    (void)e;
    atomic_fetch_add(&s->calls, 1);
    atomic_fetch_add(&s->entries, (int)n);
    if (bl_self() == s->caller) atomic_fetch_add(&s->in_caller, 1);
    if (s->die_once && atomic_exchange(&s->died, 1) == 0) bl_exit(99);
    if (!s->expect) return;
    /* Run at once or not at all: every callback waits until all have started. */
    int64_t until = bl_test_ms() + 10000;
    while (atomic_load(&s->calls) < s->expect && bl_test_ms() < until) bl_yield();
    if (atomic_load(&s->calls) < s->expect) atomic_fetch_add(&s->timed_out, 1);
}

static void reset(seen *s, int expect, bool die)
{
    atomic_store(&s->calls, 0);
    atomic_store(&s->entries, 0);
    atomic_store(&s->in_caller, 0);
    atomic_store(&s->timed_out, 0);
    atomic_store(&s->died, 0);
    s->expect = expect;
    s->die_once = die;
}

static void parallel_main(void *arg)
{
    (void)arg;
    bl_registry_opts o = {.keys = BL_REGISTRY_DUPLICATE, .partitions = PARTS};
    bl_registry *reg = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    if (!reg) return;
    bl_pid agents[AGENTS];
    for (int i = 0; i < AGENTS; i++) {
        BL_CHECK_EQ(bl_spawn(&agents[i], agent, reg, NULL), 0);
        bl_send(agents[i], T_CMD, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
        BL_CHECK(m && *(const int *)m->data == 0);
        bl_msg_free(m);
    }
    seen s = {.caller = bl_self()};

    /* Serially, in the caller: how many partitions hold the key. */
    reset(&s, 0, false);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, on_entries, &s, 0), AGENTS);
    int parts = atomic_load(&s.calls);
    BL_CHECK_EQ(atomic_load(&s.in_caller), parts);
    BL_CHECK(parts >= 2); /* 16 pids in one of 4 partitions: about 1e-9 */

    /* In parallel: each partition's callback in a task, all of them at once. */
    for (int round = 0; round < BL_SCALE(50); round++) {
        reset(&s, parts, false);
        BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, on_entries, &s, BL_REGISTRY_PARALLEL),
                    AGENTS);
        BL_CHECK_EQ(atomic_load(&s.calls), parts);
        BL_CHECK_EQ(atomic_load(&s.entries), AGENTS);
        BL_CHECK_EQ(atomic_load(&s.in_caller), 0);
        BL_CHECK_EQ(atomic_load(&s.timed_out), 0);
    }
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* A callback that dies: the others still run, the caller gets -ECONNRESET. */
    reset(&s, 0, true);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, on_entries, &s, BL_REGISTRY_PARALLEL),
                -ECONNRESET);
    BL_CHECK_EQ(atomic_load(&s.calls), parts);
    BL_CHECK_EQ(bl_mailbox_len(), 0);

    /* No entries: no task, no call. */
    reset(&s, 0, false);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "none", 4, on_entries, &s, BL_REGISTRY_PARALLEL), 0);
    BL_CHECK_EQ(atomic_load(&s.calls), 0);

    /* Bad input. */
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, on_entries, &s, 2), -EINVAL);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, NULL, &s, BL_REGISTRY_PARALLEL), -EINVAL);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, NULL, 5, on_entries, &s, BL_REGISTRY_PARALLEL),
                -EINVAL);
    BL_CHECK_EQ(bl_registry_dispatch_ex(NULL, "topic", 5, on_entries, &s, BL_REGISTRY_PARALLEL),
                -EINVAL);

    for (int i = 0; i < AGENTS; i++) bl_send(agents[i], T_STOP, NULL, 0);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    BL_CHECK_EQ(bl_registry_dispatch_ex(reg, "topic", 5, on_entries, &s, BL_REGISTRY_PARALLEL),
                -ESRCH);
    bl_registry_release(reg);
}

Test(registry_dispatch, parallel)
{
    bl_test_run(&quiet, parallel_main, NULL);
}

/* Unique keys, or one partition: the callback runs in the caller, as in Elixir. */
static void caller_main(void *arg)
{
    (void)arg;
    seen s = {.caller = bl_self()};
    bl_registry_opts uo = {.keys = BL_REGISTRY_UNIQUE, .partitions = PARTS};
    bl_registry_opts d1 = {.keys = BL_REGISTRY_DUPLICATE, .partitions = 1};
    bl_registry *u = NULL, *d = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&uo, &u), 0);
    BL_CHECK_EQ(bl_registry_start_link(&d1, &d), 0);
    if (!u || !d) return;
    BL_CHECK_EQ(bl_registry_register(u, "k", 1, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(d, "k", 1, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(d, "k", 1, NULL, 0, NULL), 0);
    reset(&s, 0, false);
    BL_CHECK_EQ(bl_registry_dispatch_ex(u, "k", 1, on_entries, &s, BL_REGISTRY_PARALLEL), 1);
    BL_CHECK_EQ(bl_registry_dispatch_ex(d, "k", 1, on_entries, &s, BL_REGISTRY_PARALLEL), 2);
    BL_CHECK_EQ(atomic_load(&s.calls), 2);
    BL_CHECK_EQ(atomic_load(&s.in_caller), 2);
    BL_CHECK_EQ(bl_registry_stop(u, NULL, 10000), 0);
    BL_CHECK_EQ(bl_registry_stop(d, NULL, 10000), 0);
    bl_registry_release(u);
    bl_registry_release(d);
}

Test(registry_dispatch, in_the_caller_when_nothing_to_split)
{
    bl_test_run(&quiet, caller_main, NULL);
}
