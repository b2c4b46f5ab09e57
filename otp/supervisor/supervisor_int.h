/*
 * otp/supervisor/supervisor_int.h - what Supervisor (supervisor.c),
 * DynamicSupervisor and PartitionSupervisor share (internal to the otp
 * layer): restart intensity (intensity.c), shutting children down
 * (shutdown.c), spec checks (child_spec.c), and the call protocol all three
 * answer (calls.c).  net/listener.c uses bl__supervisor_start_ext too,
 * for its release hook.
 *
 * Every function that waits (bl__sup_terminate, the calls) must run in a
 * process; the intensity and the spec checks touch only their arguments.
 */
#ifndef BL_OTP_SUPERVISOR_INT_H
#define BL_OTP_SUPERVISOR_INT_H

#include "beamline/gen_server.h"
#include "beamline/supervisor.h"

/* ---- intensity.c ---- */

/* Restart intensity: max restarts within a period. */
typedef struct bl__sup_intensity bl__sup_intensity;
/* Checks and resolves max_restarts / max_seconds (0: the defaults).  0 or -EINVAL. */
int bl__sup_intensity_opts(int max_restarts, int max_seconds, int *max, int64_t *period_ms);
bl__sup_intensity *bl__sup_intensity_new(int max, int64_t period_ms);
void bl__sup_intensity_free(bl__sup_intensity *in);
/* Records a restart; false when the intensity is exceeded. */
bool bl__sup_intensity_add(bl__sup_intensity *in);

/* ---- shutdown.c ---- */

/* A child's shutdown time in ms (BL_SHUTDOWN_DEFAULT resolved by type). */
int64_t bl__sup_shutdown_of(int64_t shutdown, bl_child_type type);
/* Shuts n children down at once, each killed at its own deadline. */
void bl__sup_terminate(const bl_pid *pids, const int64_t *shutdown, size_t n);

/* ---- child_spec.c ---- */

/* Bytes a copy of n checked specs takes with their ids and copied args (arg_len > 0), at
 * a 16-byte aligned address; 0 if that overflows. */
size_t bl__sup_specs_bytes(const bl_child_spec *c, size_t n);
/* Copies n specs into dst (bl__sup_specs_bytes of room), their ids and copied args after
 * them, the copies' pointers set to those. */
void bl__sup_specs_copy(bl_child_spec *dst, const bl_child_spec *src, size_t n);

/* Fills *err (if any) with kind, index, id (may be NULL) and error; returns error. */
int bl__sup_set_error(bl_sup_error *err, bl_sup_error_kind kind, int index, const char *id,
                      int error);
/*
 * Checks every spec of a list, that ids are unique and that significant
 * children are allowed by auto_shutdown.  0, -EINVAL or -ENOMEM.
 */
int bl__sup_check_specs(const bl_child_spec *children, size_t n, bl_auto_shutdown auto_shutdown,
                        bl_sup_error *err);
/*
 * Runs a child's start function (start_info when set, else start) in the
 * calling supervisor.  Returns 0 (*pid is the child), BL_GS_IGNORED, or the
 * start's error (positive results other than BL_GS_IGNORED are -EPROTO).
 * After an error *pid is what the start left there (the holder of a taken
 * name with -EEXIST), else BL_PID_NONE.  info, if not NULL, gets the info
 * of a successful start (len 0 otherwise).
 */
int bl__sup_start(bl_start_fn start, bl_start_info_fn start_info, void *arg, bl_pid *pid,
                  bl_child_info *info);

/* ---- calls.c ---- */

/* A supervisor call with no timeout. */
int bl__sup_call(bl_pid sup, uint32_t tag, const void *req, size_t len, bl_msg **reply);

/* The reply of most supervisor calls (all three kinds). */
typedef struct bl__sup_reply {
    int32_t rc;  /* result code */
    int32_t aux; /* the partition, for a route */
    bl_pid pid;  /* a child, when there is one */
} bl__sup_reply;

/* A child spec as start_child sends it; arg_len bytes of arg follow. */
typedef struct bl__sup_wire {
    bl_start_fn start;
    bl_start_info_fn start_info;
    void *arg;
    size_t arg_len;
    int64_t shutdown;
    int32_t restart;
    int32_t type;
    bool significant;
    char id[BL_SUP_ID_MAX]; /* "" when the spec has none (dynamic supervisors) */
} bl__sup_wire;

/* Replies to the call being handled with {rc, aux, pid}. */
void bl__sup_reply_with(bl_gs_result *r, int rc, bl_pid pid, int aux);
/* As bl__sup_reply_with, followed by the info's bytes when info has any. */
void bl__sup_reply_info(bl_gs_result *r, int rc, bl_pid pid, const bl_child_info *info);
/*
 * bl__sup_call, then decodes its bl__sup_reply into *rep (rc -EPROTO when
 * malformed).  Returns 0, or the call's error (*rep untouched).
 */
int bl__sup_call_reply(bl_pid sup, uint32_t tag, const void *req, size_t len, bl__sup_reply *rep);
/* As bl__sup_call_reply; info (if not NULL) gets the info bytes after the reply (len 0: none). */
int bl__sup_call_reply_info(bl_pid sup, uint32_t tag, const void *req, size_t len,
                            bl__sup_reply *rep, bl_child_info *info);
/* Sends spec (checked) as a bl__sup_wire with a call tagged tag: as bl__sup_call_reply_info. */
int bl__sup_call_spec(bl_pid sup, uint32_t tag, const bl_child_spec *spec, bl__sup_reply *rep,
                      bl_child_info *info);
/* The wire of a start_child request, or NULL when m is malformed. */
const bl__sup_wire *bl__sup_wire_of(const bl_msg *m);
/* which_children / count_children through a call with that tag (all three kinds). */
int bl__sup_which(bl_pid sup, uint32_t tag, bl_sup_child *out, size_t max);
int bl__sup_count(bl_pid sup, uint32_t tag, bl_sup_counts *out);

/* ---- supervisor.c: the partition supervisor's base ---- */

/*
 * A supervisor of N partition children ("0".."N-1") with a release hook:
 * release(ctx), if not NULL, runs exactly once, after the supervisor is
 * gone, or before this returns when start fails.
 */
int bl__supervisor_start_ext(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts, int partitions, void (*release)(void *),
                             void *ctx);
/* The child of partition u mod N (a call answered by the supervisor). */
int bl__supervisor_route(bl_pid sup, uint64_t u, bl_pid *pid, int *partition);
/* The number of partitions (>= 0), or -EINVAL for a plain supervisor. */
int bl__supervisor_partitions(bl_pid sup);
/* Resizes to n partitions: the previous number, or an error (nothing changed). */
int bl__supervisor_resize(bl_pid sup, int n);

/* ---- report.c ---- */

/* The child a report is about. */
typedef struct bl__sup_offender {
    const char *id;     /* its id ("" or NULL: a dynamic supervisor's child, "undefined") */
    bl_pid pid;         /* its pid, or BL_PID_NONE */
    bl_restart restart; /* permanent, transient, temporary */
    bl_child_type type; /* worker or supervisor */
} bl__sup_offender;

/*
 * A supervisor report (error) from the supervisor's process: context is
 * start_error, child_terminated or shutdown; the exit reason, or (reason
 * NULL) why in words; err, when not 0, the negative errno a start failed with.
 */
void bl__sup_report(const char *context, const bl__sup_offender *o, const bl_reason *reason,
                    const char *why, int err);
/* A progress report (info): the child started. */
void bl__sup_progress(const bl__sup_offender *o);

#endif /* BL_OTP_SUPERVISOR_INT_H */
