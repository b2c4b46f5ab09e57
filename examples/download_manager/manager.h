/*
 * manager.h - the download manager's API: a gen_server that keeps every
 * download's status and runs each download in a worker process of its own
 * (worker.h), under a DynamicSupervisor linked to it.
 *
 *   DownloadManager (gen_server: the table of downloads, traps exits)
 *   `-- workers (DynamicSupervisor, linked to the manager)
 *       `-- one temporary worker (gen_server) per running download
 *
 * The functions below are called from any process; each is a call to the
 * manager, answered once the manager has done what it says.
 */
#ifndef DM_MANAGER_H
#define DM_MANAGER_H

#include <beamline.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

#define DM_PATH_MAX  1024 /* a destination path, NUL included */
#define DM_NAME_MAX  128  /* a download's display name */
#define DM_ERROR_MAX 256  /* why a download failed */

/* Where a download is.  The last three are final. */
typedef enum dm_state {
    DM_QUEUED = 0,  /* waiting for a free slot (dm_opts.max_active) */
    DM_DOWNLOADING, /* a worker runs it */
    DM_COMPLETED,   /* every byte is in dest */
    DM_FAILED,      /* error says why; the partial file was removed */
    DM_CANCELLED,   /* dm_cancel; the partial file was removed */
} dm_state;

/* One download, as the manager knows it (the seed's Download struct). */
typedef struct dm_download {
    int id;                   /* 1, 2, ... in the order of dm_add */
    dm_state status;          /* see dm_state */
    char name[DM_NAME_MAX];   /* the source's last path segment */
    char src[DM_URL_MAX];     /* as given to dm_add */
    char dest[DM_PATH_MAX];   /* as given to dm_add */
    int64_t size;             /* total bytes, -1 while unknown */
    int64_t bytes_downloaded; /* bytes written to dest so far */
    int percent;              /* 0..100, -1 while the size is unknown */
    int64_t speed;            /* bytes/s, averaged since the worker started */
    int64_t elapsed_ms;       /* since the worker started (0 while queued) */
    char error[DM_ERROR_MAX]; /* DM_FAILED: why; else "" */
    bl_pid pid;               /* the worker while DM_DOWNLOADING, else BL_PID_NONE */
} dm_download;

/* Options; a zeroed struct (or NULL) means the defaults. */
typedef struct dm_opts {
    bl_pid subscriber;      /* gets a DM_EVENT at every status change; NONE = nobody */
    int max_active;         /* downloads running at once, the rest queue; 0 = no limit */
    int64_t timeout_ms;     /* connect and per-receive timeout (0 = 30000) */
    int64_t progress_bytes; /* a worker reports after this many new bytes (0 = 64 KiB) */
    int64_t progress_ms;    /* ... or after this long with new bytes (0 = 100) */
    const char *ca_file;    /* https: PEM CAs to trust, copied (NULL = the system's store) */
} dm_opts;

/* The subscriber's message: data is a dm_download, the state after the change. */
#define DM_EVENT 0x444d0001u

/* "queued", "downloading", ... */
const char *dm_state_name(dm_state s);
/* True for the states a download never leaves: completed, failed, cancelled. */
bool dm_state_is_final(dm_state s);

/*
 * Starts a manager (not linked to the caller) with its supervisor of
 * workers.  0, -EINVAL (a negative option), -ENAMETOOLONG (ca_file), or
 * bl_gen_server_start's errors.  The TLS context of https downloads is made
 * (ca_file read) when the first of them starts.
 */
int dm_start(bl_pid *mgr, const dm_opts *opts);
/*
 * Adds a download of src into the file dest (created or overwritten) and
 * returns its id (> 0), or: -EINVAL / -EPROTONOSUPPORT / -ENAMETOOLONG for a
 * source dm_parse_source rejects, -EINVAL for an empty dest, -ENAMETOOLONG
 * for a dest of DM_PATH_MAX bytes or more, or a call error (-ESRCH,
 * -ETIMEDOUT, ...).  Problems found while downloading (an unwritable dest,
 * a refused connection, HTTP 404, ...) make the download DM_FAILED instead.
 */
int dm_add(bl_pid mgr, const char *src, const char *dest);
/* The download id's state into *out.  0, -ENOENT (no such id), or a call error. */
int dm_status(bl_pid mgr, int id, dm_download *out);
/* Copies up to max downloads into out, by id.  Returns how many there are, or a call error. */
int dm_list(bl_pid mgr, dm_download *out, size_t max);
/*
 * Cancels a download: a queued one is dropped, a running one's worker is
 * terminated through the supervisor, and its partial file removed.  Returns
 * once that is done: 0, -ENOENT (no such id), -EALREADY (it had already
 * ended: completed, failed or cancelled), or a call error.
 */
int dm_cancel(bl_pid mgr, int id);
/* Stops the manager and every worker (their partial files are removed).  0 or a stop error. */
int dm_stop(bl_pid mgr);

#endif
