/*
 * otp/task.c - tasks (Elixir's Task) on handler processes.
 *
 * A task process is a handler process whose init runs the task function,
 * sends the result and stops.  Handler processes have a release hook that
 * the runtime calls once after the process is gone, however it died: that
 * is what lets the task's shared slot be recycled even when the task is
 * killed in the middle of its function.
 *
 * The slot (struct ctl) is the only memory the owner and the task share.
 * It holds the function and its argument for the task, the result being
 * built, and one atomic word, generation << 32 | state, on which the owner
 * (ignore) and the task (about to reply) race: whoever moves it away from
 * S_ACTIVE first decides whether the reply is sent.  Slots are type-stable:
 * they live in chunks that are never freed, and a recycled slot gets a new
 * generation, so a stale bl_task (a copy kept after the task was settled)
 * can only fail a compare-and-swap, never touch freed memory.
 *
 * Wire format (reserved tags, so user sends cannot forge them):
 *   REPLY  task -> owner, ref = the task's monitor reference, payload = result
 *   GO     owner -> task started by a spawner, payload = that reference
 * A task's reply always precedes its DOWN (messages from one sender before
 * its exit signals), which the receive loops below rely on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beamline.h"
#include "beamline/task.h"
#include "proc/otp.h"

#define TAG_GO (BL_TAG_SYSTEM | 0x31u)

/* bl_task.flags and ctl.flags */
#define F_LINK    1u /* linked to its owner */
#define F_NOREPLY 2u /* start / start_link: no owner to answer */
#define F_VIA     4u /* started by a spawner: waits for GO from its owner */
#define F_STREAM  8u /* runs sfn(arg, item) instead of fn(arg) */

/* Slot states (the low 32 bits of ctl.word). */
enum { S_FREE = 0, S_ALLOC, S_ACTIVE, S_REPLIED, S_IGNORED };

#define STATE_MASK 0xFFFFFFFFull
#define OUT_INLINE 64

struct bl_task_out {
    const void *data; /* the result: inl, heap, or NULL */
    size_t len;       /* its size */
    void *heap;       /* results over OUT_INLINE bytes; freed with the slot */
    size_t cap;       /* heap's size */
    _Alignas(16) unsigned char inl[OUT_INLINE];
};

typedef struct ctl {
    _Atomic uint64_t word; /* generation << 32 | state; owner and task race on it */
    _Atomic uint32_t next; /* free list: index + 1 of the next free slot (0: none) */
    uint32_t idx;          /* this slot's index */
    uint32_t flags;        /* F_* */
    bl_pid owner;          /* who gets the reply */
    bl_ref ref;            /* the reply's reference (via tasks learn it from GO) */
    union {
        bl_task_fn fn;         /* the task function ... */
        bl_task_stream_fn sfn; /* ... or a stream's (F_STREAM) */
    };
    void *arg;              /* fn's argument, or the stream's ctx */
    void *item;             /* F_STREAM: the item */
    bl_spawn_opts spawn;    /* for bl_task_child_start */
    struct bl_task_out out; /* the result being built */
} ctl;

/* ------------------------------------------------------------------------ */
/* The slot pool                                                            */
/* ------------------------------------------------------------------------ */

#define CHUNK_SHIFT 10
#define CHUNK       (1u << CHUNK_SHIFT)
#define MAX_CHUNKS  4096 /* 4M tasks alive at once */

static ctl *_Atomic chunks[MAX_CHUNKS];
/* Treiber stack of free slots: ABA tag << 32 | index + 1. */
static _Atomic uint64_t free_head;
/* Taken only to add a chunk (cold). */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nchunks;

