/*
 * sched/timer.c - the per-scheduler hierarchical timer wheel.
 *
 * Placement: a timer due at tick `when` goes to the lowest level l whose
 * aligned window of 64^(l+1) ticks holds both now_tick and `when`, in slot
 * (when >> 6l) & 63.  So on levels 0-4 no occupied slot lies before
 * now_tick's own digit (the bitmaps never wrap: the earliest slot is the
 * lowest set bit), and every occupied slot of a level starts before every
 * slot of the levels above it.  Level 5 alone is a ring covering the next
 * 64^6 ticks; deadlines beyond it are clamped to its far end and placed again
 * when that slot is reached, so its search starts just after now's digit.
 *
 * Expiring repeatedly takes the earliest occupied slot that starts no later
 * than the target tick.  A higher-level slot is cascaded: now_tick moves to
 * its start and its timers are placed again, which always lands them on a
 * lower level.  A level-0 slot fires the timers due by now_ns; only the
 * target tick's slot can keep timers (due later within that tick), and
 * cur_min bounds their deadlines so that next() is exact there and expire
 * calls within one tick cost O(1) while nothing in it is due (once something
 * is, the tick's remaining timers are walked again).
 *
 * Firing only from level 0 means one expire call fires timers in the order of
 * their deadline ticks, however far it jumps.
 */
#include "sched/timer.h"

#include <assert.h>
#include <stdbool.h>

#define SLOT_BITS 6
#define SLOT_MASK ((unsigned)BL_TWHEEL_SLOTS - 1)
#define TOP       (BL_TWHEEL_LEVELS - 1)
#define NSLOTS    (BL_TWHEEL_LEVELS * BL_TWHEEL_SLOTS)
/* Ticks covered by the whole wheel: 64^6. */
#define RANGE           ((uint64_t)1 << (SLOT_BITS * BL_TWHEEL_LEVELS))
#define DEFAULT_TICK_NS 1000000u

_Static_assert(BL_TWHEEL_SLOTS == 1 << SLOT_BITS, "a slot digit is SLOT_BITS wide");
_Static_assert(BL_TWHEEL_SLOTS == 64, "occupancy bitmaps are uint64_t");

/* Ticks covered by one slot of the given level. */
static uint64_t slot_span(unsigned level)
{
    return (uint64_t)1 << (SLOT_BITS * level);
}

/*
 * The tick holding time ns; times before tick 0 count as tick 0.  Every
 * insert asks, and a 64-bit division is a long instruction in that chain:
 * below 2^63 ns the quotient is a multiply by m = ceil(2^(64+k) / tick_ns)
 * (k = floor(log2 tick_ns), so m fits in 64 bits) and a shift, exact there
 * because n * (m - 2^(64+k) / tick_ns) / 2^(64+k) < n / 2^(64+k) < 1 / tick_ns.
 */
static uint64_t tick_of(const bl_twheel *w, uint64_t ns)
{
    if (ns <= w->base_ns) return 0;
    uint64_t n = ns - w->base_ns;
    if (!w->tick_mul) return n >> w->tick_shift;
    if (n >> 63) return n / w->tick_ns;
    return (uint64_t)(((unsigned __int128)n * w->tick_mul) >> 64) >> w->tick_shift;
}

/* Start time of a tick.  Only called for ticks no later than some queued
 * timer's deadline tick, so it cannot overflow. */
static uint64_t time_of(const bl_twheel *w, uint64_t tick)
{
    return w->base_ns + tick * w->tick_ns;
}

/* Links t at the head of a slot; fire callbacks rely on head insertion (see run_tick). */
static void push(bl_twheel *w, bl_timer *t, unsigned level, unsigned slot)
{
    bl_timer **head = &w->slots[level][slot];
    t->prev = NULL;
    t->next = *head;
    if (*head) (*head)->prev = t;
    *head = t;
    t->slot = level * BL_TWHEEL_SLOTS + slot;
    w->occupied[level] |= (uint64_t)1 << slot;
}

/* Links t right after pos, in pos's slot, which is therefore already occupied. */
static void push_after(bl_timer *pos, bl_timer *t)
{
    t->prev = pos;
    t->next = pos->next;
    if (t->next) t->next->prev = t;
    pos->next = t;
    t->slot = pos->slot;
}

