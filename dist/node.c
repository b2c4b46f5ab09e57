/*
 * dist/node.c - the node table: peers by name, pid node indexes, node monitors.
 *
 * A peer is a node name with at most one connection process.  A pid node
 * index (the node bits of a remote bl_pid, 1..127) names a (peer,
 * creation) pair, so a pid of an earlier incarnation of a node keeps its
 * own index and goes back to Erlang exactly as it came (and that node
 * drops it, as a stale pid).  A remote pid keeps the Erlang pid's number + 1
 * in bits 0..31 (as a local pid keeps its table index + 1) and its serial in
 * bits 32..55.
 *
 * Both tables only grow while the runtime runs: an entry is written under
 * `lock`, then published by a release store of the count, so lookups by
 * index (every remote send) are lock-free loads.  A peer's connection pid
 * is an atomic that its connection process claims and releases; starting
 * one (the cold path of a send to an unconnected node) takes the lock so
 * that only one is started.  Nothing that can yield (spawn, send) runs
 * under the lock: a process parked holding it would stall its thread's
 * next process that wants it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proc.h"
#include "dist/dist.h"
#include "proc/otp.h"

typedef struct peer {
    char name[MAXNODELEN + 1]; /* "alive@host"; written before publication, then fixed */
    _Atomic bl_pid conn;       /* its connection process, BL_PID_NONE when none */
    _Atomic bool up;           /* that process finished its handshake */
} peer;

typedef struct pindex {
    int peer;          /* into peers[] */
    uint32_t creation; /* the incarnation the index's pids belong to */
} pindex;

static peer peers[BL__DIST_MAX_NODES];
static _Atomic unsigned npeers;                          /* published entries of peers[] */
static pindex indexes[BL__DIST_MAX_NODES + 1];           /* [0] is this node: unused */
static _Atomic unsigned nindexes = 1;                    /* published entries of indexes[] */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* inserts, starts, monitors */

/* Node monitors (bl_dist_monitor_nodes), under lock. */
static bl_pid *monitors;
static size_t nmonitors, capmonitors;

#define PID_SERIAL_BITS 24

int bl__dist_peer(const char *name, bool create)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAXNODELEN) return -EINVAL;
    /* Acquire: the names of the entries counted are written. */
    unsigned n = atomic_load_explicit(&npeers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(peers[i].name, name) == 0) return (int)i;
    if (!create) return -ENOENT;
    pthread_mutex_lock(&lock);
    int found = -ENOSPC;
    n = atomic_load_explicit(&npeers, memory_order_relaxed); /* stable under the lock */
    for (unsigned i = 0; i < n; i++)
        if (strcmp(peers[i].name, name) == 0) found = (int)i;
    if (found < 0 && n < BL__DIST_MAX_NODES) {
        memcpy(peers[n].name, name, len + 1);
        atomic_store_explicit(&peers[n].conn, BL_PID_NONE, memory_order_relaxed);
        atomic_store_explicit(&peers[n].up, false, memory_order_relaxed);
        /* Release: a reader that sees the count sees the entry. */
        atomic_store_explicit(&npeers, n + 1, memory_order_release);
        found = (int)n;
    }
    pthread_mutex_unlock(&lock);
    return found;
}

const char *bl__dist_peer_name(int p)
{
    return peers[p].name;
}

bl_pid bl__dist_peer_current(int p)
{
    /* Acquire: pairs with the claim's release (the process is up). */
    return atomic_load_explicit(&peers[p].conn, memory_order_acquire);
}

