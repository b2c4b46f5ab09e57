/*
 * beamline/gen_server.h - the generic server behaviour (Elixir's GenServer,
 * Erlang's gen_server) and the sys debugging calls.
 *
 * A gen_server is a handler process: between messages it holds no stack,
 * only its process control block and whatever state the callbacks keep
 * (its scheduler may let it keep one a moment for its next message:
 * beamline/handler.h).
 * Its callbacks run in the server process, one message at a time:
 *
 *   init            once, synchronously with bl_gen_server_start
 *   handle_call     a call or request (bl_gen_server_call, send_request); answers
 *                   with bl_gs_reply
 *   handle_cast     a bl_gen_server_cast
 *   handle_info     any other message (plain bl_send, EXIT, DOWN, timeouts)
 *   handle_continue work asked for with bl_gs_continue, run before the next message
 *   terminate       on stop (a stop result, bl_gen_server_stop, or the
 *                   parent's exit signal while trapping exits)
 *   format_status   text for bl_sys_get_status and traces
 *
 * Results.  Each callback gets a bl_gs_result it may set with the bl_gs_*
 * functions below; left alone it means {:noreply, state} (for init: {:ok,
 * state}).  The modifiers (timeout, hibernate, continue) combine with reply
 * and noreply exactly as Elixir's result tuples do: at most one of them,
 * and none with stop or ignore.  A result no tuple could spell (ignore
 * from any callback but init, two modifiers, a modifier with stop, a
 * negative timeout other than BL_INFINITY, a stop reason that is not a
 * valid exit reason) stops the server with bad_return_value (see
 * BL_GS_EBADRETURN), as Erlang does: terminate runs (not after init, whose
 * failure start reports), and a caller waiting on the call gets the exit.
 *
 * State.  Callbacks get `void **state`: they may change the pointed-to data
 * in place or store a new pointer.  The state belongs to the server; the
 * runtime never frees it (terminate should).
 *
 * Differences from Elixir, forced by C or chosen for it:
 *  - Failures are returned, not raised.  bl_gen_server_call returns
 *    -ETIMEDOUT or -ESRCH instead of exiting the caller; start returns a
 *    negative errno or BL_GS_IGNORED instead of {:error, _} / :ignore.
 *  - Erlang's {bad_return_value, Term} is {BL_CUSTOM, BL_GS_EBADRETURN}
 *    whose detail is a text naming the callback and the fault.  A reply
 *    sent with bl_gs_reply before the fault stays sent.  bl_gs_reply
 *    outside handle_call is refused (-EINVAL) instead of being a bad
 *    result.
 *  - Requests and replies are byte buffers tagged with a uint32_t chosen by
 *    the caller, copied like every message.
 *  - Erlang's server_ref() (pid, Name, {Name, Node}, {via, Mod, Name}) is a
 *    bl_gs_dest value, taken by the *_to functions and by send_request;
 *    the pid-taking functions stay.  {name, node} and remote pids reach
 *    other nodes while the distribution runs (beamline/dist.h says how
 *    requests and replies travel as terms); without it only this node.
 *  - The start functions wait for init as proc_lib:start_link does (OTP
 *    26): a failed start_link leaves no EXIT in a trapping caller's mailbox.
 *  - A reply is sent the moment bl_gs_reply is called, so it may point at
 *    callback locals.  Elixir sends it when the callback returns; nobody can
 *    tell the difference except a sys trace, which shows the reply first.
 *  - hibernate is accepted and has nothing more to do: an idle server
 *    already holds no stack.
 *  - A crash inside a callback (a fault) is not caught: C has no exceptions.
 *    Callbacks fail by returning a stop result with a reason.
 *  - bl_sys_get_state returns the state pointer itself, not a copy: read it
 *    while the server is suspended, or use bl_sys_replace_state, which runs
 *    a function in the server.
 */
