/*
 * otp/gen_server/gs_dist.h - what the distribution (dist/, a layer above)
 * needs of the gen_server: the wire tags it turns Erlang's '$gen_call' and
 * '$gen_cast' into and back, and the hook through which calls and casts to
 * other nodes reach it.
 */
#ifndef BL_OTP_GS_DIST_H
#define BL_OTP_GS_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"

#define BL__GS_TAG_CALL  (BL_TAG_SYSTEM | 0x21u) /* ref: the call's; payload: hdr + request */
#define BL__GS_TAG_CAST  (BL_TAG_SYSTEM | 0x22u) /* payload: hdr + request */
#define BL__GS_TAG_REPLY (BL_TAG_SYSTEM | 0x24u) /* ref: the call's; payload: the reply */
#define BL__GS_HDR       16u                     /* a request's header: its uint32_t tag first */

/* Calls and casts to other nodes, installed by dist/ while the node runs. */
typedef struct bl__gs_remote_ops {
    /* True when node is this runtime's own name. */
    bool (*is_local)(const char *node);
    /*
     * Process only: sends the request payload[0..plen) (header first) to
     * pid, or to name on node when pid is BL_PID_NONE.  A CALL monitors
     * the server, makes the monitor's reference the caller's call alias
     * and stores it in *ref (the reply comes as BL__GS_TAG_REPLY under it,
     * an alias message); a CAST is only sent.  0 or a negative errno.
     */
    int (*send)(bl_pid pid, const char *name, const char *node, uint32_t wire, const void *payload,
                size_t plen, bl_ref *ref);
} bl__gs_remote_ops;

/* Installs ops (NULL removes them): then {name, node} and remote pids go there. */
void bl__gs_remote_set(const bl__gs_remote_ops *ops);

#endif /* BL_OTP_GS_DIST_H */
