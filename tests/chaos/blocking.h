/*
 * tests/chaos/blocking.h - the blocking_calls scenario's table: for each
 * blocking call of the API, how to make a process wait in it.
 *
 * For every call in the table the killer (the scenario process) runs
 * iterations: prepare, spawn a victim that says it is about to call and
 * calls (enter), wait a random 0-2 ms (sometimes 0), sometimes poke (make
 * the call complete right then: a connection, a byte, a reply), kill the
 * victim, wait for its DOWN, then after.  What the victim gets from a call
 * (a descriptor, a result) it holds under a cleanup handler, as a program
 * must; what the runtime holds for the call must go with the victim.
 */
#ifndef CHAOS_BLOCKING_H
#define CHAOS_BLOCKING_H

#include "chaos.h"

#define BC_CLIENTS 64

typedef struct bc_fix {
    chaos_run *r;
    bl_pid killer;     /* the scenario process */
    _Atomic int stage; /* victim: 1 about to call, 2 the call returned */
    chaos_rng g;       /* the killer's choices */
    unsigned seq;      /* iteration number */
    int64_t param;     /* chosen by prepare for this iteration (a timeout, a delay) */
    /* I/O */
    int lfd;                 /* a listener */
    uint16_t port;           /* its port */
    int a, b;                /* a connected pair or a pipe: the victim uses a */
    int clients[BC_CLIENTS]; /* connections the killer made (pokes, a full backlog) */
    int nclients;            /* how many */
    int file;                /* a temporary file (unlinked) */
    /* behaviours */
    bl_pid server;          /* a gen_server */
    bl_pid sup;             /* a supervisor */
    bl_pid sub;             /* a supervisor the victim stops */
    bl_pid dsup;            /* a dynamic supervisor */
    bl_pid tsup;            /* a task supervisor */
    char id[BL_SUP_ID_MAX]; /* this iteration's child id */
} bc_fix;

typedef struct bc_call {
    const char *header;          /* where the call is declared */
    const char *name;            /* what the victim calls */
    int (*setup)(bc_fix *x);     /* once (may be NULL): 0, or an error that skips the call */
    void (*prepare)(bc_fix *x);  /* before each victim (may be NULL) */
    void (*enter)(bc_fix *x);    /* in the victim: the blocking call */
    void (*poke)(bc_fix *x);     /* sometimes, just before the kill (may be NULL) */
    void (*after)(bc_fix *x);    /* after each kill (may be NULL) */
    void (*teardown)(bc_fix *x); /* once (may be NULL) */
} bc_call;

/* Marks the victim's progress: call just before and just after the call. */
static inline void bc_calling(bc_fix *x)
{
    atomic_store(&x->stage, 1);
}

static inline void bc_returned(bc_fix *x)
{
    atomic_store(&x->stage, 2);
}

/* A cleanup handler: closes *(int *)arg when it is a descriptor. */
void bc_close_ptr(void *arg);

/* The tables (blocking_io.c, blocking_otp.c), each ended by a NULL name. */
extern const bc_call bc_io_calls[];
extern const bc_call bc_otp_calls[];

#endif /* CHAOS_BLOCKING_H */
