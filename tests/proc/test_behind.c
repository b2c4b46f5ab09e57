/*
 * Senders to a receiver that is behind pay for it (BL_META_LONGQ,
 * proc/process.c bl__push): on one scheduler, ten flooders and their
 * receiver share the CPU, and without the charge the receiver gets one
 * slice in eleven, so the flood queues nine tenths of itself before the
 * receiver sees it.  With the charge the receiver keeps up.
 */
#include <stdatomic.h>

#include "bl_test.h"

enum { T_FLOOD = 1, T_DURING, FLOODERS = 10, EACH = 20000 };

typedef struct flood {
    bl_pid receiver, test;
    _Atomic int finished; /* flooders done sending */
} flood;

static void flooder(void *arg)
{
    flood *f = arg;
    for (int i = 0; i < EACH; i++) BL_CHECK_EQ(bl_send(f->receiver, T_FLOOD, &i, sizeof i), 0);
    atomic_fetch_add(&f->finished, 1);
}

/* Receives the whole flood; reports how much of it came while it still flowed. */
static void receiver(void *arg)
{
    flood *f = arg;
    long during = 0;
    for (long n = 0; n < (long)FLOODERS * EACH; n++) {
        bl_msg *m = bl_receive(10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
        if (atomic_load(&f->finished) < FLOODERS) during++;
    }
    bl_send(f->test, T_DURING, &during, sizeof during);
}

static void behind_main(void *arg)
{
    (void)arg;
    static flood f;
    f = (flood){.test = bl_self()};
    BL_CHECK_EQ(bl_spawn(&f.receiver, receiver, &f, NULL), 0);
    for (int i = 0; i < FLOODERS; i++) BL_CHECK_EQ(bl_spawn(NULL, flooder, &f, NULL), 0);
    bl_msg *m = bl_test_recv_tag(T_DURING, 60000);
    BL_CHECK(m != NULL);
    if (!m) return;
    long during;
    memcpy(&during, m->data, sizeof during);
    bl_msg_free(m);
    cr_log_info("received while the flood flowed: %ld of %d", during, FLOODERS * EACH);
    BL_CHECK(during > (long)FLOODERS * EACH / 2);
}

Test(behind, a_flood_gives_way_to_its_receiver, .timeout = 120)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, behind_main, NULL);
}
