/*
 * worker.c - one download's worker (see worker.h): the gen_server, the
 * throttled progress reports, and the copy of a local file.  HTTP sources
 * are fetched by http_client.c, through the same state and helpers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "worker.h"

/* The receive / copy buffer: on the worker's stack, which outlives any I/O on it. */
#define DM_BUF (32 * 1024)

int64_t dm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dm_worker_fail(dm_worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
    return -1;
}

int dm_close_fd(int *fd)
{
    int f = *fd;
    *fd = -1;
    return f >= 0 ? bl_io_close(f) : 0;
}

void dm_worker_report(dm_worker *w, bool force)
{
    int64_t now = dm_now_ms(), fresh = w->bytes - w->rep_bytes;
    if (!force &&
        (fresh == 0 || (fresh < w->job.progress_bytes && now - w->rep_ms < w->job.progress_ms)))
        return;
    dm_report r = {w->job.id, w->bytes, w->size};
    bl_gen_server_cast(w->job.manager, DM_PROGRESS, &r, sizeof r);
    w->rep_bytes = w->bytes;
    w->rep_ms = now;
}

int dm_worker_write(dm_worker *w, const char *p, size_t n)
{
    if (n == 0) return 0;
    ssize_t rc = bl_io_pwrite_all(w->out, p, n, (off_t)w->bytes, BL_INFINITY);
    if (rc != (ssize_t)n)
        return dm_worker_fail(w, "write %s: %s", w->job.dest,
                              rc < 0 ? strerror((int)-rc) : "short write");
    w->bytes += (int64_t)n;
    dm_worker_report(w, false);
    return 0;
}

/* ---- local files ---- */

static int file_copy(dm_worker *w, char *buf, size_t cap)
{
    const char *path = w->job.url.path;
    struct statx sx;
    int rc = bl_io_statx(AT_FDCWD, path, 0, STATX_TYPE | STATX_SIZE, &sx);
    if (rc < 0) return dm_worker_fail(w, "%s: %s", path, strerror(-rc));
    if (S_ISDIR(sx.stx_mode)) return dm_worker_fail(w, "%s: %s", path, strerror(EISDIR));
    w->in = bl_io_open(path, O_RDONLY, 0);
    if (w->in < 0) return dm_worker_fail(w, "%s: %s", path, strerror(-w->in));
    w->size = S_ISREG(sx.stx_mode) ? (int64_t)sx.stx_size : -1;
    dm_worker_report(w, true);
    for (;;) {
        ssize_t n = bl_io_pread(w->in, buf, cap, (off_t)w->bytes, BL_INFINITY);
        if (n < 0) return dm_worker_fail(w, "read %s: %s", path, strerror((int)-n));
        if (n == 0) break;
        if (dm_worker_write(w, buf, (size_t)n) < 0) return -1;
    }
    /* A file that changed size meanwhile: what was read is the download. */
    w->size = w->bytes;
    return 0;
}

/* ---- the worker's gen_server ---- */

/* init's failure: the errno travels in a {shutdown, errno} reason to dm_worker_start. */
static void stop_errno(bl_gs_result *r, int err)
{
    int e = -err;
    bl_reason why = {.kind = BL_SHUTDOWN, .detail = &e, .detail_len = sizeof e};
    bl_gs_stop(r, &why);
}

static void worker_init(void *arg, void **state, bl_gs_result *r)
{
    const dm_job *job = arg;
    /*
     * The destination first, so that the manager knows it exists once we
     * run.  (Opened before anything is allocated: release does not run for a
     * worker killed during init.)
     */
    int fd = bl_io_open(job->dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        stop_errno(r, fd);
        return;
    }
    dm_worker *w = calloc(1, sizeof *w);
    if (!w) {
        bl_io_close(fd);
        stop_errno(r, -ENOMEM);
        return;
    }
    w->job = *job;
    bl_tls_ctx_up_ref(w->job.tls); /* the manager's may go first; release drops this one */
    w->sock = w->in = -1;
    w->out = fd;
    w->size = -1;
    w->rep_ms = dm_now_ms();
    *state = w;
}

/* The download itself, once the manager says go (it monitors us by then). */
static void worker_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    dm_worker *w = *state;
    if (m->tag != DM_GO) return;
    char buf[DM_BUF];
    int rc = w->job.url.kind == DM_SRC_HTTP ? dm_http_fetch(w, buf, sizeof buf)
                                            : file_copy(w, buf, sizeof buf);
    dm_http_close(w);
    if (rc == 0) {
        int c = dm_close_fd(&w->out);
        if (c < 0) rc = dm_worker_fail(w, "close %s: %s", w->job.dest, strerror(-c));
    }
    dm_worker_report(w, true);
    if (rc == 0) {
        bl_gs_stop(r, NULL);
        return;
    }
    bl_reason why = {.kind = BL_SHUTDOWN, .detail = w->error, .detail_len = strlen(w->error)};
    bl_gs_stop(r, &why);
}

/*
 * After the process, whatever ended it: its descriptors go with it.  A TLS
 * connection still open is not ours to free here: its cleanup handler runs
 * next and closes it.
 */
static void worker_release(void *state)
{
    dm_worker *w = state;
    bl_tls_ctx_free(w->job.tls);
    if (w->sock >= 0) close(w->sock);
    if (w->in >= 0) close(w->in);
    if (w->out >= 0) close(w->out);
    free(w);
}

static const bl_gen_server worker_callbacks = {
    .init = worker_init,
    .handle_info = worker_info,
    .release = worker_release,
};

int dm_worker_start(void *arg, bl_pid *pid)
{
    bl_msg *err = NULL;
    bl_gen_server_opts o = {.error = &err};
    int rc = bl_gen_server_start_link(pid, &worker_callbacks, arg, &o);
    bl_reason why;
    int e;
    if (rc == -ECHILD && err && bl_msg_reason(err, &why) == 0 && why.kind == BL_SHUTDOWN &&
        why.detail_len == sizeof e) {
        memcpy(&e, why.detail, sizeof e);
        rc = -e;
    }
    bl_msg_free(err);
    return rc;
}
