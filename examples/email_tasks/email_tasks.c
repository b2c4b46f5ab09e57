/*
 * email_tasks.c - the email tasks (see email_tasks.h): the task functions,
 * and the senders that start one task per email and collect the results.
 */
#include <beamline.h>
#include <beamline/task.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "email_tasks.h"

/* ---- the tasks ---- */

void send_email(void *address, bl_task_out *out)
{
    char line[64];
    bl_sleep(EMAIL_SEND_MS);
    int len = snprintf(line, sizeof line, "%s received", (const char *)address);
    /* snprintf returns the length it wanted: a long address is cut short. */
    if (len < 0) len = 0;
    if ((size_t)len >= sizeof line) len = (int)sizeof line - 1;
    line[len] = 0;
    printf("%s\n", line);
    bl_task_return(out, line, (size_t)len + 1);
}

void send_email_or_crash(void *address, bl_task_out *out)
{
    if (strcmp(address, "b@com") == 0) {
        /* raise("oh no!"): the task exits abnormally with that text as its reason. */
        bl_reason oh_no = {.kind = BL_CUSTOM, .code = 1, .detail = "oh no!", .detail_len = 6};
        bl_exit_reason(&oh_no);
    }
    send_email(address, out);
}

#define EMAIL_MAX 64 /* emails per call at most */

/* Starts one task per email, then awaits them all. */
static int send_all(const char *const *emails, size_t n, bl_task_result *res, int64_t timeout_ms,
                    bool link)
{
    bl_task tasks[EMAIL_MAX];
    if (n > EMAIL_MAX) return -E2BIG;
    for (size_t i = 0; i < n; i++) {
        /* The address strings are the caller's: they outlive the tasks, which we await. */
        void *address = (void *)emails[i];
        int rc = link ? bl_task_async(&tasks[i], send_email, address, NULL)
                      : bl_task_async_nolink(&tasks[i], send_email_or_crash, address, NULL);
        if (rc) {
            /* Shut down what was started; their results do not matter any more. */
            while (i-- > 0) bl_task_shutdown(&tasks[i], BL_TASK_BRUTAL_KILL, NULL);
            return rc;
        }
    }
    if (link) return bl_task_await_many(tasks, n, timeout_ms, res);
    /* One failed task must not stop us from collecting the others: yield_many, not await_many. */
    bl_task_yield_opts opts = {.on_timeout = BL_TASK_ON_TIMEOUT_KILL_TASK};
    int answered = bl_task_yield_many(tasks, n, timeout_ms, res, &opts);
    if (answered < 0) return answered;
    int sent = 0;
    for (size_t i = 0; i < n; i++) sent += res[i].status == BL_TASK_OK;
    return sent;
}

int email_send_all(const char *const *emails, size_t n, bl_task_result *res, int64_t timeout_ms)
{
    return send_all(emails, n, res, timeout_ms, true);
}

int email_send_all_nolink(const char *const *emails, size_t n, bl_task_result *res,
                          int64_t timeout_ms)
{
    return send_all(emails, n, res, timeout_ms, false);
}
