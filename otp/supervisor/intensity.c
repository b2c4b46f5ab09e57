/*
 * otp/supervisor/intensity.c - restart intensity: at most max restarts
 * within a period, or the supervisor gives up (Erlang's intensity and
 * period, Elixir's max_restarts and max_seconds).  Used by Supervisor
 * and DynamicSupervisor; owned by the supervisor process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "otp/supervisor/supervisor_int.h"
#include "otp/wait.h"

/* Restart intensity: the times of the restarts made within the period. */
typedef struct bl__sup_intensity {
    int max;           /* restarts allowed within the period */
    int64_t period_ms; /* max_seconds in ms */
    int64_t *t;        /* restart times, oldest first */
    size_t n, cap;     /* entries used, allocated */
} bl__sup_intensity;

/*
 * Checks and resolves the intensity options: 0 means the default, and
 * BL_SUP_NO_RESTARTS a max of 0.  Returns 0 or -EINVAL.
 */
int bl__sup_intensity_opts(int max_restarts, int max_seconds, int *max, int64_t *period_ms)
{
    if (max_restarts < BL_SUP_NO_RESTARTS || max_seconds < 0) return -EINVAL;
    *max = max_restarts == 0 ? 3 : max_restarts == BL_SUP_NO_RESTARTS ? 0 : max_restarts;
    *period_ms = (int64_t)(max_seconds == 0 ? 5 : max_seconds) * 1000;
    return 0;
}

bl__sup_intensity *bl__sup_intensity_new(int max, int64_t period_ms)
{
    bl__sup_intensity *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->max = max;
    in->period_ms = period_ms;
    return in;
}

void bl__sup_intensity_free(bl__sup_intensity *in)
{
    if (!in) return;
    free(in->t);
    free(in);
}

/*
 * Records a restart now.  Returns true while the restarts within the
 * period are at most max, false when this one is one too many (the caller
 * then shuts down).  Without memory the restart counts as one too many: a
 * supervisor that cannot keep its books should not keep restarting.
 */
bool bl__sup_intensity_add(bl__sup_intensity *in)
{
    int64_t now = bl__otp_now_ms();
    size_t old = 0;
    while (old < in->n && now - in->t[old] > in->period_ms) old++;
    if (old > 0) {
        memmove(in->t, in->t + old, (in->n - old) * sizeof *in->t);
        in->n -= old;
    }
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 4;
        int64_t *t = realloc(in->t, cap * sizeof *t);
        if (!t) return false;
        in->t = t;
        in->cap = cap;
    }
    in->t[in->n++] = now;
    return in->n <= (size_t)in->max;
}
