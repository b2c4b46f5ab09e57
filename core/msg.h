/*
 * core/msg.h - message envelopes.
 *
 * An envelope is the public bl_msg header followed by the payload copy, in
 * one allocation from the sending scheduler's slab (malloc above 4 KiB or
 * from threads that have no slab).  A moved payload keeps its own buffer;
 * the envelope then holds the function that frees it.
 *
 * A message may carry a resource (an accepted connection's descriptor): it
 * then has a release action, stored after its payload, which runs when the
 * message is dropped unread (its receiver died, or was gone when it was
 * sent) and never when a receiver frees it after reading it.
 *
 * bl_msg.flags: bits 0-3 slab class (BL_SLAB_HEAP = malloc), bit 4 moved
 * payload, bit 5 alias reply (proc/otp.h), bit 6 release action, bits 16-31
 * owning slab's index.
 */
#ifndef BL_CORE_MSG_H
#define BL_CORE_MSG_H

#include "beamline.h"
#include "core/slab.h"

#include <stdint.h>
#include <string.h>

#define BL_MSG_MOVED   (1u << 4)
#define BL_MSG_RELEASE (1u << 6)

/* Frees what a message dropped unread carries (not the envelope). */
typedef void (*bl_msg_release_fn)(bl_msg *m);

_Static_assert(sizeof(bl_msg) % 16 == 0, "inline payloads must stay 16-byte aligned");

/* An envelope with room for len payload bytes; data points at it.  slab may
 * be NULL (malloc).  NULL when out of memory. */
bl_msg *bl__msg_alloc(bl_slab *slab, size_t len);
/* An envelope carrying a moved buffer. */
bl_msg *bl__msg_alloc_moved(bl_slab *slab, void *buf, size_t len, void (*free_fn)(void *));
/* An envelope for len payload bytes that carries a resource: release runs
 * if it is dropped unread (bl__msg_drop).  NULL when out of memory. */
bl_msg *bl__msg_alloc_release(bl_slab *slab, size_t len, bl_msg_release_fn release);
/*
 * Copies a payload into an envelope: inline for up to 8 bytes (a pid, a
 * counter, a tag), with two loads and two stores that overlap for the
 * lengths between; memcpy above.  For such short ones, the call into libc's
 * memcpy and its choice by size cost more than the copy: a ping-pong of
 * 4-byte messages is 9% faster so.  Inline up to 32 bytes (a call's 16-byte
 * header) was no faster there and made genserver_call_rtt 5% slower.
 */
static inline void bl__msg_copy(void *restrict dst, const void *restrict src, size_t len)
{
    char *d = dst;
    const char *s = src;
    if (len > 8) {
        memcpy(d, s, len);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + len - 4, &b, 4);
    } else if (len) {
        char a = s[0], b = s[len / 2], c = s[len - 1];
        d[0] = a;
        d[len / 2] = b;
        d[len - 1] = c;
    }
}

/* Frees m, read or not wanted by its reader; `local` is the calling thread's slab (NULL if none).
 */
void bl__msg_free(bl_slab *local, bl_msg *m);
/* Frees m, which nobody read: runs its release action first, if it has one. */
void bl__msg_drop(bl_slab *local, bl_msg *m);
/* bl__msg_drop for each message of the chain m, linked through next up to NULL. */
void bl__msg_drop_chain(bl_slab *local, bl_msg *m);

#endif /* BL_CORE_MSG_H */
