/*
 * manager.c - the DownloadManager gen_server and its client functions (see
 * manager.h).  The manager keeps a table of downloads, starts a worker per
 * download under its DynamicSupervisor (at most max_active at once, the
 * rest queued), monitors each worker and turns its DOWN into a status:
 * normal is completed, {shutdown, why} is failed with that error, killed is
 * failed with "killed".  A download that does not complete has its partial
 * file removed here, so a destination file exists only for a completed
 * download.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager.h"
#include "worker.h"

/* The client functions' calls (the workers' tags follow them: worker.h). */
enum {
    DM_ADD = 1,
    DM_STATUS,
    DM_LIST,
    DM_CANCEL,
};

/* DM_ADD's request. */
typedef struct add_req {
    char src[DM_URL_MAX];   /* the source */
    char dest[DM_PATH_MAX]; /* the destination file */
} add_req;

const char *dm_state_name(dm_state s)
{
    static const char *const names[] = {"queued", "downloading", "completed", "failed",
                                        "cancelled"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

bool dm_state_is_final(dm_state s)
{
    return s == DM_COMPLETED || s == DM_FAILED || s == DM_CANCELLED;
}

/* ---- the manager ---- */

typedef struct entry {
    dm_download d;    /* what clients see */
    dm_url url;       /* d.src, parsed */
    bl_ref mon;       /* the worker's monitor */
    bool created;     /* the worker created d.dest */
    int64_t start_ms; /* when the worker started */
    int64_t end_ms;   /* when it ended */
} entry;

typedef struct manager {
    dm_opts opts;              /* with the defaults filled in (ca_file: NULL, see below) */
    char ca_file[DM_PATH_MAX]; /* opts.ca_file's copy, "" for the system's store */
    bl_tls_ctx *tls;           /* https downloads' client context, made at the first one */
    bl_pid sup;                /* the workers' supervisor */
    entry *v;                  /* downloads, v[id - 1] */
    size_t n, cap;             /* entries used, allocated */
    int active;                /* downloads running */
} manager;

/* The download as a client sees it, speed and percent computed now. */
static void snapshot(const entry *e, dm_download *out)
{
    *out = e->d;
    if (e->start_ms) {
        int64_t end = dm_state_is_final(e->d.status) ? e->end_ms : dm_now_ms();
        out->elapsed_ms = end - e->start_ms;
        out->speed = out->elapsed_ms > 0 ? e->d.bytes_downloaded * 1000 / out->elapsed_ms : 0;
    }
    if (e->d.status == DM_COMPLETED)
        out->percent = 100;
    else if (e->d.size > 0)
        out->percent = (int)(e->d.bytes_downloaded * 100 / e->d.size);
    else
        out->percent = e->d.size == 0 ? 0 : -1;
}

static void notify(manager *m, const entry *e)
{
    if (!m->opts.subscriber) return;
    dm_download d;
    snapshot(e, &d);
    bl_send(m->opts.subscriber, DM_EVENT, &d, sizeof d);
}

static long unlink_fn(void *arg)
{
    return unlink(arg) < 0 ? -errno : 0;
}

/*
 * Removes what the worker wrote.  unlink may block: it runs on the dirty
 * pool, with the path on this stack, which a kill keeps until unlink returns
 * (the entries may be freed sooner).
 */
static void discard(entry *e)
{
    char path[DM_PATH_MAX];
    memcpy(path, e->d.dest, sizeof path);
    if (e->created) bl_dirty_run(unlink_fn, path, NULL);
    e->created = false;
}

/* Marks e ended, without its worker. */
static void finish(manager *m, entry *e, dm_state st)
{
    if (e->d.status == DM_DOWNLOADING) m->active--;
    e->d.status = st;
    e->d.pid = BL_PID_NONE;
    e->end_ms = dm_now_ms();
    if (st != DM_COMPLETED) discard(e);
    notify(m, e);
}

static void complete(manager *m, entry *e)
{
    if (e->d.size < 0) e->d.size = e->d.bytes_downloaded;
    finish(m, e, DM_COMPLETED);
}

__attribute__((format(printf, 3, 4))) static void failed(manager *m, entry *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->d.error, sizeof e->d.error, fmt, ap);
    va_end(ap);
    finish(m, e, DM_FAILED);
}

/* Starts e's worker under the supervisor, monitors it, then lets it go. */
static void start_worker(manager *m, entry *e)
{
    if (e->url.tls && !m->tls) {
        bl_tls_opts o = {.ca_file = m->ca_file[0] ? m->ca_file : NULL};
        m->tls = bl_tls_client_ctx(&o);
        if (!m->tls) {
            failed(m, e, "TLS: %s", bl_tls_error(NULL));
            return;
        }
    }
    dm_job job = {.id = e->d.id,
                  .manager = bl_self(),
                  .url = e->url,
                  .timeout_ms = m->opts.timeout_ms,
                  .progress_bytes = m->opts.progress_bytes,
                  .progress_ms = m->opts.progress_ms,
                  .tls = e->url.tls ? m->tls : NULL};
    snprintf(job.dest, sizeof job.dest, "%s", e->d.dest);
    memcpy(job.ca_file, m->ca_file, sizeof job.ca_file);
    bl_child_spec spec = {.start = dm_worker_start,
                          .arg = &job,
                          .arg_len = sizeof job,
                          .restart = BL_RESTART_TEMPORARY,
                          .shutdown = 2000};
    bl_pid pid = BL_PID_NONE;
    e->start_ms = dm_now_ms();
    int rc = bl_dynamic_supervisor_start_child(m->sup, &spec, &pid);
    if (rc != 0) {
        failed(m, e, "open %s: %s", e->d.dest, strerror(rc < 0 ? -rc : ECHILD));
        return;
    }
    e->created = true;
    rc = bl_monitor(pid, &e->mon);
    if (rc != 0) {
        bl_dynamic_supervisor_terminate_child(m->sup, pid);
        failed(m, e, "monitor: %s", strerror(-rc));
        return;
    }
    e->d.status = DM_DOWNLOADING;
    e->d.pid = pid;
    m->active++;
    bl_send(pid, DM_GO, NULL, 0);
    notify(m, e);
}

/* Fills the free slots with queued downloads, oldest first. */
static void start_queued(manager *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->opts.max_active && m->active >= m->opts.max_active) return;
        if (m->v[i].d.status == DM_QUEUED) start_worker(m, &m->v[i]);
    }
}

