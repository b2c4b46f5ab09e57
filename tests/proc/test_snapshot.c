/*
 * The process snapshot (bl_processes_snapshot): every live process listed
 * from the table, with status, kind, queue length and name, asking none of
 * them.  Its speed is measured by the bench row processes_snapshot_100k.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_test.h"
#include "bl_test_hoard.h"

enum { T_REQ = 1, T_REPLY, T_NOISE };

#define IDLE BL_SCALE(100000)

static int idle_handle(void *state, bl_msg *m)
{
    (void)state;
    if (m->tag == T_REQ) bl_send(m->from, T_REPLY, NULL, 0);
    return 0;
}
static const bl_handler idle = {.handle = idle_handle};

static void task_fn(void *arg, bl_task_out *out)
{
    (void)out;
    bl_send(*(bl_pid *)arg, T_READY, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_STOP, 10000));
}

/* The entry of pid: entries come in pid order, so a binary search finds it. */
static const bl_proc_snap *find(const bl_proc_snap *s, int64_t n, bl_pid pid)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if ((uint32_t)s[mid].pid < (uint32_t)pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && s[lo].pid == pid ? &s[lo] : NULL;
}

static void snapshot_main(void *arg)
{
    (void)arg;
    bl_pid self = bl_self();
    bl_pid *pids = malloc(IDLE * sizeof *pids);
    BL_CHECK(pids != NULL);
    if (!pids) return;
    for (int i = 0; i < IDLE; i++) BL_CHECK_EQ(bl_spawn_handler(&pids[i], &idle, NULL, NULL), 0);
    /* Each answers once it has run: then it is idle, WAITING, without a stack. */
    for (int i = 0; i < IDLE; i++) bl_send(pids[i], T_REQ, NULL, 0);
    for (int i = 0; i < IDLE; i++) {
        bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }

    bl_pid h;
    BL_CHECK_EQ(bl_spawn(&h, bl_test_hoarder, &self, NULL), 0);
    for (int i = 0; i < 5; i++) bl_send(h, T_NOISE, NULL, 0);
    bl_send(h, T_GO, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));

    bl_pid gs, sup;
    bl_gen_server_opts go = {.name = &BL_NAME_LOCAL("snap_gs")};
    BL_CHECK_EQ(bl_gen_server_start(&gs, &bl_test_idle_gs, NULL, &go), 0);
    bl_sup_opts so = {0};
    BL_CHECK_EQ(bl_supervisor_start_link(&sup, NULL, 0, &so), 0);
    bl_task t;
    BL_CHECK_EQ(bl_task_async(&t, task_fn, &self, NULL), 0);
    /* A task is known as one from its first run on. */
    bl_msg_free(bl_test_recv_tag(T_READY, 10000));

    size_t room = IDLE + 64;
    bl_proc_snap *s = malloc(room * sizeof *s);
    BL_CHECK(s != NULL);
    if (!s) return;
    int64_t n = bl_processes_snapshot(s, room);
    /* The idle ones, the hoarder, the gen_server, the supervisor, the task, main. */
    BL_CHECK_EQ(n, IDLE + 5);
    BL_CHECK_EQ(bl_processes_snapshot(NULL, 0), n);
    BL_CHECK_EQ(bl_processes_snapshot(s, 3), n); /* the count of all, three filled */
    n = bl_processes_snapshot(s, room);
    for (int64_t i = 1; i < n; i++) BL_CHECK((uint32_t)s[i - 1].pid < (uint32_t)s[i].pid);

    int bad = 0;
    for (int i = 0; i < IDLE; i++) {
        const bl_proc_snap *e = find(s, n, pids[i]);
        if (!e || e->status != BL_PROC_WAITING || e->kind != BL_KIND_HANDLER ||
            e->message_queue_len != 0 || e->stack_bytes != 0 || e->name[0] || e->reductions == 0)
            bad++;
    }
    BL_CHECK_EQ(bad, 0);

    const bl_proc_snap *e = find(s, n, h);
    BL_CHECK(e && e->kind == BL_KIND_PLAIN && e->status == BL_PROC_WAITING);
    BL_CHECK(e && e->message_queue_len == 5 && e->stack_bytes > 0);
    e = find(s, n, gs);
    BL_CHECK(e && e->kind == BL_KIND_GEN_SERVER && !strcmp(e->name, "snap_gs"));
    e = find(s, n, sup);
    BL_CHECK(e && e->kind == BL_KIND_SUPERVISOR);
    e = find(s, n, t.pid);
    BL_CHECK(e && e->kind == BL_KIND_TASK);
    e = find(s, n, self);
    BL_CHECK(e && e->status == BL_PROC_RUNNING && e->kind == BL_KIND_PLAIN);
    BL_CHECK(!strcmp(bl_proc_kind_name(BL_KIND_GEN_SERVER), "gen_server"));
    BL_CHECK(!strcmp(bl_proc_kind_name((bl_proc_kind)99), "?"));

    /* i() lists the same, with kinds. */
    char path[] = "/tmp/bl_snap_XXXXXX";
    int fd = mkstemp(path);
    BL_CHECK(fd >= 0);
    BL_CHECK_EQ(bl_print_processes(fd), IDLE + 5);
    char buf[4096] = {0};
    BL_CHECK(pread(fd, buf, sizeof buf - 1, 0) > 0);
    BL_CHECK(strstr(buf, "kind") != NULL && strstr(buf, "handler") != NULL);
    close(fd);
    unlink(path);

    bl_send(t.pid, T_STOP, NULL, 0);
    bl_task_result r;
    BL_CHECK_EQ(bl_task_await(&t, 10000, &r), 0);
    bl_task_result_free(&r);
    bl_send(h, T_STOP, NULL, 0);
    bl_reason kill = BL_REASON(BL_KILL);
    for (int i = 0; i < IDLE; i++) bl_exit_pid(pids[i], &kill);
    free(s);
    free(pids);
}

Test(snapshot, lists_every_process_without_asking)
{
    bl_config c = {.schedulers = 2, .quiet = true};
    bl_test_run(&c, snapshot_main, NULL);
    bl_proc_snap s;
    cr_assert_eq(bl_processes_snapshot(&s, 1), -ESRCH);
}

static void einval_main(void *arg)
{
    (void)arg;
    BL_CHECK_EQ(bl_processes_snapshot(NULL, 4), -EINVAL);
}

Test(snapshot, bad_arguments)
{
    bl_test_run(NULL, einval_main, NULL);
}
