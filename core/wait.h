/*
 * core/wait.h - every change of a process's run state, on the mailbox word.
 *
 * A process parks in one wait at a time, named by its generation and wait
 * sequence.  Three kinds of party can end that wait: a sender (a message
 * ends a WAITING wait, a signal any wait), a timer, and a completion (I/O, a
 * dirty job).  Each of them ends it here, by one CAS on the mailbox word, so
 * exactly one party wins the right to queue the process (invariant 6, no
 * lost wake-ups) and nothing else in the runtime compares states:
 *
 *   bl__box_push    a message or signal: pushes and, if the push ended the
 *                   wait, says so (the sender queues the process);
 *                   bl__box_push_chain does the same for several at once;
 *   bl__wait_end    a timer or completion armed for wait `meta`: wakes the
 *                   parked process, or marks the wait ended (BL_META_ENDED)
 *                   when it is awake, so that its next park within the same
 *                   wait fails;
 *   bl__wait_park   the process's side: parks unless something arrived;
 *   bl__box_open, bl__box_take, bl__box_close
 *                   the birth, the owner's drain, and the death.
 *
 * All of these are inline: they sit on the send, receive and I/O paths.
 */
#ifndef BL_CORE_WAIT_H
#define BL_CORE_WAIT_H

#include "core/proc.h"

/* What bl__box_push did. */
enum {
    BL_PUSH_DEAD = -1,  /* the pid names no live process: nothing pushed (the caller frees m) */
    BL_PUSH_QUEUED = 0, /* pushed; the process was running or stays parked */
    BL_PUSH_WOKEN = 1,  /* pushed, and the push ended its wait: the caller must queue it */
    BL_PUSH_BEHIND = 2, /* pushed to a running receiver that is behind (BL_META_LONGQ) */
};

/*
 * Pushes the chain newest..oldest (linked through next, newest first, as
 * the inbox itself is) onto p's inbox if p still is the process `to` names:
 * one CAS for the lot.  A message ends a WAITING wait; a signal (BL_META_SIG
 * is set) ends a SLEEPING one too, since messages leave sleepers asleep but
 * signals must be acted on.
 */
static inline int bl__box_push_chain(bl_proc *p, bl_pid to, bl_msg *newest, bl_msg *oldest,
                                     bool signal)
{
    bl_box cur = bl__box_load(p), want;
    unsigned st;
    for (;;) {
        st = bl__meta_state(cur.meta);
        if (!bl__meta_is(cur.meta, to)) return BL_PUSH_DEAD;
        oldest->next = cur.top;
        want.top = newest;
        want.meta = cur.meta;
        if (signal) want.meta |= BL_META_SIG;
        if (st == BL_ST_WAITING || (signal && st == BL_ST_SLEEPING))
            want.meta = bl__meta_with_state(want.meta, BL_ST_ACTIVE);
        if (bl__box_cas(p, &cur, want)) break;
    }
    if (bl__meta_state(want.meta) == BL_ST_ACTIVE && st != BL_ST_ACTIVE) return BL_PUSH_WOKEN;
    return want.meta & BL_META_LONGQ ? BL_PUSH_BEHIND : BL_PUSH_QUEUED;
}

/* Pushes m alone (see bl__box_push_chain). */
static inline int bl__box_push(bl_proc *p, bl_pid to, bl_msg *m, bool signal)
{
    return bl__box_push_chain(p, to, m, m, signal);
}

/* Pushes m without ever ending a wait (the receiver is known to be busy). */
static inline int bl__box_push_lazy(bl_proc *p, bl_pid to, bl_msg *m)
{
    bl_box cur = bl__box_load(p), want;
    do {
        if (!bl__meta_is(cur.meta, to)) return BL_PUSH_DEAD;
        m->next = cur.top;
        want.top = m;
        want.meta = cur.meta;
    } while (!bl__box_cas(p, &cur, want));
    return BL_PUSH_QUEUED;
}

/* What bl__wait_end did. */
enum {
    BL_WAIT_STALE = 0,  /* the wait is over already (or the process is gone): nothing */
    BL_WAIT_MARKED = 1, /* the process was awake in that wait: marked BL_META_ENDED */
    BL_WAIT_WOKEN = 2,  /* the process was parked in it: now ACTIVE, the caller queues it */
};

/*
 * Ends the wait `meta` names (generation | sequence | the state it parks
 * in), on behalf of its timer or its completion.  The process may have died
 * or moved on to another wait (generation or sequence differ): then this is
 * stale.  If it is in this wait but ACTIVE (a message or signal woke it),
 * the end is recorded in the word.
 */
static inline int bl__wait_end(bl_proc *p, uint64_t meta)
{
    bl_box cur = bl__box_load(p), want;
    for (;;) {
        if ((cur.meta ^ meta) >> 8) return BL_WAIT_STALE;
        unsigned st = bl__meta_state(cur.meta);
        want = cur;
        if (st == bl__meta_state(meta))
            want.meta = bl__meta_with_state(cur.meta, BL_ST_ACTIVE);
        else if (st == BL_ST_ACTIVE && !(cur.meta & BL_META_ENDED))
            want.meta |= BL_META_ENDED;
        else
            return BL_WAIT_STALE;
        if (bl__box_cas(p, &cur, want)) return st == BL_ST_ACTIVE ? BL_WAIT_MARKED : BL_WAIT_WOKEN;
    }
}