static ctl *slot_at(uint32_t i)
{
    if ((i >> CHUNK_SHIFT) >= MAX_CHUNKS) return NULL;
    /* Acquire: pairs with the release that published the chunk. */
    ctl *c = atomic_load_explicit(&chunks[i >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[i & (CHUNK - 1)] : NULL;
}

/* Pushes the chain first..last (already linked through next) on the free list. */
static void push_free(uint32_t first, ctl *last)
{
    uint64_t h = atomic_load_explicit(&free_head, memory_order_relaxed), nh;
    do {
        /* Relaxed: the release CAS below publishes it. */
        atomic_store_explicit(&last->next, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | (uint64_t)(first + 1);
        /* Release: a popper that acquires the head sees the slot reset. */
    } while (!atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_release,
                                                    memory_order_relaxed));
}

static ctl *pop_free(void)
{
    /* Acquire: the slot's contents were published by the push. */
    uint64_t h = atomic_load_explicit(&free_head, memory_order_acquire);
    while ((uint32_t)h) {
        ctl *c = slot_at((uint32_t)h - 1);
        if (!c) return NULL; /* cannot happen: listed slots are published */
        /* May be stale if c was popped meanwhile; the tag then fails the CAS. */
        uint32_t nx = atomic_load_explicit(&c->next, memory_order_relaxed);
        uint64_t nh = (((h >> 32) + 1) << 32) | nx;
        if (atomic_compare_exchange_weak_explicit(&free_head, &h, nh, memory_order_acquire,
                                                  memory_order_acquire))
            return c;
    }
    return NULL;
}

/* A free slot (state S_FREE, its generation set), or NULL when out of memory. */
static ctl *slot_alloc(void)
{
    for (;;) {
        ctl *c = pop_free();
        if (c) return c;
        pthread_mutex_lock(&grow_lock);
        if ((uint32_t)atomic_load_explicit(&free_head, memory_order_acquire)) {
            pthread_mutex_unlock(&grow_lock);
            continue; /* someone else grew the pool */
        }
        ctl *chunk = nchunks < MAX_CHUNKS ? calloc(CHUNK, sizeof *chunk) : NULL;
        if (!chunk) {
            pthread_mutex_unlock(&grow_lock);
            return NULL;
        }
        uint32_t base = nchunks << CHUNK_SHIFT;
        for (uint32_t i = 0; i < CHUNK; i++) {
            chunk[i].idx = base + i;
            /* Generations start at 1: a zeroed bl_task never matches. */
            atomic_init(&chunk[i].word, (uint64_t)1 << 32);
            atomic_init(&chunk[i].next, i + 1 < CHUNK ? base + i + 2 : 0);
        }
        /* Release: slot_at readers see the initialized chunk. */
        atomic_store_explicit(&chunks[nchunks], chunk, memory_order_release);
        nchunks++;
        pthread_mutex_unlock(&grow_lock);
        /* Slot 0 is ours; the rest go on the free list. */
        push_free(base + 1, &chunk[CHUNK - 1]);
        return &chunk[0];
    }
}

/* Recycles c under a new generation.  Only its last user calls this. */
static void slot_free(ctl *c)
{
    free(c->out.heap);
    c->out.heap = NULL;
    c->out.cap = 0;
    c->out.data = NULL;
    c->out.len = 0;
    uint32_t gen = (uint32_t)(atomic_load_explicit(&c->word, memory_order_relaxed) >> 32) + 1;
    if (!gen) gen = 1;
    /* Release: an owner that sees the new generation also sees every
     * message the task sent (its reply).  Not its DOWN: the runtime calls
     * release before it sends the DOWNs. */
    atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_FREE, memory_order_release);
    push_free(c->idx, c);
}

static uint32_t slot_gen(ctl *c)
{
    return (uint32_t)(atomic_load_explicit(&c->word, memory_order_relaxed) >> 32);
}

static uint64_t handle_of(ctl *c, uint32_t gen)
{
    return (uint64_t)c->idx << 32 | gen;
}

/* The slot a handle names (it may have been recycled since: check the generation). */
static ctl *slot_of(uint64_t h)
{
    return (uint32_t)h ? slot_at((uint32_t)(h >> 32)) : NULL;
}

/* True while the task process of handle h has not been released. */
static bool slot_live(uint64_t h)
{
    ctl *c = slot_of(h);
    /* Acquire: pairs with slot_free's release (see there). */
    return c &&
           (uint32_t)(atomic_load_explicit(&c->word, memory_order_acquire) >> 32) == (uint32_t)h;
}

/* Moves the slot named by handle h from state `from` to `to`.  False if it has moved on. */
static bool slot_cas(uint64_t h, unsigned from, unsigned to, uint64_t *seen)
{
    ctl *c = slot_of(h);
    uint64_t gen = (uint64_t)(uint32_t)h << 32;
    uint64_t want = gen | from;
    if (!c) {
        if (seen) *seen = 0;
        return false;
    }
    /* Acq_rel: the winner's decision is the other side's to see. */
    bool ok = atomic_compare_exchange_strong_explicit(&c->word, &want, gen | to,
                                                      memory_order_acq_rel, memory_order_acquire);
    if (seen) *seen = want;
    return ok;
}

/* ------------------------------------------------------------------------ */
/* The task process                                                         */
/* ------------------------------------------------------------------------ */

int bl_task_return(bl_task_out *out, const void *data, size_t len)
{
    if (!out || (len && !data)) return -EINVAL;
    if (len <= OUT_INLINE) {
        if (len) memmove(out->inl, data, len);
        out->data = len ? out->inl : NULL;
        out->len = len;
        return 0;
    }
    if (len > out->cap) {
        void *p = malloc(len);
        if (!p) return -ENOMEM;
        memcpy(p, data, len);
        free(out->heap);
        out->heap = p;
        out->cap = len;
    } else {
        memmove(out->heap, data, len);
    }
    out->data = out->heap;
    out->len = len;
    return 0;
}

typedef struct go_key {
    bl_pid owner; /* GO comes from it */
    bl_ref mon;   /* or the DOWN of our monitor on it */
} go_key;

static bool match_go(const bl_msg *m, void *arg)
{
    const go_key *k = arg;
    return (m->tag == TAG_GO && m->from == k->owner) || (m->tag == BL_TAG_DOWN && m->ref == k->mon);
}

/* A task started by a spawner: waits for its owner's GO.  0, or -1 if the owner died. */
static int wait_go(ctl *c)
{
    go_key k = {c->owner, BL_REF_NONE};
    if (bl_monitor(c->owner, &k.mon) != 0) return -1;
    bl_msg *m = NULL;
    if (bl_recv(&m, match_go, &k, BL_INFINITY, 0) != 0) return -1;
    int rc = -1;
    if (m->tag == TAG_GO && m->len == sizeof(bl_ref)) {
        memcpy(&c->ref, m->data, sizeof(bl_ref));
        rc = 0;
    }
    bl_msg_free(m);
    if (rc == 0) bl_demonitor(k.mon, BL_DEMONITOR_FLUSH);
    return rc;
}

static int task_init(void *arg, void **state)
{
    (void)state; /* stays arg: release gets the slot */
    ctl *c = arg;
    if ((c->flags & F_VIA) && wait_go(c) != 0) {
        bl_reason r = BL_REASON(BL_SHUTDOWN);
        return bl_handler_exit(&r);
    }
    if (c->flags & F_STREAM)
        c->sfn(c->arg, c->item, &c->out);
    else
        c->fn(c->arg, &c->out);
    if (!(c->flags & F_NOREPLY)) {
        /* Only this process moves the word while it lives, apart from the
         * owner's ignore: claim the reply unless that came first. */
        uint64_t gen = atomic_load_explicit(&c->word, memory_order_relaxed) & ~STATE_MASK;
        uint64_t want = gen | S_ACTIVE;
        if (atomic_compare_exchange_strong_explicit(&c->word, &want, gen | S_REPLIED,
                                                    memory_order_acq_rel, memory_order_relaxed))
            bl__send_ex(c->owner, BL_TAG_TASK_REPLY, c->ref, c->out.data, c->out.len, 0);
    }
    return BL_STOP;
}

static int task_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return BL_STOP; /* never reached: init always ends the process */
}

/* After the process is gone, however it died: the slot is free again. */
static void task_release(void *state)
{
    slot_free(state);
}

static const bl_handler task_handler = {
    .init = task_init,
    .handle = task_handle,
    .release = task_release,
};

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct spawn_req {
    uint32_t flags;            /* F_LINK, F_STREAM */
    bl_task_fn fn;             /* or */
    bl_task_stream_fn sfn;     /* with F_STREAM */
    void *arg;                 /* fn's argument or the stream's ctx */
    void *item;                /* F_STREAM */
    const bl_spawn_opts *opts; /* may be NULL */
    bl_task_spawner spawner;   /* NULL: spawn here */
    void *spawner_ctx;
} spawn_req;

