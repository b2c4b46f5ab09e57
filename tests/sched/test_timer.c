/*
 * tests/sched/test_timer.c - the hierarchical timer wheel, driven by a fake
 * clock: every test passes explicit times to expire and never sleeps.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "sched/timer.h"

#define MS          1000000ull
#define SEC         (1000 * MS)
#define DAY         (86400 * SEC)
#define T0          (1000 * SEC) /* The fake clock's first reading. */
#define RANGE_TICKS (1ull << 36) /* Ticks the wheel covers: 64^6. */

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* A timer that records how and when it fired. */
typedef struct probe {
    bl_timer timer;    /* the wheel's link */
    unsigned fired;    /* times fired */
    uint64_t fired_at; /* now_ns of the expire that fired it */
    unsigned seq;      /* position in the firing order */
} probe;

/* What record() needs to know about the expire call in progress. */
typedef struct run {
    uint64_t now; /* now_ns passed to the expire in progress */
    unsigned seq; /* timers fired so far */
} run;

static void record(bl_timer *t, void *ctx)
{
    probe *p = container_of(t, probe, timer);
    run *r = ctx;
    cr_assert_leq(t->deadline, r->now, "fired early");
    cr_assert_eq(t->slot, BL_TIMER_UNLINKED, "fired while still queued");
    p->fired++;
    p->fired_at = r->now;
    p->seq = r->seq++;
}

/* Expires at now and checks that waking at next() will make progress. */
static size_t expire_at(bl_twheel *w, run *r, uint64_t now)
{
    r->now = now;
    size_t n = bl__twheel_expire(w, now, record, r);
    cr_assert_gt(bl__twheel_next(w), now, "next() must be later than the last expire");
    return n;
}

static void arm(bl_twheel *w, probe *p, uint64_t deadline)
{
    p->timer.deadline = deadline;
    bl__twheel_insert(w, &p->timer);
}

/* Wakes at next() until the wheel is empty, as a scheduler does. */
static void follow_next(bl_twheel *w, run *r, unsigned max_steps)
{
    for (unsigned steps = 0; w->count; steps++) {
        cr_assert_lt(steps, max_steps, "too many wake-ups");
        expire_at(w, r, bl__twheel_next(w));
    }
}

Test(timer, default_tick_and_empty_wheel)
{
    bl_twheel w;
    run r = {0};
    bl__twheel_init(&w, T0, 0);
    cr_assert_eq(w.tick_ns, MS);
    cr_assert_eq(bl__twheel_next(&w), UINT64_MAX);
    cr_assert_eq(expire_at(&w, &r, T0 + 5 * SEC), 0);
    cr_assert_eq(w.count, 0);
}

Test(timer, single_fires_at_deadline_not_before)
{
    bl_twheel w;
    run r = {0};
    probe p = {0};
    uint64_t d = T0 + 5 * MS + 123;

    bl__twheel_init(&w, T0, 0);
    arm(&w, &p, d);
    cr_assert_eq(w.count, 1);
    cr_assert_leq(bl__twheel_next(&w), d);
    cr_assert_eq(expire_at(&w, &r, T0 + 5 * MS), 0);
    cr_assert_eq(expire_at(&w, &r, d - 1), 0);
    cr_assert_eq(bl__twheel_next(&w), d, "next() is exact within the current tick");
    cr_assert_eq(p.fired, 0);
    cr_assert_eq(expire_at(&w, &r, d), 1);
    cr_assert_eq(p.fired, 1);
    cr_assert_eq(w.count, 0);
    cr_assert_eq(bl__twheel_next(&w), UINT64_MAX);
    cr_assert_eq(expire_at(&w, &r, d + SEC), 0, "fires once");
}

/* Deadlines on every level, and beyond the wheel's range, inserted out of order. */
static const uint64_t level_offsets[] = {
    400 * DAY + 1, 3 * MS + 1, 6 * 3600 * SEC + 11, 70 * MS + 7, 1500 * DAY + 5,
    5 * SEC + 3,   30 * DAY,   5 * 60 * SEC,        64 * MS,     0,
};
#define NLEVEL_OFFSETS (sizeof level_offsets / sizeof level_offsets[0])

