/*
 * main.c - echo_server, the program: a TCP echo server on the listener
 * (echo_server.h) on 127.0.0.1, serving until SIGINT or SIGTERM.
 *
 * Run: echo_server [port]   (default 7000, on 127.0.0.1); try `nc 127.0.0.1 7000`.
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo_server.h"

static sigset_t stop_signals;

/* Outside the runtime: wait for the signal, then stop the runtime. */
static void *signal_waiter(void *arg)
{
    int sig;
    sigwait(&stop_signals, &sig);
    bl_runtime_stop();
    return NULL;
}

static void serve(void *arg)
{
    echo_opts o = {.port = (uint16_t)atoi(arg)};
    echo_server srv;
    int rc = echo_server_start(&srv, &o);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", strerror(-rc));
        bl_runtime_stop();
        return;
    }
    bl_listener_info info;
    bl_listener_info_get(srv.listener, &info);
    printf("echo_server: listening on 127.0.0.1:%u with %u acceptors\n", srv.port, info.acceptors);
    fflush(stdout);
    /* The listener serves; this process just waits. */
    bl_msg_free(bl_receive(BL_INFINITY));
}

int main(int argc, char **argv)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    /* Blocked before any thread starts, so only the waiter takes them. */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    pthread_t t;
    pthread_create(&t, NULL, signal_waiter, NULL);
    int rc = bl_runtime_start(NULL);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", bl_runtime_error());
        return 1;
    }
    bl_spawn(NULL, serve, argc > 1 ? argv[1] : "7000", NULL);
    bl_runtime_wait();
    return 0;
}
