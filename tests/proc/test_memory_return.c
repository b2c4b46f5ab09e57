/*
 * Memory a burst of messages took goes back: a flood into a slow receiver
 * grows RSS by about 64 bytes a message, and once the queue has drained and
 * the schedulers have been quiet for a while, RSS is back near where it
 * started (the slabs give empty spans back to the kernel).
 */
#include <stdio.h>
#include <unistd.h>

#include "bl_test.h"

enum { T_DATA = 1, T_GO, T_DONE, T_SENT };

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

typedef struct flood {
    bl_pid test;
    uint32_t count;
} flood;

/* Takes nothing until told to, then drains everything. */
static void slow_receiver(void *arg)
{
    flood *f = arg;
    bl_msg_free(bl_test_recv_tag(T_GO, 60000));
    for (uint32_t i = 0; i < 3 * f->count; i++) {
        bl_msg *m = bl_test_recv_tag(T_DATA, 60000);
        if (!m) break;
        bl_msg_free(m);
    }
    bl_send(f->test, T_DONE, NULL, 0);
}

typedef struct sender_arg {
    bl_pid to;
    uint32_t count;
    bl_pid test;
} sender_arg;

static void sender(void *arg)
{
    sender_arg *a = arg;
    char payload[16] = "sixteen bytes!!";
    for (uint32_t i = 0; i < a->count; i++)
        BL_CHECK_EQ(bl_send(a->to, T_DATA, payload, sizeof payload), 0);
    bl_send(a->test, T_SENT, NULL, 0);
}

static void memory_main(void *arg)
{
    size_t base = rss_bytes();
    flood f = {bl_self(), (uint32_t)BL_SCALE(1000000)};
    bl_pid r;
    BL_CHECK_EQ(bl_spawn(&r, slow_receiver, &f, NULL), 0);
    /* Three rounds, from senders placed on alternate schedulers, so that
     * every scheduler's slab holds envelopes its peers free. */
    sender_arg sa = {r, f.count, bl_self()};
    for (int round = 0; round < 3; round++) {
        bl_spawn_opts o = {.scheduler = 1 + round % (int)bl_schedulers()};
        BL_CHECK_EQ(bl_spawn(NULL, sender, &sa, &o), 0);
        bl_msg_free(bl_test_recv_tag(T_SENT, 60000));
        if (round == 0) BL_CHECK(rss_bytes() > base + (size_t)f.count * 32); /* the burst is real */
    }
    BL_CHECK_EQ(bl_send(r, T_GO, NULL, 0), 0);
    bl_msg *done = bl_test_recv_tag(T_DONE, 60000);
    BL_CHECK(done != NULL);
    bl_msg_free(done);
    /* Quiet now: within a few seconds the empty spans are given back.
     * Bounded wait on the event itself (RSS falling), polled. */
    size_t bound = base + ((size_t)32 << 20);
    for (int i = 0; i < 200 && rss_bytes() > bound; i++) bl_sleep(50);
    BL_CHECK(rss_bytes() <= bound);
    if (rss_bytes() > bound)
        fprintf(stderr, "memory_return: rss %zu MiB, baseline %zu MiB\n", rss_bytes() >> 20,
                base >> 20);
}

Test(memory_return, rss_back_near_baseline_after_a_flood, .timeout = 240)
{
    bl_test_run(NULL, memory_main, NULL);
}