static ctl *slot_setup(const spawn_req *q, bl_pid owner)
{
    ctl *c = slot_alloc();
    if (!c) return NULL;
    c->flags = q->flags;
    c->owner = owner;
    c->ref = BL_REF_NONE;
    if (q->flags & F_STREAM)
        c->sfn = q->sfn;
    else
        c->fn = q->fn;
    c->arg = q->arg;
    c->item = q->item;
    c->spawn = q->opts ? *q->opts : (bl_spawn_opts){0};
    return c;
}

/* Starts a task for the caller: directly, or through q->spawner. */
static int task_spawn(bl_task *t, const spawn_req *q)
{
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    ctl *c = slot_setup(q, self);
    if (!c) return -ENOMEM;
    uint32_t gen = slot_gen(c);
    uint64_t h = handle_of(c, gen);
    bool link = q->flags & F_LINK;
    bl_pid pid = BL_PID_NONE;
    int rc;
    if (!q->spawner) {
        c->ref = bl_make_ref();
        /* Relaxed: the spawn publishes the slot to the task. */
        atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_ACTIVE, memory_order_relaxed);
        rc = bl__spawn_handler_monitor(&pid, &task_handler, c, q->opts, link, c->ref);
        if (rc) {
            slot_free(c);
            return rc;
        }
        *t = (bl_task){pid, c->ref, self, h, link ? F_LINK : 0};
        return 0;
    }
    c->flags |= F_VIA;
    atomic_store_explicit(&c->word, (uint64_t)gen << 32 | S_ALLOC, memory_order_release);
    rc = q->spawner(q->spawner_ctx, bl_task_child_start, (void *)(uintptr_t)h, &pid);
    if (rc != 0 || !pid) {
        /* Take the slot back unless the task process exists (it then owns it). */
        if (slot_cas(h, S_ALLOC, S_IGNORED, NULL)) slot_free(c);
        return rc < 0 ? rc : -ECANCELED;
    }
    /* The spawner returned without calling start: nothing runs. */
    if (slot_cas(h, S_ALLOC, S_IGNORED, NULL)) {
        slot_free(c);
        return -ECANCELED;
    }
    bl_ref ref;
    rc = bl_monitor(pid, &ref);
    if (rc == 0 && link) rc = bl_link(pid);
    if (rc == 0) rc = bl__send_ex(pid, TAG_GO, BL_REF_NONE, &ref, sizeof ref, 0);
    if (rc) {
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(pid, &kill);
        return rc;
    }
    *t = (bl_task){pid, ref, self, h, link ? F_LINK : 0};
    return 0;
}

int bl_task_child_start(void *start_arg, bl_pid *pid)
{
    uint64_t h = (uintptr_t)start_arg;
    ctl *c = slot_of(h);
    if (!c) return -EINVAL;
    if (!bl_self()) return -EPERM;
    uint64_t seen;
    if (!slot_cas(h, S_ALLOC, S_ACTIVE, &seen)) {
        bool same = (uint32_t)(seen >> 32) == (uint32_t)h;
        return same && (seen & STATE_MASK) == S_IGNORED ? -ECANCELED : -EINVAL;
    }
    /* Linked to the caller (the supervisor) from before it runs: the
     * monitor comes with the only internal spawn that links, and goes. */
    bl_ref mon = bl_make_ref();
    bl_pid p;
    int rc = bl__spawn_handler_monitor(&p, &task_handler, c, &c->spawn, true, mon);
    if (rc) {
        /* Back to the owner, which frees it when the spawner fails. */
        atomic_store_explicit(&c->word, (h & STATE_MASK) << 32 | S_ALLOC, memory_order_release);
        return rc;
    }
    bl_demonitor(mon, BL_DEMONITOR_FLUSH);
    if (pid) *pid = p;
    return 0;
}

int bl_task_async(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!t || !fn) return -EINVAL;
    spawn_req q = {.flags = F_LINK, .fn = fn, .arg = arg, .opts = opts};
    return task_spawn(t, &q);
}

int bl_task_async_nolink(bl_task *t, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    if (!t || !fn) return -EINVAL;
    spawn_req q = {.fn = fn, .arg = arg, .opts = opts};
    return task_spawn(t, &q);
}

int bl_task_async_via(bl_task *t, bl_task_spawner spawner, void *ctx, bl_task_fn fn, void *arg,
                      bool link)
{
    if (!t || !spawner || !fn) return -EINVAL;
    spawn_req q = {
        .flags = link ? F_LINK : 0, .fn = fn, .arg = arg, .spawner = spawner, .spawner_ctx = ctx};
    return task_spawn(t, &q);
}

static int start_task(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts, bool link)
{
    if (!fn) return -EINVAL;
    if (link && !bl_self()) return -EPERM;
    spawn_req q = {.flags = F_NOREPLY, .fn = fn, .arg = arg, .opts = opts};
    ctl *c = slot_setup(&q, BL_PID_NONE);
    if (!c) return -ENOMEM;
    atomic_store_explicit(&c->word, (uint64_t)slot_gen(c) << 32 | S_ACTIVE, memory_order_relaxed);
    bl_pid p;
    int rc;
    if (link) {
        bl_ref mon = bl_make_ref();
        rc = bl__spawn_handler_monitor(&p, &task_handler, c, opts, true, mon);
        if (rc == 0) bl_demonitor(mon, BL_DEMONITOR_FLUSH);
    } else {
        rc = bl_spawn_handler(&p, &task_handler, c, opts);
    }
    if (rc) {
        slot_free(c);
        return rc;
    }
    if (pid) *pid = p;
    return 0;
}

int bl_task_start(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    return start_task(pid, fn, arg, opts, false);
}

int bl_task_start_link(bl_pid *pid, bl_task_fn fn, void *arg, const bl_spawn_opts *opts)
{
    return start_task(pid, fn, arg, opts, true);
}

/* ------------------------------------------------------------------------ */
/* Receiving                                                                */
/* ------------------------------------------------------------------------ */

#define NO_DEADLINE UINT64_MAX

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

static uint64_t deadline_in(int64_t ms)
{
    return ms == BL_INFINITY ? NO_DEADLINE : now_ns() + (uint64_t)ms * 1000000u;
}

