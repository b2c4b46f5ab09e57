/*
 * otp/agent.c - Agent on gen_server.  A request is the function pointer
 * followed by the argument bytes; the agent runs it on its state.  Also the
 * agent's child spec (bl_agent_child_spec).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "beamline/agent.h"

enum { A_GET = 1, A_UPDATE, A_CAST };

#define SMALL 240

typedef struct agent {
    void *state;
    void (*free_state)(void *state);
} agent;

typedef struct start_arg {
    bl_agent_init_fn init;
    void *arg;
    void (*free_state)(void *state);
} start_arg;

typedef struct req {
    bl_agent_fn fn;
    uint64_t pad; /* keeps the argument 16-byte aligned */
} req;

static void a_init(void *arg, void **state, bl_gs_result *r)
{
    const start_arg *sa = arg;
    agent *a = calloc(1, sizeof *a);
    if (!a) {
        bl_reason why = {.kind = BL_CUSTOM, .code = -ENOMEM};
        bl_gs_stop(r, &why);
        return;
    }
    a->free_state = sa->free_state;
    a->state = sa->arg;
    if (sa->init) sa->init(&a->state, sa->arg);
    *state = a;
}

static void run(agent *a, const bl_msg *m, bl_gs_result *r)
{
    if (m->len < sizeof(req)) return;
    req q;
    memcpy(&q, m->data, sizeof q);
    q.fn(&a->state, (const char *)m->data + sizeof q, m->len - sizeof q, r);
    /* The functions may not stop the agent or defer work. */
    if (r->action != 0 || r->has_cont) {
        free(r->cont);
        r->cont = NULL;
        r->has_cont = false;
        free((void *)r->reason.detail);
        r->reason = BL_REASON(BL_NORMAL);
        r->action = 0;
    }
}

static void a_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    run(*state, m, r);
    if (!r->replied) bl_gs_reply(r, NULL, 0);
}

static void a_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    run(*state, m, r);
}

static void a_release(void *state)
{
    agent *a = state;
    if (a->free_state) a->free_state(a->state);
    free(a);
}

static const bl_gen_server agent_cb = {
    .init = a_init,
    .handle_call = a_call,
    .handle_cast = a_cast,
    .release = a_release,
};

static int start(bl_pid *pid, bl_agent_init_fn init, void *arg, const bl_agent_opts *o, bool link)
{
    static const bl_agent_opts none;
    if (!o) o = &none;
    start_arg sa = {init, arg, o->free_state};
    bl_gen_server_opts go = {.name = o->name, .timeout = o->timeout, .spawn = o->spawn};
    int rc = link ? bl_gen_server_start_link(pid, &agent_cb, &sa, &go)
                  : bl_gen_server_start(pid, &agent_cb, &sa, &go);
    /* An agent's init never stops on its own; -ECHILD means no memory. */
    return rc == -ECHILD ? -ENOMEM : rc;
}

int bl_agent_start(bl_pid *pid, bl_agent_init_fn init, void *arg, const bl_agent_opts *opts)
{
    return start(pid, init, arg, opts, false);
}

int bl_agent_start_link(bl_pid *pid, bl_agent_init_fn init, void *arg, const bl_agent_opts *opts)
{
    return start(pid, init, arg, opts, true);
}

/* An agent child's start, in the supervisor: a is the spec's copy of the bl_agent_child. */
static int child_start(void *a, bl_pid *pid)
{
    const bl_agent_child *c = a;
    return start(pid, c->init, c->arg, &c->opts, true);
}

bl_child_spec bl_agent_child_spec(const char *id, const bl_agent_child *ac)
{
    return (bl_child_spec){
        .id = id,
        .start = ac ? child_start : NULL,
        .arg = (void *)ac,
        .arg_len = ac ? sizeof *ac : 0,
        .restart = BL_RESTART_PERMANENT,
    };
}

/* Builds fn + arg and calls or casts it. */
static int request(bl_pid agent, uint32_t tag, bl_agent_fn fn, const void *arg, size_t len,
                   bl_msg **reply, int64_t timeout)
{
    if (reply) *reply = NULL;
    if (!fn || (len && !arg)) return -EINVAL;
    _Alignas(16) char small[sizeof(req) + SMALL];
    char *buf = small;
    if (len > SMALL && !(buf = malloc(sizeof(req) + len))) return -ENOMEM;
    req q = {.fn = fn};
    memcpy(buf, &q, sizeof q);
    if (len) memcpy(buf + sizeof q, arg, len);
    bl_cleanup c; /* a heap copy held across the call's wait */
    if (buf != small) bl_cleanup_push(&c, free, buf);
    int rc = tag == A_CAST ? bl_gen_server_cast(agent, tag, buf, sizeof q + len)
                           : bl_gen_server_call(agent, tag, buf, sizeof q + len, reply, timeout);
    if (buf != small) {
        bl_cleanup_pop(&c, true); /* frees buf */
    }
    return rc;
}

int bl_agent_get(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len, bl_msg **reply,
                 int64_t timeout_ms)
{
    return request(agent, A_GET, fn, arg, len, reply, timeout_ms);
}

int bl_agent_get_and_update(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len,
                            bl_msg **reply, int64_t timeout_ms)
{
    return request(agent, A_UPDATE, fn, arg, len, reply, timeout_ms);
}

int bl_agent_update(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len, int64_t timeout_ms)
{
    return request(agent, A_UPDATE, fn, arg, len, NULL, timeout_ms);
}

int bl_agent_cast(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len)
{
    return request(agent, A_CAST, fn, arg, len, NULL, 0);
}

int bl_agent_stop(bl_pid agent, const bl_reason *reason, int64_t timeout_ms)
{
    return bl_gen_server_stop(agent, reason, timeout_ms);
}
