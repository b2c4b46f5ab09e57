/*
 * email_tasks.c - tasks: run a function in its own process, collect its result.
 *
 *   1. Email1: one task per email, all at once (bl_task_async), so two
 *      emails of 100 ms each take about 100 ms, not 200; then their results
 *      are collected with bl_task_await_many.
 *   2. await and yield: await waits for the result; yield gives up after a
 *      timeout and may be called again while the task runs on.
 *   3. Email2: tasks not linked to the caller (bl_task_async_nolink).
 *      Sending to b@com crashes its task; the caller lives on and learns
 *      of the crash from the task's monitor.
 *
 * The seed's emails take 1 s; here 100 ms.  Elixir's Email2 starts its
 * tasks under a Task.Supervisor and never looks at them; here the caller
 * awaits them, to show what each one did.
 * Run: ./email_tasks  (exits 1 if a result is not the expected one)
 */
#include <beamline.h>
#include <beamline/task.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the module's API ---- */

#define EMAIL_SEND_MS 100 /* how long sending one email takes */

/*
 * A task function: sends the email to address arg (a string), which takes
 * EMAIL_SEND_MS, logs "<address> received" and returns that text.
 */
void send_email(void *address, bl_task_out *out);
/* As send_email, but the email to "b@com" crashes the task: Email2's send_email. */
void send_email_or_crash(void *address, bl_task_out *out);

/*
 * Sends n emails concurrently, one task each, linked to the caller (Email1),
 * and waits up to timeout_ms for all of them.  res[i] gets the result of
 * emails[i] (free each with bl_task_result_free).  Returns 0, or the errors
 * of bl_task_async and bl_task_await_many.
 */
int email_send_all(const char *const *emails, size_t n, bl_task_result *res, int64_t timeout_ms);
/*
 * As email_send_all with send_email_or_crash and tasks that are not linked
 * to the caller (Email2): a crashing task leaves the caller alone.  Returns
 * how many were sent (res[i] OK) or a negative errno; res[i] is EXIT for a
 * task that crashed.
 */
int email_send_all_nolink(const char *const *emails, size_t n, bl_task_result *res,
                          int64_t timeout_ms);

/* ---- the tasks ---- */

void send_email(void *address, bl_task_out *out)
{
    char line[64];
    bl_sleep(EMAIL_SEND_MS);
    int len = snprintf(line, sizeof line, "%s received", (const char *)address);
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

#ifndef BL_EXAMPLE_NO_MAIN
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
#endif