/* The receive timeout left until deadline, rounded up to whole milliseconds. */
static int64_t ms_left(uint64_t deadline)
{
    if (deadline == NO_DEADLINE) return BL_INFINITY;
    uint64_t now = now_ns();
    return now >= deadline ? 0 : (int64_t)((deadline - now + 999999u) / 1000000u);
}

/* The reply or the DOWN of the task with this reference. */
static bool match_task(const bl_msg *m, void *arg)
{
    return m->ref == *(const bl_ref *)arg && (m->tag == BL_TAG_TASK_REPLY || m->tag == BL_TAG_DOWN);
}

static bool match_reply(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_TASK_REPLY && m->ref == *(const bl_ref *)arg;
}

static bool match_down(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_DOWN && m->ref == *(const bl_ref *)arg;
}

static bool match_exit_from(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_EXIT && m->from == *(const bl_pid *)arg;
}

/*
 * Waits for the reply or the DOWN of task t, which is past the point where
 * it could go on running for long: it claimed its reply, or it is dead.
 * Returns true with *m, false once its slot is released with neither in
 * the mailbox.  Its reply, if it sent one, is there by then; its DOWN may
 * still be on its way (the caller then drops it with the monitor), or was
 * taken already if t is a copy of a task settled through another copy.
 * That is the race Elixir's `after 0` receives have too, and it bounds the
 * wait by the task's death.
 */
static bool await_end(const bl_task *t, bl_msg **m)
{
    for (;;) {
        bool gone = !slot_live(t->ctl);
        /* The slot is released just before the DOWNs go out (the handler's
         * release hook), so a gone task's DOWN may still be on its way:
         * give it time to land before concluding that none is coming. */
        if (bl_recv(m, match_task, (void *)&t->ref, gone ? 1000 : 1, 0) == 0) return true;
        if (gone) return false;
    }
}

/* True when the calling process traps exits. */
static bool trapping(void)
{
    bool on = bl_trap_exit(true);
    bl_trap_exit(on);
    return on;
}

/*
 * A set of task references (open addressing, linear probing, deletion by
 * backward shift), so that a receive waiting for many tasks tests each
 * message in constant time.
 */
#define TAB_NONE UINT32_MAX

typedef struct reftab {
    uint32_t mask;  /* capacity - 1 */
    bl_ref *keys;   /* BL_REF_NONE: empty */
    uint32_t *vals; /* what each key stands for */
} reftab;

static int tab_init(reftab *t, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) cap <<= 1;
    t->keys = calloc(cap, sizeof *t->keys);
    t->vals = malloc(cap * sizeof *t->vals);
    if (!t->keys || !t->vals) {
        free(t->keys);
        free(t->vals);
        return -ENOMEM;
    }
    t->mask = (uint32_t)(cap - 1);
    return 0;
}

static void tab_fini(reftab *t)
{
    free(t->keys);
    free(t->vals);
}

static uint32_t tab_home(const reftab *t, bl_ref r)
{
    return (uint32_t)((r * 0x9E3779B97F4A7C15ull) >> 32) & t->mask;
}

static void tab_put(reftab *t, bl_ref r, uint32_t v)
{
    uint32_t i = tab_home(t, r);
    while (t->keys[i]) i = (i + 1) & t->mask;
    t->keys[i] = r;
    t->vals[i] = v;
}

static uint32_t tab_find(const reftab *t, bl_ref r)
{
    for (uint32_t i = tab_home(t, r); t->keys[i]; i = (i + 1) & t->mask)
        if (t->keys[i] == r) return i;
    return TAB_NONE;
}

static uint32_t tab_get(const reftab *t, bl_ref r)
{
    uint32_t i = tab_find(t, r);
    return i == TAB_NONE ? TAB_NONE : t->vals[i];
}

static void tab_del(reftab *t, bl_ref r)
{
    uint32_t i = tab_find(t, r);
    if (i == TAB_NONE) return;
    t->keys[i] = BL_REF_NONE;
    for (uint32_t j = (i + 1) & t->mask; t->keys[j]; j = (j + 1) & t->mask) {
        uint32_t k = tab_home(t, t->keys[j]);
        /* Entry j stays unless the hole at i lies between its home k and j. */
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (stays) continue;
        t->keys[i] = t->keys[j];
        t->vals[i] = t->vals[j];
        t->keys[j] = BL_REF_NONE;
        i = j;
    }
}

static bool match_tab(const bl_msg *m, void *arg)
{
    return (m->tag == BL_TAG_TASK_REPLY || m->tag == BL_TAG_DOWN) &&
           tab_find(arg, m->ref) != TAB_NONE;
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

static void res_nil(bl_task_result *r, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_NIL, .index = index};
}

static void res_ok(bl_task_result *r, bl_msg *m, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_OK,
                          .data = m->len ? m->data : NULL,
                          .len = m->len,
                          .index = index,
                          .msg = m};
}

/* An EXIT result from a DOWN message (kept: the reason's detail lives in it). */
static void res_exit(bl_task_result *r, bl_msg *down, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_EXIT, .index = index, .msg = down};
    if (bl_msg_reason(down, &r->reason) != 0) r->reason = BL_REASON(BL_NOPROC);
}

void bl_task_result_free(bl_task_result *r)
{
    if (!r) return;
    bl_msg_free(r->msg);
    res_nil(r, r->index);
}

static void spend(bl_task *t)
{
    t->ref = BL_REF_NONE;
}

/*
 * The reply or DOWN m of task t settles it: OK (the DOWN that follows is
 * flushed with the monitor) or EXIT.  Returns the status.
 */
static int settle(bl_task *t, bl_msg *m, bl_task_result *res, size_t index)
{
    int st;
    if (m->tag == BL_TAG_TASK_REPLY) {
        bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
        res_ok(res, m, index);
        st = BL_TASK_OK;
    } else {
        res_exit(res, m, index);
        st = BL_TASK_EXIT;
    }
    spend(t);
    return st;
}

/* Checks that the caller may collect t. */
static int check(const bl_task *t)
{
    if (!t) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    if (t->ref == BL_REF_NONE) return -EINVAL;
    return t->owner == self ? 0 : -EPERM;
}

