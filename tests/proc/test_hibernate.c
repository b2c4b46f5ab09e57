/*
 * Hibernation: no stack while waiting, resumed in the given function.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_WAKE = 1, T_WOKE, T_SELF };

typedef struct hib {
    bl_pid owner;
    int rounds;
} hib;

static void woken(void *arg);

static void sleeper(void *arg)
{
    BL_CHECK_EQ(bl_hibernate(NULL, arg), -EINVAL);
    bl_hibernate(woken, arg);
    BL_CHECK(0 && "bl_hibernate returned");
}

/* Runs on a fresh stack each time a message arrives. */
static void woken(void *arg)
{
    hib *h = arg;
    bl_msg *m = bl_receive(0); /* the message that woke us is queued */
    BL_CHECK(m && m->tag == T_WAKE);
    bl_msg_free(m);
    int round = ++h->rounds;
    bool again = round < 5;
    /* After the last reply h (on the owner's stack) may be gone: no touching it. */
    bl_send(h->owner, T_WOKE, &round, sizeof round);
    if (again) bl_hibernate(woken, h);
}

static void hibernate_main(void *arg)
{
    hib h = {bl_self(), 0};
    bl_pid p;
    BL_CHECK_EQ(bl_spawn(&p, sleeper, &h, NULL), 0);
    bl_proc *pcb = bl__proc_lookup(p);
    for (int i = 1; i <= 5; i++) {
        /* Parked without a stack. */
        while (atomic_load(&pcb->status) != BL_STATUS_WAITING) bl_yield();
#ifndef BL_TSAN /* a peek at another process's PCB: no happens-before for TSan */
        BL_CHECK(pcb->stack == NULL);
#endif
        bl_send(p, T_WAKE, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_WOKE, 5000);
        BL_CHECK(m && *(int *)m->data == i);
        bl_msg_free(m);
    }
}

Test(hibernate, holds_no_stack_and_resumes_in_fn)
{
    bl_test_run(NULL, hibernate_main, NULL);
}

/* A message already queued when hibernating wakes it at once. */
static void queued_then_hibernate(void *arg)
{
    bl_send(bl_self(), T_WAKE, NULL, 0);
    bl_mailbox_len(); /* drained into the private queue */
    ((hib *)arg)->rounds = 4;
    bl_hibernate(woken, arg);
}

static void queued_main(void *arg)
{
    hib h = {bl_self(), 0};
    BL_CHECK_EQ(bl_spawn(NULL, queued_then_hibernate, &h, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_WOKE, 5000);
    BL_CHECK(m && *(int *)m->data == 5);
    bl_msg_free(m);
}

Test(hibernate, message_already_queued_wakes_at_once)
{
    bl_test_run(NULL, queued_main, NULL);
    cr_assert_eq(bl_hibernate(queued_then_hibernate, NULL), -EPERM);
}
