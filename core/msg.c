/*
 * core/msg.c - envelopes: allocation and freeing across threads.
 */
#include "core/msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct moved_tail {
    void (*free_fn)(void *); /* frees the moved buffer */
} moved_tail;

/* Always inlined: GCC left it a call of its own, on the path of every send
 * (with sched.c's inject_nonempty, about 5% of genserver_call_rtt). */
static inline __attribute__((always_inline)) bl_msg *alloc_env(bl_slab *slab, size_t total)
{
    unsigned c = bl__slab_class(total);
    bl_msg *m;
    /* Relaxed load and store: only the owner writes it; stats read it racily. */
    if (slab)
        atomic_store_explicit(&slab->envelopes,
                              atomic_load_explicit(&slab->envelopes, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    if (slab && c != BL_SLAB_HEAP) {
        m = bl__slab_alloc(slab, c);
        if (!m) return NULL;
        m->flags = c | (slab->index << 16);
    } else {
        m = malloc(total);
        if (!m) return NULL;
        m->flags = BL_SLAB_HEAP | ((uint32_t)BL_SLAB_NONE << 16);
    }
    return m;
}

bl_msg *bl__msg_alloc(bl_slab *slab, size_t len)
{
    if (len > SIZE_MAX - sizeof(bl_msg)) return NULL;
    bl_msg *m = alloc_env(slab, sizeof(bl_msg) + len);
    if (!m) return NULL;
    m->len = len;
    m->data = m + 1;
    return m;
}

bl_msg *bl__msg_alloc_moved(bl_slab *slab, void *buf, size_t len, void (*free_fn)(void *))
{
    bl_msg *m = alloc_env(slab, sizeof(bl_msg) + sizeof(moved_tail));
    if (!m) return NULL;
    m->flags |= BL_MSG_MOVED;
    m->len = len;
    m->data = buf;
    ((moved_tail *)(m + 1))->free_fn = free_fn ? free_fn : free;
    return m;
}

/* Where a release action sits: after len payload bytes, pointer-aligned. */
static size_t release_off(size_t len)
{
    return (len + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
}

static bl_msg_release_fn *release_slot(bl_msg *m)
{
    return (bl_msg_release_fn *)((char *)(m + 1) + release_off(m->len));
}

bl_msg *bl__msg_alloc_release(bl_slab *slab, size_t len, bl_msg_release_fn release)
{
    size_t off = release_off(len);
    if (off < len || off > SIZE_MAX - sizeof(bl_msg) - sizeof release) return NULL;
    bl_msg *m = alloc_env(slab, sizeof(bl_msg) + off + sizeof release);
    if (!m) return NULL;
    m->len = len;
    m->data = m + 1;
    m->flags |= BL_MSG_RELEASE;
    *release_slot(m) = release;
    return m;
}

void bl__msg_drop(bl_slab *local, bl_msg *m)
{
    if (m->flags & BL_MSG_RELEASE) (*release_slot(m))(m);
    bl__msg_free(local, m);
}

void bl__msg_drop_chain(bl_slab *local, bl_msg *m)
{
    while (m) {
        bl_msg *next = m->next;
        bl__msg_drop(local, m);
        m = next;
    }
}

void bl__msg_free(bl_slab *local, bl_msg *m)
{
    if (m->flags & BL_MSG_MOVED) ((moved_tail *)(m + 1))->free_fn(m->data);
    unsigned c = m->flags & 15u;
    unsigned owner = m->flags >> 16;
    if (c == BL_SLAB_HEAP)
        free(m);
    else if (local && local->index == owner)
        bl__slab_free_local(local, c, m);
    else if (local)
        bl__slab_free_other(local, owner, c, m);
    else
        bl__slab_free_remote(owner, c, m);
}
