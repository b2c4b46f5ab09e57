/*
 * counter.c - the Counter gen_server (see counter.h): its callbacks and the
 * client functions that send it requests.
 */
#include <beamline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"

/* Requests, as gen_server tags.  inc and dec carry a long. */
enum { COUNTER_INC = 1, COUNTER_DEC, COUNTER_GET_COUNT };

/* Elixir's :boom: a custom reason whose detail is the atom's name. */
const bl_reason counter_boom = {.kind = BL_CUSTOM, .code = 1, .detail = "boom", .detail_len = 4};

/* ---- the server ---- */

/* The state is the count, kept on the heap and freed by release. */
static void counter_init(void *arg, void **state, bl_gs_result *r)
{
    long *count = malloc(sizeof *count);
    if (!count) {
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start then returns -ECHILD */
        return;
    }
    *count = *(const long *)arg;
    printf("init called, initial counter state: %ld\n", *count);
    *state = count;
}

static void counter_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    long *count = *state, by;
    if (m->len != sizeof by) return; /* not a request of ours: ignore it */
    memcpy(&by, m->data, sizeof by);
    if (m->tag == COUNTER_INC) *count += by;
    if (m->tag == COUNTER_DEC) *count -= by;
}

static void counter_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    if (m->tag != COUNTER_GET_COUNT)
        return; /* unknown calls get no answer (the caller times out) */
    char text[64];
    int n = snprintf(text, sizeof text, "The count is %ld", *(long *)*state);
    /* The reply is copied at once, so it may live on this stack. */
    bl_gs_reply(r, text, (size_t)n + 1);
}

static void counter_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    printf("Handle info called with message \"%.*s\" (tag %u)\n", (int)m->len,
           (const char *)m->data, m->tag);
}

static void counter_terminate(void **state, const bl_reason *reason)
{
    if (reason->kind == BL_CUSTOM && reason->detail_len)
        printf("Genserver Terminating with reason %.*s...\n", (int)reason->detail_len,
               (const char *)reason->detail);
    else
        printf("Genserver Terminating with reason kind %d...\n", reason->kind);
}

/* Runs once the server is gone, whatever the reason: C's garbage collection. */
static void counter_release(void *state)
{
    free(state);
}

static const bl_gen_server counter_callbacks = {
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .handle_info = counter_info,
    .terminate = counter_terminate,
    .release = counter_release,
};

int counter_start(bl_pid *pid, long initial)
{
    /* init runs before start returns, so a pointer to a local is fine here. */
    return bl_gen_server_start(pid, &counter_callbacks, &initial, NULL);
}

int counter_inc(bl_pid pid, long by)
{
    return bl_gen_server_cast(pid, COUNTER_INC, &by, sizeof by);
}

int counter_dec(bl_pid pid, long by)
{
    return bl_gen_server_cast(pid, COUNTER_DEC, &by, sizeof by);
}

int counter_get_count(bl_pid pid, char *text, size_t len)
{
    bl_msg *reply;
    int rc = bl_gen_server_call(pid, COUNTER_GET_COUNT, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0) snprintf(text, len, "%.*s", (int)reply->len, (const char *)reply->data);
    bl_msg_free(reply); /* also the DOWN that -ECONNRESET leaves there */
    return rc;
}
