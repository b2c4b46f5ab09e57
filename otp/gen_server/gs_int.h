/*
 * otp/gen_server/gs_int.h - what the pieces of the gen_server share
 * (internal to otp/gen_server/).
 *
 *   server.c   the server: callbacks, results, the loop, sys, start
 *   client.c   call, cast, reply, stop and the sys calls; destinations
 *   request.c  send_request and its answers; request id collections
 *
 * Wire format (all tags reserved, so user sends can never forge them):
 *   CALL   ref = the caller's monitor reference, which is also its alias:
 *          a call's in the PCB (bl__alias_set), a request's a monitor
 *          alias (BL_MONITOR_ALIAS_DEMONITOR); payload = hdr + request
 *   CAST   payload = hdr + request
 *   SYS    ref as CALL; payload = sys_req (+ a stop reason's detail)
 *   REPLY  ref = the CALL's reference, sent as an alias message
 *          (BL_MSG_ALIAS, proc/otp.h): dropped unless the caller still
 *          waits on it; payload = the reply
 *   ACK    ref = the start reference; payload = ack
 *   NOPROC ref = a request's reference: the requester's note to itself
 *          that nobody held the name it sent to (Erlang's fake DOWN)
 * hdr is 16 bytes so the request keeps the payload's 16-byte alignment.
 */
#ifndef BL_OTP_GS_INT_H
#define BL_OTP_GS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"
#include "beamline/gen_server.h"
#include "otp/gen_server/gs_dist.h"

#define TAG_CALL   BL__GS_TAG_CALL
#define TAG_CAST   BL__GS_TAG_CAST
#define TAG_SYS    (BL_TAG_SYSTEM | 0x23u)
#define TAG_REPLY  BL__GS_TAG_REPLY
#define TAG_ACK    (BL_TAG_SYSTEM | 0x25u)
#define TAG_NOPROC (BL_TAG_SYSTEM | 0x26u)

#define STACK_REQ 240 /* requests up to this size are built on the stack */
#define MAX_NAME  255 /* a local name's longest (bytes) */

typedef struct hdr {
    uint32_t tag;
    uint32_t pad[3];
} hdr;

enum sys_op {
    SYS_GET_STATE,
    SYS_REPLACE,
    SYS_STATUS,
    SYS_TRACE,
    SYS_SUSPEND,
    SYS_RESUME,
    SYS_STOP
};

typedef struct sys_req {
    int op;
    bool on;
    void (*fn)(void **state, void *arg);
    void *arg;
    bl_trace_fn tfn;
    size_t buflen;
    bl_reason reason; /* SYS_STOP; detail follows the struct */
} sys_req;

/* ---- client.c ---- */

/*
 * Sends hdr(tag) + data[0..len) as the payload of a `wire` message.  A CALL
 * with ref BL_REF_NONE is a call: it monitors, aliases, sends and waits
 * (*reply, timeout as bl_gen_server_call).  Anything else is only sent,
 * with ref: a cast (none), or a request's CALL (its alias, request.c).
 * remote: {name, node} of another node (server BL_PID_NONE), else NULL.
 */
int bl__gs_request(bl_pid server, const bl_gs_dest *remote, uint32_t wire, bl_ref ref, uint32_t tag,
                   const void *data, size_t len, bl_msg **reply, int64_t timeout);

/*
 * The process `to` stands for now: 0 and *pid, 1 for {name, node} of
 * another node (reached through the distribution), -ESRCH when nobody
 * holds the name, -EHOSTUNREACH for another node without distribution,
 * -EINVAL (or -ENAMETOOLONG) for a malformed destination.
 */
int bl__gs_resolve(const bl_gs_dest *to, bl_pid *pid);

#endif /* BL_OTP_GS_INT_H */
