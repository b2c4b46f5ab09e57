/*
 * async_stream.c - many items, one task each, at most N at a time.
 *
 * bl_task_stream_open is Task.async_stream: every item is processed by a
 * task of its own, but no more than max_concurrency tasks run at once; the
 * next task starts only as the consumer takes a result.  That is
 * back-pressure: twelve emails, four at a time, go out in three rounds.
 *
 * The seed's emails take 500 ms each; here 50 ms, so the whole run takes
 * about 150 ms.  Elixir streams are lazy and consumed by Stream.run or
 * Enum.to_list; here the consumer pulls results with bl_task_stream_next.
 * Run: ./async_stream  (exits 1 if more than four tasks ever ran at once)
 */
#include <beamline.h>
#include <beamline/task.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the module's API ---- */

#define EMAIL_SEND_MS 50 /* how long sending one email takes */

/* An item of the stream: streams carry fixed-size records. */
typedef struct email {
    char address[32];
} email;

/* What a run saw; the tasks update it, hence the atomics. */
typedef struct stream_report {
    _Atomic int running;     /* tasks sending right now */
    _Atomic int max_running; /* the most that ever sent at once */
} stream_report;

/*
 * Sends the n emails, max_concurrency at a time, in tasks linked to the
 * caller.  ordered: deliver results in input order (Elixir's default),
 * else as they complete.  The addresses are copied into delivered[] (may be
 * NULL) in delivery order; report (may be NULL) records the concurrency.
 * Returns how many were delivered, or the error that ended the stream
 * (the errors of bl_task_stream_open and bl_task_stream_next).
 */
int send_emails_back_pressured(const email *emails, size_t n, unsigned max_concurrency,
                               bool ordered, email *delivered, stream_report *report);

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

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "async_stream: expected %s (line %d)\n", #cond, __LINE__);             \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void scenario(void *arg)
{
    /* chars = a@com .. l@com: twelve emails. */
    email emails[12];
    for (int i = 0; i < 12; i++)
        snprintf(emails[i].address, sizeof emails[i].address, "%c@com", 'a' + i);

    stream_report report = {0};
    int64_t before = now_ms();
    EXPECT(send_emails_back_pressured(emails, 12, 4, false, NULL, &report) == 12);
    int64_t took = now_ms() - before;
    printf("12 emails, 4 at a time: %lld ms, at most %d tasks at once\n", (long long)took,
           atomic_load(&report.max_running));
    EXPECT(atomic_load(&report.max_running) <= 4);
    /* Never more than 4 at once, each 50 ms or more: three rounds at least. */
    EXPECT(took >= 3 * EMAIL_SEND_MS);
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
#endif