/* ------------------------------------------------------------------------ */
/* One task                                                                 */
/* ------------------------------------------------------------------------ */

static int ignore_one(bl_task *t, bl_task_result *res, size_t index)
{
    if (t->flags & F_LINK) bl_unlink(t->pid);
    bl_msg *m = NULL;
    /* Its answer may be here already: ignore then returns it. */
    if (bl_recv(&m, match_task, &t->ref, 0, 0) == 0) return settle(t, m, res, index);
    uint64_t seen;
    bool won = slot_cas(t->ctl, S_ACTIVE, S_IGNORED, &seen);
    /* Won: the task will not reply.  Already IGNORED: a copy of t was. */
    bool ignored = won || (seen == ((t->ctl & STATE_MASK) << 32 | S_IGNORED));
    /* Otherwise it claimed the reply (REPLIED), or has died and its slot
     * moved on: the reply or the DOWN is on its way, under the monitor. */
    if (!ignored && await_end(t, &m)) return settle(t, m, res, index);
    bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
    spend(t);
    res_nil(res, index);
    return BL_TASK_NIL;
}

/*
 * Elixir's shutdown: a second monitor (with the receive marker set first,
 * its DOWN is found without scanning the mailbox), unlink, exit signal,
 * wait, kill on timeout.
 */
static int shutdown_one(bl_task *t, int64_t timeout, bl_task_result *res, size_t index)
{
    bool brutal = timeout == BL_TASK_BRUTAL_KILL;
    bl_ref mon;
    bl_recv_mark();
    int rc = bl_monitor(t->pid, &mon);
    if (rc) return rc;
    if (t->flags & F_LINK) bl_unlink(t->pid);
    bl_reason why = BL_REASON(brutal ? BL_KILL : BL_SHUTDOWN);
    bl_exit_pid(t->pid, &why);
    bl_msg *d = NULL;
    bool killed = brutal;
    rc = bl_recv(&d, match_down, &mon, brutal ? BL_INFINITY : timeout, BL_RECV_MARKED);
    if (rc) {
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(t->pid, &kill);
        killed = true;
        bl_recv(&d, match_down, &mon, BL_INFINITY, BL_RECV_MARKED);
    }
    bl_reason r;
    if (bl_msg_reason(d, &r) != 0) r = BL_REASON(BL_NOPROC);
    if (r.kind == BL_NOPROC) {
        /* It was gone before we looked: its own DOWN (or its reply, which
         * comes first) says how it ended.  If neither is here when its slot
         * is released, Elixir's {:exit, :noproc}. */
        bl_msg_free(d);
        if (!await_end(t, &d)) {
            bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
            spend(t);
            *res = (bl_task_result){
                .status = BL_TASK_EXIT, .reason = BL_REASON(BL_NOPROC), .index = index};
            return BL_TASK_EXIT;
        }
        if (d->tag == BL_TAG_TASK_REPLY) return settle(t, d, res, index);
        if (bl_msg_reason(d, &r) != 0) r = BL_REASON(BL_NOPROC);
    } else {
        /* Its own DOWN, queued or on its way, goes with the monitor; its
         * reply, if any, came before the DOWN we got. */
        bl_demonitor(t->ref, BL_DEMONITOR_FLUSH);
        bl_msg *rep = NULL;
        if (bl_recv(&rep, match_reply, &t->ref, 0, 0) == 0) {
            bl_msg_free(d);
            res_ok(res, rep, index);
            spend(t);
            return BL_TASK_OK;
        }
    }
    spend(t);
    bool ours =
        (r.kind == BL_SHUTDOWN && !r.detail_len && !brutal) || (r.kind == BL_KILLED && killed);
    if (ours) {
        bl_msg_free(d);
        res_nil(res, index);
        return BL_TASK_NIL;
    }
    res_exit(res, d, index);
    return BL_TASK_EXIT;
}

int bl_task_await(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    if (!res) return -EINVAL;
    int rc = check(t);
    if (rc) return rc;
    if (!timeout_ok(timeout_ms)) return -EINVAL;
    res_nil(res, 0);
    bl_msg *m = NULL;
    rc = bl_recv(&m, match_task, &t->ref, timeout_ms, 0);
    int st;
    if (rc == 0)
        st = settle(t, m, res, 0);
    else if (t->flags & F_LINK)
        st = shutdown_one(t, BL_TASK_BRUTAL_KILL, res, 0);
    else
        st = ignore_one(t, res, 0);
    if (st < 0) return st;
    return st == BL_TASK_OK ? 0 : st == BL_TASK_EXIT ? -ECONNRESET : -ETIMEDOUT;
}

int bl_task_yield(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    if (!res) return -EINVAL;
    int rc = check(t);
    if (rc) return rc;
    if (!timeout_ok(timeout_ms)) return -EINVAL;
    res_nil(res, 0);
    bl_msg *m = NULL;
    if (bl_recv(&m, match_task, &t->ref, timeout_ms, 0) != 0) return BL_TASK_NIL;
    return settle(t, m, res, 0);
}

int bl_task_ignore(bl_task *t, bl_task_result *res)
{
    int rc = check(t);
    if (rc) return rc;
    bl_task_result local;
    int st = ignore_one(t, res ? res : &local, 0);
    if (!res) bl_task_result_free(&local);
    return st;
}

