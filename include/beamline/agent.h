/*
 * beamline/agent.h - Agent: state behind a process, read and changed by
 * functions that run inside it (Elixir's Agent).
 *
 * An agent is a gen_server (see gen_server.h), so an idle agent holds no
 * stack.  Its state is a void *: the functions given to get / update /
 * get_and_update / cast run in the agent, one at a time, with the state
 * and a copy of the argument bytes.
 *
 * Differences from Elixir, forced by C:
 *  - Elixir passes closures.  Here a function and argument bytes travel;
 *    the bytes are copied, so the function never reads the caller's memory
 *    (which may be gone after a timeout).
 *  - A function answers with bl_gs_reply(r, data, len) (copied to the
 *    caller); one that does not answer makes the call return an empty reply.
 *    get and get_and_update differ only in intent: the function of a get
 *    should not change the state.
 *  - Failures are returned (-ESRCH, -ETIMEDOUT, ...), as for
 *    bl_gen_server_call, instead of exiting the caller.
 *  - The state is not garbage collected: give free_state to have it freed
 *    when the agent ends, for any reason.
 *  - Elixir's child_spec/1 is bl_agent_child_spec: a bl_child_spec (id,
 *    restart permanent) whose start runs bl_agent_start_link in the
 *    supervisor.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_AGENT_H
#define BEAMLINE_AGENT_H

#include "beamline/supervisor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Builds the initial state from start's arg: sets *state. */
typedef void (*bl_agent_init_fn)(void **state, void *arg);

/*
 * Runs in the agent with the state and the argument bytes.  May change
 * *state (update, get_and_update, cast) and answer with bl_gs_reply(r, ...)
 * (get, get_and_update).  Must not call bl_gs_stop or bl_gs_continue.
 */
typedef void (*bl_agent_fn)(void **state, const void *arg, size_t len, bl_gs_result *r);

typedef struct bl_agent_opts {
    const bl_name *name;             /* local or via name; NULL = none */
    int64_t timeout;                 /* ms for the initial state function, 0 = infinity */
    bl_spawn_opts spawn;             /* stack size, priority, scheduler */
    void (*free_state)(void *state); /* frees the state when the agent ends; may be NULL */
} bl_agent_opts;

/*
 * Starts an agent whose state init(&state, arg) builds, in the agent, before
 * start returns (init NULL: the state is arg).  Process only.  Returns 0, or
 * the errors of bl_gen_server_start (-EEXIST with the holder in *pid for a
 * taken name, -ETIMEDOUT, -EINVAL, -ENOMEM, -EPERM).
 */
int bl_agent_start(bl_pid *pid, bl_agent_init_fn init, void *arg, const bl_agent_opts *opts);
/* As bl_agent_start, linked to the caller. */
int bl_agent_start_link(bl_pid *pid, bl_agent_init_fn init, void *arg, const bl_agent_opts *opts);

/* What an agent child spec starts: bl_agent_start_link(&pid, init, arg, &opts). */
typedef struct bl_agent_child {
    bl_agent_init_fn init; /* builds the state, again at each restart; NULL: the state is arg */
    void *arg;             /* init's argument, shared (not copied): it must outlive the spec */
    bl_agent_opts opts;    /* copied; opts.name (if set) must outlive the spec */
} bl_agent_child;

/*
 * Elixir's Agent.child_spec: a child spec with this id whose start runs
 * bl_agent_start_link with *ac in the supervisor, linking the agent to it;
 * restart permanent, shutdown default (5000 ms), type worker, as Elixir's.
 * The spec points at *ac with arg_len set, so the supervisor copies it: ac
 * may live on the caller's stack.  A restarted agent gets a new state from
 * init(arg); with init NULL the state is arg itself, so free_state must not
 * free it if the agent may be restarted.  With ac NULL the spec has no
 * start, and supervisors refuse it (-EINVAL).
 */
bl_child_spec bl_agent_child_spec(const char *id, const bl_agent_child *ac);

/*
 * Runs fn in the agent and returns its answer in *reply (free it with
 * bl_msg_free; may be NULL to drop it).  Errors as bl_gen_server_call:
 * -ESRCH, -ECONNRESET, -ETIMEDOUT, -EDEADLK, -EINVAL (NULL fn), -EPERM.
 */
int bl_agent_get(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len, bl_msg **reply,
                 int64_t timeout_ms);
/* Runs fn to change the state and answer: Elixir's get_and_update. */
int bl_agent_get_and_update(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len,
                            bl_msg **reply, int64_t timeout_ms);
/* Runs fn to change the state; returns once it has run (Elixir's :ok). */
int bl_agent_update(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len, int64_t timeout_ms);
/* Runs fn later, without waiting (always 0 unless the input is bad, as a cast). */
int bl_agent_cast(bl_pid agent, bl_agent_fn fn, const void *arg, size_t len);
/* Stops the agent (bl_gen_server_stop): 0, -ESRCH, -ETIMEDOUT. */
int bl_agent_stop(bl_pid agent, const bl_reason *reason, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_AGENT_H */