/* Unlinks a queued t and marks it unlinked; does not touch count. */
static void detach(bl_twheel *w, bl_timer *t)
{
    unsigned level = t->slot / BL_TWHEEL_SLOTS, slot = t->slot % BL_TWHEEL_SLOTS;
    if (t->prev)
        t->prev->next = t->next;
    else
        w->slots[level][slot] = t->next;
    if (t->next) t->next->prev = t->prev;
    if (!w->slots[level][slot]) w->occupied[level] &= ~((uint64_t)1 << slot);
    t->next = t->prev = NULL;
    t->slot = BL_TIMER_UNLINKED;
}

/* A queued timer heads its slot or has a predecessor: this tells a zeroed timer
 * (slot 0, prev NULL) apart from one queued in slot 0. */
static bool is_queued(const bl_twheel *w, const bl_timer *t)
{
    if (t->slot >= NSLOTS) return false;
    return t->prev || w->slots[t->slot / BL_TWHEEL_SLOTS][t->slot % BL_TWHEEL_SLOTS] == t;
}

/* The lowest level whose aligned window holds both ticks; level 5 takes the rest. */
static unsigned level_for(uint64_t now, uint64_t when)
{
    unsigned msb = 63u - (unsigned)__builtin_clzll((now ^ when) | SLOT_MASK);
    /* msb / 6 for msb in 0..63, as a multiply: GCC placed this path out of
     * line and divided there (idiv, a sixth of an insert's time). */
    _Static_assert(SLOT_BITS == 6, "the multiplier divides by 6");
    unsigned level = (msb * 43u) >> 8;
    return level < TOP ? level : TOP;
}

/* Queues t relative to now_tick, keeping cur_min a bound on the current tick's slot. */
static void place(bl_twheel *w, bl_timer *t)
{
    uint64_t now = w->now_tick, when = tick_of(w, t->deadline);
    if (when < now) when = now; /* A past deadline fires at the next expire. */
    /* Beyond the ring: park at its far end, to be placed again from there. */
    if (when - now >= RANGE) when = now + RANGE - 1;
    unsigned level = level_for(now, when);
    push(w, t, level, (when >> (SLOT_BITS * level)) & SLOT_MASK);
    if (when == now && t->deadline < w->cur_min) w->cur_min = t->deadline;
}

/* The earliest occupied slot of levels 0-4, whose bitmaps never wrap. */
static bool low_slot(const bl_twheel *w, unsigned level, unsigned *slot, uint64_t *start)
{
    uint64_t span = slot_span(level);
    if (!w->occupied[level]) return false;
    *slot = __builtin_ctzll(w->occupied[level]);
    assert(*slot >= ((w->now_tick / span) & SLOT_MASK)); /* No slot lies behind now. */
    *start = (w->now_tick & ~(span * BL_TWHEEL_SLOTS - 1)) + *slot * span;
    return true;
}

/* The earliest occupied level-5 slot: the ring is searched from the slot after
 * now's, and a slot at or before now's digit belongs to the next turn. */
static bool top_slot(const bl_twheel *w, unsigned *slot, uint64_t *start)
{
    uint64_t occ = w->occupied[TOP];
    unsigned cur = (w->now_tick >> (SLOT_BITS * TOP)) & SLOT_MASK;
    unsigned first = (cur + 1) & SLOT_MASK;
    if (!occ) return false;
    uint64_t rotated = first ? occ >> first | occ << (BL_TWHEEL_SLOTS - first) : occ;
    *slot = (first + __builtin_ctzll(rotated)) & SLOT_MASK;
    *start = (w->now_tick & ~(RANGE - 1)) + *slot * slot_span(TOP);
    if (*slot <= cur) *start += RANGE;
    return true;
}

/* The earliest occupied slot and the tick it starts at; false when empty. */
static bool earliest(const bl_twheel *w, unsigned *level, unsigned *slot, uint64_t *start)
{
    for (*level = 0; *level < TOP; (*level)++)
        if (low_slot(w, *level, slot, start)) return true;
    return top_slot(w, slot, start);
}