/* Outside the guard: beamline.h includes this header back, and must come first. */
#include "beamline.h"
#ifndef BEAMLINE_GEN_SERVER_H
#define BEAMLINE_GEN_SERVER_H

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A name registry other than the local one (Erlang's {via, Module, Name}).
 * bl_registry_via in beamline/registry.h is one; any module may
 * provide its own.  All three are called with the key given in bl_name.
 */
typedef struct bl_via_ops {
    /* Registers the calling process under key: 0, or -EEXIST when taken. */
    int (*register_name)(void *via, const void *key, size_t key_len);
    /* Removes the caller's registration of key.  0 or -ENOENT. */
    int (*unregister_name)(void *via, const void *key, size_t key_len);
    /* The process registered under key, or BL_PID_NONE. */
    bl_pid (*whereis_name)(void *via, const void *key, size_t key_len);
} bl_via_ops;

/*
 * How a server is named at start: a local name (bl_register), or a key in a
 * via registry.  A zeroed struct (or a NULL pointer) means no name.
 */
typedef struct bl_name {
    const char *local;     /* a local name; or NULL */
    const bl_via_ops *via; /* or a via module ... */
    void *via_arg;         /* ... its instance (a registry) */
    const void *key;       /* ... and the key in it */
    size_t key_len;
} bl_name;

#define BL_NAME_LOCAL(s) ((bl_name){.local = (s)})

/* The process a name stands for, or BL_PID_NONE. */
bl_pid bl_name_whereis(const bl_name *name);

/* ------------------------------------------------------------------------ */
/* Callbacks and their results                                              */
/* ------------------------------------------------------------------------ */

/* Who made a call: copy it to answer later with bl_gen_server_reply. */
typedef struct bl_gs_from {
    bl_pid pid; /* the caller */
    bl_ref ref; /* the call's reference */
} bl_gs_from;

/* What a callback asks for; set it with the bl_gs_* functions only. */
typedef struct bl_gs_result {
    int action;       /* noreply (0), ignore, stop */
    int64_t timeout;  /* -2: none; -1: infinity; else ms until a BL_TAG_GS_TIMEOUT info */
    bool hibernate;   /* accepted; see the header comment */
    bool replied;     /* bl_gs_reply was called */
    bl_reason reason; /* for stop; its detail is copied */
    void *cont;       /* continue argument (copied) */
    size_t cont_len;  /* its size */
    bool has_cont;    /* bl_gs_continue was called */
    bl_gs_from from;  /* the call being handled (handle_call) */
    void *priv;       /* runtime use */
} bl_gs_result;

/*
 * The info a server gets when a result's timeout passes with no message:
 * Elixir's handle_info(:timeout, state).  m->len is 0.
 */
#define BL_TAG_GS_TIMEOUT (BL_TAG_SYSTEM | 0x20u)

typedef struct bl_gen_server {
    /*
     * Runs in the new server before bl_gen_server_start returns.  arg is
     * start's arg.  Sets *state.  The result may be left alone ({:ok,
     * state}), or set with bl_gs_continue, bl_gs_timeout, bl_gs_hibernate,
     * bl_gs_ignore or bl_gs_stop.  May be NULL: the state is then arg.
     */
    void (*init)(void *arg, void **state, bl_gs_result *r);
    /*
     * A call.  m->tag and m->data/len are the caller's request; r->from is
     * the caller.  Answer with bl_gs_reply(r, ...) now, or leave the result
     * as noreply and answer later with bl_gen_server_reply(r->from, ...).
     * NULL: calls are answered by stopping the server with {BL_CUSTOM,
     * BL_GS_EBADCALL}, as Elixir's default does.
     */
    void (*handle_call)(void **state, const bl_msg *m, bl_gs_result *r);
    /* A cast: m->tag and m->data/len.  NULL: casts stop the server (as above). */
    void (*handle_cast)(void **state, const bl_msg *m, bl_gs_result *r);
    /*
     * Any other message: plain sends, BL_TAG_EXIT (when trapping exits),
     * BL_TAG_DOWN, BL_TAG_GS_TIMEOUT.  NULL: such messages are dropped.
     */
    void (*handle_info)(void **state, const bl_msg *m, bl_gs_result *r);
    /* The work a result's bl_gs_continue asked for, with its argument.  */
    void (*handle_continue)(void **state, const void *arg, size_t len, bl_gs_result *r);
    /* Last words: the server is about to exit with reason.  May be NULL. */
    void (*terminate)(void **state, const bl_reason *reason);
    /* Writes a description of the state into buf (snprintf style).  May be NULL. */
    int (*format_status)(void *state, char *buf, size_t len);
    /*
     * C's stand-in for garbage collection: called once the server is gone,
     * whatever the reason (a kill included, when terminate does not run),
     * with the state init made.  It runs on a scheduler thread outside any
     * process, so it may only free memory.  Not called when init did not
     * return ok.  May be NULL.
     */
    void (*release)(void *state);
} bl_gen_server;

/* A custom exit code: the server got a call or cast it has no callback for. */
#define BL_GS_EBADCALL 0x6273u

/*
 * A custom exit code, Erlang's bad_return_value: a callback gave a result
 * no result tuple could spell (see "Results" at the top).  The reason's
 * detail is a text (no NUL) such as "handle_call: ignore, which only init
 * may give".
 */
#define BL_GS_EBADRETURN 0x6272u

/* Replies now to the call being handled (r->from).  Returns bl_send's result. */
int bl_gs_reply(bl_gs_result *r, const void *data, size_t len);
/* Stop with reason (NULL = normal).  Combine with bl_gs_reply for {:stop, reason, reply, state}. */
void bl_gs_stop(bl_gs_result *r, const bl_reason *reason);
/* init only: {:ignore}: start returns BL_GS_IGNORED and the process exits normally. */
void bl_gs_ignore(bl_gs_result *r);
/* Then run handle_continue(arg) before any message.  arg is copied.  0 or -ENOMEM. */
int bl_gs_continue(bl_gs_result *r, const void *arg, size_t len);
/*
 * If no message arrives within ms, handle_info gets BL_TAG_GS_TIMEOUT.
 * BL_INFINITY is Elixir's :infinity (no timeout); another negative ms is a
 * bad result.
 */
void bl_gs_timeout(bl_gs_result *r, int64_t ms);
/* Hibernate: accepted (idle servers hold no stack anyway). */
void bl_gs_hibernate(bl_gs_result *r);

/* ------------------------------------------------------------------------ */
/* Starting, calling, stopping                                              */
/* ------------------------------------------------------------------------ */

typedef struct bl_gen_server_opts {
    const bl_name *name; /* register the server under this name; NULL = none */
    int64_t timeout;     /* ms for init, 0 = infinity (Elixir's default) */
    bl_spawn_opts spawn; /* stack size, priority, scheduler */
    bool trace;          /* start with bl_sys_trace on, to stderr */
    /*
     * When init stops, or the server dies before init returns: if not NULL,
     * receives a message whose reason bl_msg_reason decodes (free it).
     */
    bl_msg **error;
} bl_gen_server_opts;

/* start's positive result: init asked to be ignored. */
#define BL_GS_IGNORED 1

/*
 * A child's start function, as supervisors call it (Elixir's start: {M, :start_link, args}):
 * starts a process linked to the caller and stores its pid.  Returns 0,
 * BL_GS_IGNORED (the child asked to be ignored), or a negative errno.
 */
typedef int (*bl_start_fn)(void *arg, bl_pid *pid);

/*
 * Starts a server and waits for init.  Process only (the starter is
 * monitored through init).  Returns
 *   0              *pid is the server;
 *   BL_GS_IGNORED  init ignored; the process has exited normally;
 *   -EEXIST        the name is taken: *pid is its holder (already_started);
 *   -ECHILD        init stopped (or the server died during init); see opts.error;
 *   -ETIMEDOUT     init took longer than opts.timeout: the server was killed;
 *   -EINVAL (bad callbacks, name or options), -ENOMEM, -EPERM, -ESRCH.
 * arg goes to init as it is, and must stay valid until init has returned
 * (start returns after that).  C differs: if the starter is killed while it
 * waits, init may still be running on another core with arg on the dead
 * starter's stack; under start_link, a starter killed before init began
 * takes the server with it first (its exit signal applies before init).
 */
int bl_gen_server_start(bl_pid *pid, const bl_gen_server *cb, void *arg,
                        const bl_gen_server_opts *opts);

/*
 * As start, linked to the caller, which becomes the server's parent: an exit
 * signal from the parent makes a trapping server run terminate and exit with
 * the same reason.  As in Erlang, when init stops with a reason the link
 * carries that reason to the caller: a caller that does not trap exits dies
 * of an abnormal one.  A caller that traps exits finds no EXIT from the
 * server after a failed start (ignore, stop, a death during init, a taken
 * name, a timeout): start_link takes it out of the mailbox, as
 * proc_lib:start_link does.
 */
int bl_gen_server_start_link(bl_pid *pid, const bl_gen_server *cb, void *arg,
                             const bl_gen_server_opts *opts);

/* Elixir's default call timeout. */
#define BL_GS_DEFAULT_TIMEOUT 5000

/*
 * Where a call, cast, stop or request goes: Erlang's server_ref(), one of
 *   BL_GS_PID(pid)                   a process
 *   BL_GS_LOCAL("name")              a name registered with bl_register
 *   BL_GS_VIA(ops, arg, key, len)    a key in a via registry ({via, Mod, Name});
 *   BL_GS_NAME(n)                    the same from a bl_name value, such as
 *                                    bl_registry_name(reg, key, len)
 *   BL_GS_REMOTE("name", "node")     {name, node}: a name on a node (beamline/dist.h)
 * A name is looked up each time the destination is used, at that moment:
 * the call's monitor and its request go to the process holding it then,
 * in one step, and nobody holding it is noproc (-ESRCH), the error of a
 * dead pid.  The strings and key are only read during the call.  Without
 * distribution, {name, node} reaches only BL_NODE_LOCAL (this node, as
 * Erlang's nonode@nohost does) and any other node is unreachable
 * (-EHOSTUNREACH, Erlang's {nodedown, Node}).  With it (bl_dist_start),
 * this node's own name is local, and calls and casts to another node, by
 * {name, node} or by remote pid, go over the wire under a monitor of the
 * server: -ESRCH when nobody holds the name there, -ETIMEDOUT, -ECONNRESET
 * when it exits, and -EHOSTUNREACH when the node cannot be reached or its
 * connection drops during the call.  bl_gen_server_stop_to and
 * send_request to another node, and the sys calls and bl_gen_server_stop
 * on remote pids, return -EOPNOTSUPP.
 * The pid functions (bl_gen_server_call, ...) stay as fast as they were:
 * a destination costs its lookup and nothing on the pid path.
 */
typedef struct bl_gs_dest {
    bl_pid pid;       /* a process; BL_PID_NONE when a name is given */
    bl_name name;     /* a local name or a via key (start's bl_name) */
    const char *node; /* with name.local: the node of {name, node}; NULL = this one */
} bl_gs_dest;

#define BL_NODE_LOCAL "nonode@nohost"

#define BL_GS_PID(p)   ((bl_gs_dest){.pid = (p)})
#define BL_GS_LOCAL(s) ((bl_gs_dest){.name = {.local = (s)}})
#define BL_GS_VIA(ops, arg, k, klen)                                                               \
    ((bl_gs_dest){.name = {.via = (ops), .via_arg = (arg), .key = (k), .key_len = (klen)}})
#define BL_GS_NAME(n)       ((bl_gs_dest){.name = (n)})
#define BL_GS_REMOTE(s, nd) ((bl_gs_dest){.name = {.local = (s)}, .node = (nd)})

/*
 * Process only.  Calls server with a request (tag, data[0..len)) and waits
 * up to timeout_ms (BL_INFINITY = forever) for the reply, which *reply gets
 * (free it with bl_msg_free; its data/len are the reply).  The server is
 * monitored for the call and the request carries the monitor's reference, so
 * a reply that comes after a timeout is dropped before it reaches the
 * mailbox.  Returns
 *   0             a reply;
 *   -ESRCH        the server is not alive (noproc);
 *   -ECONNRESET   it exited during the call: *reply holds its DOWN message
 *                 (decode the reason with bl_msg_reason);
 *   -ETIMEDOUT    no reply in time;
 *   -EDEADLK      the caller is the server;
 *   -EINVAL (malformed pid, reserved tag, bad timeout), -EPERM, -ENOMEM.
 */
int bl_gen_server_call(bl_pid server, uint32_t tag, const void *data, size_t len, bl_msg **reply,
                       int64_t timeout_ms);

/*
 * Sends a cast; never blocks, and succeeds whether or not the server lives
 * (Elixir's :ok).  Returns 0, or -EINVAL for a malformed pid or reserved
 * tag, -ENOMEM, -ESRCH when the runtime is down.
 */
int bl_gen_server_cast(bl_pid server, uint32_t tag, const void *data, size_t len);

/*
 * Answers a call whose handle_call returned without replying.  Any process
 * (or thread) may answer, once.  Returns 0 (also if the caller is gone or
 * stopped waiting), -EINVAL for a zero from.
 */
int bl_gen_server_reply(bl_gs_from from, const void *data, size_t len);

/*
 * Process only.  Stops server with reason (NULL = normal) and waits up to
 * timeout_ms for it to run terminate and exit.  Returns 0, -ESRCH when it
 * is not alive (noproc), -ETIMEDOUT, -EDEADLK for the caller itself,
 * -ECONNRESET when it exited with another reason than the one asked for.
 * The reason may be kill, as in Erlang: terminate runs, then the server
 * exits with kill, which its links receive as a trappable kill (not the
 * untrappable one bl_exit_pid sends) and its monitors as DOWN kill.
 */
int bl_gen_server_stop(bl_pid server, const bl_reason *reason, int64_t timeout_ms);

/*
 * bl_gen_server_call, cast and stop to a destination (see bl_gs_dest).
 * Errors as theirs, plus -ESRCH (noproc: nobody holds the name; a cast
 * still returns 0, as Erlang's does), -EHOSTUNREACH ({name, node} of a
 * node out of reach, or of another node without distribution),
 * -EOPNOTSUPP (stop_to another node), -EINVAL or -ENAMETOOLONG for a malformed destination
 * (both a pid and a name, an empty name, a via without whereis_name).
 */
int bl_gen_server_call_to(bl_gs_dest to, uint32_t tag, const void *data, size_t len, bl_msg **reply,
                          int64_t timeout_ms);
int bl_gen_server_cast_to(bl_gs_dest to, uint32_t tag, const void *data, size_t len);
int bl_gen_server_stop_to(bl_gs_dest to, const bl_reason *reason, int64_t timeout_ms);

/* ------------------------------------------------------------------------ */
/* Asynchronous requests                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Erlang's gen_server:send_request/2,4, wait_response/2,3,
 * receive_response/2,3, check_response/2,3 and reqids_new/add/size/to_list
 * (OTP 25; Elixir code calls them through :gen_server).  A request is a
 * call that does not wait: the server's handle_call answers it as any call
 * (bl_gs_reply, bl_gen_server_reply).  Its answer is the first of
 *   0             the reply (*reply: data/len);
 *   -ECONNRESET   the server died first (*reply: its DOWN, bl_msg_reason);
 *   -ESRCH        noproc: the server was dead, or nobody held the name.
 * Taking an answer ends the request: its monitor is removed and nothing
 * about it stays in the mailbox.  Process only; only the process that made
 * the request may wait for it.
 *
 * As in Erlang, a request monitors the server with an alias that lasts as
 * long as the monitor (bl_monitor_ex with BL_MONITOR_ALIAS_DEMONITOR, the
 * reference being the request's), and the server replies to that alias.
 * Giving a request up ends the monitor and the alias, and so does the
 * server's DOWN when it is delivered: a reply that comes after that, from
 * the server or from whoever answers for it, is dropped by the runtime
 * and never reaches the mailbox.  A pending request holds its monitor and
 * alias (a few bytes in the requester) until it is answered, given up
 * (bl_gen_server_receive_response(&id, NULL, 0), bl_gs_reqids_free), the
 * server exits, or the requester dies; a reply read with bl_recv and never
 * passed to check_response leaves it pending too.  Finding a reply's
 * alias costs the requester a lookup linear in its number of aliases.
 *
 * Differences from Erlang, forced by C:
 *  - A request id is a value the requester keeps; an answered one is
 *    zeroed, and a zeroed one gives -EINVAL (Erlang would wait in vain).
 *  - A process cannot monitor itself, so a request a server sends to
 *    itself (answered when it handles its own CALL) has a plain alias and
 *    no monitor; it ends the same ways.
 */

/* A request made by send_request.  Copy it freely within the requester. */
typedef struct bl_gs_reqid {
    bl_ref mon;    /* the server's monitor: its DOWN answers too; 0 = none (spent) */
    bl_ref ref;    /* the alias the reply goes to: mon itself (0 when nobody held the name) */
    bl_pid server; /* where the request went (BL_PID_NONE: nobody held the name) */
} bl_gs_reqid;

/* check_response's result for a message that is no answer (Erlang's no_reply). */
#define BL_GS_NO_REPLY 2
/* A collection's result when it is empty (Erlang's no_request). */
#define BL_GS_NO_REQUEST 3

/*
 * Sends request (tag, data[0..len)) to the server `to` and returns at once
 * with its id in *id.  Returns 0 (also for a dead server or a name nobody
 * holds: the answer is then noproc, as in Erlang), -EPERM, -EINVAL
 * (reserved tag, NULL id, malformed destination), -EHOSTUNREACH, -ENOMEM.
 */
int bl_gen_server_send_request(bl_gs_dest to, uint32_t tag, const void *data, size_t len,
                               bl_gs_reqid *id);

/*
 * Waits up to timeout_ms (0 = only look, BL_INFINITY) for the answer to
 * *id.  Returns the answer (0, -ECONNRESET, -ESRCH, with *reply as above;
 * *id is then zeroed), or -ETIMEDOUT: the request stays pending, *id
 * unchanged.  reply may be NULL.  -EINVAL for a zeroed id or bad timeout.
 */
int bl_gen_server_wait_response(bl_gs_reqid *id, bl_msg **reply, int64_t timeout_ms);

/*
 * As wait_response, but a timeout gives the request up: -ETIMEDOUT, and
 * its reply will never reach the mailbox (one already in the mailbox when
 * the time is up is returned, 0, as Erlang does).  *id is zeroed either way.
 */
int bl_gen_server_receive_response(bl_gs_reqid *id, bl_msg **reply, int64_t timeout_ms);

/*
 * Whether m, a message the caller received (it stays the caller's), is the
 * answer to *id: the answer as above (for 0, m is the reply, its data/len
 * the reply's; for -ECONNRESET, m is the DOWN), *id then zeroed; or
 * BL_GS_NO_REPLY, nothing changed.
 */
int bl_gen_server_check_response(bl_msg *m, bl_gs_reqid *id);

/*
 * A collection of requests, each with a label of the caller's choosing
 * (Erlang's request id collection).  Zeroed (or bl_gs_reqids_init) is
 * empty; bl_gs_reqids_free gives up what is still pending and frees it.
 * Lookups are linear in its size.
 */
typedef struct bl_gs_reqid_label {
    bl_gs_reqid id; /* the request */
    uint64_t label; /* its label */
} bl_gs_reqid_label;

typedef struct bl_gs_reqids {
    bl_gs_reqid_label *v; /* the requests, in the order added */
    size_t n;             /* how many */
    size_t cap;           /* room in v */
} bl_gs_reqids;

/* reqids_new: an empty collection. */
void bl_gs_reqids_init(bl_gs_reqids *c);
/* reqids_add: 0, -EEXIST when id is in c already, -EINVAL (NULL c, zeroed id), -ENOMEM. */
int bl_gs_reqids_add(bl_gs_reqids *c, bl_gs_reqid id, uint64_t label);
/* reqids_size. */
size_t bl_gs_reqids_size(const bl_gs_reqids *c);
/* reqids_to_list: copies up to max entries into out, in the order added; returns the size. */
size_t bl_gs_reqids_to_list(const bl_gs_reqids *c, bl_gs_reqid_label *out, size_t max);
/*
 * Process only, to give up the pending requests (as receive's timeout);
 * elsewhere it frees the memory only.  c is then empty.
 */
void bl_gs_reqids_free(bl_gs_reqids *c);

/* send_request/4: sends as bl_gen_server_send_request and adds the request with label. */
int bl_gs_reqids_send(bl_gs_reqids *c, uint64_t label, bl_gs_dest to, uint32_t tag,
                      const void *data, size_t len);

/*
 * wait_response/3: waits for the first answer to any request of c.
 * Returns that answer (0, -ECONNRESET, -ESRCH, *reply as above) with the
 * request and its label in *which (may be NULL), removing the request from
 * c when del; -ETIMEDOUT (everything stays pending); BL_GS_NO_REQUEST for
 * an empty c; -EPERM, -EINVAL.
 */
int bl_gs_reqids_wait(bl_gs_reqids *c, bool del, bl_msg **reply, bl_gs_reqid_label *which,
                      int64_t timeout_ms);
/*
 * receive_response/3: as bl_gs_reqids_wait, but a timeout gives up every
 * request of c (no late reply reaches the mailbox) and empties c.
 */
int bl_gs_reqids_receive(bl_gs_reqids *c, bool del, bl_msg **reply, bl_gs_reqid_label *which,
                         int64_t timeout_ms);
/*
 * check_response/3: whether m answers a request of c: that answer (as
 * bl_gen_server_check_response) with *which, BL_GS_NO_REPLY, or
 * BL_GS_NO_REQUEST for an empty c.
 */
int bl_gs_reqids_check(bl_gs_reqids *c, bl_msg *m, bool del, bl_gs_reqid_label *which);

/* ------------------------------------------------------------------------ */
/* sys                                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The sys calls are synchronous system messages, answered by the server
 * loop itself (even while suspended), with the call's errors: 0, -ESRCH,
 * -ETIMEDOUT, -ECONNRESET, -EDEADLK, -EINVAL for a process that is not a
 * gen_server (it does not answer: -ETIMEDOUT).
 */

/* The state pointer (not a copy: see the header comment). */
int bl_sys_get_state(bl_pid server, void **state, int64_t timeout_ms);
/*
 * Runs fn(state, arg) in the server between two messages; fn may change
 * the state or store a new pointer.
 */
int bl_sys_replace_state(bl_pid server, void (*fn)(void **state, void *arg), void *arg,
                         int64_t timeout_ms);
/* format_status's text (or a default line) into buf, NUL-terminated. */
int bl_sys_get_status(bl_pid server, char *buf, size_t len, int64_t timeout_ms);

/* One trace line, without newline.  Called in the server. */
typedef void (*bl_trace_fn)(bl_pid server, const char *line, void *arg);
/*
 * Turns tracing on or off: each message in and each reply out is written as
 * a line to fn (NULL = stderr, "*DBG* <pid> ...").
 */
int bl_sys_trace(bl_pid server, bool on, bl_trace_fn fn, void *arg, int64_t timeout_ms);
/* Suspends the server: until bl_sys_resume it answers only sys calls. */
int bl_sys_suspend(bl_pid server, int64_t timeout_ms);
int bl_sys_resume(bl_pid server, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_GEN_SERVER_H */