static entry *find(manager *m, const bl_msg *req)
{
    int id;
    if (req->len != sizeof id) return NULL;
    memcpy(&id, req->data, sizeof id);
    return id >= 1 && (size_t)id <= m->n ? &m->v[id - 1] : NULL;
}

static bool same_file(const char *a, const char *b)
{
    struct statx x, y;
    return bl_io_statx(AT_FDCWD, a, 0, STATX_INO, &x) == 0 &&
           bl_io_statx(AT_FDCWD, b, 0, STATX_INO, &y) == 0 && x.stx_ino == y.stx_ino &&
           x.stx_dev_major == y.stx_dev_major && x.stx_dev_minor == y.stx_dev_minor;
}

static int add(manager *m, const bl_msg *req)
{
    add_req q;
    if (req->len != sizeof q) return -EINVAL;
    memcpy(&q, req->data, sizeof q);
    q.src[sizeof q.src - 1] = q.dest[sizeof q.dest - 1] = 0;
    if (!q.dest[0]) return -EINVAL;
    dm_url u;
    int rc = dm_parse_source(q.src, &u);
    if (rc) return rc;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        entry *v = realloc(m->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    entry *e = &m->v[m->n++];
    memset(e, 0, sizeof *e);
    e->url = u;
    e->d.id = (int)m->n;
    e->d.size = -1;
    e->d.percent = -1;
    memcpy(e->d.src, q.src, sizeof q.src);
    memcpy(e->d.dest, q.dest, sizeof q.dest);
    dm_guess_name(q.src, e->d.name, sizeof e->d.name);
    notify(m, e);
    /* Copying a file onto itself would truncate it first. */
    if (u.kind == DM_SRC_FILE && same_file(u.path, q.dest))
        failed(m, e, "source and destination are the same file");
    return e->d.id;
}

static int cancel(manager *m, entry *e)
{
    if (!e) return -ENOENT;
    if (dm_state_is_final(e->d.status)) return -EALREADY;
    if (e->d.status == DM_QUEUED) {
        finish(m, e, DM_CANCELLED);
        return 0;
    }
    /* Terminate the worker, then take its DOWN here: it may have completed meanwhile. */
    bl_pid pid = e->d.pid;
    if (bl_dynamic_supervisor_terminate_child(m->sup, pid) < 0) {
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(pid, &kill);
    }
    bl_msg *down = NULL;
    bl_recv(&down, bl_match_ref, &e->mon, BL_INFINITY, 0);
    bl_reason why;
    bool completed = down && bl_msg_reason(down, &why) == 0 && why.kind == BL_NORMAL;
    bl_msg_free(down);
    if (completed) {
        /* Its last report came before its DOWN: the progress casts are all in. */
        complete(m, e);
        return -EALREADY;
    }
    finish(m, e, DM_CANCELLED);
    return 0;
}

static void mgr_init(void *arg, void **state, bl_gs_result *r)
{
    manager *m = calloc(1, sizeof *m);
    if (!m) {
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN));
        return;
    }
    m->opts = *(const dm_opts *)arg;
    if (m->opts.ca_file) snprintf(m->ca_file, sizeof m->ca_file, "%s", m->opts.ca_file);
    m->opts.ca_file = NULL; /* the caller's string need not outlive dm_start */
    if (!m->opts.timeout_ms) m->opts.timeout_ms = 30000;
    if (!m->opts.progress_bytes) m->opts.progress_bytes = 64 * 1024;
    if (!m->opts.progress_ms) m->opts.progress_ms = 100;
    /* The supervisor's exit comes as a message: the manager then stops with its reason. */
    bl_trap_exit(true);
    if (bl_dynamic_supervisor_start_link(&m->sup, NULL) != 0) {
        free(m);
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN));
        return;
    }
    *state = m;
}

