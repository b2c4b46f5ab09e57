/*
 * examples/stack/stack.c: the Stack server through its own functions.
 */
#include <errno.h>

#include "examples/stack/stack.h"

#include "bl_test.h"

static void stack_main(void *arg)
{
    bl_pid pid;
    BL_CHECK_EQ(stack_start_link(&pid), 0);
    long items[8] = {0}, num = -1;

    /* An empty stack: pop is an error value, not a crash. */
    BL_CHECK_EQ(stack_get(pid, items, 8), 0);
    BL_CHECK_EQ(stack_pop(pid, &num), -ENOENT);
    BL_CHECK_EQ(num, -1);
    BL_CHECK(bl_is_alive(pid));

    /* The seed's scenario: push 1 2 3, get_stack, pop, get_stack, stats. */
    BL_CHECK_EQ(stack_push(pid, 1), 0);
    BL_CHECK_EQ(stack_push(pid, 2), 0);
    BL_CHECK_EQ(stack_push(pid, 3), 0);
    BL_CHECK_EQ(stack_get(pid, items, 8), 3);
    BL_CHECK(items[0] == 3 && items[1] == 2 && items[2] == 1);
    BL_CHECK_EQ(stack_pop(pid, &num), 0);
    BL_CHECK_EQ(num, 3);
    BL_CHECK_EQ(stack_get(pid, items, 8), 2);
    BL_CHECK(items[0] == 2 && items[1] == 1);
    BL_CHECK_EQ(stack_stats(pid), 0);
    BL_CHECK_EQ(stack_get(pid, items, 8), 2);

    /* A stack deeper than its first allocation; get copies at most max. */
    int n = 100;
    for (int i = 0; i < n; i++) BL_CHECK_EQ(stack_push(pid, 100 + i), 0);
    BL_CHECK_EQ(stack_get(pid, items, 8), n + 2);
    BL_CHECK_EQ(items[0], 100 + n - 1);
    BL_CHECK_EQ(stack_get(pid, NULL, 0), n + 2);
    for (int i = n - 1; i >= 0; i--) {
        BL_CHECK_EQ(stack_pop(pid, &num), 0);
        BL_CHECK_EQ(num, 100 + i);
    }
    BL_CHECK_EQ(stack_pop(pid, &num), 0);
    BL_CHECK_EQ(num, 2);
    BL_CHECK_EQ(stack_pop(pid, &num), 0);
    BL_CHECK_EQ(num, 1);
    BL_CHECK_EQ(stack_pop(pid, &num), -ENOENT);
    BL_CHECK(bl_is_alive(pid));

    /* A stopped server: noproc. */
    BL_CHECK_EQ(bl_gen_server_stop(pid, NULL, 1000), 0);
    BL_CHECK_EQ(stack_pop(pid, &num), -ESRCH);
    BL_CHECK_EQ(stack_get(pid, items, 8), -ESRCH);
}

Test(examples, stack)
{
    bl_test_run(NULL, stack_main, NULL);
}
