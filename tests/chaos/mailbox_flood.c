/*
 * tests/chaos/mailbox_flood.c - floods of mixed sizes across schedulers.
 *
 * Rounds of about 300 ms.  In each, senders on both schedulers send
 * messages of mixed sizes to receivers spread over both schedulers: empty
 * to 64 bytes, up to 1 KiB, up to 5 KiB (past the slab's largest class,
 * so from the heap), and a few over 64 KiB, half copied and half moved
 * (bl_send_move, whose free function counts the buffers it gives back).
 * Receivers are slower than the senders, so their queues grow; meanwhile
 * receivers (and now and then a sender) are killed and replaced.  When
 * the senders are done, a quarter of the receivers are killed with their
 * queues full, and the others drain theirs.
 *
 * Checked: every payload received is intact (a pattern derived from its
 * sender's sequence number), messages from one sender reach one receiver
 * in send order, every moved buffer is freed exactly once (received or
 * dropped with a dead receiver's queue), and afterwards the driver's
 * checks, RSS included, pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

enum { T_DATA = 1, T_DRAIN, T_DRAINED, T_STOP };

#define NRECV         8
#define NSEND         8
#define ROUND_MS      300
#define PER_ROUND     CHAOS_SCALE(6000) /* messages per sender per round, at most */
#define BIG_PER_ROUND 12                /* messages over 64 KiB per sender per round */
#define MID_MAX       5120              /* the largest "small" message */

/* What starts every payload of 16 bytes or more. */
typedef struct head {
    uint32_t sender; /* the sender's id (round * NSEND + index) */
    uint32_t seq;    /* its sequence number, counting from 1 */
    uint32_t len;    /* the payload's length */
    uint32_t magic;  /* HEAD_MAGIC */
} head;
#define HEAD_MAGIC 0xC4A05F10u

typedef struct flood {
    chaos_run *r;
    _Atomic bl_pid recv[NRECV]; /* the current receiver in each place */
    int64_t round_end;          /* senders stop then (chaos_ms) */
    uint32_t round;             /* the round number */
    int c_sent, c_recv, c_bytes, c_big, c_moved;
    int k_recv, k_full, k_send;
    int i_bad, i_order;
} flood;

/* Moved buffers given back (the free function has no context: one scenario runs at a time). */
static _Atomic uint64_t moved_out, moved_back;

static void moved_free(void *buf)
{
    /* Relaxed: compared once every receiver is gone. */
    atomic_fetch_add_explicit(&moved_back, 1, memory_order_relaxed);
    free(buf);
}

static uint8_t pat(uint32_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + (uint32_t)i * 7u);
}

static void fill(uint8_t *d, size_t len, uint32_t sender, uint32_t seq)
{
    if (len < sizeof(head)) {
        memset(d, (int)len, len);
        return;
    }
    head h = {sender, seq, (uint32_t)len, HEAD_MAGIC};
    memcpy(d, &h, sizeof h);
    for (size_t i = sizeof h; i < len; i++) d[i] = pat(seq, i);
}

/* Checks a payload; *h gets its head (sender 0 when it has none).  Big ones are sampled. */
static bool intact(const uint8_t *d, size_t len, head *h)
{
    memset(h, 0, sizeof *h);
    if (len < sizeof(head)) {
        for (size_t i = 0; i < len; i++)
            if (d[i] != (uint8_t)len) return false;
        return true;
    }
    memcpy(h, d, sizeof *h);
    if (h->magic != HEAD_MAGIC || h->len != len) return false;
    size_t step = len > 8192 ? 61 : 1;
    for (size_t i = sizeof *h; i < len; i += step)
        if (d[i] != pat(h->seq, i)) return false;
    return len == sizeof *h || d[len - 1] == pat(h->seq, len - 1);
}

typedef struct recv_arg {
    flood *f;
    unsigned place;
} recv_arg;

static recv_arg recv_args[NRECV];

/* Takes messages slowly: checks each, and now and then naps. */
static void receiver(void *arg)
{
    recv_arg *ra = arg;
    flood *f = ra->f;
    chaos_rng g = chaos_rng_for(f->r, 0x1000 + ra->place * 7919u + (uint64_t)bl_self());
    struct {
        uint32_t sender, seq;
    } last[NSEND] = {{0}};
    for (uint64_t k = 0; k < 1000000000ull; k++) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) continue;
        if (m->tag == T_STOP) {
            bl_msg_free(m);
            return;
        }
        if (m->tag == T_DRAIN) {
            bl_send(m->from, T_DRAINED, NULL, 0);
            bl_msg_free(m);
            continue;
        }
        head h;
        if (!intact(m->data, m->len, &h)) {
            chaos_add(f->r, f->i_bad, 1);
            chaos_fail(f->r, "mailbox_flood: a %zu-byte payload arrived corrupted", m->len);
        } else if (h.sender) {
            unsigned s = h.sender % NSEND;
            if (last[s].sender == h.sender && h.seq <= last[s].seq) {
                chaos_add(f->r, f->i_order, 1);
                chaos_fail(f->r, "mailbox_flood: sender %u's message %u after its %u", h.sender,
                           h.seq, last[s].seq);
            }
            last[s].sender = h.sender;
            last[s].seq = h.seq;
        }
        chaos_add(f->r, f->c_recv, 1);
        bl_msg_free(m);
        if (chaos_one_in(&g, 200)) bl_sleep(1);
    }
}

