/*
 * bl_cleanup_push / bl_cleanup_pop: handlers run when a process dies
 * holding them (killed in a blocking call, or exiting), newest first and
 * before its monitors hear of the death; a pop forgets or runs one.
 */
#include <errno.h>

#include "bl_test.h"

enum { T_HOLDING = 1, T_NEVER, T_WAKE };

static _Atomic int g_order[8];
static _Atomic int g_n;

static void note(void *arg)
{
    int i = atomic_fetch_add(&g_n, 1);
    if (i < 8) atomic_store(&g_order[i], (int)(intptr_t)arg);
}

/* Pushes three handlers, pops the newest without running it, then blocks. */
static void holder(void *arg)
{
    bl_pid test = *(bl_pid *)arg;
    bl_cleanup a, b, c;
    bl_cleanup_push(&a, note, (void *)1);
    bl_cleanup_push(&b, note, (void *)2);
    bl_cleanup_push(&c, note, (void *)3);
    bl_cleanup_pop(&c, false);
    bl_send(test, T_HOLDING, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_NEVER, BL_INFINITY));
}

static void wake_then_hibernated(void *arg)
{
    note((void *)9);
}

/* Hibernating gives its frames up: their handlers run. */
static void hibernator(void *arg)
{
    bl_pid test = *(bl_pid *)arg;
    bl_cleanup a;
    bl_cleanup_push(&a, note, (void *)7);
    bl_send(test, T_HOLDING, NULL, 0);
    bl_hibernate(wake_then_hibernated, NULL);
}

static void cleanup_main(void *arg)
{
    bl_pid self = bl_self();
    atomic_store(&g_n, 0);
    /* Pop with run = true runs it now; run = false only forgets it. */
    bl_cleanup x;
    bl_cleanup_push(&x, note, (void *)5);
    bl_cleanup_pop(&x, true);
    BL_CHECK_EQ(atomic_load(&g_n), 1);
    BL_CHECK_EQ(atomic_load(&g_order[0]), 5);
    bl_cleanup_push(&x, note, (void *)6);
    bl_cleanup_pop(&x, false);
    BL_CHECK_EQ(atomic_load(&g_n), 1);

    /* Killed in a receive: the two still pushed run, newest first, before the DOWN. */
    atomic_store(&g_n, 0);
    bl_pid h;
    BL_CHECK_EQ(bl_spawn(&h, holder, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_HOLDING, 5000));
    BL_CHECK_EQ(atomic_load(&g_n), 0);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(h, &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(h, &kill), 0);
    bl_msg *down = bl_test_recv_tag(BL_TAG_DOWN, 5000);
    BL_CHECK(down != NULL);
    bl_msg_free(down);
    BL_CHECK_EQ(atomic_load(&g_n), 2);
    BL_CHECK_EQ(atomic_load(&g_order[0]), 2);
    BL_CHECK_EQ(atomic_load(&g_order[1]), 1);

    /* Hibernation runs them too, once; the woken function runs after. */
    atomic_store(&g_n, 0);
    BL_CHECK_EQ(bl_spawn(&h, hibernator, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_HOLDING, 5000));
    BL_CHECK_EQ(bl_monitor(h, &ref), 0);
    BL_CHECK_EQ(bl_send(h, T_WAKE, NULL, 0), 0);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 5000));
    BL_CHECK_EQ(atomic_load(&g_n), 2);
    BL_CHECK_EQ(atomic_load(&g_order[0]), 7);
    BL_CHECK_EQ(atomic_load(&g_order[1]), 9);
}

Test(cleanup, handlers_run_on_death_newest_first)
{
    bl_test_run(NULL, cleanup_main, NULL);
}

Test(cleanup, outside_a_process)
{
    atomic_store(&g_n, 0);
    bl_cleanup x;
    bl_cleanup_push(&x, note, (void *)4);
    cr_assert_eq(atomic_load(&g_n), 0);
    bl_cleanup_pop(&x, true);
    cr_assert_eq(atomic_load(&g_n), 1);
    cr_assert_eq(atomic_load(&g_order[0]), 4);
}
