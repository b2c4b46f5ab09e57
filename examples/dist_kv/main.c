/*
 * main.c - dist_kv, the program: this runtime becomes an Erlang node and
 * serves the bucket registry (dist_kv.h) to the cluster until its standard
 * input closes (Ctrl-D) or it is interrupted.
 *
 * Run: ./dist_kv [NODE]   (NODE default: $BEAMLINE_NODE, else "bl", i.e.
 *      bl@<this host>; the cookie: $BEAMLINE_COOKIE, else ~/.erlang.cookie)
 * then, from `iex --sname me` on the same host, see examples/README.md.
 */
#include <beamline.h>
#include <beamline/dist.h>
#include <beamline/io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_kv.h"

static void serve(void *arg)
{
    const char *name = arg;
    int rc = bl_dist_start(name, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "dist_kv: cannot become node %s: %s\n", name, strerror(-rc));
        bl_exit(1);
    }
    bl_pid kv;
    if ((rc = dist_kv_start_link(&kv)) != 0) {
        fprintf(stderr, "dist_kv: kv: %s\n", strerror(-rc));
        bl_exit(1);
    }
    printf("node %s serves {:kv, :\"%s\"}; Ctrl-D stops it\n", bl_dist_node(), bl_dist_node());
    fflush(stdout);
    char buf[256];
    while (bl_io_read(0, buf, sizeof buf, BL_INFINITY) > 0) {
    }
    bl_dist_stop();
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : getenv("BEAMLINE_NODE");
    return bl_main(NULL, serve, (void *)(name ? name : "bl"));
}
