/*
 * main.c - http_server, the program: serve (http_server.h) until SIGTERM
 * or SIGINT, then shut down gracefully.  A second signal stops it at once.
 *
 * main blocks both signals before the runtime starts, and a plain thread
 * waits for them with sigwait: bl_send is safe from any thread, so the
 * thread needs nothing else to tell the serving process.
 *
 * Run: http_server [--tls CERT KEY] [port] [host]   (default 8080 on
 * 127.0.0.1; host 0.0.0.0, or HTTP_SERVER_HOST=0.0.0.0, listens on every
 * interface; --tls serves https with the PEM certificate chain and key).
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"

/* The signal waiter's message to the serving process (data: the signal). */
enum { T_SIGNAL = 1 };

static sigset_t stop_signals;
static bl_pid server_process;

/*
 * Outside the runtime, a plain thread waits for the signals and tells the
 * serving process with bl_send, which is safe from any thread.  A second
 * signal stops the runtime at once.
 */
static void *signal_waiter(void *arg)
{
    (void)arg;
    int sig;
    sigwait(&stop_signals, &sig);
    bl_send(server_process, T_SIGNAL, &sig, sizeof sig);
    sigwait(&stop_signals, &sig);
    bl_runtime_stop();
    return NULL;
}

static int exit_code;

/* The command line: [--tls CERT KEY] [port] [host]. */
typedef struct args {
    const char *port; /* "8080" unless given */
    const char *host; /* NULL unless given */
    const char *cert; /* --tls: the certificate chain, or NULL */
    const char *key;  /* --tls: its key */
} args;

static void serve(void *arg)
{
    args *a = arg;
    const char *host = a->host ? a->host : getenv("HTTP_SERVER_HOST");
    char *end;
    long port = strtol(a->port, &end, 10);
    if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "http_server: bad port %s\n", a->port);
        exit_code = 1;
        bl_runtime_stop();
        return;
    }
    http_opts o = {.host = host, .port = (uint16_t)port, .cert_file = a->cert, .key_file = a->key};
    http_server srv;
    int rc = http_server_start(&srv, &o);
    if (rc) {
        fprintf(stderr, "http_server: %s\n", strerror(-rc));
        exit_code = 1;
        bl_runtime_stop();
        return;
    }
    printf("http_server: listening on %s:%u (%s) with %u acceptors\n", host ? host : "127.0.0.1",
           srv.port, a->cert ? "https" : "http", srv.nacceptors);
    fflush(stdout);
    /* The supervision tree serves; this process waits for the signal. */
    uint32_t tag = T_SIGNAL;
    bl_msg *m;
    if (bl_recv(&m, bl_match_tag, &tag, BL_INFINITY, 0) == 0) bl_msg_free(m);
    unsigned open = http_server_connections(&srv);
    rc = http_server_shutdown(&srv, 10000);
    printf("http_server: shut down (%u connections open at the signal)%s\n", open,
           rc == -ETIMEDOUT ? ", some cut off after 10 s" : "");
    fflush(stdout);
    bl_runtime_stop();
}

int main(int argc, char **argv)
{
    args a = {.port = "8080"};
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            a.cert = argv[++i];
            a.key = argv[++i];
        } else if (argv[i][0] == '-' || pos == 2) {
            fprintf(stderr, "usage: http_server [--tls CERT KEY] [port] [host]\n");
            return 2;
        } else {
            *(pos++ ? &a.host : &a.port) = argv[i];
        }
    }
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    /* Blocked before any thread starts, so only the waiter takes them. */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    int rc = bl_runtime_start(NULL);
    if (rc) {
        fprintf(stderr, "http_server: %s\n", bl_runtime_error());
        return 1;
    }
    if (bl_spawn(&server_process, serve, &a, NULL) != 0) {
        fprintf(stderr, "http_server: cannot spawn the server\n");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, signal_waiter, NULL);
    pthread_detach(t);
    bl_runtime_wait();
    return exit_code;
}
