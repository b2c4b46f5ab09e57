/*
 * otp/task/task_int.h - what the pieces of Elixir's Task share (internal
 * to otp/task/): the slot an owner shares with its task process, the wire
 * tags, and the helpers that bl__task_settle a task.
 *
 * A task process is a handler process whose init runs the task function,
 * sends the result and stops (spawn.c).  Handler processes have a release
 * hook that the runtime calls once after the process is gone, however it
 * died: that is what lets the task's shared slot be recycled even when the
 * task is killed in the middle of its function (slot.c).
 *
 * The slot (struct ctl) is the only memory the owner and the task share.
 * It holds the function and its argument for the task, the result being
 * built, and one atomic word, generation << 32 | state, on which the owner
 * (ignore) and the task (about to reply) race: whoever moves it away from
 * S_ACTIVE first decides whether the reply is sent.
 *
 * Wire format (reserved tags, so user sends cannot forge them):
 *   REPLY  task -> owner, ref = the task's monitor reference, payload = result
 *   GO     owner -> task started by a spawner, payload = that reference
 * A task's reply always precedes its DOWN (messages from one sender before
 * its exit signals), which every receive loop (await.c, many.c, stream.c)
 * relies on.  Everything but the task process itself runs in the owner's
 * process: nothing here is shared between owners.
 */
#ifndef BL_OTP_TASK_INT_H
#define BL_OTP_TASK_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"
#include "beamline/task.h"

#define TAG_GO (BL_TAG_SYSTEM | 0x31u)

/* bl_task.flags and ctl.flags */
#define F_LINK    1u /* linked to its owner */
#define F_NOREPLY 2u /* start / start_link: no owner to answer */
#define F_VIA     4u /* started by a spawner: waits for GO from its owner */
#define F_STREAM  8u /* runs sfn(arg, item) instead of fn(arg) */

/* Slot states (the low 32 bits of ctl.word). */
enum { S_FREE = 0, S_ALLOC, S_ACTIVE, S_REPLIED, S_IGNORED };

#define STATE_MASK  0xFFFFFFFFull
#define OUT_INLINE  64
#define ITEM_INLINE 32 /* stream items up to this size are copied into the slot */

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
    void *arg;           /* fn's argument, or the stream's ctx */
    void *item;          /* F_STREAM: the task's copy of its item (item_inl or item_heap) */
    void *item_heap;     /* F_STREAM: an item over ITEM_INLINE bytes; freed with the slot */
    bl_spawn_opts spawn; /* for bl_task_child_start */
    uint32_t ncallers;   /* F_VIA: the owner's chain, which the task takes ... */
    bl_pid callers[BL_CALLERS_MAX];                   /* ... as its callers ($callers) */
    struct bl_task_out out;                           /* the result being built */
    _Alignas(16) unsigned char item_inl[ITEM_INLINE]; /* F_STREAM: a small item */
} ctl;

/* ---- slot.c: the slot pool ---- */

/* A free slot (state S_FREE, its generation set), or NULL when out of memory. */
ctl *bl__task_slot_alloc(void);
/* Recycles c under a new generation.  Only its last user calls this. */
void bl__task_slot_free(ctl *c);
/* c's current generation. */
uint32_t bl__task_slot_gen(ctl *c);
/* The handle (bl_task.ctl) naming slot c at generation gen: index << 32 | gen. */
uint64_t bl__task_handle_of(ctl *c, uint32_t gen);
/* The slot a handle names (it may have been recycled since: compare the generation). */
ctl *bl__task_slot_of(uint64_t h);
/* True while the task process of handle h has not been released. */
bool bl__task_slot_live(uint64_t h);
/* Moves the slot named by handle h from state `from` to `to`.  False if it has moved on. */
bool bl__task_slot_cas(uint64_t h, unsigned from, unsigned to, uint64_t *seen);

/* ---- spawn.c: starting a task ---- */