int bl_task_shutdown(bl_task *t, int64_t timeout_ms, bl_task_result *res)
{
    int rc = check(t);
    if (rc) return rc;
    if (!timeout_ok(timeout_ms) && timeout_ms != BL_TASK_BRUTAL_KILL) return -EINVAL;
    bl_task_result local;
    int st = shutdown_one(t, timeout_ms, res ? res : &local, 0);
    if (!res && st >= 0) bl_task_result_free(&local);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Many tasks                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Kills the k tasks ts[i] at once (unlinked first) and waits for every one
 * to die.  For handles only this module holds (a stream's): it waits for
 * each task's own reply or DOWN, which a copy settled elsewhere would never
 * get.  rs[i] must be NIL or OK on entry; it ends OK if the task's reply
 * came, NIL if it was killed, EXIT if it died of something else.  Every
 * task is spent.
 */
static void kill_many(bl_task **ts, bl_task_result **rs, size_t k)
{
    reftab tab;
    if (k == 0) return;
    if (tab_init(&tab, k) != 0) {
        /* Out of memory: one at a time. */
        for (size_t i = 0; i < k; i++) {
            bl_task_result r;
            if (shutdown_one(ts[i], BL_TASK_BRUTAL_KILL, &r, rs[i]->index) < 0) continue;
            if (rs[i]->status == BL_TASK_OK)
                bl_task_result_free(&r);
            else
                *rs[i] = r;
        }
        return;
    }
    bl_reason kill = BL_REASON(BL_KILL);
    for (size_t i = 0; i < k; i++) {
        tab_put(&tab, ts[i]->ref, (uint32_t)i);
        if (ts[i]->flags & F_LINK) bl_unlink(ts[i]->pid);
        bl_exit_pid(ts[i]->pid, &kill);
    }
    for (size_t left = k; left;) {
        bl_msg *m = NULL;
        if (bl_recv(&m, match_tab, &tab, BL_INFINITY, 0) != 0) break;
        uint32_t i = tab_get(&tab, m->ref);
        bl_task_result *r = rs[i];
        if (m->tag == BL_TAG_TASK_REPLY) {
            res_ok(r, m, r->index);
            continue; /* its DOWN follows */
        }
        tab_del(&tab, m->ref);
        spend(ts[i]);
        left--;
        bl_reason why;
        if (r->status == BL_TASK_OK || (bl_msg_reason(m, &why) == 0 && why.kind == BL_KILLED)) {
            bl_msg_free(m);
            continue;
        }
        res_exit(r, m, r->index);
    }
    tab_fini(&tab);
}

/*
 * Shuts down (brutal_kill) the tasks of the array not settled yet, or only
 * the linked ones when ignore_unlinked (the others are ignored).  The kill
 * signals all go out first, so the tasks die together; each is then
 * collected as bl_task_shutdown does, into res[i].
 */
static void shutdown_pending(bl_task *tasks, bl_task_result *res, size_t n, bool ignore_unlinked)
{
    bl_reason kill = BL_REASON(BL_KILL);
    for (size_t i = 0; i < n; i++) {
        bl_task *t = &tasks[i];
        if (t->ref == BL_REF_NONE || (ignore_unlinked && !(t->flags & F_LINK))) continue;
        if (t->flags & F_LINK) bl_unlink(t->pid);
        bl_exit_pid(t->pid, &kill);
    }
    for (size_t i = 0; i < n; i++) {
        bl_task *t = &tasks[i];
        if (t->ref == BL_REF_NONE) continue;
        if (ignore_unlinked && !(t->flags & F_LINK))
            ignore_one(t, &res[i], i);
        else
            shutdown_one(t, BL_TASK_BRUTAL_KILL, &res[i], i);
    }
}

/* Checks a task array for the many-task calls and indexes it by reference. */
static int check_many(bl_task *tasks, size_t n, int64_t timeout, bl_task_result *res, reftab *tab)
{
    if (n && (!tasks || !res)) return -EINVAL;
    if (!bl_self()) return -EPERM;
    if (!timeout_ok(timeout)) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check(&tasks[i]);
        if (rc) return rc;
    }
    if (tab_init(tab, n) != 0) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (tab_find(tab, tasks[i].ref) != TAB_NONE) {
            tab_fini(tab);
            return -EINVAL; /* the same task twice */
        }
        tab_put(tab, tasks[i].ref, (uint32_t)i);
        res_nil(&res[i], i);
    }
    return 0;
}

/* Settles whichever listed task m is about, and unlists it.  Returns its index. */
static size_t settle_listed(bl_task *tasks, bl_task_result *res, reftab *tab, bl_msg *m)
{
    uint32_t i = tab_get(tab, m->ref);
    tab_del(tab, m->ref);
    settle(&tasks[i], m, &res[i], i);
    return i;
}

int bl_task_yield_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res,
                       const bl_task_yield_opts *opts)
{
    bl_task_on_timeout on = opts ? opts->on_timeout : BL_TASK_ON_TIMEOUT_DEFAULT;
    if (on > BL_TASK_ON_TIMEOUT_KILL_TASK) return -EINVAL;
    reftab tab;
    int rc = check_many(tasks, n, timeout_ms, res, &tab);
    if (rc) return rc;
    size_t limit = opts && opts->limit && opts->limit < n ? opts->limit : n;
    uint64_t deadline = deadline_in(timeout_ms);
    size_t got = 0;
    while (got < limit) {
        bl_msg *m = NULL;
        if (bl_recv(&m, match_tab, &tab, ms_left(deadline), 0) != 0) break;
        settle_listed(tasks, res, &tab, m);
        got++;
    }
    tab_fini(&tab);
    if (got == limit || on == BL_TASK_ON_TIMEOUT_DEFAULT || on == BL_TASK_ON_TIMEOUT_NOTHING)
        return (int)got;
    if (on == BL_TASK_ON_TIMEOUT_IGNORE) {
        for (size_t i = 0; i < n; i++)
            if (res[i].status == BL_TASK_NIL && tasks[i].ref != BL_REF_NONE &&
                ignore_one(&tasks[i], &res[i], i) != BL_TASK_NIL)
                got++;
        return (int)got;
    }
    shutdown_pending(tasks, res, n, false);
    got = 0;
    for (size_t i = 0; i < n; i++) got += res[i].status != BL_TASK_NIL;
    return (int)got;
}

int bl_task_await_many(bl_task *tasks, size_t n, int64_t timeout_ms, bl_task_result *res)
{
    reftab tab;
    int rc = check_many(tasks, n, timeout_ms, res, &tab);
    if (rc) return rc;
    uint64_t deadline = deadline_in(timeout_ms);
    int fail = 0;
    for (size_t pending = n; pending; pending--) {
        bl_msg *m = NULL;
        if (bl_recv(&m, match_tab, &tab, ms_left(deadline), 0) != 0) {
            fail = -ETIMEDOUT;
            break;
        }
        size_t i = settle_listed(tasks, res, &tab, m);
        if (res[i].status == BL_TASK_EXIT) {
            fail = -ECONNRESET;
            break;
        }
    }
    tab_fini(&tab);
    if (!fail) return 0;
    /* As the exit of Elixir's caller would: linked tasks die, unlinked ones run on. */
    shutdown_pending(tasks, res, n, true);
    return fail;
}

