/*
 * async_stream.h - many items, one task each, at most N at a time.
 *
 * bl_task_stream_open is Task.async_stream: every item is processed by a
 * task of its own, but no more than max_concurrency tasks run at once; the
 * next task starts only as the consumer takes a result.  That is
 * back-pressure: twelve emails, four at a time, go out in three rounds.
 *
 * The seed's emails take 500 ms each; here 50 ms.  Elixir streams are lazy
 * and consumed by Stream.run or Enum.to_list; here the consumer pulls
 * results with bl_task_stream_next.
 */
#ifndef ASYNC_STREAM_H
#define ASYNC_STREAM_H

#include <beamline.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

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

#endif