/* Moves now_tick forward; the level-0 slot of the new tick is empty or about
 * to be run, so cur_min starts over. */
static void advance(bl_twheel *w, uint64_t tick)
{
    if (tick == w->now_tick) return;
    assert(tick > w->now_tick);
    w->now_tick = tick;
    w->cur_min = UINT64_MAX;
}

/* Places every timer of a level >= 1 slot again, relative to its start (now_tick). */
static void cascade(bl_twheel *w, unsigned level, unsigned slot)
{
    bl_timer *t;
    while ((t = w->slots[level][slot])) {
        detach(w, t);
        place(w, t);
        assert(t->slot != level * BL_TWHEEL_SLOTS + slot); /* Else this loop never ends. */
    }
}

/*
 * Fires the due timers of the level-0 slot of now_tick.  A marker linked at
 * the tail separates timers still to visit (before it) from those kept for
 * later in this tick (after it).  No pointer into the list is held across a
 * callback, so fire may cancel any timer; timers it inserts here go to the
 * head and are visited too, so a past deadline fires within this call.
 */
static size_t run_tick(bl_twheel *w, unsigned slot, uint64_t now_ns,
                       void (*fire)(bl_timer *t, void *ctx), void *ctx)
{
    bl_timer mark = {0}, *t = w->slots[0][slot];
    uint64_t kept_min = UINT64_MAX;
    size_t fired = 0;

    while (t->next) t = t->next;
    push_after(t, &mark);
    while ((t = w->slots[0][slot]) != &mark) {
        detach(w, t);
        if (t->deadline <= now_ns) {
            w->count--;
            fire(t, ctx);
            fired++;
        } else {
            push_after(&mark, t);
            if (t->deadline < kept_min) kept_min = t->deadline;
        }
    }
    detach(w, &mark);
    w->cur_min = kept_min;
    return fired;
}

void bl__twheel_init(bl_twheel *w, uint64_t now_ns, uint64_t tick_ns)
{
    *w = (bl_twheel){
        .tick_ns = tick_ns ? tick_ns : DEFAULT_TICK_NS,
        .base_ns = now_ns,
        .cur_min = UINT64_MAX,
    };
    uint64_t d = w->tick_ns;
    if ((d & (d - 1)) == 0) {
        w->tick_shift = (unsigned)__builtin_ctzll(d);
    } else {
        unsigned k = 63u - (unsigned)__builtin_clzll(d);
        w->tick_shift = k;
        w->tick_mul = (uint64_t)((((unsigned __int128)1 << (64 + k)) + d - 1) / d);
    }
}

void bl__twheel_insert(bl_twheel *w, bl_timer *t)
{
    place(w, t);
    w->count++;
}

void bl__twheel_cancel(bl_twheel *w, bl_timer *t)
{
    if (!is_queued(w, t)) return;
    detach(w, t);
    w->count--;
}

uint64_t bl__twheel_next(const bl_twheel *w)
{
    unsigned level, slot;
    uint64_t start;
    if (w->count == 0 || !earliest(w, &level, &slot, &start)) return UINT64_MAX;
    /* Only the current tick's slot can start at or before the last expire. */
    if (level == 0 && start == w->now_tick) return w->cur_min;
    return time_of(w, start);
}

size_t bl__twheel_expire(bl_twheel *w, uint64_t now_ns, void (*fire)(bl_timer *t, void *ctx),
                         void *ctx)
{
    uint64_t target = tick_of(w, now_ns);
    unsigned level, slot;
    uint64_t start;
    size_t fired = 0;

    if (target < w->now_tick) target = w->now_tick; /* Time went backwards: no progress. */
    while (earliest(w, &level, &slot, &start) && start <= target) {
        /* The current tick's slot holds nothing due yet: everything else is later. */
        if (level == 0 && start == target && start == w->now_tick && w->cur_min > now_ns) break;
        advance(w, start);
        if (level == 0)
            fired += run_tick(w, slot, now_ns, fire, ctx);
        else
            cascade(w, level, slot);
    }
    advance(w, target);
    return fired;
}