typedef struct spawn_req {
    uint32_t flags;            /* F_LINK, F_STREAM */
    bl_task_fn fn;             /* or */
    bl_task_stream_fn sfn;     /* with F_STREAM */
    void *arg;                 /* fn's argument or the stream's ctx */
    void *item;                /* F_STREAM: the item, copied into the task */
    size_t item_size;          /* F_STREAM: its size */
    const bl_spawn_opts *opts; /* may be NULL */
    bl_task_spawner spawner;   /* NULL: spawn here */
    void *spawner_ctx;
} spawn_req;

/* Starts a task for the caller: directly, or through q->spawner.  0 or a negative errno. */
int bl__task_spawn(bl_task *t, const spawn_req *q);

/* ---- reftab.c: a set of task references, each standing for an index ---- */

/* "Not in the table", from bl__task_tab_find and bl__task_tab_get. */
#define TAB_NONE UINT32_MAX

typedef struct reftab {
    uint32_t mask;  /* capacity - 1 */
    bl_ref *keys;   /* BL_REF_NONE: empty */
    uint32_t *vals; /* what each key stands for */
} reftab;

/* 0 or -ENOMEM: a table with room for n references. */
int bl__task_tab_init(reftab *t, size_t n);
void bl__task_tab_fini(reftab *t);
/* Adds r (not present) standing for v. */
void bl__task_tab_put(reftab *t, bl_ref r, uint32_t v);
/* r's slot, or TAB_NONE. */
uint32_t bl__task_tab_find(const reftab *t, bl_ref r);
/* What r stands for, or TAB_NONE. */
uint32_t bl__task_tab_get(const reftab *t, bl_ref r);
/* Removes r if present. */
void bl__task_tab_del(reftab *t, bl_ref r);
/* arg is a reftab: the reply or the DOWN of one of its tasks. */
bool bl__task_match_tab(const bl_msg *m, void *arg);

/* ---- await.c: receiving and settling ---- */

#define NO_DEADLINE UINT64_MAX

static inline bool bl__task_timeout_ok(int64_t ms)
{
    return ms >= 0 || ms == BL_INFINITY;
}

/* The deadline (monotonic ns) ms from now; NO_DEADLINE for BL_INFINITY. */
uint64_t bl__task_deadline_in(int64_t ms);
/* The receive timeout left until deadline, rounded up to whole milliseconds. */
int64_t bl__task_ms_left(uint64_t deadline);
/* arg is a bl_ref: the reply or the DOWN of the task with this reference. */
bool bl__task_match_task(const bl_msg *m, void *arg);

static inline void bl__task_res_nil(bl_task_result *r, size_t index)
{
    *r = (bl_task_result){.status = BL_TASK_NIL, .index = index};
}

/* An OK result holding reply m (kept: the data lives in it). */
void bl__task_res_ok(bl_task_result *r, bl_msg *m, size_t index);
/* An EXIT result from a DOWN message (kept: the reason's detail lives in it). */
void bl__task_res_exit(bl_task_result *r, bl_msg *down, size_t index);

/* Marks t settled: its reference is no longer waited for. */
static inline void bl__task_spend(bl_task *t)
{
    t->ref = BL_REF_NONE;
}

/*
 * The reply or DOWN m of task t settles it: OK (the DOWN that follows is
 * flushed with the monitor) or EXIT.  Returns the status.
 */
int bl__task_settle(bl_task *t, bl_msg *m, bl_task_result *res, size_t index);
/* Checks that the caller may collect t.  0, -EINVAL or -EPERM. */
int bl__task_check(const bl_task *t);
/* Elixir's Task.ignore on t: its reply if already here, else NIL. */
int bl__task_ignore_one(bl_task *t, bl_task_result *res, size_t index);
/* Elixir's Task.shutdown on t with timeout (ms or BL_TASK_BRUTAL_KILL). */
int bl__task_shutdown_one(bl_task *t, int64_t timeout, bl_task_result *res, size_t index);

#endif /* BL_OTP_TASK_INT_H */
