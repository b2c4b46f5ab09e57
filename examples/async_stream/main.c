/*
 * main.c - async_stream, the program: twelve emails through
 * send_emails_back_pressured (async_stream.h), four at a time, so the whole
 * run takes about 150 ms.
 *
 * Run: ./async_stream  (exits 1 if more than four tasks ever ran at once)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "async_stream.h"

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
