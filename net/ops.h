/*
 * net/ops.h - what the control socket (net/control.c) and the metrics
 * endpoint (net/metrics.c) share: bounded reply buffers and one sample of
 * the runtime's numbers.  Used by the control thread only.
 */
#ifndef BL_NET_OPS_H
#define BL_NET_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "beamline.h"

/* A reply being built: grows up to max bytes, then drops the rest and says so. */
typedef struct ops_buf {
    char *p;    /* the bytes, malloc'd (NULL while empty) */
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
    size_t max; /* it never grows past this */
    bool full;  /* something was dropped: max reached or out of memory */
} ops_buf;

/* Appends printf-style text (cut when the buffer is full). */
void bl__ops_printf(ops_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes as a value without spaces: printable ASCII as is, others
 * and ' ', '=', '\' as \xHH (beamline/control.h). */
void bl__ops_escaped(ops_buf *b, const void *s, size_t n);
/* Frees the bytes; the buffer can be used again. */
void bl__ops_buf_free(ops_buf *b);

/* The numbers of the whole program at one moment (what "stats" and /metrics show). */
typedef struct ops_sample {
    uint64_t time_ns;            /* monotonic clock at the sample */
    bl_runtime_stats rt;         /* processes, schedulers, uptime */
    bl_scheduler_stats *sched;   /* rt.schedulers entries, malloc'd */
    uint64_t rss_bytes;          /* resident set, from /proc/self/statm */
    uint64_t stacks_in_use;      /* processes holding a stack (from the snapshot) */
    uint64_t stack_bytes_in_use; /* the bytes of those stacks */
    uint64_t stacks_pooled;      /* free stacks resident in the pools */
    uint64_t stacks_cold;        /* free stacks given back to the kernel */
    uint64_t stack_pool_bytes;   /* bytes mapped through the pools */
    uint64_t slab_bytes;         /* envelope and timer spans */
    uint64_t envelopes;          /* envelopes allocated since the start */
    uint64_t io_inflight;        /* ring operations awaiting completion */
    uint64_t long_schedules;     /* long schedules reported */
    uint64_t log_queued;         /* log events queued */
    uint64_t log_dropped;        /* log events dropped */
} ops_sample;

/* Takes a sample (net/metrics.c).  0, -ESRCH (not running) or -ENOMEM. */
int bl__ops_sample(ops_sample *o);
void bl__ops_sample_free(ops_sample *o);

/*
 * The metrics endpoint's answer to the request in req[0..len) (a whole
 * request head, up to its blank line): the full HTTP response into out.
 */
void bl__metrics_answer(const char *req, size_t len, ops_buf *out);

#endif /* BL_NET_OPS_H */