/* ------------------------------------------------------------------------ */
/* async_stream                                                             */
/* ------------------------------------------------------------------------ */

enum { E_FREE = 0, E_RUNNING, E_REPLIED, E_DONE };

typedef struct entry {
    bl_task t;          /* the item's task */
    size_t index;       /* the item's index */
    uint64_t deadline;  /* when it times out (ns), NO_DEADLINE for none */
    int state;          /* E_*: running, replied (waiting for its DOWN), done */
    bl_task_result res; /* its result once replied or done */
} entry;

struct bl_task_stream {
    bl_pid owner;                  /* the consumer */
    bl_task_stream_fn fn;          /* what each task runs */
    void *ctx;                     /* fn's shared context */
    const unsigned char *items;    /* array input, or NULL */
    size_t n;                      /* its length */
    bl_task_gen_fn gen;            /* generator input, or NULL */
    void *gstate;                  /* its state */
    bool exhausted;                /* the generator said no more */
    size_t item_size;              /* bytes per item */
    unsigned char *gbuf;           /* generator items, item_size per entry */
    size_t next_index;             /* the next item to start */
    size_t next_emit;              /* ordered: the next item to deliver */
    unsigned max;                  /* max_concurrency */
    unsigned outstanding;          /* started and not yet delivered (<= max) */
    bool unordered;                /* completion order */
    int64_t timeout;               /* per item, ms or BL_INFINITY */
    bl_task_on_timeout on_timeout; /* EXIT or KILL_TASK */
    spawn_req req;                 /* how tasks start (flags, fn, ctx, spawner) */
    bl_spawn_opts spawn;           /* req.opts points here */
    int err;                       /* sticky error */
    entry *e;                      /* max entries; ordered: item i uses entry i % max */
    uint32_t *free_ids;            /* unordered: free entries */
    unsigned nfree;
    uint32_t *doneq; /* unordered: done entries in completion order */
    unsigned dq_head, dq_len;
    reftab tab; /* task reference -> entry */
};

static void stream_free(bl_task_stream *s)
{
    tab_fini(&s->tab);
    free(s->e);
    free(s->free_ids);
    free(s->doneq);
    free(s->gbuf);
    free(s);
}

static int stream_open(bl_task_stream **out, const void *items, size_t n, bl_task_gen_fn gen,
                       void *gstate, size_t item_size, bl_task_stream_fn fn, void *ctx,
                       const bl_task_stream_opts *opts)
{
    static const bl_task_stream_opts none;
    if (!opts) opts = &none;
    if (!out || !fn || !item_size) return -EINVAL;
    if (opts->timeout < 0 && opts->timeout != BL_INFINITY) return -EINVAL;
    bl_task_on_timeout on = opts->on_timeout ? opts->on_timeout : BL_TASK_ON_TIMEOUT_EXIT;
    if (on != BL_TASK_ON_TIMEOUT_EXIT && on != BL_TASK_ON_TIMEOUT_KILL_TASK) return -EINVAL;
    bl_pid self = bl_self();
    if (!self) return -EPERM;
    unsigned max = opts->max_concurrency ? opts->max_concurrency : bl_schedulers();
    if (!max) max = 1;
    if (max > (1u << 24)) return -EINVAL;
    bl_task_stream *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->e = calloc(max, sizeof *s->e);
    s->free_ids = malloc(max * sizeof *s->free_ids);
    s->doneq = malloc(max * sizeof *s->doneq);
    s->gbuf = gen ? malloc(max * item_size) : NULL;
    if (!s->e || !s->free_ids || !s->doneq || (gen && !s->gbuf) || tab_init(&s->tab, max)) {
        free(s->e);
        free(s->free_ids);
        free(s->doneq);
        free(s->gbuf);
        free(s);
        return -ENOMEM;
    }
    s->owner = self;
    s->fn = fn;
    s->ctx = ctx;
    s->items = items;
    s->n = n;
    s->gen = gen;
    s->gstate = gstate;
    s->item_size = item_size;
    s->max = max;
    s->unordered = opts->unordered;
    s->timeout = opts->timeout ? opts->timeout : BL_TASK_DEFAULT_TIMEOUT;
    s->on_timeout = on;
    s->spawn = opts->spawn;
    s->req = (spawn_req){.flags = F_STREAM | (opts->nolink ? 0 : F_LINK),
                         .sfn = fn,
                         .arg = ctx,
                         .opts = &s->spawn,
                         .spawner = opts->spawner,
                         .spawner_ctx = opts->spawner_ctx};
    for (unsigned i = 0; i < max; i++) s->free_ids[i] = max - 1 - i;
    s->nfree = max;
    *out = s;
    return 0;
}

int bl_task_stream_open(bl_task_stream **s, const void *items, size_t n, size_t item_size,
                        bl_task_stream_fn fn, void *ctx, const bl_task_stream_opts *opts)
{
    if (n && !items) return -EINVAL;
    return stream_open(s, items, n, NULL, NULL, item_size, fn, ctx, opts);
}

int bl_task_stream_open_gen(bl_task_stream **s, bl_task_gen_fn gen, void *state, size_t item_size,
                            bl_task_stream_fn fn, void *ctx, const bl_task_stream_opts *opts)
{
    if (!gen) return -EINVAL;
    return stream_open(s, NULL, 0, gen, state, item_size, fn, ctx, opts);
}

/* Starts the next item's task.  1 started, 0 no more items, or a negative errno. */
static int stream_spawn(bl_task_stream *s)
{
    size_t index = s->next_index;
    if (!s->gen && index >= s->n) return 0;
    if (s->gen && s->exhausted) return 0;
    uint32_t id = s->unordered ? s->free_ids[s->nfree - 1] : (uint32_t)(index % s->max);
    void *item;
    if (s->gen) {
        item = s->gbuf + (size_t)id * s->item_size;
        int rc = s->gen(s->gstate, item);
        if (rc <= 0) {
            s->exhausted = true;
            return rc;
        }
    } else {
        item = (void *)(s->items + index * s->item_size);
    }
    entry *e = &s->e[id];
    s->req.item = item;
    int rc = task_spawn(&e->t, &s->req);
    if (rc) return rc;
    if (s->unordered) s->nfree--;
    e->index = index;
    e->state = E_RUNNING;
    e->deadline = deadline_in(s->timeout);
    res_nil(&e->res, index);
    tab_put(&s->tab, e->t.ref, id);
    s->next_index++;
    s->outstanding++;
    return 1;
}

