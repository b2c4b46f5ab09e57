/*
 * otp/sup_internal.h - what otp/supervisor.c shares with the dynamic and
 * partition supervisors (internal to the otp layer).
 */
#ifndef BL_OTP_SUP_INTERNAL_H
#define BL_OTP_SUP_INTERNAL_H

#include "beamline/supervisor.h"

/* Restart intensity: max restarts within a period. */
typedef struct bl__sup_intensity bl__sup_intensity;
int bl__sup_intensity_opts(int max_restarts, int max_seconds, int *max, int64_t *period_ms);
bl__sup_intensity *bl__sup_intensity_new(int max, int64_t period_ms);
void bl__sup_intensity_free(bl__sup_intensity *in);
/* Records a restart; false when the intensity is exceeded. */
bool bl__sup_intensity_add(bl__sup_intensity *in);

/* A child's shutdown time in ms (BL_SHUTDOWN_DEFAULT resolved by type). */
int64_t bl__sup_shutdown_of(int64_t shutdown, bl_child_type type);
/* Shuts n children down at once, each killed at its own deadline. */
void bl__sup_terminate(const bl_pid *pids, const int64_t *shutdown, size_t n);
/* A supervisor call with no timeout. */
int bl__sup_call(bl_pid sup, uint32_t tag, const void *req, size_t len, bl_msg **reply);
/* which_children / count_children through a call with that tag (all three kinds). */
int bl__sup_which(bl_pid sup, uint32_t tag, bl_sup_child *out, size_t max);
int bl__sup_count(bl_pid sup, uint32_t tag, bl_sup_counts *out);

/* The partition supervisor's base: a supervisor of N partition children. */
int bl__supervisor_start_ext(bl_pid *pid, const bl_child_spec *children, size_t n,
                             const bl_sup_opts *opts, int partitions, void (*release)(void *),
                             void *ctx);
int bl__supervisor_route(bl_pid sup, uint64_t u, bl_pid *pid, int *partition);
int bl__supervisor_partitions(bl_pid sup);

#endif /* BL_OTP_SUP_INTERNAL_H */
