/*
 * otp/gen_server/ticket.c - reply tickets: how an abandoned asynchronous
 * request's reply is kept out of its requester's mailbox.
 *
 * A call (bl_gen_server_call) waits for one reply at a time, so the
 * process's single alias (proc/otp.h) is enough to drop a late one.  A
 * process may have any number of requests out (send_request), each given
 * up on its own, so each gets a ticket instead: a slot in a pool shared by
 * every process, holding one word, generation << 32 | state:
 *
 *   PENDING   the request is out; the requester may still give it up
 *   REPLYING  a reply won the race and is being sent
 *   SENT      the reply reached the requester's mailbox
 *   FREE      nobody's (the generation moved on: stale tickets fail)
 *
 * Who moves the slot to FREE (exactly one party, by compare-and-swap on
 * the word, then pushes it on the free list):
 *  - the requester giving up a PENDING request (no reply will be sent);
 *  - the requester taking the reply out of its mailbox (REPLYING or SENT);
 *  - the reply's release action, when the reply is dropped unread because
 *    the requester died (core/msg.h);
 *  - the sweep, for any slot whose requester died (below).
 * Every other move is a CAS on (generation, state) too, so a party that
 * comes late fails harmlessly: the replier wins PENDING -> REPLYING, moves
 * REPLYING -> SENT once the reply is queued, and back REPLYING -> PENDING
 * when no envelope could be had.  A requester giving up a REPLYING request
 * waits (yielding) for the reply to arrive and takes it out: the reply is
 * already on its way, and every sender finishes a send it has started.
 *
 * A requester that dies leaves its slots PENDING if nobody answers (and
 * SENT if it read a reply without handing it to check_response).  Before
 * the pool grows, a sweep frees the slots whose requester is no longer
 * alive (each slot records it), so a kill storm cannot leak the pool.
 * Slots live in chunks that are never freed: a stale ticket, kept by
 * anyone, can only fail a CAS.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "otp/gen_server/gs_int.h"
#include "proc/otp.h"

#define CHUNK_SHIFT 10
#define CHUNK       (1u << CHUNK_SHIFT)
#define MAX_CHUNKS  4096 /* 4M requests out at once */
#define GEN_MASK    0x7FFFFFFFu
#define STATE_MASK  0xFFFFFFFFull
#define STACK_REPLY 240 /* replies up to this size are built on the stack */

enum { T_FREE = 0, T_PENDING, T_REPLYING, T_SENT };

typedef struct slot {
    _Atomic uint64_t word; /* generation << 32 | state: the parties race on it */
    _Atomic uint64_t aux;  /* in use: the requester's pid; free: next free index + 1 */
} slot;

static slot *_Atomic chunks[MAX_CHUNKS];
/* Treiber stack of free slots: ABA tag << 32 | index + 1. */
static _Atomic uint64_t free_head;
/* Taken only to sweep or add a chunk (cold). */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nchunks;      /* under grow_lock */
static unsigned sweep_at = 2; /* sweep before growing past this many chunks */