int bl__dist_peer_conn(int p, bl_pid *conn)
{
    bl_pid c = bl__dist_peer_current(p);
    if (c != BL_PID_NONE) {
        *conn = c;
        return 0;
    }
    /* Spawning can yield, so it is done outside the lock; the new process
     * waits for BL__TAG_DIST_GO, which says whether it is the one. */
    bl_pid fresh;
    int rc = bl_spawn(&fresh, bl__dist_conn_main, (void *)(intptr_t)p, NULL);
    if (rc < 0) return rc;
    pthread_mutex_lock(&lock);
    c = atomic_load_explicit(&peers[p].conn, memory_order_relaxed);
    bool won = c == BL_PID_NONE;
    if (won) {
        c = fresh;
        atomic_store_explicit(&peers[p].conn, c, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    bl__send_ex(fresh, BL__TAG_DIST_GO, BL_REF_NONE, &won, sizeof won, 0);
    *conn = c;
    return 0;
}

bool bl__dist_peer_claim(int p, bl_pid conn, bool inbound)
{
    pthread_mutex_lock(&lock);
    bl_pid old = atomic_load_explicit(&peers[p].conn, memory_order_relaxed);
    bool was_up = atomic_load_explicit(&peers[p].up, memory_order_relaxed);
    bool other = old != BL_PID_NONE && old != conn && bl_is_alive(old);
    /* An inbound connection takes over (the node connected again: it
     * restarted, or we have not noticed yet that the old connection died;
     * or both ends connected at once); an outbound one only when no other
     * is up. */
    bool ok = inbound || !other || !was_up;
    if (ok) {
        atomic_store_explicit(&peers[p].conn, conn, memory_order_release);
        atomic_store_explicit(&peers[p].up, true, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    if (ok && other) bl__send_ex(old, BL__TAG_DIST_STOP, BL_REF_NONE, NULL, 0, 0);
    if (ok && !(other && was_up)) bl__dist_notify(BL_TAG_DIST_NODEUP, peers[p].name);
    return ok;
}

void bl__dist_peer_release(int p, bl_pid conn, bool was_up)
{
    pthread_mutex_lock(&lock);
    bool mine = atomic_load_explicit(&peers[p].conn, memory_order_relaxed) == conn;
    if (mine) {
        atomic_store_explicit(&peers[p].up, false, memory_order_relaxed);
        atomic_store_explicit(&peers[p].conn, BL_PID_NONE, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    if (mine && was_up) bl__dist_notify(BL_TAG_DIST_NODEDOWN, peers[p].name);
}

void bl__dist_peers_stop(void)
{
    unsigned n = atomic_load_explicit(&npeers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        bl_pid c = bl__dist_peer_current((int)i);
        if (c != BL_PID_NONE) bl__send_ex(c, BL__TAG_DIST_STOP, BL_REF_NONE, NULL, 0, 0);
    }
}

void bl__dist_tables_reset(void)
{
    pthread_mutex_lock(&lock);
    atomic_store_explicit(&npeers, 0, memory_order_relaxed);
    atomic_store_explicit(&nindexes, 1, memory_order_relaxed);
    free(monitors);
    monitors = NULL;
    nmonitors = capmonitors = 0;
    pthread_mutex_unlock(&lock);
}

/* ---- node monitors ---- */

void bl__dist_notify(uint32_t tag, const char *name)
{
    /* Sending can yield: the list is copied under the lock, sent to outside it. */
    pthread_mutex_lock(&lock);
    size_t keep = 0;
    for (size_t i = 0; i < nmonitors; i++) {
        /* A monitor that is gone drops out here: its subscription ended with it. */
        if (bl_is_alive(monitors[i])) monitors[keep++] = monitors[i];
    }
    nmonitors = keep;
    bl_pid *to = keep ? malloc(keep * sizeof *to) : NULL;
    if (to) memcpy(to, monitors, keep * sizeof *to);
    pthread_mutex_unlock(&lock);
    if (keep && !to) bl__dist_log("out of memory: node monitors not told of %s", name);
    for (size_t i = 0; to && i < keep; i++)
        bl__send_ex(to[i], tag, BL_REF_NONE, name, strlen(name) + 1, 0);
    free(to);
}

int bl_dist_monitor_nodes(bool on)
{
    bl_pid self = bl_self();
    if (self == BL_PID_NONE) return -EPERM;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    pthread_mutex_lock(&lock);
    int rc = 0;
    size_t at = nmonitors;
    for (size_t i = 0; i < nmonitors; i++)
        if (monitors[i] == self) at = i;
    if (!on && at < nmonitors) {
        monitors[at] = monitors[--nmonitors];
    } else if (on && at == nmonitors) {
        if (nmonitors == capmonitors) {
            size_t cap = capmonitors ? 2 * capmonitors : 8;
            bl_pid *m = realloc(monitors, cap * sizeof *m);
            if (!m)
                rc = -ENOMEM;
            else {
                monitors = m;
                capmonitors = cap;
            }
        }
        if (rc == 0) monitors[nmonitors++] = self;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int bl_dist_nodes(const char **out, size_t max)
{
    if (!out && max) return -EINVAL;
    unsigned n = atomic_load_explicit(&npeers, memory_order_acquire);
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!atomic_load_explicit(&peers[i].up, memory_order_acquire)) continue;
        if (k < max) out[k] = peers[i].name;
        k++;
    }
    return (int)k;
}

/* ---- pids ---- */

/* The index of (peer, creation), entered when new: >= 1, or -ENOSPC. */
static int index_of(int p, uint32_t creation)
{
    unsigned n = atomic_load_explicit(&nindexes, memory_order_acquire);
    for (unsigned i = 1; i < n; i++)
        if (indexes[i].peer == p && indexes[i].creation == creation) return (int)i;
    pthread_mutex_lock(&lock);
    int found = -ENOSPC;
    n = atomic_load_explicit(&nindexes, memory_order_relaxed);
    for (unsigned i = 1; i < n; i++)
        if (indexes[i].peer == p && indexes[i].creation == creation) found = (int)i;
    if (found < 0 && n <= BL__DIST_MAX_NODES) {
        indexes[n] = (pindex){.peer = p, .creation = creation};
        atomic_store_explicit(&nindexes, n + 1, memory_order_release); /* publishes the entry */
        found = (int)n;
    }
    pthread_mutex_unlock(&lock);
    return found;
}

int bl__dist_node_pid(int p, bl_pid *out)
{
    int i = index_of(p, 0);
    if (i < 0) return i;
    *out = (bl_pid)i << 56;
    return 0;
}

int bl__dist_pid_in(const erlang_pid *ep, bl_pid *out)
{
    if (ep->serial >> PID_SERIAL_BITS || ep->num == UINT32_MAX) return -ERANGE;
    /* As this node's pids keep their table index + 1 (bl__pid_make), so
     * bl_pid_format prints <Node.Number.Serial> for both. */
    uint64_t low = (uint64_t)ep->serial << 32 | (uint64_t)(ep->num + 1);
    if (strcmp(ep->node, bl__dist.name) == 0) {
        /* This node's pid: number = table index, serial = generation. */
        if (ep->creation != bl__dist.creation) return -ESRCH;
        *out = (bl_pid)low;
        return 0;
    }
    int p = bl__dist_peer(ep->node, true);
    if (p < 0) return p;
    int i = index_of(p, ep->creation);
    if (i < 0) return i;
    *out = (bl_pid)i << 56 | low;
    return 0;
}

int bl__dist_pid_peer(bl_pid pid)
{
    unsigned i = bl__pid_node(pid) & 0x7Fu;
    if (i == 0 || (pid >> 63)) return -EINVAL;
    /* Acquire: the entry below the count is written. */
    if (i >= atomic_load_explicit(&nindexes, memory_order_acquire)) return -EINVAL;
    return indexes[i].peer;
}

int bl__dist_pid_out(bl_pid pid, erlang_pid *ep)
{
    if (pid >> 63) return -EINVAL;
    unsigned i = bl__pid_node(pid);
    memset(ep, 0, sizeof *ep);
    ep->num = (uint32_t)pid - 1;
    ep->serial = (uint32_t)(pid >> 32) & ((1u << PID_SERIAL_BITS) - 1);
    if (i == 0) {
        if ((uint32_t)pid == 0) return -EINVAL;
        strcpy(ep->node, bl__dist.name);
        ep->creation = bl__dist.creation;
        return 0;
    }
    if (i >= atomic_load_explicit(&nindexes, memory_order_acquire)) return -EINVAL;
    strcpy(ep->node, peers[indexes[i].peer].name);
    ep->creation = indexes[i].creation;
    return 0;
}

int bl_dist_decode_pid(const char *buf, int *index, bl_pid *out)
{
    if (!buf || !index || !out) return -EINVAL;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    erlang_pid ep;
    int i = *index;
    if (ei_decode_pid(buf, &i, &ep) < 0) return -EINVAL;
    int rc = bl__dist_pid_in(&ep, out);
    if (rc == 0) *index = i;
    return rc;
}

int bl_dist_encode_pid(char *buf, int *index, bl_pid pid)
{
    if (!index) return -EINVAL;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    erlang_pid ep;
    int rc = bl__dist_pid_out(pid, &ep);
    if (rc < 0) return rc;
    return ei_encode_pid(buf, index, &ep) < 0 ? -EINVAL : 0;
}

int bl_dist_x_encode_pid(ei_x_buff *x, bl_pid pid)
{
    if (!x) return -EINVAL;
    if (!atomic_load_explicit(&bl__dist.running, memory_order_acquire)) return -ENOTCONN;
    erlang_pid ep;
    int rc = bl__dist_pid_out(pid, &ep);
    if (rc < 0) return rc;
    return ei_x_encode_pid(x, &ep) < 0 ? -ENOMEM : 0;
}

const char *bl_dist_pid_node(bl_pid pid)
{
    if (pid >> 63) return NULL;
    if (bl__pid_node(pid) == 0) return bl_dist_node();
    int p = bl__dist_pid_peer(pid);
    return p < 0 ? NULL : peers[p].name;
}
