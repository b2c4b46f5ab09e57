/*
 * examples/email_tasks/email_tasks.c: linked tasks awaited together, and unlinked ones
 * of which one crashes without touching the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "examples/email_tasks/email_tasks.h"

#include "bl_test.h"

static void linked_main(void *arg)
{
    static const char *const emails[] = {"a@com", "b@com", "c@com"};
    bl_task_result res[3];
    BL_CHECK_EQ(email_send_all(emails, 3, res, 5000), 0);
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "%s received", emails[i]);
        BL_CHECK_EQ(res[i].status, BL_TASK_OK);
        BL_CHECK(res[i].len == strlen(want) + 1 && strcmp(res[i].data, want) == 0);
        bl_task_result_free(&res[i]);
    }
    BL_CHECK_EQ(email_send_all(emails, 0, res, 5000), 0);

    /* send_email is an ordinary task function. */
    bl_task t;
    bl_task_result r;
    BL_CHECK_EQ(bl_task_async(&t, send_email, "d@com", NULL), 0);
    BL_CHECK_EQ(bl_task_await(&t, 5000, &r), 0);
    BL_CHECK(r.status == BL_TASK_OK && strcmp(r.data, "d@com received") == 0);
    bl_task_result_free(&r);

    /* A task that takes longer than the await timeout: -ETIMEDOUT, and it is killed. */
    BL_CHECK_EQ(bl_task_async(&t, send_email, "e@com", NULL), 0);
    bl_pid pid = t.pid;
    BL_CHECK_EQ(bl_task_await(&t, 10, &r), -ETIMEDOUT);
    bl_task_result_free(&r);
    BL_CHECK(!bl_is_alive(pid));
}

Test(email_tasks, email1_async_await)
{
    bl_test_run(NULL, linked_main, NULL);
}

static void nolink_main(void *arg)
{
    /* Not trapping exits: a linked crash would take this process down. */
    BL_CHECK(!bl_trap_exit(false));
    static const char *const emails[] = {"a@com", "b@com", "c@com"};
    bl_task_result res[3];
    BL_CHECK_EQ(email_send_all_nolink(emails, 3, res, 5000), 2);
    BL_CHECK_EQ(res[0].status, BL_TASK_OK);
    BL_CHECK(strcmp(res[0].data, "a@com received") == 0);
    BL_CHECK_EQ(res[1].status, BL_TASK_EXIT);
    BL_CHECK_EQ(res[1].reason.kind, BL_CUSTOM);
    BL_CHECK(res[1].reason.detail_len == 6 && memcmp(res[1].reason.detail, "oh no!", 6) == 0);
    BL_CHECK_EQ(res[2].status, BL_TASK_OK);
    BL_CHECK(strcmp(res[2].data, "c@com received") == 0);
    for (int i = 0; i < 3; i++) bl_task_result_free(&res[i]);
    /* Still here, and nothing was linked to us. */
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(bl_self(), &info), 0);
    BL_CHECK_EQ(info.nlinks, 0);
}

Test(email_tasks, email2_nolink_crash)
{
    bl_config quiet = {.quiet = true};
    bl_test_run(&quiet, nolink_main, NULL);
}
