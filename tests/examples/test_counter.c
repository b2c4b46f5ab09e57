/*
 * examples/counter/counter.c: the Counter gen_server through its own functions.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "examples/counter/counter.h"

#include "bl_test.h"

static _Atomic int casts, calls, infos;

/* Counts the sys trace lines of each kind (runs in the server). */
static void count_trace(bl_pid server, const char *line, void *arg)
{
    if (strstr(line, "got cast")) atomic_fetch_add(&casts, 1);
    if (strstr(line, "got call")) atomic_fetch_add(&calls, 1);
    if (strstr(line, "got info")) atomic_fetch_add(&infos, 1);
}

static void counter_main(void *arg)
{
    bl_pid pid;
    BL_CHECK_EQ(counter_start(&pid, 0), 0);
    BL_CHECK_EQ(bl_sys_trace(pid, true, count_trace, NULL, 1000), 0);

    char text[64] = "";
    BL_CHECK_EQ(counter_get_count(pid, text, sizeof text), 0);
    BL_CHECK(strcmp(text, "The count is 0") == 0);

    BL_CHECK_EQ(counter_inc(pid, 10), 0);
    BL_CHECK_EQ(counter_dec(pid, 5), 0);
    BL_CHECK_EQ(counter_inc(pid, 2), 0);
    BL_CHECK_EQ(counter_get_count(pid, text, sizeof text), 0);
    BL_CHECK(strcmp(text, "The count is 7") == 0);

    /* A plain message is handled (and traced) as info and changes nothing. */
    BL_CHECK_EQ(bl_send(pid, 100, "Hi genserver!", 13), 0);
    BL_CHECK_EQ(counter_get_count(pid, text, sizeof text), 0);
    BL_CHECK(strcmp(text, "The count is 7") == 0);
    BL_CHECK_EQ(atomic_load(&casts), 3);
    BL_CHECK_EQ(atomic_load(&calls), 3);
    BL_CHECK_EQ(atomic_load(&infos), 1);

    /* Negative counts are counts too. */
    BL_CHECK_EQ(counter_dec(pid, 20), 0);
    BL_CHECK_EQ(counter_get_count(pid, text, sizeof text), 0);
    BL_CHECK(strcmp(text, "The count is -13") == 0);

    /* stop with boom: terminate runs and the server exits with exactly that reason. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(pid, &ref), 0);
    BL_CHECK_EQ(bl_gen_server_stop(pid, &counter_boom, 1000), 0);
    bl_msg *down = NULL;
    BL_CHECK_EQ(bl_recv(&down, bl_match_ref, &ref, 5000, 0), 0);
    bl_reason why;
    BL_CHECK(down && bl_msg_reason(down, &why) == 0 && bl_reason_eq(&why, &counter_boom));
    bl_msg_free(down);

    /* A stopped counter: calls fail with noproc, casts still return 0 (Elixir's :ok). */
    BL_CHECK_EQ(counter_get_count(pid, text, sizeof text), -ESRCH);
    BL_CHECK_EQ(counter_inc(pid, 1), 0);
}

Test(examples, counter)
{
    /* The boom exit is abnormal: keep its crash report out of the test output. */
    bl_config cfg = {.quiet = true};
    bl_test_run(&cfg, counter_main, NULL);
}