static slot *slot_at(uint32_t i)
{
    if ((i >> CHUNK_SHIFT) >= MAX_CHUNKS) return NULL;
    /* Acquire: pairs with the release that published the chunk. */
    slot *c = atomic_load_explicit(&chunks[i >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[i & (CHUNK - 1)] : NULL;
}

static uint64_t word(uint32_t gen, unsigned state)
{
    return (uint64_t)gen << 32 | state;
}

static uint32_t gen_of(uint64_t w)
{
    return (uint32_t)(w >> 32);
}

/* Pushes the chain first..last (linked through aux) on the free list. */
static void push_free(uint32_t first, slot *last)
{
    uint64_t h = atomic_load_explicit(&free_head, memory_order_relaxed), nh;
    do {
        /* Relaxed: the release CAS below publishes it. */
        atomic_store_explicit(&last->aux, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | (uint64_t)(first + 1);
        /* Release: a popper that acquires the head sees the slot's FREE word. */
    } while (!atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_release,
                                                    memory_order_relaxed));
}

static slot *pop_free(uint32_t *idx)
{
    /* Acquire: the slot's contents were published by the push. */
    uint64_t h = atomic_load_explicit(&free_head, memory_order_acquire);
    while ((uint32_t)h) {
        slot *c = slot_at((uint32_t)h - 1);
        if (!c) return NULL; /* cannot happen: listed slots are published */
        /* May be stale if c was popped meanwhile; the tag then fails the CAS. */
        uint64_t nx = atomic_load_explicit(&c->aux, memory_order_relaxed);
        uint64_t nh = (((h >> 32) + 1) << 32) | (uint32_t)nx;
        if (atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_acquire,
                                                  memory_order_acquire)) {
            *idx = (uint32_t)h - 1;
            return c;
        }
    }
    return NULL;
}

/* Moves slot idx from (gen, any state in `states`) to FREE under the next generation. */
static bool release_slot(slot *c, uint32_t idx, uint32_t gen, unsigned states)
{
    /* Acquire: what the previous owner wrote is seen before we decide. */
    uint64_t w = atomic_load_explicit(&c->word, memory_order_acquire);
    for (;;) {
        if (gen_of(w) != gen || !(states & (1u << (w & STATE_MASK)))) return false;
        /* Acq_rel: the winner frees; the loser sees the state it lost to. */
        if (atomic_compare_exchange_weak_explicit(&c->word, &w, word((gen + 1) & GEN_MASK, T_FREE),
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    push_free(idx, c);
    return true;
}

/* Frees the slots of requesters that died.  Under grow_lock. */
static unsigned sweep(void)
{
    unsigned freed = 0;
    for (unsigned k = 0; k < nchunks; k++) {
        /* Relaxed: the chunks below nchunks were published under this lock. */
        slot *c = atomic_load_explicit(&chunks[k], memory_order_relaxed);
        for (uint32_t i = 0; i < CHUNK; i++) {
            /* Acquire: pairs with the requester's release of PENDING (aux is its pid). */
            uint64_t w = atomic_load_explicit(&c[i].word, memory_order_acquire);
            if ((w & STATE_MASK) == T_FREE) continue;
            /* Relaxed: a newer owner's pid comes with a newer generation, which fails below. */
            bl_pid who = atomic_load_explicit(&c[i].aux, memory_order_relaxed);
            if (bl_is_alive(who)) continue;
            freed += release_slot(&c[i], (k << CHUNK_SHIFT) + i, gen_of(w),
                                  1u << T_PENDING | 1u << T_REPLYING | 1u << T_SENT);
        }
    }
    return freed;
}

/* A free slot, or NULL when out of memory (or out of chunks). */
static slot *take(uint32_t *idx)
{
    for (;;) {
        slot *c = pop_free(idx);
        if (c) return c;
        pthread_mutex_lock(&grow_lock);
        /* Acquire: a push seen here published its slot. */
        if ((uint32_t)atomic_load_explicit(&free_head, memory_order_acquire)) {
            pthread_mutex_unlock(&grow_lock);
            continue; /* someone else freed or grew */
        }
        if (nchunks >= sweep_at) {
            /* Amortized: the next sweep waits until the pool has doubled. */
            sweep_at = nchunks * 2;
            if (sweep()) {
                pthread_mutex_unlock(&grow_lock);
                continue;
            }
        }
        slot *chunk = nchunks < MAX_CHUNKS ? calloc(CHUNK, sizeof *chunk) : NULL;
        if (!chunk) {
            pthread_mutex_unlock(&grow_lock);
            return NULL;
        }
        uint32_t base = nchunks << CHUNK_SHIFT;
        for (uint32_t i = 0; i < CHUNK; i++) {
            atomic_init(&chunk[i].word, word(0, T_FREE));
            atomic_init(&chunk[i].aux, i + 1 < CHUNK ? base + i + 2 : 0);
        }
        /* Release: slot_at readers see the initialized chunk. */
        atomic_store_explicit(&chunks[nchunks], chunk, memory_order_release);
        nchunks++;
        pthread_mutex_unlock(&grow_lock);
        /* Slot 0 is ours; the rest go on the free list. */
        push_free(base + 1, &chunk[CHUNK - 1]);
        *idx = base;
        return &chunk[0];
    }
}

/* The slot a ticket names (it may have moved on: check the generation). */
static slot *slot_of(bl_ref t, uint32_t *idx, uint32_t *gen)
{
    if (!bl__gs_is_ticket(t) || !(uint32_t)t) return NULL;
    *idx = (uint32_t)t - 1;
    *gen = (uint32_t)(t >> 32) & GEN_MASK;
    return slot_at(*idx);
}

int bl__gs_ticket_new(bl_pid me, bl_ref *ticket)
{
    uint32_t idx;
    slot *c = take(&idx);
    if (!c) return -ENOMEM;
    /* Relaxed: the slot is ours alone until the release store below. */
    uint32_t gen = gen_of(atomic_load_explicit(&c->word, memory_order_relaxed));
    atomic_store_explicit(&c->aux, me, memory_order_relaxed);
    /* Release: a sweep that sees PENDING sees our pid in aux. */
    atomic_store_explicit(&c->word, word(gen, T_PENDING), memory_order_release);
    *ticket = TICKET_BIT | (uint64_t)gen << 32 | (idx + 1);
    return 0;
}

/* The release action of a reply dropped unread: its requester is gone. */
static void reply_dropped(bl_msg *m)
{
    bl_ref t;
    memcpy(&t, (const char *)m->data + m->len - TICKET_TAIL, sizeof t);
    uint32_t idx, gen;
    slot *c = slot_of(t, &idx, &gen);
    if (c) release_slot(c, idx, gen, 1u << T_REPLYING | 1u << T_SENT);
}

int bl__gs_ticket_reply(bl_gs_from from, const void *data, size_t len)
{
    uint32_t idx, gen;
    slot *c = slot_of(from.ref, &idx, &gen);
    if (!c) return 0;
    uint64_t want = word(gen, T_PENDING);
    /* Acq_rel: winning decides that the reply is sent; losing means the
     * requester gave up (or someone answered) first. */
    if (!atomic_compare_exchange_strong_explicit(&c->word, &want, word(gen, T_REPLYING),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return 0;
    _Alignas(16) char small[STACK_REPLY + TICKET_TAIL];
    char *buf = len <= STACK_REPLY ? small : malloc(len + TICKET_TAIL);
    int rc = -ENOMEM;
    if (buf) {
        if (len) memcpy(buf, data, len);
        memcpy(buf + len, &from.ref, TICKET_TAIL);
        rc = bl__send_owned(from.pid, TAG_REPLY, from.ref, buf, len + TICKET_TAIL, reply_dropped);
        if (buf != small) free(buf);
    }
    if (rc == -ENOMEM) {
        /* Nothing was sent: pending again, for a retry or the requester to
         * give up (unless a sweep freed the slot meanwhile).  Release: pairs
         * with the requester's acquire load in its give-up loop. */
        want = word(gen, T_REPLYING);
        atomic_compare_exchange_strong_explicit(&c->word, &want, word(gen, T_PENDING),
                                                memory_order_release, memory_order_relaxed);
        return -ENOMEM;
    }
    if (rc == 0) {
        /* Queued.  Fails if the requester already took it (or died): fine.
         * Release: a requester that sees SENT finds the reply in its inbox. */
        want = word(gen, T_REPLYING);
        atomic_compare_exchange_strong_explicit(&c->word, &want, word(gen, T_SENT),
                                                memory_order_release, memory_order_relaxed);
    }
    /* Any other result: the requester was gone and reply_dropped freed the slot. */
    return 0;
}

void bl__gs_ticket_taken(bl_msg *m)
{
    uint32_t idx, gen;
    slot *c = slot_of(m->ref, &idx, &gen);
    /* A read message's envelope is freed by length class flags, not by len. */
    if (m->len >= TICKET_TAIL) m->len -= TICKET_TAIL;
    if (c) release_slot(c, idx, gen, 1u << T_REPLYING | 1u << T_SENT);
}

static bool match_ticket_reply(const bl_msg *m, void *arg)
{
    return m->tag == TAG_REPLY && m->ref == *(const bl_ref *)arg;
}

bl_msg *bl__gs_ticket_cancel(bl_ref t)
{
    uint32_t idx, gen;
    slot *c = slot_of(t, &idx, &gen);
    if (!c) return NULL;
    for (;;) {
        /* Acquire: SENT comes with the reply queued in our inbox. */
        uint64_t w = atomic_load_explicit(&c->word, memory_order_acquire);
        if (gen_of(w) != gen) return NULL; /* ended earlier */
        unsigned st = (unsigned)(w & STATE_MASK);
        if (st == T_PENDING) {
            if (release_slot(c, idx, gen, 1u << T_PENDING)) return NULL;
            continue; /* a reply won meanwhile */
        }
        if (st == T_FREE) return NULL;
        bl_msg *m = NULL;
        if (bl_recv(&m, match_ticket_reply, &t, 0, 0) == 0) {
            bl__gs_ticket_taken(m);
            return m;
        }
        if (st == T_SENT) {
            /* Queued, yet not in the mailbox: the requester already read it
             * without passing it to check_response.  Nothing more will come. */
            release_slot(c, idx, gen, 1u << T_SENT);
            return NULL;
        }
        /* REPLYING: the sender is between its CAS and its push. */
        bl_yield();
    }
}

size_t bl__gs_tickets_busy(size_t *capacity)
{
    size_t busy = 0;
    pthread_mutex_lock(&grow_lock);
    for (unsigned k = 0; k < nchunks; k++) {
        /* Relaxed: a count for tests, published chunks under this lock. */
        slot *c = atomic_load_explicit(&chunks[k], memory_order_relaxed);
        for (uint32_t i = 0; i < CHUNK; i++)
            busy += (atomic_load_explicit(&c[i].word, memory_order_relaxed) & STATE_MASK) != T_FREE;
    }
    if (capacity) *capacity = (size_t)nchunks * CHUNK;
    pthread_mutex_unlock(&grow_lock);
    return busy;
}
