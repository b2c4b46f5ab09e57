/*
 * tests/tools/top_load.c - a small program under load for beamline-top's
 * test (test_top.sh): a registered gen_server that four clients keep
 * calling, a registered process with 100 messages queued, and the control
 * socket from BEAMLINE_CONTROL.  It runs until SIGTERM (or 120 s at most)
 * and then stops cleanly, which removes the socket.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "beamline.h"

enum { T_NOISE = 40, T_STOP };

/* Set by the signal handler, read by processes on other threads: a lock-free
 * atomic is safe in both places. */
static _Atomic int stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void echo(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)state;
    bl_gs_reply(r, m->data, m->len);
}
static const bl_gen_server server = {.handle_call = echo};

/* Calls the server in a loop: the load. */
static void client(void *arg)
{
    (void)arg;
    bl_pid s = bl_whereis("top_load_server");
    for (int i = 0; !stop; i++) {
        bl_msg *m = NULL;
        if (bl_gen_server_call(s, 1, &i, sizeof i, &m, 5000) == 0) bl_msg_free(m);
    }
}

/* Keeps 100 messages in its queue: it waits for a tag that never comes. */
static void hoarder(void *arg)
{
    (void)arg;
    bl_register("top_load_hoarder", bl_self());
    for (int i = 0; i < 100; i++) bl_send(bl_self(), T_NOISE, "queued", 6);
    uint32_t tag = T_STOP;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0);
}

static void main_proc(void *arg)
{
    (void)arg;
    bl_gen_server_opts o = {.name = &BL_NAME_LOCAL("top_load_server")};
    bl_pid s;
    if (bl_gen_server_start(&s, &server, NULL, &o) != 0) bl_exit(1);
    for (int i = 0; i < 4; i++) bl_spawn(NULL, client, NULL, NULL);
    bl_spawn(NULL, hoarder, NULL, NULL);
    for (int t = 0; t < 1200 && !stop; t++) bl_sleep(100);
    stop = 1;
}

int main(void)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return bl_main(NULL, main_proc, NULL);
}