/* Entry id is done: queue it for delivery. */
static void stream_done(bl_task_stream *s, uint32_t id)
{
    s->e[id].state = E_DONE;
    if (s->unordered) s->doneq[(s->dq_head + s->dq_len++) % s->max] = id;
}

/* Hands the next deliverable result to *res.  True if there was one. */
static bool stream_deliver(bl_task_stream *s, bl_task_result *res)
{
    uint32_t id;
    if (s->unordered) {
        if (!s->dq_len) return false;
        id = s->doneq[s->dq_head];
        s->dq_head = (s->dq_head + 1) % s->max;
        s->dq_len--;
        s->free_ids[s->nfree++] = id;
    } else {
        if (s->next_emit == s->next_index) return false;
        id = (uint32_t)(s->next_emit % s->max);
        if (s->e[id].state != E_DONE) return false;
        s->next_emit++;
    }
    entry *e = &s->e[id];
    *res = e->res;
    res->index = e->index;
    e->state = E_FREE;
    res_nil(&e->res, 0);
    s->outstanding--;
    return true;
}

/*
 * Kills the entries whose state is E_RUNNING and whose deadline is at or
 * before expired_by (every live entry when all), waits for them to die and
 * marks them done: a killed item's result is EXIT with reason timeout
 * (Elixir's {:exit, :timeout}), unless its reply or its own exit came first.
 */
static void stream_kill(bl_task_stream *s, bool all, uint64_t expired_by)
{
    bl_task **ts = malloc(s->max * sizeof *ts);
    bl_task_result **rs = malloc(s->max * sizeof *rs);
    uint32_t *ids = malloc(s->max * sizeof *ids);
    bool batch = ts && rs && ids;
    size_t k = 0;
    for (uint32_t id = 0; id < s->max; id++) {
        entry *e = &s->e[id];
        bool pick =
            e->state == E_RUNNING ? all || e->deadline <= expired_by : all && e->state == E_REPLIED;
        if (!pick) continue;
        tab_del(&s->tab, e->t.ref);
        bl_task *t = &e->t;
        bl_task_result *r = &e->res;
        if (batch) {
            ts[k] = t;
            rs[k] = r;
            ids[k++] = id;
            continue;
        }
        /* Out of memory for the batch: one at a time. */
        kill_many(&t, &r, 1);
        if (r->status == BL_TASK_NIL)
            *r = (bl_task_result){
                .status = BL_TASK_EXIT, .reason = BL_REASON(BL_TIMEOUT), .index = e->index};
        stream_done(s, id);
    }
    if (batch) kill_many(ts, rs, k);
    bool trap = trapping();
    for (size_t i = 0; batch && i < k; i++) {
        /* An EXIT queued before the unlink (a trapping consumer) goes too. */
        bl_msg *x = NULL;
        if (trap && bl_recv(&x, match_exit_from, &ts[i]->pid, 0, 0) == 0) bl_msg_free(x);
        if (rs[i]->status == BL_TASK_NIL) {
            rs[i]->status = BL_TASK_EXIT;
            rs[i]->reason = BL_REASON(BL_TIMEOUT);
        }
        stream_done(s, ids[i]);
    }
    free(ts);
    free(rs);
    free(ids);
}

/* Ends the stream with error rc: every task is killed. */
static int stream_fail(bl_task_stream *s, int rc)
{
    s->err = rc;
    stream_kill(s, true, 0);
    return rc;
}

/* Waits for one message from the stream's tasks, or for the first timeout. */
static int stream_wait(bl_task_stream *s)
{
    uint64_t deadline = NO_DEADLINE;
    for (unsigned id = 0; id < s->max; id++)
        if (s->e[id].state == E_RUNNING && s->e[id].deadline < deadline)
            deadline = s->e[id].deadline;
    bl_msg *m = NULL;
    int rc = bl_recv(&m, match_tab, &s->tab, ms_left(deadline), 0);
    if (rc == -ETIMEDOUT) {
        if (s->on_timeout == BL_TASK_ON_TIMEOUT_EXIT) return stream_fail(s, -ETIMEDOUT);
        stream_kill(s, false, now_ns());
        return 0;
    }
    if (rc) return stream_fail(s, rc);
    uint32_t id = tab_get(&s->tab, m->ref);
    entry *e = &s->e[id];
    if (m->tag == BL_TAG_TASK_REPLY) {
        /* Done once its DOWN comes: until then the process is alive. */
        res_ok(&e->res, m, e->index);
        e->state = E_REPLIED;
        return 0;
    }
    tab_del(&s->tab, m->ref);
    if (e->state == E_REPLIED)
        bl_msg_free(m);
    else
        res_exit(&e->res, m, e->index);
    /* A trapping consumer got the task's EXIT before this DOWN. */
    if (trapping()) {
        bl_msg *x = NULL;
        if (bl_recv(&x, match_exit_from, &e->t.pid, 0, 0) == 0) bl_msg_free(x);
    }
    spend(&e->t);
    stream_done(s, id);
    return 0;
}

int bl_task_stream_next(bl_task_stream *s, bl_task_result *res)
{
    if (!s || !res) return -EINVAL;
    if (bl_self() != s->owner) return -EPERM;
    res_nil(res, 0);
    for (;;) {
        if (s->err) return s->err;
        if (stream_deliver(s, res)) return 1;
        while (s->outstanding < s->max) {
            int rc = stream_spawn(s);
            if (rc == 0) break;
            if (rc < 0) return stream_fail(s, rc);
        }
        if (s->outstanding == 0) return 0;
        int rc = stream_wait(s);
        if (rc < 0) return rc;
    }
}

int bl_task_stream_close(bl_task_stream *s)
{
    if (!s) return -EINVAL;
    if (bl_self() != s->owner) return -EPERM;
    stream_kill(s, true, 0);
    for (unsigned id = 0; id < s->max; id++) bl_task_result_free(&s->e[id].res);
    stream_free(s);
    return 0;
}
