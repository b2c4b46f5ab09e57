/*
 * otp/task/stream.c - async_stream as an iterator: bl_task_stream_open /
 * _open_gen, _next and _close.
 *
 * A stream keeps at most max_concurrency items outstanding (started and not
 * delivered); an entry counts until its task's DOWN, so that many task
 * processes are never alive at once.  Per-item deadlines start at spawn.
 * Only the consumer (the process that opened the stream) may use it.
 *
 * The stream is the consumer's until close: if the consumer dies with it
 * open (killed in next, or gone without closing), a cleanup handler it
 * holds from open on kills the tasks still out and frees the stream.  Each
 * task runs on its own copy of its item (spawn.c), so none reads the
 * stream's memory, or the dead consumer's, after that.
 */
#include <errno.h>
#include <stdlib.h>

#include "otp/task/task_int.h"
#include "otp/wait.h"
#include "proc/otp.h"

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
    reftab tab;       /* task reference -> entry */
    bl_cleanup death; /* the consumer's, from open to close: stream_orphaned */
};

/* True when the calling process traps exits. */
static bool trapping(void)
{
    bool on = bl_trap_exit(true);
    bl_trap_exit(on);
    return on;
}

/* Cleanup handlers: what a consumer killed in a wait holds goes with it. */
static void tab_free(void *arg)
{
    bl__task_tab_fini(arg);
}

typedef struct kill_bufs {
    void *ts, *rs, *ids;
} kill_bufs;

static void kill_bufs_free(void *arg)
{
    kill_bufs *b = arg;
    free(b->ts);
    free(b->rs);
    free(b->ids);
}

/*
 * Kills the k tasks ts[i] at once (unlinked first) and waits for every one
 * to die.  For handles only the stream holds: it waits for each task's own
 * reply or DOWN, which a copy settled elsewhere would never get.  rs[i]
 * must be NIL or OK on entry; it ends OK if the task's reply came, NIL if
 * it was killed, EXIT if it died of something else.  Every task is spent.
 */
static void kill_many(bl_task **ts, bl_task_result **rs, size_t k)
{
    reftab tab;
    if (k == 0) return;
    if (bl__task_tab_init(&tab, k) != 0) {
        /* Out of memory: one at a time. */
        for (size_t i = 0; i < k; i++) {
            bl_task_result r;
            if (bl__task_shutdown_one(ts[i], BL_TASK_BRUTAL_KILL, &r, rs[i]->index) < 0) continue;
            if (rs[i]->status == BL_TASK_OK)
                bl_task_result_free(&r);
            else
                *rs[i] = r;
        }
        return;
    }
    /* Held across the waits: freed with the consumer if it is killed in them. */
    bl_cleanup c;
    bl_cleanup_push(&c, tab_free, &tab);
    bl_reason kill = BL_REASON(BL_KILL);
    for (size_t i = 0; i < k; i++) {
        bl__task_tab_put(&tab, ts[i]->ref, (uint32_t)i);
        if (ts[i]->flags & F_LINK) bl_unlink(ts[i]->pid);
        bl_exit_pid(ts[i]->pid, &kill);
    }
    for (size_t left = k; left;) {
        bl_msg *m = NULL;
        if (bl_recv(&m, bl__task_match_tab, &tab, BL_INFINITY, 0) != 0) break;
        uint32_t i = bl__task_tab_get(&tab, m->ref);
        bl_task_result *r = rs[i];
        if (m->tag == BL_TAG_TASK_REPLY) {
            bl__task_res_ok(r, m, r->index);
            continue; /* its DOWN follows */
        }
        bl__task_tab_del(&tab, m->ref);
        bl__task_spend(ts[i]);
        left--;
        bl_reason why;
        if (r->status == BL_TASK_OK || (bl_msg_reason(m, &why) == 0 && why.kind == BL_KILLED)) {
            bl_msg_free(m);
            continue;
        }
        bl__task_res_exit(r, m, r->index);
    }
    bl_cleanup_pop(&c, true); /* frees the table */
}

static void stream_free(bl_task_stream *s)
{
    bl__task_tab_fini(&s->tab);
    free(s->e);
    free(s->free_ids);
    free(s->doneq);
    free(s->gbuf);
    free(s);
}

