/*
 * stack.c - the Stack server: a stack of numbers behind a gen_server.
 *
 *   push       cast: puts a number on top
 *   pop        call: takes the top number off, or answers "empty"
 *   get_stack  call: the whole stack, top first
 *   stats      a plain message (handle_info): logs the stack's length
 *
 * Elixir's Stack matches [num | state] in pop, so popping an empty stack
 * crashes the server.  Here pop answers an empty reply instead, and
 * stack_pop returns -ENOENT: errors are values.
 * Run: ./stack  (exits 1 if the stack does not behave as expected)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the module's API ---- */

/* Requests, as gen_server tags; STACK_STATS is a plain message. */
enum { STACK_PUSH = 1, STACK_POP, STACK_GET, STACK_STATS };

/* Starts an empty stack server linked to the caller.  Errors as bl_gen_server_start. */
int stack_start_link(bl_pid *pid);
/* Pushes num (a cast: returns 0 at once). */
int stack_push(bl_pid pid, long num);
/* Pops the top into *num: 0, -ENOENT when the stack is empty, or a call's error. */
int stack_pop(bl_pid pid, long *num);
/* Copies up to max numbers, top first, into out; returns the stack's depth or a call's error. */
int stack_get(bl_pid pid, long *out, int max);
/* Asks the server to log its length (a plain message, handled by handle_info). */
int stack_stats(bl_pid pid);

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

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "stack: expected %s (line %d)\n", #cond, __LINE__);                    \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

/* Prints the stack as Elixir's IO.inspect would: STACK: [3, 2, 1]. */
static int print_stack(bl_pid pid)
{
    long items[16];
    int n = stack_get(pid, items, 16);
    printf("STACK: [");
    for (int i = 0; i < n && i < 16; i++) printf(i ? ", %ld" : "%ld", items[i]);
    printf("]\n");
    return n;
}

static void scenario(void *arg)
{
    bl_pid pid;
    EXPECT(stack_start_link(&pid) == 0);
    EXPECT(stack_push(pid, 1) == 0);
    EXPECT(stack_push(pid, 2) == 0);
    EXPECT(stack_push(pid, 3) == 0);
    EXPECT(print_stack(pid) == 3);

    long num = 0;
    EXPECT(stack_pop(pid, &num) == 0 && num == 3);
    printf("POP: %ld\n", num);
    EXPECT(print_stack(pid) == 2);
    EXPECT(stack_stats(pid) == 0);

    /* Empty the stack, then one pop too many: an error value, and the server lives on. */
    EXPECT(stack_pop(pid, &num) == 0 && num == 2);
    EXPECT(stack_pop(pid, &num) == 0 && num == 1);
    int rc = stack_pop(pid, &num);
    printf("POP on an empty stack: %s\n", rc == -ENOENT ? "error, empty" : "?");
    EXPECT(rc == -ENOENT);
    EXPECT(print_stack(pid) == 0);
    /* The main process returns: the runtime stops, and the server with it. */
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
#endif
