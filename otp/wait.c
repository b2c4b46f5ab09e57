/*
 * otp/wait.c - the monotonic clock and the receive matchers shared by the
 * behaviours (see otp/wait.h).  They live here once so that every deadline
 * is computed on the same clock and every "DOWN of this monitor" test reads
 * the same way.
 */
#define _GNU_SOURCE
#include <time.h>

#include "otp/wait.h"

uint64_t bl__otp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t bl__otp_now_ms(void)
{
    return (int64_t)(bl__otp_now_ns() / 1000000u);
}

bool bl__otp_match_answer(const bl_msg *m, void *arg)
{
    const bl__otp_waitref *w = arg;
    return m->ref == w->ref && (m->tag == w->tag || m->tag == BL_TAG_DOWN);
}

bool bl__otp_match_down(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_DOWN && m->ref == *(const bl_ref *)arg;
}

bool bl__otp_match_exit_from(const bl_msg *m, void *arg)
{
    return m->tag == BL_TAG_EXIT && m->from == *(const bl_pid *)arg;
}