/* Checks that probes with larger offsets fired later. */
static void assert_fired_in_deadline_order(const probe *p)
{
    for (size_t i = 0; i < NLEVEL_OFFSETS; i++) {
        cr_assert_eq(p[i].fired, 1);
        for (size_t j = 0; j < NLEVEL_OFFSETS; j++)
            if (level_offsets[i] < level_offsets[j]) cr_assert_lt(p[i].seq, p[j].seq);
    }
}

Test(timer, ordering_across_levels_in_one_expire)
{
    bl_twheel w;
    run r = {0};
    probe p[NLEVEL_OFFSETS] = {0};

    bl__twheel_init(&w, T0, 0);
    for (size_t i = 0; i < NLEVEL_OFFSETS; i++) arm(&w, &p[i], T0 + level_offsets[i]);
    cr_assert_eq(expire_at(&w, &r, T0 + 2000 * DAY), NLEVEL_OFFSETS);
    assert_fired_in_deadline_order(p);
    cr_assert_eq(w.count, 0);
}

Test(timer, waking_at_next_fires_each_timer_exactly_on_time)
{
    bl_twheel w;
    run r = {0};
    probe p[NLEVEL_OFFSETS] = {0};

    bl__twheel_init(&w, T0, 0);
    for (size_t i = 0; i < NLEVEL_OFFSETS; i++) arm(&w, &p[i], T0 + level_offsets[i]);
    follow_next(&w, &r, 400);
    assert_fired_in_deadline_order(p);
    for (size_t i = 0; i < NLEVEL_OFFSETS; i++) cr_assert_eq(p[i].fired_at, T0 + level_offsets[i]);
}

Test(timer, cancel_before_fire)
{
    bl_twheel w;
    run r = {0};
    probe a = {0}, b = {0}, c = {0};

    bl__twheel_init(&w, T0, 0);
    arm(&w, &a, T0 + 10 * MS);
    arm(&w, &b, T0 + 10 * MS);
    arm(&w, &c, T0 + 10 * SEC);
    bl__twheel_cancel(&w, &a.timer);
    bl__twheel_cancel(&w, &c.timer);
    cr_assert_eq(w.count, 1);
    cr_assert_eq(a.timer.slot, BL_TIMER_UNLINKED);
    cr_assert_eq(expire_at(&w, &r, T0 + DAY), 1);
    cr_assert(a.fired == 0 && b.fired == 1 && c.fired == 0);
    cr_assert_eq(bl__twheel_next(&w), UINT64_MAX);
}

Test(timer, cancel_of_unqueued_timer_is_noop)
{
    bl_twheel w;
    run r = {0};
    probe q = {0}, zeroed = {0}, unlinked = {0};

    /* q sits in level-0 slot 0, which a zeroed timer's slot field also names. */
    bl__twheel_init(&w, T0, 0);
    arm(&w, &q, T0 + 1);
    unlinked.timer.slot = BL_TIMER_UNLINKED;
    bl__twheel_cancel(&w, &zeroed.timer);
    bl__twheel_cancel(&w, &unlinked.timer);
    cr_assert_eq(w.count, 1);
    cr_assert_eq(expire_at(&w, &r, T0 + 1), 1);
    cr_assert_eq(q.fired, 1);
    bl__twheel_cancel(&w, &q.timer); /* Already fired. */
    cr_assert_eq(w.count, 0);
    arm(&w, &q, T0 + 5 * MS);
    bl__twheel_cancel(&w, &q.timer);
    bl__twheel_cancel(&w, &q.timer); /* Already cancelled. */
    cr_assert_eq(w.count, 0);
    cr_assert_eq(expire_at(&w, &r, T0 + SEC), 0);
}

/* A periodic timer: re-inserts itself period ns later until it has fired `times` times. */
typedef struct periodic {
    probe p;         /* the timer and its record */
    uint64_t period; /* ns between deadlines */
    unsigned times;  /* fires wanted */
    bl_twheel *w;    /* the wheel it lives in */
} periodic;

static void tick_periodic(bl_timer *t, void *ctx)
{
    periodic *pe = container_of(t, periodic, p.timer);
    record(t, ctx);
    if (pe->p.fired < pe->times) arm(pe->w, &pe->p, t->deadline + pe->period);
}

