/*
 * otp/gen_server/gs_int.h - what the pieces of the gen_server share
 * (internal to otp/gen_server/).
 *
 *   server.c   the server: callbacks, results, the loop, sys, start
 *   client.c   call, cast, reply, stop and the sys calls; destinations
 *   request.c  send_request and its answers; request id collections
 *   ticket.c   the reply tickets of asynchronous requests
 *
 * Wire format (all tags reserved, so user sends can never forge them):
 *   CALL   ref = the caller's monitor reference (a call) or the request's
 *          ticket (send_request); payload = hdr + request
 *   CAST   payload = hdr + request
 *   SYS    ref as CALL; payload = sys_req (+ a stop reason's detail)
 *   REPLY  ref = the call's reference, sent as an alias reply (proc/otp.h);
 *          to a ticket: a plain message, payload = reply + the ticket
 *   ACK    ref = the start reference; payload = ack
 *   NOPROC ref = a request's monitor reference: the requester's note to
 *          itself that nobody held the name it sent to (Erlang's fake DOWN)
 * hdr is 16 bytes so the request keeps the payload's 16-byte alignment.
 */
#ifndef BL_OTP_GS_INT_H
#define BL_OTP_GS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "beamline.h"
#include "beamline/gen_server.h"

#define TAG_CALL   (BL_TAG_SYSTEM | 0x21u)
#define TAG_CAST   (BL_TAG_SYSTEM | 0x22u)
#define TAG_SYS    (BL_TAG_SYSTEM | 0x23u)
#define TAG_REPLY  (BL_TAG_SYSTEM | 0x24u)
#define TAG_ACK    (BL_TAG_SYSTEM | 0x25u)
#define TAG_NOPROC (BL_TAG_SYSTEM | 0x26u)

#define STACK_REQ 240 /* requests up to this size are built on the stack */

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
 * The process `to` stands for now: 0 and *pid, -ESRCH when nobody holds the
 * name, -EHOSTUNREACH for another node, -EINVAL (or -ENAMETOOLONG) for a
 * malformed destination.
 */
int bl__gs_resolve(const bl_gs_dest *to, bl_pid *pid);

/* ---- ticket.c ---- */

/*
 * A ticket is the reference of an asynchronous request's reply.  Bit 63
 * tells it from a call's reference (bl_make_ref never gets there); the rest
 * names a slot in a pool shared by every process and the slot's
 * generation.  The slot's state decides, by compare-and-swap, between the
 * requester giving the request up and whoever answers it: a reply is sent
 * only while the request is pending, so an abandoned request's reply never
 * reaches the requester's mailbox.  A reply to a ticket carries the ticket
 * after its payload (TICKET_TAIL bytes), for the case where it is dropped
 * unread (the requester died): its release action then frees the slot.
 */
#define TICKET_BIT  (1ull << 63)
#define TICKET_TAIL sizeof(bl_ref)

static inline bool bl__gs_is_ticket(bl_ref ref)
{
    return (ref & TICKET_BIT) != 0;
}

/* A fresh pending ticket for requester `me`: 0, or -ENOMEM. */
int bl__gs_ticket_new(bl_pid me, bl_ref *ticket);

/*
 * Answers the request behind from.ref (a ticket) with data[0..len), once:
 * 0 (also when it was given up, answered already, or its requester is
 * gone), -ENOMEM (nothing was sent; the request is still pending).
 */
int bl__gs_ticket_reply(bl_gs_from from, const void *data, size_t len);

/*
 * The requester took the reply m (TAG_REPLY under the ticket): hides the
 * trailing ticket (m->len shrinks) and frees the slot.
 */
void bl__gs_ticket_taken(bl_msg *m);

/*
 * Process only: the requester gives the request up.  Returns NULL when no
 * reply was sent or will be; else the reply, which had been sent already
 * and is now taken out of the mailbox (its slot freed, data/len the reply
 * as for bl__gs_ticket_taken).  A ticket whose slot has moved on (the
 * request ended earlier) does nothing.
 */
bl_msg *bl__gs_ticket_cancel(bl_ref ticket);

/* For tests: tickets not free now, and the pool's size in *capacity (may be NULL). */
size_t bl__gs_tickets_busy(size_t *capacity);

#endif /* BL_OTP_GS_INT_H */
