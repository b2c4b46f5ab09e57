/*
 * otp/wait.h - what the behaviours share to wait for an answer: a monotonic
 * clock for their deadlines and the receive matchers more than one of them
 * uses (internal to the otp layer).
 *
 * Each matcher is a bl_match_fn: it runs inside bl_recv on the receiving
 * process, reads only the message and its argument, and never blocks.
 */
#ifndef BL_OTP_WAIT_H
#define BL_OTP_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
uint64_t bl__otp_now_ns(void);
/* Monotonic milliseconds, rounded down: bl__otp_now_ns() / 1000000. */
int64_t bl__otp_now_ms(void);

/* What bl__otp_match_answer waits for: a reference and the answer's tag. */
typedef struct bl__otp_waitref {
    bl_ref ref;   /* the reference waited for (a monitor's, or the request's) */
    uint32_t tag; /* the answer's tag; a DOWN under ref also matches */
} bl__otp_waitref;

/* arg is a bl__otp_waitref: its answer or a DOWN, either under its reference. */
bool bl__otp_match_answer(const bl_msg *m, void *arg);
/* arg is a bl_ref: the DOWN of that monitor. */
bool bl__otp_match_down(const bl_msg *m, void *arg);
/* arg is a bl_pid: an EXIT from that process. */
bool bl__otp_match_exit_from(const bl_msg *m, void *arg);

#endif /* BL_OTP_WAIT_H */
