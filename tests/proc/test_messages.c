/*
 * bl_process_messages: another process's queued messages, in arrival
 * order, copied out without taking them.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_A = 1, T_B, T_C, T_READY, T_GO };

/* Waits for T_GO only, leaving the rest queued; then checks they are all
 * still there, in order, and reports how many to the parent. */
static void holder(void *arg)
{
    bl_pid parent = *(bl_pid *)arg;
    bl_send(parent, T_READY, NULL, 0);
    uint32_t go = T_GO;
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_tag, &go, BL_INFINITY, 0), 0);
    bl_msg_free(m);
    static const uint32_t want[] = {T_A, T_B, T_C, T_A};
    int n = 0;
    while ((m = bl_receive(0))) {
        BL_CHECK(n < 4 && m->tag == want[n]);
        n++;
        bl_msg_free(m);
    }
    bl_send(parent, T_READY, &n, sizeof n);
}

static bool aligned(const void *p, const char *buf)
{
    return ((const char *)p - buf) % 16 == 0;
}

static void messages_main(void *arg)
{
    bl_pid self = bl_self(), h;
    BL_CHECK_EQ(bl_spawn(&h, holder, &self, NULL), 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));
    char big[100];
    for (int i = 0; i < 100; i++) big[i] = (char)i;
    BL_CHECK_EQ(bl_send(h, T_A, "hello", 6), 0);
    BL_CHECK_EQ(bl_send(h, T_B, big, sizeof big), 0);
    BL_CHECK_EQ(bl_send(h, T_C, NULL, 0), 0);
    BL_CHECK_EQ(bl_send_ref(h, T_A, 99, "xyz", 4), 0);

    bl_msg_info out[8];
    _Alignas(16) char buf[256];
    BL_CHECK_EQ(bl_process_messages(h, out, 8, buf, sizeof buf), 4);
    const uint32_t tags[] = {T_A, T_B, T_C, T_A};
    const size_t lens[] = {6, 100, 0, 4};
    for (int i = 0; i < 4; i++) {
        BL_CHECK_EQ(out[i].tag, tags[i]);
        BL_CHECK_EQ(out[i].from, self);
        BL_CHECK_EQ(out[i].len, lens[i]);
        BL_CHECK_EQ(out[i].copied, lens[i]);
        BL_CHECK(lens[i] == 0 || (out[i].data && aligned(out[i].data, buf)));
    }
    BL_CHECK(!memcmp(out[0].data, "hello", 6));
    BL_CHECK(!memcmp(out[1].data, big, 100));
    BL_CHECK(out[2].data == NULL);
    BL_CHECK(!memcmp(out[3].data, "xyz", 4));
    BL_CHECK_EQ(out[0].ref, BL_REF_NONE);
    BL_CHECK_EQ(out[3].ref, 99);

    /* Little room: the first payload whole, the second cut, the rest none. */
    memset(out, 0x5A, sizeof out);
    BL_CHECK_EQ(bl_process_messages(h, out, 8, buf, 20), 4);
    BL_CHECK_EQ(out[0].copied, 6);
    BL_CHECK(out[1].copied == 4 && out[1].data == buf + 16 && !memcmp(out[1].data, big, 4));
    BL_CHECK(out[2].copied == 0 && out[3].copied == 0 && out[3].data == NULL);
    BL_CHECK_EQ(out[3].len, 4);
    /* No room at all, and fewer entries than messages. */
    memset(out, 0x5A, sizeof out);
    BL_CHECK_EQ(bl_process_messages(h, out, 2, NULL, 0), 4);
    BL_CHECK(out[0].tag == T_A && out[0].copied == 0 && out[0].data == NULL);
    BL_CHECK(out[1].tag == T_B && out[1].len == 100);
    BL_CHECK_EQ(out[2].tag, 0x5A5A5A5Au); /* untouched */
    BL_CHECK_EQ(bl_process_messages(h, NULL, 0, NULL, 0), 4);

    /* Bad input, dead and malformed pids. */
    BL_CHECK_EQ(bl_process_messages(h, NULL, 1, buf, sizeof buf), -EINVAL);
    BL_CHECK_EQ(bl_process_messages(h, out, 1, NULL, 1), -EINVAL);
    BL_CHECK_EQ(bl_process_messages(BL_PID_NONE, out, 1, NULL, 0), -EINVAL);
    BL_CHECK_EQ(
        bl_process_messages(bl__pid_make(bl__pid_idx(h), bl__pid_gen(h) + 1), out, 1, NULL, 0),
        -ESRCH);

    /* Its queue is untouched: it takes all four, in order. */
    BL_CHECK_EQ(bl_send(h, T_GO, NULL, 0), 0);
    bl_msg *m = bl_test_recv_tag(T_READY, 10000);
    BL_CHECK(m && *(int *)m->data == 4);
    bl_msg_free(m);

    /* Our own queue, which includes what is still in the inbox. */
    BL_CHECK_EQ(bl_send(self, T_C, "me", 3), 0);
    BL_CHECK_EQ(bl_send(self, T_B, NULL, 0), 0);
    BL_CHECK_EQ(bl_process_messages(self, out, 8, buf, sizeof buf), 2);
    BL_CHECK(out[0].tag == T_C && out[0].copied == 3 && !memcmp(out[0].data, "me", 3));
    BL_CHECK(out[1].tag == T_B && out[1].len == 0);
    BL_CHECK_EQ(bl_mailbox_len(), 2);
    while ((m = bl_receive(0))) bl_msg_free(m);
}

Test(messages, lists_another_process_queue)
{
    bl_test_run(NULL, messages_main, NULL);
}

/* A process that dies before answering. */
static void dies_on_go(void *arg)
{
    bl_msg_free(bl_test_recv_tag(T_GO, BL_INFINITY));
}

static void dead_main(void *arg)
{
    bl_pid p;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, dies_on_go, NULL, NULL), 0);
    bl_send(p, T_GO, NULL, 0);
    int64_t rc = bl_process_messages(p, NULL, 0, NULL, 0);
    /* It answered before it went (with T_GO still queued, or taken), or
     * it was gone: the DOWN answered. */
    BL_CHECK(rc == 1 || rc == 0 || rc == -ESRCH);
    bl_msg_free(bl_test_recv_tag(BL_TAG_DOWN, 10000));
    BL_CHECK_EQ(bl_process_messages(p, NULL, 0, NULL, 0), -ESRCH);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(messages, dead_process)
{
    bl_test_run(NULL, dead_main, NULL);
}

static void outside_main(void *arg) {}

Test(messages, outside_a_process)
{
    bl_test_run(NULL, outside_main, NULL);
    cr_assert_eq(bl_process_messages(bl__pid_make(0, 0), NULL, 0, NULL, 0), -EINVAL);
}