Test(timer, periodic_reinsert_from_fire)
{
    bl_twheel w;
    run r = {0};
    periodic pe = {.period = 10 * MS, .times = 5, .w = &w};

    bl__twheel_init(&w, T0, 0);
    arm(&w, &pe.p, T0 + 10 * MS);
    for (unsigned i = 1; i <= 3; i++) {
        r.now = T0 + i * 10 * MS;
        cr_assert_eq(bl__twheel_expire(&w, r.now, tick_periodic, &r), 1);
        cr_assert_eq(bl__twheel_next(&w), r.now + 10 * MS);
    }
    /* The two fires left are both due: the re-inserted timer fires again in this call. */
    r.now = T0 + SEC;
    cr_assert_eq(bl__twheel_expire(&w, r.now, tick_periodic, &r), 2);
    cr_assert_eq(pe.p.fired, 5);
    cr_assert_eq(w.count, 0);
}

/* One fire that cancels its siblings, queues a past and a not-yet-due timer, re-arms itself. */
typedef struct meddler {
    run r;            /* the record of fires */
    bl_twheel *w;     /* the wheel */
    probe *sibling;   /* three timers in one slot; the first to fire cancels the others */
    probe *late;      /* inserted with a past deadline: fires in the same call */
    probe *soon;      /* inserted due later in the current tick */
    unsigned meddled; /* fires that did the above */
} meddler;

static void meddle(bl_timer *t, void *ctx)
{
    meddler *m = ctx;
    record(t, &m->r);
    if (t == &m->late->timer || t == &m->soon->timer) return;
    if (m->meddled++) return;
    for (int i = 0; i < 3; i++) bl__twheel_cancel(m->w, &m->sibling[i].timer);
    arm(m->w, m->late, T0);
    arm(m->w, m->soon, m->r.now + 400);
    arm(m->w, container_of(t, probe, timer), m->r.now + MS);
}

Test(timer, fire_may_cancel_and_insert_in_its_own_slot)
{
    bl_twheel w;
    probe sib[3] = {0}, late = {0}, soon = {0};
    meddler m = {.w = &w, .sibling = sib, .late = &late, .soon = &soon};

    bl__twheel_init(&w, T0, 0);
    for (int i = 0; i < 3; i++) arm(&w, &sib[i], T0 + 2 * MS + 10 + i);
    m.r.now = T0 + 2 * MS + 500;
    cr_assert_eq(bl__twheel_expire(&w, m.r.now, meddle, &m), 2);
    cr_assert_eq(sib[0].fired + sib[1].fired + sib[2].fired, 1);
    cr_assert_eq(late.fired, 1);
    cr_assert_eq(w.count, 2);
    cr_assert_eq(bl__twheel_next(&w), soon.timer.deadline);
    m.r.now = soon.timer.deadline;
    cr_assert_eq(bl__twheel_expire(&w, m.r.now, meddle, &m), 1);
    m.r.now = T0 + SEC;
    cr_assert_eq(bl__twheel_expire(&w, m.r.now, meddle, &m), 1);
    cr_assert_eq(sib[0].fired + sib[1].fired + sib[2].fired, 2);
    cr_assert_eq(w.count, 0);
}

Test(timer, far_future_cascades_and_fires_once)
{
    static const uint64_t far[] = {3 * RANGE_TICKS * MS + 777, RANGE_TICKS * MS - 1,
                                   RANGE_TICKS * MS, (RANGE_TICKS - 1) * MS + 5};
    bl_twheel w;
    run r = {0};
    probe p[4] = {0};

    bl__twheel_init(&w, T0, 0);
    for (int i = 0; i < 4; i++) arm(&w, &p[i], T0 + far[i]);
    follow_next(&w, &r, 200);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(p[i].fired, 1);
        cr_assert_eq(p[i].fired_at, T0 + far[i]);
    }
}

Test(timer, far_future_across_a_top_level_boundary)
{
    bl_twheel w;
    run r = {0};
    probe p[4] = {0};
    uint64_t edge = T0 + (RANGE_TICKS - 1) * MS; /* The last tick of the top window. */

    bl__twheel_init(&w, T0, 0);
    expire_at(&w, &r, edge + 3);
    arm(&w, &p[0], edge + MS);
    arm(&w, &p[1], edge + 10);
    arm(&w, &p[2], edge + RANGE_TICKS * MS + 1);
    arm(&w, &p[3], edge + 5 * RANGE_TICKS * MS);
    follow_next(&w, &r, 200);
    for (int i = 0; i < 4; i++) cr_assert_eq(p[i].fired_at, p[i].timer.deadline);
}

