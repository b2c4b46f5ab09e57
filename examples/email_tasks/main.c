/*
 * main.c - email_tasks, the program: the tasks of email_tasks.h, and
 * bl_task_await against bl_task_yield.
 *
 *   1. Email1: one task per email, all at once, so two emails of 100 ms
 *      each take about 100 ms, not 200; then their results are collected
 *      with bl_task_await_many.
 *   2. await and yield: await waits for the result; yield gives up after a
 *      timeout and may be called again while the task runs on.
 *   3. Email2: tasks not linked to the caller.  Sending to b@com crashes
 *      its task; the caller lives on and learns of the crash from the
 *      task's monitor.
 *
 * Run: ./email_tasks  (exits 1 if a result is not the expected one)
 */
#include <beamline.h>
#include <beamline/task.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "email_tasks.h"

/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "email_tasks: expected %s (line %d)\n", #cond, __LINE__);              \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Task functions for part 2: return a number, or sleep first. */
static void return_int(void *arg, bl_task_out *out)
{
    int v = (int)(intptr_t)arg;
    bl_task_return(out, &v, sizeof v);
}

static void sleep_then_return(void *arg, bl_task_out *out)
{
    bl_sleep(250);
    return_int(arg, out);
}

static void scenario(void *arg)
{
    /* 1. Email1: both emails at once. */
    static const char *const emails[] = {"a@com", "b@com"};
    bl_task_result res[3];
    int64_t before = now_ms();
    EXPECT(email_send_all(emails, 2, res, 5000) == 0);
    printf("both sent in %lld ms (one email takes %d ms)\n", (long long)(now_ms() - before),
           EMAIL_SEND_MS);
    for (int i = 0; i < 2; i++) {
        EXPECT(res[i].status == BL_TASK_OK && strstr(res[i].data, emails[i]));
        bl_task_result_free(&res[i]);
    }

    /* 2. await returns the result; yield returns nil while the task runs, and can be retried. */
    bl_task t_await, t_yield, slow;
    bl_task_result r;
    EXPECT(bl_task_async(&t_await, return_int, (void *)(intptr_t)1, NULL) == 0);
    EXPECT(bl_task_async(&t_yield, return_int, (void *)(intptr_t)2, NULL) == 0);
    EXPECT(bl_task_await(&t_await, BL_TASK_DEFAULT_TIMEOUT, &r) == 0 && *(int *)r.data == 1);
    printf("await: %d\n", *(int *)r.data);
    bl_task_result_free(&r);
    EXPECT(bl_task_yield(&t_yield, BL_TASK_DEFAULT_TIMEOUT, &r) == BL_TASK_OK);
    printf("yield: {:ok, %d}\n", *(int *)r.data);
    bl_task_result_free(&r);

    EXPECT(bl_task_async(&slow, sleep_then_return, (void *)(intptr_t)3, NULL) == 0);
    while (bl_task_yield(&slow, 100, &r) == BL_TASK_NIL) printf("yield: nil, called again\n");
    EXPECT(r.status == BL_TASK_OK && *(int *)r.data == 3);
    printf("yield: {:ok, %d}\n", *(int *)r.data);
    bl_task_result_free(&r);

    /* 3. Email2: b@com crashes its task, not us. */
    static const char *const more[] = {"a@com", "b@com", "c@com"};
    EXPECT(email_send_all_nolink(more, 3, res, 5000) == 2);
    for (int i = 0; i < 3; i++) {
        if (res[i].status == BL_TASK_OK)
            printf("%s: {:ok, \"%s\"}\n", more[i], (const char *)res[i].data);
        else
            printf("%s: {:exit, \"%.*s\"}\n", more[i], (int)res[i].reason.detail_len,
                   (const char *)res[i].reason.detail);
        EXPECT(res[i].status == (i == 1 ? BL_TASK_EXIT : BL_TASK_OK));
        bl_task_result_free(&res[i]);
    }
    printf("the caller is still alive\n");
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
