/*
 * main.c - stack, the program: the seed's scenario for the Stack server
 * (stack.h), then one pop too many.
 *
 * Run: ./stack  (exits 1 if the stack does not behave as expected)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include "stack.h"

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
