/*
 * main.c - download_manager, the program: many downloads at once, each in
 * its own process, with a status per download and a live table.
 *
 *   DownloadManager (gen_server: the table of downloads, traps exits)
 *   `-- workers (DynamicSupervisor, linked to the manager)
 *       `-- one temporary worker (gen_server) per running download
 *
 * The parts: url.c parses sources, worker.c runs one download (a local
 * file, or an http:// or https:// URL through http_client.c), manager.c is the
 * gen_server that keeps every download's status and its client API.  This
 * file downloads every source on the command line into DEST_DIR/<name>
 * (a suffix .2, .3, ... when two sources share a name).  On a terminal it
 * redraws a table in place four times a second and at each status change;
 * otherwise it prints one line per status change and the table at the end.
 *
 * Run: download_manager [-j N] [--cacert FILE] DEST_DIR SOURCE...
 *      (--cacert: the PEM CAs https servers are checked against, instead of
 *      the system's store)
 *      (exits 0 when every download completed, 1 otherwise, 2 on bad usage)
 */
#define _GNU_SOURCE
#include <beamline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager.h"

typedef struct cli {
    const char *dir; /* where files go */
    char **srcs;     /* what to download */
    int n;           /* how many sources */
    int jobs;        /* -j: downloads at once (0 = all) */
    const char *ca;  /* --cacert: the CAs for https, NULL = the system's */
    bool tty;        /* stdout is a terminal: a live table */
    int width;       /* its width */
    int failed;      /* downloads that did not complete */
} cli;

static void human(int64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (b < 1024) {
        snprintf(buf, len, "%lld B", (long long)b);
        return;
    }
    double v = (double)b / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* One row of the table (a header when d is NULL), cut to the terminal's width. */
static void row(const cli *c, const dm_download *d)
{
    char line[512];
    if (!d) {
        snprintf(line, sizeof line, "%-3s %-24s %-11s %4s  %-21s %-11s %s", "ID", "NAME", "STATUS",
                 "%", "BYTES", "SPEED", "ERROR");
    } else {
        char pct[12] = "-", got[24], size[24], bytes[56], speed[32] = "-";
        if (d->percent >= 0) snprintf(pct, sizeof pct, "%d", d->percent);
        human(d->bytes_downloaded, got, sizeof got);
        human(d->size, size, sizeof size);
        if (d->size >= 0)
            snprintf(bytes, sizeof bytes, "%s / %s", got, size);
        else
            snprintf(bytes, sizeof bytes, "%s", got);
        if (d->elapsed_ms) {
            human(d->speed, speed, sizeof speed - 2);
            strcat(speed, "/s");
        }
        snprintf(line, sizeof line, "%-3d %-24.24s %-11s %4s  %-21s %-11s %s", d->id, d->name,
                 dm_state_name(d->status), pct, bytes, speed, d->error);
    }
    if (c->tty && c->width > 1 && (int)strlen(line) >= c->width) line[c->width - 1] = 0;
    for (size_t n = strlen(line); n && line[n - 1] == ' ';) line[--n] = 0;
    printf("%s%s\n", c->tty ? "\r\033[2K" : "", line);
}

/* Draws the table; on a terminal, over the previous one (cursor up, clear each line). */
static void draw(const cli *c, const dm_download *v, int n, int *drawn)
{
    if (c->tty && *drawn) printf("\033[%dA", *drawn);
    row(c, NULL);
    for (int i = 0; i < n; i++) row(c, &v[i]);
    *drawn = n + 1;
    fflush(stdout);
}

static void run(void *arg)
{
    cli *c = arg;
    bl_pid mgr;
    dm_opts o = {.subscriber = bl_self(), .max_active = c->jobs, .ca_file = c->ca};
    int rc = dm_start(&mgr, &o);
    if (rc) {
        fprintf(stderr, "download_manager: %s\n", strerror(-rc));
        c->failed = c->n;
        return;
    }
    /* Destinations: DIR/name, with a suffix when two sources share a name. */
    char(*names)[DM_NAME_MAX] = calloc((size_t)c->n, sizeof *names);
    dm_download *v = calloc((size_t)c->n, sizeof *v);
    int added = 0;
    for (int i = 0; names && v && i < c->n; i++) {
        char base[DM_NAME_MAX];
        dm_guess_name(c->srcs[i], base, sizeof base);
        snprintf(names[i], sizeof names[i], "%s", base);
        for (int j = 0, k = 1; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                snprintf(names[i], sizeof names[i], "%.100s.%d", base, ++k);
                j = -1; /* check the new name against all again */
            }
        char dest[DM_PATH_MAX];
        bool slash = c->dir[strlen(c->dir) - 1] == '/';
        snprintf(dest, sizeof dest, "%s%s%s", c->dir, slash ? "" : "/", names[i]);
        int id = dm_add(mgr, c->srcs[i], dest);
        if (id < 0) {
            fprintf(stderr, "%s: %s\n", c->srcs[i], strerror(-id));
            c->failed++;
        } else {
            added++;
        }
    }
    if (c->tty) printf("\033[?25l"); /* no cursor flickering over the table */
    int drawn = 0;
    for (;;) {
        int n = dm_list(mgr, v, (size_t)added);
        if (n < 0) break;
        bool done = true;
        for (int i = 0; i < n && i < added; i++) done = done && dm_state_is_final(v[i].status);
        if (c->tty || done) draw(c, v, n < added ? n : added, &drawn);
        if (done) {
            for (int i = 0; i < n && i < added; i++) c->failed += v[i].status != DM_COMPLETED;
            break;
        }
        /* Redraw four times a second, and at every status change. */
        bl_msg *m = bl_receive(250);
        for (; m; m = bl_receive(0)) {
            if (!c->tty && m->tag == DM_EVENT && m->len == sizeof(dm_download)) {
                const dm_download *d = m->data;
                printf("[%d] %s: %s%s%s\n", d->id, d->name, dm_state_name(d->status),
                       d->error[0] ? ": " : "", d->error);
            }
            bl_msg_free(m);
        }
    }
    if (c->tty) printf("\033[?25h");
    fflush(stdout);
    free(names);
    free(v);
    dm_stop(mgr);
}

int main(int argc, char **argv)
{
    cli c = {0};
    int i = 1;
    for (; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "-j") == 0)
            c.jobs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cacert") == 0)
            c.ca = argv[i + 1];
        else
            break;
    if (argc - i < 2 || c.jobs < 0) {
        fprintf(stderr, "usage: download_manager [-j N] [--cacert FILE] DEST_DIR SOURCE...\n"
                        "  SOURCE: http(s)://host[:port]/path, file:///path, or a path\n");
        return 2;
    }
    c.dir = argv[i];
    c.srcs = argv + i + 1;
    c.n = argc - i - 1;
    struct stat st;
    if (mkdir(c.dir, 0755) < 0 && (stat(c.dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "download_manager: %s: %s\n", c.dir, strerror(errno ? errno : ENOTDIR));
        return 2;
    }
    c.tty = isatty(STDOUT_FILENO);
    struct winsize ws;
    c.width = c.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
    int rc = bl_main(NULL, run, &c);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || c.failed ? 1 : 0;
}
