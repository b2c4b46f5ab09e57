/*
 * sched/completion.h - what a ring's user_data points at.
 *
 * Every SQE a scheduler's ring carries has as its user_data either 0 (its
 * completion says nothing: cancels, linked timeouts, the sender's side of
 * a wake-up) or the address of a bl_completion.  Reaping calls the
 * completion's done() on the ring owner's thread and knows nothing else of
 * the operation, as Seastar's io_desc and libuv's requests work: an I/O
 * operation, a multishot stream, a wake-up and the armed eventfd read are
 * all completions, each embedding this header in its own struct and getting
 * back to it with container_of.
 *
 * A completion may be called many times for a multishot operation
 * (IORING_CQE_F_MORE in flags); the object must stay valid until its last
 * completion, which is the kernel's rule for buffers too (invariant 2).
 */
#ifndef BL_SCHED_COMPLETION_H
#define BL_SCHED_COMPLETION_H

#include <stdatomic.h>
#include <stddef.h>

struct bl_sched;

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

typedef struct bl_completion bl_completion;

/* A CQE for c was reaped on s (its ring's owner thread): res and flags are the CQE's. */
typedef void (*bl_done_fn)(bl_completion *c, struct bl_sched *s, int res, unsigned flags);

struct bl_completion {
    bl_done_fn done; /* called for each of its CQEs */
};

/*
 * Work another thread hands to a ring's owner (a ring has one issuer,
 * SINGLE_ISSUER): queued with bl__ring_post, run on the owner's thread at
 * its next submit, before the batch goes to the kernel.  Cancelling an
 * operation of a process that died on another scheduler is one.  A post
 * must stay valid until it has run; posts still queued when the runtime
 * stops are run (to free themselves) by the io service's sched_free, the
 * only layer that posts.
 */
typedef struct bl_ring_post bl_ring_post;
struct bl_ring_post {
    bl_ring_post *next;                                /* link in the owner's post list */
    void (*run)(bl_ring_post *rp, struct bl_sched *s); /* on the owner's thread */
};

#endif /* BL_SCHED_COMPLETION_H */