/*
 * Process side: parks p in state st (WAITING or SLEEPING) for its current
 * wait p->seq, which the process bumped before parking (timers and
 * completions armed for this wait carry the same sequence).  Returns false
 * when p must run again at once: mail arrived (WAITING only), a signal
 * arrived, or the wait was already ended while p was awake.
 */
static inline bool bl__wait_park(bl_proc *p, unsigned st)
{
    bl_box cur = bl__box_load(p);
    /* The park clears BL_META_LONGQ too.  Its copy is written first: once
     * parked, p may be woken and run on another thread at once. */
    bool behind = p->behind;
    p->behind = false;
    for (;;) {
        if ((st == BL_ST_WAITING && cur.top) || (cur.meta & BL_META_SIG) ||
            bl__meta_ended(cur.meta, p->seq)) {
            p->behind = behind;
            return false;
        }
        bl_box want = cur;
        want.meta = bl__meta(p->gen, p->seq, st);
        if (bl__box_cas(p, &cur, want)) return true;
    }
}

/*
 * Process side, running: enters the wait `meta` names now instead of at
 * the park, for a completion that may come from another thread before the
 * process parks (the dirty pool): bl__wait_end then finds the wait current
 * and ACTIVE and marks it, so the park returns at once.  A pending signal's
 * flag is kept; a mark left by an earlier wait goes.
 */
static inline void bl__wait_enter(bl_proc *p, uint64_t meta)
{
    bl_box cur = bl__box_load(p), want;
    do {
        want = cur;
        want.meta = bl__meta_with_state(meta, BL_ST_ACTIVE) | (cur.meta & BL_META_SIG);
    } while (!bl__box_cas(p, &cur, want));
    p->behind = false; /* BL_META_LONGQ went with the old word */
}

/* Process side: forgets an end mark, so that p can park again in the same wait. */
static inline void bl__wait_clear_ended(bl_proc *p)
{
    bl_box cur = bl__box_load(p), want;
    do {
        if (!(cur.meta & BL_META_ENDED)) return;
        want = cur;
        want.meta &= ~(uint64_t)BL_META_ENDED;
    } while (!bl__box_cas(p, &cur, want));
}

/*
 * The birth: publishes p's slot as a live ACTIVE process of generation
 * p->gen (the spawner then queues it).  Until here the slot is FREE and
 * senders drop what they send to the new pid.
 */
static inline void bl__box_open(bl_proc *p)
{
    bl_box cur = bl__box_load(p), want = {.top = NULL, .meta = bl__meta(p->gen, 0, BL_ST_ACTIVE)};
    while (!bl__box_cas(p, &cur, want)) {
    }
}

/*
 * Owner: takes the whole inbox (newest first) and clears the signal flag,
 * whose signals are in it.  NULL when the inbox is empty.
 *
 * With no flag to clear, only the top changes: on x86-64 it is swapped out
 * alone, an 8-byte exchange (2.5 ns here) instead of the 16-byte CAS (5.1
 * ns), on every drain that finds mail.  Pushes CAS the whole word, so one
 * that read the old top fails and retries, as it would against the CAS.  A
 * signal pushed between the look and the exchange goes with the batch but
 * leaves its flag set: a stale flag, which costs one extra turn (a park
 * fails, the drain after it finds nothing) and which that drain clears
 * below.  Not with TSan, whose 16-byte atomics are not the hardware's and
 * must not be mixed with an 8-byte one.
 */
static inline bl_msg *bl__box_take(bl_proc *p)
{
    bl_box cur = bl__box_load(p), want;
#if defined(__x86_64__) && !defined(BL_TSAN)
    /* Acq_rel, as the CAS: acquires the envelopes.  Only the owner takes,
     * so a top seen set stays set until this exchange. */
    if (cur.top && !(cur.meta & BL_META_SIG))
        return __atomic_exchange_n(&p->box.top, NULL, __ATOMIC_ACQ_REL);
#endif
    do {
        /* An empty inbox with the flag set: a stale flag, cleared. */
        if (!cur.top && !(cur.meta & BL_META_SIG)) return NULL;
        want.top = NULL;
        want.meta = cur.meta & ~(uint64_t)BL_META_SIG;
    } while (!bl__box_cas(p, &cur, want));
    return cur.top;
}

/* Owner: sets or clears BL_META_LONGQ (its inbox is behind its senders). */
static inline void bl__box_behind(bl_proc *p, bool behind)
{
    bl_box cur = bl__box_load(p), want;
    do {
        want.top = cur.top;
        want.meta = behind ? cur.meta | BL_META_LONGQ : cur.meta & ~(uint64_t)BL_META_LONGQ;
    } while (!bl__box_cas(p, &cur, want));
}

/*
 * The death: the next generation, FREE, an empty inbox.  From here on
 * senders drop their messages and wait ends are stale.  Returns what was
 * still in the inbox, for the caller to answer and free.
 */
static inline bl_msg *bl__box_close(bl_proc *p, uint32_t next_gen)
{
    bl_box cur = bl__box_load(p), want = {.top = NULL, .meta = bl__meta(next_gen, 0, BL_ST_FREE)};
    while (!bl__box_cas(p, &cur, want)) {
    }
    return cur.top;
}

#endif /* BL_CORE_WAIT_H */