static void spawn_receiver(flood *f, unsigned i)
{
    recv_args[i] = (recv_arg){f, i};
    bl_spawn_opts o = {.scheduler = 1 + (int)(i % bl_schedulers())};
    bl_pid pid = BL_PID_NONE;
    if (bl_spawn(&pid, receiver, &recv_args[i], &o) != 0)
        chaos_fail(f->r, "mailbox_flood: spawn of a receiver failed");
    atomic_store(&f->recv[i], pid);
}

typedef struct send_arg {
    flood *f;
    uint32_t id; /* round * NSEND + index + 1 */
} send_arg;

static void free_ptr(void *arg)
{
    free(*(void **)arg);
}

static size_t pick_size(chaos_rng *g, int *bigs)
{
    uint64_t x = chaos_below(g, 100);
    if (x < 40) return (size_t)chaos_below(g, 65);
    if (x < 70) return 64 + (size_t)chaos_below(g, 961);
    if (x < 97 || *bigs >= BIG_PER_ROUND) return 1024 + (size_t)chaos_below(g, MID_MAX - 1023);
    (*bigs)++;
    return 65537 + (size_t)chaos_below(g, 196608);
}

static void sender(void *arg)
{
    send_arg *sa = arg;
    flood *f = sa->f;
    chaos_rng g = chaos_rng_for(f->r, 0x2000 + sa->id);
    uint8_t small[MID_MAX];
    int bigs = 0;
    uint32_t seq = 0;
    for (int k = 0; k < PER_ROUND && chaos_ms() < f->round_end; k++) {
        bl_pid to = atomic_load(&f->recv[chaos_below(&g, NRECV)]);
        size_t len = pick_size(&g, &bigs);
        seq++;
        int rc;
        if (len <= MID_MAX) {
            fill(small, len, sa->id, seq);
            rc = bl_send(to, T_DATA, small, len);
        } else {
            uint8_t *big = malloc(len);
            if (!big) continue;
            fill(big, len, sa->id, seq);
            chaos_add(f->r, f->c_big, 1);
            if (chaos_one_in(&g, 2)) {
                /* Moved: the runtime owns it on success. */
                rc = bl_send_move(to, T_DATA, big, len, moved_free);
                if (rc == 0) {
                    atomic_fetch_add_explicit(&moved_out, 1, memory_order_relaxed);
                    chaos_add(f->r, f->c_moved, 1);
                } else {
                    free(big);
                }
            } else {
                /* Copied: the buffer is ours, also if we are killed in the send. */
                bl_cleanup c;
                bl_cleanup_push(&c, free_ptr, &big);
                rc = bl_send(to, T_DATA, big, len);
                bl_cleanup_pop(&c, true);
            }
        }
        if (rc != 0) {
            chaos_fail(f->r, "mailbox_flood: send of %zu bytes: %d", len, rc);
            break;
        }
        chaos_add(f->r, f->c_sent, 1);
        chaos_add(f->r, f->c_bytes, len);
    }
}

/* Sends T_DRAIN to receiver i and waits until it has taken everything before it. */
static bool drain(flood *f, unsigned i)
{
    bl_pid pid = atomic_load(&f->recv[i]);
    bl_ref ref;
    if (bl_monitor(pid, &ref) != 0) return false;
    bl_send(pid, T_DRAIN, NULL, 0);
    /* Draining a full queue at the receiver's pace: bounded, generously. */
    bl_msg *m = chaos_recv_tag(T_DRAINED, 60000);
    bool ok = m != NULL;
    bl_msg_free(m);
    bl_demonitor(ref, BL_DEMONITOR_FLUSH);
    return ok;
}

