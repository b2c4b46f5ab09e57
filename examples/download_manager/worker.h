/*
 * worker.h - one download's worker: a temporary gen_server, started by the
 * manager's DynamicSupervisor, that copies one source into its destination
 * file and reports its progress to the manager.  Private to the example:
 * the manager (manager.c) starts workers, the HTTP client (http_client.c)
 * works on a worker's state.
 *
 * A worker creates (or truncates) its destination in init, then waits for
 * the manager's DM_GO (sent once the manager monitors it, so that no end is
 * missed).  It streams an http(s):// source (http_client.h) or a local file,
 * every byte through the scheduler's io_uring, and reports progress with
 * DM_PROGRESS casts, at most every progress_bytes or progress_ms.  It exits
 * normally when the download completed, and with {shutdown, "what went
 * wrong"} when it failed.  Its descriptors live in its state, and its
 * release hook closes them whatever ended it, a kill included.
 */
#ifndef DM_WORKER_H
#define DM_WORKER_H

#include <beamline.h>
#include <beamline/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_client.h"
#include "manager.h"
#include "url.h"

/*
 * Messages between the manager and its workers.  They follow the manager's
 * call tags (1 to 4, manager.c), so that no two tags of the example are equal.
 */
enum {
    DM_PROGRESS = 5, /* a worker's cast to the manager: a dm_report */
    DM_GO,           /* the manager's plain message to a worker: start now (it is monitored) */
};

/* A progress report. */
typedef struct dm_report {
    int id;        /* the download */
    int64_t bytes; /* written so far */
    int64_t size;  /* -1 while unknown */
} dm_report;

/* What the manager hands a worker (copied by the supervisor, then by the worker). */
typedef struct dm_job {
    int id;                    /* the download */
    bl_pid manager;            /* where reports go */
    dm_url url;                /* the source, parsed */
    char dest[DM_PATH_MAX];    /* the destination file */
    int64_t timeout_ms;        /* connect and per-receive timeout */
    int64_t progress_bytes;    /* report after this many new bytes ... */
    int64_t progress_ms;       /* ... or after this long with new bytes */
    bl_tls_ctx *tls;           /* https: the manager's client context, or NULL (the worker takes
                                  a reference of its own, or makes one at a redirect to https) */
    char ca_file[DM_PATH_MAX]; /* what a context made by the worker trusts ("": the system's) */
} dm_job;

/*
 * A worker's state.  The descriptors live here, not on the stack, so that
 * release closes them whatever ended the process (a kill included).  A TLS
 * connection owns its socket (sock is -1 then) and goes with the process
 * by itself (its cleanup handler, after release).
 */
typedef struct dm_worker {
    dm_job job;               /* what to do */
    int sock;                 /* the HTTP connection's socket, or -1 */
    bl_tls_conn *tls;         /* an https connection, or NULL */
    dm_transport io;          /* the exchange's reads and writes, on sock or tls */
    int in;                   /* the local source, or -1 */
    int out;                  /* the destination, or -1 */
    int64_t bytes;            /* written to out */
    int64_t size;             /* expected, -1 while unknown */
    int64_t rep_bytes;        /* bytes at the last report */
    int64_t rep_ms;           /* time of the last report */
    char error[DM_ERROR_MAX]; /* why it failed */
} dm_worker;

/*
 * Starts a worker linked to the caller (a bl_start_fn, run by the
 * supervisor): arg is a dm_job.  0, or the error that stopped its init
 * (opening the destination, for one), as a negative errno.
 */
int dm_worker_start(void *arg, bl_pid *pid);

/* Milliseconds on the monotonic clock: the manager's and the workers' times. */
int64_t dm_now_ms(void);

/* Records why the download failed in w->error; returns -1. */
__attribute__((format(printf, 2, 3))) int dm_worker_fail(dm_worker *w, const char *fmt, ...);
/* Tells the manager how far w is: always when forced, else throttled. */
void dm_worker_report(dm_worker *w, bool force);
/* Appends p[0..n) to the destination (and reports, throttled): 0, or -1 via dm_worker_fail. */
int dm_worker_write(dm_worker *w, const char *p, size_t n);
/*
 * Closes *fd through the ring, clearing the field first: if a kill comes
 * during the close, release must not close the number again (by then it may
 * name another file).
 */
int dm_close_fd(int *fd);

#endif