static void mgr_call(void **state, const bl_msg *req, bl_gs_result *r)
{
    manager *m = *state;
    int rc;
    switch (req->tag) {
    case DM_ADD:
        rc = add(m, req);
        bl_gs_reply(r, &rc, sizeof rc);
        if (rc > 0) start_queued(m);
        return;
    case DM_STATUS: {
        entry *e = find(m, req);
        dm_download d;
        rc = -ENOENT;
        if (!e) {
            bl_gs_reply(r, &rc, sizeof rc);
            return;
        }
        snapshot(e, &d);
        bl_gs_reply(r, &d, sizeof d);
        return;
    }
    case DM_LIST: {
        dm_download *all = malloc((m->n ? m->n : 1) * sizeof *all);
        if (!all) {
            rc = -ENOMEM;
            bl_gs_reply(r, &rc, sizeof rc);
            return;
        }
        for (size_t i = 0; i < m->n; i++) snapshot(&m->v[i], &all[i]);
        bl_gs_reply(r, all, m->n * sizeof *all);
        free(all);
        return;
    }
    case DM_CANCEL:
        rc = cancel(m, find(m, req));
        bl_gs_reply(r, &rc, sizeof rc);
        start_queued(m);
        return;
    }
}

/* A worker's progress report. */
static void mgr_cast(void **state, const bl_msg *msg, bl_gs_result *r)
{
    manager *m = *state;
    dm_report rep;
    if (msg->tag != DM_PROGRESS || msg->len != sizeof rep) return;
    memcpy(&rep, msg->data, sizeof rep);
    if (rep.id < 1 || (size_t)rep.id > m->n) return;
    entry *e = &m->v[rep.id - 1];
    /* A report that was on its way when the download ended changes nothing. */
    if (e->d.status != DM_DOWNLOADING) return;
    e->d.bytes_downloaded = rep.bytes;
    e->d.size = rep.size;
}

/* A worker's DOWN: how its download ended. */
static void worker_down(manager *m, const bl_msg *msg)
{
    entry *e = NULL;
    for (size_t i = 0; i < m->n && !e; i++)
        if (m->v[i].d.status == DM_DOWNLOADING && m->v[i].mon == msg->ref) e = &m->v[i];
    if (!e) return;
    bl_reason why;
    if (bl_msg_reason(msg, &why) != 0) why = BL_REASON(BL_CUSTOM);
    switch (why.kind) {
    case BL_NORMAL:
        complete(m, e);
        break;
    case BL_SHUTDOWN:
        if (why.detail_len)
            failed(m, e, "%.*s", (int)why.detail_len, (const char *)why.detail);
        else
            failed(m, e, "shut down");
        break;
    case BL_KILLED:
        failed(m, e, "killed");
        break;
    case BL_STACK_OVERFLOW:
        failed(m, e, "stack overflow");
        break;
    default:
        failed(m, e, "crashed (reason %d, code %d)", why.kind, why.code);
        break;
    }
    start_queued(m);
}