/*
 * The consumer's cleanup handler: it died with the stream open.  Its tasks
 * are killed (as Elixir's stream does when its caller exits: those linked
 * to it would get its exit signal, but not if it exited normally, and
 * unlinked ones never), results not delivered are dropped, and the stream
 * goes.  On the scheduler, after the consumer stopped: nothing here waits.
 */
static void stream_orphaned(void *arg)
{
    bl_task_stream *s = arg;
    bl_reason kill = BL_REASON(BL_KILL);
    for (unsigned id = 0; id < s->max; id++) {
        entry *e = &s->e[id];
        if (e->state == E_RUNNING || e->state == E_REPLIED) bl_exit_pid(e->t.pid, &kill);
        bl_task_result_free(&e->res);
    }
    stream_free(s);
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
    if (!s->e || !s->free_ids || !s->doneq || (gen && !s->gbuf) ||
        bl__task_tab_init(&s->tab, max)) {
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
    bl_cleanup_push(&s->death, stream_orphaned, s); /* until close */
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
    s->req.item_size = s->item_size;
    int rc = bl__task_spawn(&e->t, &s->req);
    if (rc) return rc;
    if (s->unordered) s->nfree--;
    e->index = index;
    e->state = E_RUNNING;
    e->deadline = bl__task_deadline_in(s->timeout);
    bl__task_res_nil(&e->res, index);
    bl__task_tab_put(&s->tab, e->t.ref, id);
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
    bl__task_res_nil(&e->res, 0);
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
    kill_bufs bufs = {ts, rs, ids};
    bl_cleanup c;
    bl_cleanup_push(&c, kill_bufs_free, &bufs); /* held across kill_many's waits */
    size_t k = 0;
    for (uint32_t id = 0; id < s->max; id++) {
        entry *e = &s->e[id];
        bool pick =
            e->state == E_RUNNING ? all || e->deadline <= expired_by : all && e->state == E_REPLIED;
        if (!pick) continue;
        bl__task_tab_del(&s->tab, e->t.ref);
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
        if (trap && bl_recv(&x, bl__otp_match_exit_from, &ts[i]->pid, 0, 0) == 0) bl_msg_free(x);
        if (rs[i]->status == BL_TASK_NIL) {
            rs[i]->status = BL_TASK_EXIT;
            rs[i]->reason = BL_REASON(BL_TIMEOUT);
        }
        stream_done(s, ids[i]);
    }
    bl_cleanup_pop(&c, true); /* frees ts, rs and ids */
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
    int rc = bl_recv(&m, bl__task_match_tab, &s->tab, bl__task_ms_left(deadline), 0);
    if (rc == -ETIMEDOUT) {
        if (s->on_timeout == BL_TASK_ON_TIMEOUT_EXIT) return stream_fail(s, -ETIMEDOUT);
        stream_kill(s, false, bl__otp_now_ns());
        return 0;
    }
    if (rc) return stream_fail(s, rc);
    uint32_t id = bl__task_tab_get(&s->tab, m->ref);
    entry *e = &s->e[id];
    if (m->tag == BL_TAG_TASK_REPLY) {
        /* Done once its DOWN comes: until then the process is alive. */
        bl__task_res_ok(&e->res, m, e->index);
        e->state = E_REPLIED;
        return 0;
    }
    bl__task_tab_del(&s->tab, m->ref);
    if (e->state == E_REPLIED)
        bl_msg_free(m);
    else
        bl__task_res_exit(&e->res, m, e->index);
    /* A trapping consumer got the task's EXIT before this DOWN. */
    if (trapping()) {
        bl_msg *x = NULL;
        if (bl_recv(&x, bl__otp_match_exit_from, &e->t.pid, 0, 0) == 0) bl_msg_free(x);
    }
    bl__task_spend(&e->t);
    stream_done(s, id);
    return 0;
}

int bl_task_stream_next(bl_task_stream *s, bl_task_result *res)
{
    if (!s || !res) return -EINVAL;
    if (bl_self() != s->owner) return -EPERM;
    bl__task_res_nil(res, 0);
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
    /* Killed in there, the consumer's handler frees the stream; now, close does. */
    bl__cleanup_remove(&s->death);
    for (unsigned id = 0; id < s->max; id++) bl_task_result_free(&s->e[id].res);
    stream_free(s);
    return 0;
}