Test(timer, nanosecond_ticks_and_the_end_of_time)
{
    bl_twheel w;
    run r = {0};
    probe p = {0}, end = {0};

    /* With 1 ns ticks the wheel spans only ~69 s: ten spans out means ten clamps. */
    bl__twheel_init(&w, T0, 1);
    arm(&w, &p, T0 + 10 * RANGE_TICKS + 3);
    follow_next(&w, &r, 200);
    cr_assert_eq(p.fired_at, p.timer.deadline);

    bl__twheel_init(&w, T0, 0);
    arm(&w, &end, UINT64_MAX);
    cr_assert_eq(expire_at(&w, &r, UINT64_MAX - 1), 0);
    cr_assert_eq(bl__twheel_next(&w), UINT64_MAX);
    r.now = UINT64_MAX;
    cr_assert_eq(bl__twheel_expire(&w, UINT64_MAX, record, &r), 1);
}

Test(timer, past_deadlines_fire_at_next_expire)
{
    bl_twheel w;
    run r = {0};
    probe p[6] = {0};
    uint64_t now = T0 + 100 * MS + 300;

    bl__twheel_init(&w, T0, 0);
    expire_at(&w, &r, now);
    arm(&w, &p[0], 0);
    arm(&w, &p[1], T0);
    arm(&w, &p[2], now - 1);
    arm(&w, &p[3], now);
    arm(&w, &p[4], now + 1);
    cr_assert_eq(bl__twheel_next(&w), 0);
    cr_assert_eq(expire_at(&w, &r, now), 4);
    cr_assert_eq(bl__twheel_next(&w), now + 1);

    /* The clock going backwards is no progress, but what is due still fires. */
    arm(&w, &p[5], now - 60 * MS);
    cr_assert_eq(expire_at(&w, &r, now - 50 * MS), 1);
    cr_assert_eq(p[5].fired, 1);
    cr_assert_eq(p[4].fired, 0);
    cr_assert_eq(expire_at(&w, &r, now + 1), 1);
    for (int i = 0; i < 6; i++) cr_assert_eq(p[i].fired, 1);
}

/* ------------------------------------------------------------------------ */
/* Randomised workload against a model                                      */
/* ------------------------------------------------------------------------ */

/* splitmix64: a seeded, replayable PRNG. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A delay whose bit length is uniform in [0, bits], to spread over all levels. */
static uint64_t rnd_delay(uint64_t *s, unsigned bits)
{
    unsigned len = rnd(s) % (bits + 1);
    return len ? rnd(s) >> (64 - len) : 0;
}

/* One timer of the workload and what the model knows about it. */
typedef struct rt {
    bl_timer timer; /* the wheel's link */
    unsigned epoch; /* expire calls completed when it was armed */
    unsigned seq;   /* armings so far: tells stale heap entries apart */
    int queued;     /* armed, and neither fired nor cancelled */
    int rearms;     /* re-armings left, from fire or after a cancel */
} rt;

/* A pending deadline in the model's heap; stale once seq no longer matches. */
typedef struct pend {
    uint64_t deadline; /* the arming's deadline */
    uint32_t idx;      /* which timer */
    uint32_t seq;      /* which arming of it */
} pend;

/* The model: which timers are queued, and the earliest pending deadline. */
typedef struct model {
    bl_twheel w;     /* the wheel under test */
    rt *t;           /* the timers */
    size_t n;        /* timers in t */
    pend *heap;      /* min-heap of armings, pruned lazily */
    size_t heap_len; /* entries in heap */
    size_t heap_cap; /* capacity of heap */
    uint64_t rng;    /* PRNG state */
    unsigned bits;   /* longest delay, in bits of ns */
    uint64_t clock;  /* the fake clock: never goes back, unlike the times passed */
    uint64_t now;    /* now_ns of the expire in progress, or of the last one */
    uint64_t prev;   /* now_ns of the expire before that */
    unsigned epoch;  /* expire calls completed */
    size_t queued;   /* timers the model believes queued */
    size_t fired;    /* fires in the expire in progress */
    size_t arms;     /* armings in total */
    size_t fires;    /* fires in total */
    size_t cancels;  /* successful cancels in total */
} model;

static void heap_push(model *m, pend e)
{
    cr_assert_lt(m->heap_len, m->heap_cap);
    size_t i = m->heap_len++;
    for (; i && m->heap[(i - 1) / 2].deadline > e.deadline; i = (i - 1) / 2)
        m->heap[i] = m->heap[(i - 1) / 2];
    m->heap[i] = e;
}

