/*
 * main.c - counter, the program: the seed's scenario for the Counter
 * gen_server (counter.h).
 *
 * It starts a counter, turns sys tracing on, sends three casts and a call,
 * a plain message, and stops the server with the reason boom.
 * Run: ./counter  (exits 1 if the counter does not behave as expected)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "counter.h"

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
