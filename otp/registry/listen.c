/*
 * otp/registry/listen.c - listeners (Elixir's :listeners option): the
 * names given at start, and the events the registering process sends them.
 *
 * An event is sent by the process that registered or unregistered, after
 * the write lock is dropped (sending may switch processes), so the events
 * of one process reach a listener in the order it made its changes.  A
 * name is resolved at each event: the listener may come and go.  Nothing
 * here runs unless the registry has listeners.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "otp/registry/registry_int.h"
#include "proc/otp.h"

/* The longest local name (beamline/name.h). */
#define NAME_MAX_LEN 255

/* Events up to this size are built on the stack. */
#define EVENT_STACK 256

int bl__reg_listeners_check(const bl_registry_opts *o)
{
    if (o->nlisteners > BL_REGISTRY_LISTENERS_MAX || (o->nlisteners && !o->listeners))
        return -EINVAL;
    for (size_t i = 0; i < o->nlisteners; i++) {
        const char *n = o->listeners[i];
        if (!n || !*n) return -EINVAL;
        if (strnlen(n, NAME_MAX_LEN + 1) > NAME_MAX_LEN) return -ENAMETOOLONG;
    }
    return 0;
}

int bl__reg_listeners_copy(bl_registry *r, const bl_registry_opts *o)
{
    if (!o->nlisteners) return 0;
    r->listeners = calloc(o->nlisteners, sizeof *r->listeners);
    if (!r->listeners) return -ENOMEM;
    r->nlisteners = o->nlisteners;
    for (size_t i = 0; i < o->nlisteners; i++)
        if (!(r->listeners[i] = strdup(o->listeners[i]))) return -ENOMEM; /* freed by the caller */
    return 0;
}

void bl__reg_listeners_free(bl_registry *r)
{
    for (size_t i = 0; r->listeners && i < r->nlisteners; i++) free(r->listeners[i]);
    free(r->listeners);
    r->listeners = NULL;
    r->nlisteners = 0;
}

void bl__reg_notify(bl_registry *r, uint32_t tag, const void *key, size_t klen, const void *value,
                    size_t vlen)
{
    bl_registry_event ev = {r->top, bl_self(), klen, vlen};
    size_t len = sizeof ev + klen + vlen;
    _Alignas(16) unsigned char sbuf[EVENT_STACK];
    unsigned char *buf = len <= sizeof sbuf ? sbuf : malloc(len);
    if (!buf) return; /* out of memory: this event is lost (documented) */
    memcpy(buf, &ev, sizeof ev);
    if (klen) memcpy(buf + sizeof ev, key, klen);
    if (vlen) memcpy(buf + sizeof ev + klen, value, vlen);
    for (size_t i = 0; i < r->nlisteners; i++) {
        bl_pid to = bl_whereis(r->listeners[i]);
        /* A listener gone meanwhile (-ESRCH) just misses the event. */
        if (to) bl__send_ex(to, tag, BL_REF_NONE, buf, len, 0);
    }
    if (buf != sbuf) free(buf);
}

int bl_registry_event_decode(const bl_msg *m, bl_registry_event *ev, const void **key,
                             const void **value)
{
    if (!m || !ev) return -EINVAL;
    if (m->tag != BL_TAG_REGISTRY_REGISTER && m->tag != BL_TAG_REGISTRY_UNREGISTER) return -EINVAL;
    bl_registry_event h;
    if (m->len < sizeof h) return -EINVAL;
    memcpy(&h, m->data, sizeof h);
    size_t rest = m->len - sizeof h;
    if (h.key_len > rest || h.value_len != rest - h.key_len) return -EINVAL;
    if (m->tag == BL_TAG_REGISTRY_UNREGISTER && h.value_len) return -EINVAL;
    const unsigned char *p = (const unsigned char *)m->data + sizeof h;
    *ev = h;
    if (key) *key = h.key_len ? p : NULL;
    if (value) *value = h.value_len ? p + h.key_len : NULL;
    return 0;
}
