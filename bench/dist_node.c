/*
 * bench/dist_node.c - the Beamline side of the distribution rows
 * (bench/README.md, dist_call_rtt and dist_cast):
 *
 *   dist_node serve NAME COOKIE
 *       becomes node NAME with a gen_server registered as kv: ping is
 *       answered with pong, each {put, _} cast is counted, count is answered
 *       with the count; prints "ready" and runs until its stdin closes.
 *   dist_node client NAME COOKIE NODE [CALLS [CASTS]]
 *       becomes node NAME and measures against {kv, NODE}, a Beamline or an
 *       Elixir node: CALLS calls of ping (default 20,000), the mean round
 *       trip in us; then CASTS casts of {put, I} (default 1,000,000) and one
 *       call of count, whose answer comes after every cast was handled, in
 *       us per cast.  Prints {"workloads":[...]} as the anchors do.
 *
 * Both speak to the epmd of ERL_EPMD_PORT (bench/run.py starts a private
 * one).  Exits 1 on any failure, with the reason on stderr.
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <beamline/dist.h>
#include <beamline/gen_server.h>
#include <beamline/io.h>
#include <ei.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 60000

typedef struct args {
    const char *mode, *name, *cookie, *node;
    long calls, casts;
    int rc;
} args;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the server ---- */

/* The atom the request term is, or "" when it is something else. */
static void request_atom(const bl_msg *m, char atom[MAXATOMLEN])
{
    int i = 0, version;
    if (m->tag != BL_TAG_DIST_TERM || ei_decode_version(m->data, &i, &version) != 0 ||
        ei_decode_atom(m->data, &i, atom) != 0)
        atom[0] = 0;
}

static void kv_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    char atom[MAXATOMLEN], buf[32];
    int i = 0;
    request_atom(m, atom);
    ei_encode_version(buf, &i);
    if (strcmp(atom, "ping") == 0)
        ei_encode_atom(buf, &i, "pong");
    else if (strcmp(atom, "count") == 0)
        ei_encode_long(buf, &i, (long)(uintptr_t)*state);
    else
        ei_encode_atom(buf, &i, "badarg");
    bl_gs_reply(r, buf, (size_t)i);
}

static void kv_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    (void)m;
    (void)r;
    *state = (void *)((uintptr_t)*state + 1);
}

static const bl_gen_server kv = {.handle_call = kv_call, .handle_cast = kv_cast};

static int serve(args *a)
{
    bl_gen_server_opts o = {.name = &(bl_name){.local = "kv"}};
    bl_pid pid;
    int rc = bl_gen_server_start(&pid, &kv, NULL, &o);
    if (rc != 0) {
        fprintf(stderr, "dist_node: kv: %s\n", strerror(-rc));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char buf[256];
    while (bl_io_read(0, buf, sizeof buf, BL_INFINITY) > 0) {
    }
    bl_gen_server_stop(pid, NULL, WAIT_MS);
    return 0;
}

/* ---- the client ---- */

/* One call of the term `req` (bytes); *out: the reply's first long, if any. */
static int call(const char *node, const char *req, int len, long *out)
{
    bl_msg *reply = NULL;
    int rc = bl_gen_server_call_to(BL_GS_REMOTE("kv", node), 1, req, (size_t)len, &reply, WAIT_MS);
    if (rc == 0 && out) {
        int i = 0, v;
        if (ei_decode_version(reply->data, &i, &v) != 0 ||
            ei_decode_long(reply->data, &i, out) != 0)
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

static int client(args *a)
{
    char ping[16], count[16];
    int np = 0, nc = 0;
    ei_encode_version(ping, &np);
    ei_encode_atom(ping, &np, "ping");
    ei_encode_version(count, &nc);
    ei_encode_atom(count, &nc, "count");
    long before = 0, after = 0;
    int rc = bl_dist_connect(a->node);
    if (rc == 0) rc = call(a->node, ping, np, NULL); /* warm-up: the connection is up */
    if (rc == 0) rc = call(a->node, count, nc, &before);
    if (rc != 0) {
        fprintf(stderr, "dist_node: {kv, %s}: %s\n", a->node, strerror(-rc));
        return 1;
    }
    uint64_t t0 = now_ns();
    for (long k = 0; k < a->calls && rc == 0; k++) rc = call(a->node, ping, np, NULL);
    uint64_t t1 = now_ns();
    /* {put, K}: built for each cast, as the Elixir client builds its tuple. */
    for (long k = 0; k < a->casts && rc == 0; k++) {
        char put[32];
        int n = 0;
        ei_encode_version(put, &n);
        ei_encode_tuple_header(put, &n, 2);
        ei_encode_atom(put, &n, "put");
        ei_encode_long(put, &n, k);
        rc = bl_gen_server_cast_to(BL_GS_REMOTE("kv", a->node), 1, put, (size_t)n);
    }
    if (rc == 0) rc = call(a->node, count, nc, &after);
    uint64_t t2 = now_ns();
    if (rc != 0 || after - before != a->casts) {
        fprintf(stderr, "dist_node: %s (%ld of %ld casts handled)\n",
                rc ? strerror(-rc) : "casts lost", after - before, a->casts);
        return 1;
    }
    printf("{\"workloads\":[{\"name\":\"dist_call_rtt\",\"unit\":\"us\",\"value\":%.4f},"
           "{\"name\":\"dist_cast\",\"unit\":\"us\",\"value\":%.4f}]}\n",
           (double)(t1 - t0) / (double)a->calls / 1e3, (double)(t2 - t1) / (double)a->casts / 1e3);
    return 0;
}

static void node_main(void *arg)
{
    args *a = arg;
    int rc = bl_dist_start(a->name, a->cookie, NULL);
    if (rc != 0) {
        fprintf(stderr, "dist_node: node %s: %s\n", a->name, strerror(-rc));
        a->rc = 1;
        return;
    }
    a->rc = strcmp(a->mode, "serve") == 0 ? serve(a) : client(a);
    bl_dist_stop();
}

int main(int argc, char **argv)
{
    args a = {0};
    bool ok = argc >= 4 && (strcmp(argv[1], "serve") == 0 || strcmp(argv[1], "client") == 0);
    if (ok && strcmp(argv[1], "client") == 0) ok = argc >= 5;
    if (!ok) {
        fprintf(stderr, "usage: dist_node serve NAME COOKIE\n"
                        "       dist_node client NAME COOKIE NODE [CALLS [CASTS]]\n");
        return 2;
    }
    a.mode = argv[1];
    a.name = argv[2];
    a.cookie = argv[3];
    a.node = argc > 4 ? argv[4] : NULL;
    a.calls = argc > 5 ? atol(argv[5]) : 20000;
    a.casts = argc > 6 ? atol(argv[6]) : 1000000;
    if (a.calls < 1 || a.casts < 1) return 2;
    int rc = bl_main(NULL, node_main, &a);
    return rc < 0 ? 1 : a.rc;
}
