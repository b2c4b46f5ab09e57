/*
 * examples/async_stream/async_stream.c: every item delivered once, never more tasks at
 * once than max_concurrency, input order when ordered.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "examples/async_stream/async_stream.h"

#include "bl_test.h"

static void fill(email *emails, int n)
{
    for (int i = 0; i < n; i++)
        snprintf(emails[i].address, sizeof emails[i].address, "%c%d@com", 'a' + i % 26, i);
}

static void unordered_main(void *arg)
{
    email emails[12], got[12];
    fill(emails, 12);
    stream_report report = {0};
    BL_CHECK_EQ(send_emails_back_pressured(emails, 12, 4, false, got, &report), 12);
    BL_CHECK(atomic_load(&report.max_running) >= 1);
    BL_CHECK(atomic_load(&report.max_running) <= 4);
    BL_CHECK_EQ(atomic_load(&report.running), 0);
    /* Each email exactly once, in whatever order they completed. */
    for (int i = 0; i < 12; i++) {
        int seen = 0;
        for (int j = 0; j < 12; j++) seen += strcmp(got[j].address, emails[i].address) == 0;
        BL_CHECK_EQ(seen, 1);
    }
}

Test(async_stream, back_pressure_unordered)
{
    bl_test_run(NULL, unordered_main, NULL);
}

static void ordered_main(void *arg)
{
    email emails[10], got[10];
    fill(emails, 10);
    stream_report report = {0};
    BL_CHECK_EQ(send_emails_back_pressured(emails, 10, 3, true, got, &report), 10);
    BL_CHECK(atomic_load(&report.max_running) <= 3);
    for (int i = 0; i < 10; i++) BL_CHECK(strcmp(got[i].address, emails[i].address) == 0);

    /* One at a time is one at a time. */
    stream_report one = {0};
    BL_CHECK_EQ(send_emails_back_pressured(emails, 5, 1, true, NULL, &one), 5);
    BL_CHECK_EQ(atomic_load(&one.max_running), 1);

    /* Nothing to send; bad input. */
    BL_CHECK_EQ(send_emails_back_pressured(emails, 0, 4, true, NULL, NULL), 0);
    BL_CHECK_EQ(send_emails_back_pressured(NULL, 3, 4, true, NULL, NULL), -EINVAL);
}

Test(async_stream, ordered)
{
    bl_test_run(NULL, ordered_main, NULL);
}
