/*
 * counter.c - the Counter gen_server: every callback of the behaviour once.
 *
 *   init          builds the state (a count) from start's argument
 *   handle_cast   inc / dec: change the count, answer nothing
 *   handle_call   get_count: answers "The count is N"
 *   handle_info   any plain message: logged and ignored
 *   terminate     last words, with the reason given to bl_gen_server_stop
 *
 * The scenario starts a counter, turns sys tracing on, sends three casts and
 * a call, a plain message, and stops the server with the reason boom.
 * Run: ./counter  (exits 1 if the counter does not behave as expected)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the module's API ---- */

/* Requests, as gen_server tags.  inc and dec carry a long. */
enum { COUNTER_INC = 1, COUNTER_DEC, COUNTER_GET_COUNT };

/* Starts an unlinked counter at initial.  Errors as bl_gen_server_start. */
int counter_start(bl_pid *pid, long initial);
/* Adds (inc) or subtracts (dec) by: casts, so they return at once (0). */
int counter_inc(bl_pid pid, long by);
int counter_dec(bl_pid pid, long by);
/* Writes "The count is N" into text.  0, or the errors of bl_gen_server_call. */
int counter_get_count(bl_pid pid, char *text, size_t len);

/* The reason the scenario stops the counter with: Elixir's :boom. */
static const bl_reason counter_boom = {
    .kind = BL_CUSTOM, .code = 1, .detail = "boom", .detail_len = 4};

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

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "counter: expected %s (line %d)\n", #cond, __LINE__);                  \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

/* sys trace lines, on stdout so they interleave in order with the rest. */
static void print_trace(bl_pid server, const char *line, void *arg)
{
    printf("%s\n", line);
}

static void scenario(void *arg)
{
    bl_pid pid;
    printf("Starting Genserver\n");
    EXPECT(counter_start(&pid, 0) == 0);
    printf("Genserver Started\n");
    EXPECT(bl_sys_trace(pid, true, print_trace, NULL, 1000) == 0);

    EXPECT(counter_inc(pid, 10) == 0);
    EXPECT(counter_dec(pid, 5) == 0);
    EXPECT(counter_inc(pid, 2) == 0);
    /* The call comes after the casts from this same process, so it sees them all. */
    char text[64] = "";
    EXPECT(counter_get_count(pid, text, sizeof text) == 0);
    printf("Current count = %s\n", text);
    EXPECT(strcmp(text, "The count is 7") == 0);

    /* A plain message (any tag of our own) goes to handle_info. */
    const char hi[] = "Hi genserver!";
    EXPECT(bl_send(pid, 100, hi, strlen(hi)) == 0);
    /* stop runs terminate with our reason, and returns once the server has exited. */
    EXPECT(bl_gen_server_stop(pid, &counter_boom, 1000) == 0);
    EXPECT(!bl_is_alive(pid));
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
#endif
