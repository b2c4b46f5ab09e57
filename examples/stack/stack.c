/*
 * stack.c - the Stack server (see stack.h): its callbacks and the client
 * functions that send it requests.
 */
#include <beamline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

/* Requests, as gen_server tags; STACK_STATS is a plain message. */
enum { STACK_PUSH = 1, STACK_POP, STACK_GET, STACK_STATS };

/* ---- the server ---- */

typedef struct stack {
    long *items; /* bottom first: items[n - 1] is the top */
    int n;       /* numbers on the stack */
    int cap;     /* room in items */
} stack;

static void stack_init(void *arg, void **state, bl_gs_result *r)
{
    stack *s = calloc(1, sizeof *s);
    if (!s) bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start returns -ECHILD */
    *state = s;
}

static void stack_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    stack *s = *state;
    long num;
    if (m->tag != STACK_PUSH || m->len != sizeof num) return;
    memcpy(&num, m->data, sizeof num);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        long *items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) return; /* out of memory: the push is lost, the server lives on */
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = num;
    printf("PUSH: %ld\n", num);
}

static void stack_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    stack *s = *state;
    if (m->tag == STACK_POP) {
        /* An empty reply means "the stack is empty". */
        if (s->n == 0)
            bl_gs_reply(r, NULL, 0);
        else
            bl_gs_reply(r, &s->items[--s->n], sizeof(long));
    } else if (m->tag == STACK_GET) {
        /* Top first, like the Elixir list [top | rest]. */
        long *top_first = malloc((size_t)(s->n ? s->n : 1) * sizeof(long));
        if (!top_first) return; /* no answer: the caller times out */
        for (int i = 0; i < s->n; i++) top_first[i] = s->items[s->n - 1 - i];
        bl_gs_reply(r, top_first, (size_t)s->n * sizeof(long));
        free(top_first); /* the reply was copied */
    }
}

static void stack_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    stack *s = *state;
    if (m->tag == STACK_STATS) printf("Stack length: %d\n", s->n);
}

static void stack_release(void *state)
{
    stack *s = state;
    free(s->items);
    free(s);
}

static const bl_gen_server stack_callbacks = {
    .init = stack_init,
    .handle_call = stack_call,
    .handle_cast = stack_cast,
    .handle_info = stack_info,
    .release = stack_release,
};

int stack_start_link(bl_pid *pid)
{
    return bl_gen_server_start_link(pid, &stack_callbacks, NULL, NULL);
}

int stack_push(bl_pid pid, long num)
{
    return bl_gen_server_cast(pid, STACK_PUSH, &num, sizeof num);
}

int stack_pop(bl_pid pid, long *num)
{
    bl_msg *reply;
    int rc = bl_gen_server_call(pid, STACK_POP, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0) {
        if (reply->len == sizeof *num)
            memcpy(num, reply->data, sizeof *num);
        else
            rc = -ENOENT;
    }
    bl_msg_free(reply);
    return rc;
}

int stack_get(bl_pid pid, long *out, int max)
{
    bl_msg *reply;
    int rc = bl_gen_server_call(pid, STACK_GET, NULL, 0, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0) {
        rc = (int)(reply->len / sizeof(long));
        if (out && max > 0) memcpy(out, reply->data, (size_t)(rc < max ? rc : max) * sizeof(long));
    }
    bl_msg_free(reply);
    return rc;
}

int stack_stats(bl_pid pid)
{
    return bl_send(pid, STACK_STATS, NULL, 0);
}