static void mgr_info(void **state, const bl_msg *msg, bl_gs_result *r)
{
    manager *m = *state;
    if (msg->tag == BL_TAG_DOWN) {
        worker_down(m, msg);
    } else if (msg->tag == BL_TAG_EXIT && msg->from == m->sup) {
        /* The supervisor is gone, and every worker with it: so are we. */
        bl_reason why;
        if (bl_msg_reason(msg, &why) != 0) why = BL_REASON(BL_SHUTDOWN);
        m->sup = BL_PID_NONE;
        bl_gs_stop(r, &why);
    }
}

static void mgr_terminate(void **state, const bl_reason *reason)
{
    manager *m = *state;
    if (m->sup) bl_supervisor_stop(m->sup, NULL, 10000);
    m->sup = BL_PID_NONE;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].d.status == DM_DOWNLOADING) discard(&m->v[i]);
}

static void mgr_release(void *state)
{
    manager *m = state;
    bl_tls_ctx_free(m->tls); /* running workers hold references of their own */
    free(m->v);
    free(m);
}

static const bl_gen_server manager_callbacks = {
    .init = mgr_init,
    .handle_call = mgr_call,
    .handle_cast = mgr_cast,
    .handle_info = mgr_info,
    .terminate = mgr_terminate,
    .release = mgr_release,
};

/* ---- the client functions ---- */

/* Calls may wait behind a cancel, which waits for a worker to go. */
#define DM_CALL_TIMEOUT 30000

int dm_start(bl_pid *mgr, const dm_opts *opts)
{
    dm_opts o = {0};
    if (opts) o = *opts;
    if (o.max_active < 0 || o.timeout_ms < 0 || o.progress_bytes < 0 || o.progress_ms < 0)
        return -EINVAL;
    if (o.ca_file && strlen(o.ca_file) >= DM_PATH_MAX) return -ENAMETOOLONG;
    /* init runs before start returns, so a pointer to a local is fine here. */
    return bl_gen_server_start(mgr, &manager_callbacks, &o, NULL);
}

/* A call whose reply is an int. */
static int call_int(bl_pid mgr, uint32_t tag, const void *data, size_t len)
{
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, tag, data, len, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len == sizeof rc)
            memcpy(&rc, reply->data, sizeof rc);
        else
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

int dm_add(bl_pid mgr, const char *src, const char *dest)
{
    if (!src || !dest || !*src || !*dest) return -EINVAL;
    if (strlen(src) >= DM_URL_MAX || strlen(dest) >= DM_PATH_MAX) return -ENAMETOOLONG;
    add_req *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    strcpy(q->src, src);
    strcpy(q->dest, dest);
    int rc = call_int(mgr, DM_ADD, q, sizeof *q);
    free(q);
    return rc;
}

int dm_status(bl_pid mgr, int id, dm_download *out)
{
    if (!out) return -EINVAL;
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, DM_STATUS, &id, sizeof id, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len == sizeof *out)
            memcpy(out, reply->data, sizeof *out);
        else if (reply->len == sizeof rc)
            memcpy(&rc, reply->data, sizeof rc);
        else
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

int dm_list(bl_pid mgr, dm_download *out, size_t max)
{
    if (!out && max) return -EINVAL;
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call(mgr, DM_LIST, NULL, 0, &reply, DM_CALL_TIMEOUT);
    if (rc == 0) {
        if (reply->len % sizeof *out == 0) {
            size_t n = reply->len / sizeof *out;
            if (n && max) memcpy(out, reply->data, (n < max ? n : max) * sizeof *out);
            rc = (int)n;
        } else if (reply->len == sizeof rc) {
            memcpy(&rc, reply->data, sizeof rc);
        } else {
            rc = -EPROTO;
        }
    }
    bl_msg_free(reply);
    return rc;
}

int dm_cancel(bl_pid mgr, int id)
{
    return call_int(mgr, DM_CANCEL, &id, sizeof id);
}

int dm_stop(bl_pid mgr)
{
    return bl_gen_server_stop(mgr, NULL, DM_CALL_TIMEOUT);
}