void chaos_mailbox_flood(chaos_run *r)
{
    static flood f; /* the receivers' arguments point into it */
    memset(&f, 0, sizeof f);
    f.r = r;
    f.c_sent = chaos_counter(r, CHAOS_WORK, "sent");
    f.c_recv = chaos_counter(r, CHAOS_WORK, "received");
    f.c_bytes = chaos_counter(r, CHAOS_WORK, "bytes");
    f.c_big = chaos_counter(r, CHAOS_WORK, "over_64k");
    f.c_moved = chaos_counter(r, CHAOS_WORK, "moved");
    f.k_recv = chaos_counter(r, CHAOS_FAULT, "receiver");
    f.k_full = chaos_counter(r, CHAOS_FAULT, "receiver_full");
    f.k_send = chaos_counter(r, CHAOS_FAULT, "sender");
    f.i_bad = chaos_counter(r, CHAOS_INFO, "corrupt");
    f.i_order = chaos_counter(r, CHAOS_INFO, "out_of_order");
    int c_rounds = chaos_counter(r, CHAOS_INFO, "rounds");
    atomic_store(&moved_out, 0);
    atomic_store(&moved_back, 0);
    chaos_rng g = chaos_rng_for(r, 1);

    for (unsigned i = 0; i < NRECV; i++) spawn_receiver(&f, i);
    for (uint32_t round = 0; round < 100000 && chaos_running(r); round++) {
        f.round = round;
        f.round_end = chaos_ms() + ROUND_MS;
        if (f.round_end > r->end_ms) f.round_end = r->end_ms;
        send_arg sa[NSEND];
        bl_pid spid[NSEND];
        bl_ref sref[NSEND];
        for (unsigned i = 0; i < NSEND; i++) {
            sa[i] = (send_arg){&f, round * NSEND + i + 1};
            bl_spawn_opts o = {.scheduler = 1 + (int)((i + 1) % bl_schedulers())};
            if (bl_spawn_monitor(&spid[i], &sref[i], sender, &sa[i], &o) != 0) {
                chaos_fail(r, "mailbox_flood: spawn of a sender failed");
                sref[i] = BL_REF_NONE;
            }
        }
        /* The killer: receivers (queues filling up) and now and then a sender. */
        for (int k = 0; k < 10000 && chaos_ms() < f.round_end; k++) {
            chaos_delay_us(500 + (int64_t)chaos_below(&g, 8000));
            if (chaos_one_in(&g, 6)) {
                bl_exit_pid(spid[chaos_below(&g, NSEND)], &BL_REASON(BL_KILL));
                chaos_add(r, f.k_send, 1);
                continue;
            }
            unsigned i = (unsigned)chaos_below(&g, NRECV);
            if (chaos_kill_wait(atomic_load(&f.recv[i]), 10000) != 0)
                chaos_fail(r, "mailbox_flood: a killed receiver did not go down");
            spawn_receiver(&f, i);
            chaos_add(r, f.k_recv, 1);
        }
        for (unsigned i = 0; i < NSEND; i++)
            if (sref[i] != BL_REF_NONE && chaos_wait_down(sref[i], 60000) != 0)
                chaos_fail(r, "mailbox_flood: a sender did not finish");
        /* Queues are full now: kill some as they are, drain the others. */
        for (unsigned i = 0; i < NRECV; i++) {
            if (chaos_one_in(&g, 4)) {
                if (chaos_kill_wait(atomic_load(&f.recv[i]), 10000) != 0)
                    chaos_fail(r, "mailbox_flood: a receiver killed full did not go down");
                spawn_receiver(&f, i);
                chaos_add(r, f.k_full, 1);
            } else if (!drain(&f, i)) {
                chaos_fail(r, "mailbox_flood: receiver %u did not drain its queue", i);
            }
        }
        chaos_add(r, c_rounds, 1);
    }
    /* The end: half stop by themselves, half are killed. */
    for (unsigned i = 0; i < NRECV; i++) {
        bl_pid pid = atomic_load(&f.recv[i]);
        if (i % 2) {
            chaos_kill_wait(pid, 10000);
            continue;
        }
        bl_ref ref;
        if (bl_monitor(pid, &ref) != 0) continue;
        bl_send(pid, T_STOP, NULL, 0);
        if (chaos_wait_down(ref, 60000) != 0)
            chaos_fail(r, "mailbox_flood: a receiver did not stop");
    }
    /* Every moved buffer comes back once: with its receiver, or with a dead queue. */
    int64_t t0 = chaos_ms();
    while (atomic_load(&moved_back) != atomic_load(&moved_out) && chaos_ms() - t0 < 5000)
        bl_sleep(5);
    if (atomic_load(&moved_back) != atomic_load(&moved_out))
        chaos_fail(r, "mailbox_flood: %llu buffers moved, %llu given back",
                   (unsigned long long)atomic_load(&moved_out),
                   (unsigned long long)atomic_load(&moved_back));
}