static void heap_pop(model *m)
{
    pend last = m->heap[--m->heap_len];
    size_t i = 0, c;
    while ((c = 2 * i + 1) < m->heap_len) {
        if (c + 1 < m->heap_len && m->heap[c + 1].deadline < m->heap[c].deadline) c++;
        if (last.deadline <= m->heap[c].deadline) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    m->heap[i] = last;
}

/* The earliest deadline of a queued timer, UINT64_MAX when none. */
static uint64_t model_min(model *m)
{
    while (m->heap_len) {
        pend *top = &m->heap[0];
        rt *x = &m->t[top->idx];
        if (x->queued && x->seq == top->seq) return top->deadline;
        heap_pop(m);
    }
    return UINT64_MAX;
}

static void model_arm(model *m, rt *x, uint64_t deadline)
{
    x->timer.deadline = deadline;
    x->epoch = m->epoch;
    x->seq++;
    x->queued = 1;
    m->queued++;
    m->arms++;
    heap_push(m, (pend){deadline, (uint32_t)(x - m->t), x->seq});
    bl__twheel_insert(&m->w, &x->timer);
}

/* A deadline near now: in the past one time in eight. */
static uint64_t near_deadline(model *m)
{
    uint64_t d = rnd_delay(&m->rng, m->bits);
    return rnd(&m->rng) % 8 ? m->now + d : m->now - d % (m->now / 2);
}

static void check_fire(bl_timer *t, void *ctx)
{
    model *m = ctx;
    rt *x = container_of(t, rt, timer);
    cr_assert(x->queued, "fired twice, or after a cancel");
    cr_assert_leq(t->deadline, m->now, "fired early");
    /* Queued at the end of the previous expire: it was not due then. */
    if (x->epoch < m->epoch) cr_assert_gt(t->deadline, m->prev, "fired late");
    x->queued = 0;
    m->queued--;
    m->fires++;
    m->fired++;
    if (x->rearms > 0 && rnd(&m->rng) % 2) {
        x->rearms--;
        model_arm(m, x, near_deadline(m));
    }
}

/* Checks the wheel against the model: count, and next() no later than any deadline. */
static void model_check(model *m)
{
    cr_assert_eq(m->w.count, m->queued);
    cr_assert_leq(bl__twheel_next(&m->w), model_min(m), "next() later than a deadline");
}

static void model_expire(model *m, uint64_t now)
{
    m->prev = m->now;
    m->now = now;
    m->fired = 0;
    cr_assert_eq(bl__twheel_expire(&m->w, now, check_fire, m), m->fired);
    m->epoch++;
    cr_assert_gt(bl__twheel_next(&m->w), now, "next() must be later than the last expire");
    model_check(m);
}

/* Random cancels and armings between two expire calls. */
static void model_meddle(model *m, size_t *fresh)
{
    uint64_t r = rnd(&m->rng);
    rt *x = &m->t[rnd(&m->rng) % m->n];
    /* Look a few times for a queued timer to cancel, so cancels stay frequent. */
    for (int i = 0; i < 4 && !x->queued; i++) x = &m->t[rnd(&m->rng) % m->n];
    if (r % 2 == 0 && x->queued) {
        bl__twheel_cancel(&m->w, &x->timer);
        x->queued = 0;
        m->queued--;
        m->cancels++;
    }
    if (r % 8 == 1 && !x->queued && x->seq && x->rearms > 0) {
        x->rearms--;
        model_arm(m, x, near_deadline(m));
    }
    if (r % 4 == 3 && *fresh < m->n) model_arm(m, &m->t[(*fresh)++], near_deadline(m));
}

/*
 * The next time the fake clock reads.  The wheel's next() drives most steps,
 * as it drives a scheduler; the others land before it, just after the last
 * expire, or up to a few times further than it.
 */
static uint64_t model_step(model *m, int *nothing_due)
{
    uint64_t next = bl__twheel_next(&m->w), r = rnd(&m->rng) % 16;
    *nothing_due = 0;
    if (next <= m->clock) return m->clock; /* Something is due already. */
    if (next == UINT64_MAX) return m->clock + rnd_delay(&m->rng, m->bits);
    uint64_t gap = next - m->clock;
    if (r < 7) return next;
    if (r < 9) {
        *nothing_due = 1; /* next() is no later than any deadline. */
        return next - 1 - rnd(&m->rng) % gap;
    }
    if (r < 13) return m->clock + rnd(&m->rng) % (2 * m->w.tick_ns);
    return m->clock + rnd(&m->rng) % (4 * gap);
}

static void run_workload(size_t n, uint64_t tick_ns, unsigned bits, uint64_t seed)
{
    model m = {.n = n, .rng = seed, .bits = bits, .clock = T0, .now = T0, .prev = T0};
    size_t fresh = n - n / 8, steps = 0;
    int nothing_due;

    m.t = calloc(n, sizeof *m.t);
    m.heap_cap = 4 * n;
    m.heap = malloc(m.heap_cap * sizeof *m.heap);
    cr_assert(m.t && m.heap);
    bl__twheel_init(&m.w, T0, tick_ns);
    for (size_t i = 0; i < n; i++) m.t[i].rearms = rnd(&m.rng) % 3;
    for (size_t i = 0; i < fresh; i++) model_arm(&m, &m.t[i], near_deadline(&m));
    model_check(&m);
    while (m.queued || fresh < n) {
        cr_assert_lt(++steps, 20 * n, "the workload does not finish");
        model_meddle(&m, &fresh);
        model_check(&m);
        if (rnd(&m.rng) % 64 == 0) { /* A time before the last one: no progress. */
            model_expire(&m, m.clock - rnd(&m.rng) % (3 * tick_ns));
            continue;
        }
        m.clock = model_step(&m, &nothing_due);
        model_expire(&m, m.clock);
        if (nothing_due) cr_assert_eq(m.fired, 0, "fired before next()");
    }
    cr_assert_eq(m.arms, m.fires + m.cancels);
    cr_assert_eq(m.w.count, 0);
    cr_assert_eq(bl__twheel_next(&m.w), UINT64_MAX);
    free(m.t);
    free(m.heap);
}

Test(timer, randomized_workload)
{
    /* Millisecond ticks, delays up to 2^58 ns (beyond the 2.2-year range). */
    run_workload(200000, MS, 58, 0x5eed);
    /* Nanosecond ticks: a 69-second range, so clamping and cascades dominate. */
    run_workload(50000, 1, 42, 0xbeef);
}

/* Context of the million-timer test: fires must come in tick order within a call. */
typedef struct million {
    uint64_t now;       /* now_ns of the expire in progress */
    uint64_t prev;      /* now_ns of the previous expire */
    uint64_t last_tick; /* deadline tick of the last timer fired in this call */
    unsigned *fired;    /* fires per timer */
    bl_timer *base;     /* the timer array, to index fired */
} million;

static void count_fire(bl_timer *t, void *ctx)
{
    million *m = ctx;
    uint64_t tick = (t->deadline - T0) / MS;
    cr_assert_leq(t->deadline, m->now, "fired early");
    cr_assert_gt(t->deadline, m->prev, "fired late");
    cr_assert_geq(tick, m->last_tick, "fired out of tick order");
    m->last_tick = tick;
    m->fired[t - m->base]++;
}

Test(timer, one_million_concurrent_timers)
{
    enum { N = 1000000 };
    bl_twheel w;
    uint64_t rng = 42, min = UINT64_MAX, max = 0;
    million m = {.now = T0, .prev = T0};
    bl_timer *t = calloc(N, sizeof *t);

    m.fired = calloc(N, sizeof *m.fired);
    m.base = t;
    cr_assert(t && m.fired);
    bl__twheel_init(&w, T0, 0);
    for (size_t i = 0; i < N; i++) {
        t[i].deadline = T0 + 1 + rnd_delay(&rng, 52);
        if (t[i].deadline < min) min = t[i].deadline;
        if (t[i].deadline > max) max = t[i].deadline;
        bl__twheel_insert(&w, &t[i]);
    }
    cr_assert_eq(w.count, N);
    cr_assert_leq(bl__twheel_next(&w), min);
    size_t total = 0;
    while (m.now < max) {
        m.prev = m.now;
        m.now += rnd_delay(&rng, 50);
        m.last_tick = 0;
        total += bl__twheel_expire(&w, m.now, count_fire, &m);
        cr_assert_gt(bl__twheel_next(&w), m.now);
        cr_assert_eq(w.count, N - total);
    }
    cr_assert_eq(total, N);
    for (size_t i = 0; i < N; i++) cr_assert_eq(m.fired[i], 1);
    free(t);
    free(m.fired);
}
