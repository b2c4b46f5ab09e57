/*
 * async_stream.c - the back-pressured sender (see async_stream.h): the task
 * that sends one email, and the consumer that pulls every result.
 */
#include <beamline.h>
#include <beamline/task.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "async_stream.h"

/* ---- the stream ---- */

/* Raises *max to at least v. */
static void atomic_max(_Atomic int *max, int v)
{
    int seen = atomic_load(max);
    while (seen < v && !atomic_compare_exchange_weak(max, &seen, v)) {
    }
}

/* Runs in a task, once per item: sends the email, returns it. */
static void send_one(void *ctx, void *item, bl_task_out *out)
{
    stream_report *report = ctx;
    const email *e = item;
    atomic_max(&report->max_running, atomic_fetch_add(&report->running, 1) + 1);
    bl_sleep(EMAIL_SEND_MS);
    printf("task %#llx processed %s\n", (unsigned long long)bl_self(), e->address);
    atomic_fetch_sub(&report->running, 1);
    bl_task_return(out, e, sizeof *e);
}

int send_emails_back_pressured(const email *emails, size_t n, unsigned max_concurrency,
                               bool ordered, email *delivered, stream_report *report)
{
    stream_report scratch = {0};
    if (!report) report = &scratch;
    bl_task_stream_opts opts = {.max_concurrency = max_concurrency, .unordered = !ordered};
    bl_task_stream *s;
    int rc = bl_task_stream_open(&s, emails, n, sizeof *emails, send_one, report, &opts);
    if (rc) return rc;
    /* Stream.run: pull every result; each pull lets the next task start. */
    int count = 0;
    bl_task_result res;
    while ((rc = bl_task_stream_next(s, &res)) == 1) {
        if (res.status == BL_TASK_OK && res.len == sizeof(email) && delivered)
            memcpy(&delivered[count], res.data, sizeof(email));
        count += res.status == BL_TASK_OK;
        bl_task_result_free(&res);
    }
    bl_task_stream_close(s);
    return rc < 0 ? rc : count;
}
