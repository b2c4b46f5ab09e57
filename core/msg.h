/*
 * core/msg.h - message envelopes.
 *
 * An envelope is the public bl_msg header followed by the payload copy, in
 * one allocation from the sending scheduler's slab (malloc above 4 KiB or
 * from threads that have no slab).  A moved payload keeps its own buffer;
 * the envelope then holds the function that frees it.
 *
 * bl_msg.flags: bits 0-3 slab class (BL_SLAB_HEAP = malloc), bit 4 moved
 * payload, bits 16-31 owning slab's index.
 */
#ifndef BL_CORE_MSG_H
#define BL_CORE_MSG_H

#include "beamline.h"
#include "core/slab.h"

#define BL_MSG_MOVED (1u << 4)

_Static_assert(sizeof(bl_msg) % 16 == 0, "inline payloads must stay 16-byte aligned");

/* An envelope with room for len payload bytes; data points at it.  slab may
 * be NULL (malloc).  NULL when out of memory. */
bl_msg *bl__msg_alloc(bl_slab *slab, size_t len);
/* An envelope carrying a moved buffer. */
bl_msg *bl__msg_alloc_moved(bl_slab *slab, void *buf, size_t len, void (*free_fn)(void *));
/* Frees m; `local` is the calling thread's slab (NULL if none). */
void bl__msg_free(bl_slab *local, bl_msg *m);

#endif /* BL_CORE_MSG_H */
