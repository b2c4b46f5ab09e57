/*
 * Spawning, exiting, pids, handler processes, a million processes.
 */
#include <errno.h>

#include "bl_test.h"
#include "sched/sched.h"

enum { T_PING = 1, T_PONG, T_STOP, T_WHERE, T_BLOCK, T_GO };

static void report_where(void *arg)
{
    bl_pid to = *(bl_pid *)arg;
    int where = bl_current_scheduler();
    bl_send(to, T_WHERE, &where, sizeof where);
}

static void placement_main(void *arg)
{
    bl_pid self = bl_self();
    for (int sched = 1; sched <= 2; sched++) {
        bl_spawn_opts o = {.scheduler = sched};
        BL_CHECK_EQ(bl_spawn(NULL, report_where, &self, &o), 0);
        bl_msg *m = bl_receive(5000);
        BL_CHECK(m && *(int *)m->data == sched - 1);
        bl_msg_free(m);
    }
    bl_spawn_opts bad = {.scheduler = 3};
    BL_CHECK_EQ(bl_spawn(NULL, report_where, &self, &bad), -EINVAL);
    bad = (bl_spawn_opts){.priority = 9};
    BL_CHECK_EQ(bl_spawn(NULL, report_where, &self, &bad), -EINVAL);
    bad = (bl_spawn_opts){.stack_size = (size_t)4 << 30};
    BL_CHECK_EQ(bl_spawn(NULL, report_where, &self, &bad), -EINVAL);
    BL_CHECK_EQ(bl_spawn(NULL, NULL, NULL, NULL), -EINVAL);
}

Test(spawn, preferred_scheduler_and_bad_options)
{
    bl_test_run(NULL, placement_main, NULL);
}

static void exits_early(void *arg)
{
    bl_send(*(bl_pid *)arg, T_PING, NULL, 0);
    bl_exit(7);
    BL_CHECK(0 && "bl_exit returned");
}

static void waits_forever(void *arg)
{
    bl_msg *m = bl_receive(BL_INFINITY);
    bl_msg_free(m);
}

static void lifecycle_main(void *arg)
{
    bl_pid self = bl_self(), a;
    BL_CHECK(bl_is_alive(self));
    BL_CHECK_EQ(bl_spawn(&a, exits_early, &self, NULL), 0);
    bl_msg *m = bl_receive(5000);
    BL_CHECK(m && m->from == a);
    bl_msg_free(m);
    while (bl_is_alive(a)) bl_yield();

    /* A stale pid never reaches the next process in the same slot. */
    bl_pid b;
    BL_CHECK_EQ(bl_spawn(&b, waits_forever, NULL, NULL), 0);
    int reused = (uint32_t)b == (uint32_t)a;
    BL_CHECK(b != a);
    BL_CHECK(!bl_is_alive(a));
    BL_CHECK_EQ(bl_send(a, T_PING, NULL, 0), 0);
    bl_proc *pb = bl__proc_lookup(b);
    bl_yield();
    BL_CHECK(pb != NULL);
    /* b got nothing from the stale send: its inbox and queue are empty. */
    BL_CHECK(pb && bl__box_load(pb).top == NULL && pb->q_len == 0);
    bl_send(b, T_STOP, NULL, 0);
    while (bl_is_alive(b)) bl_yield();
    (void)reused;
    BL_CHECK(!bl_is_alive(0));
    BL_CHECK(!bl_is_alive(~0ull));
}

Test(spawn, exit_and_stale_pids)
{
    bl_test_run(NULL, lifecycle_main, NULL);
}

/* ---- handler processes ---- */

typedef struct counter {
    int inits, handled, terminated, reason;
    bl_pid owner;
} counter;

static int h_init(void *arg, void **state)
{
    counter *c = arg;
    c->inits++;
    *state = c;
    return 0;
}

static int h_handle(void *state, bl_msg *m)
{
    counter *c = state;
    c->handled++;
    if (m->tag == T_STOP) return 42;
    if (m->tag == T_BLOCK) {
        /* Blocks inside handle: keeps its stack until the reply arrives. */
        bl_send(c->owner, T_PONG, NULL, 0);
        bl_msg *go = NULL;
        uint32_t t = T_GO;
        BL_CHECK_EQ(bl_recv(&go, bl_match_tag, &t, 5000, 0), 0);
        bl_msg_free(go);
    }
    bl_send(m->from, T_PONG, &c->handled, sizeof c->handled);
    return 0;
}

static void h_terminate(void *state, int reason)
{
    counter *c = state;
    c->terminated++;
    c->reason = reason;
    bl_send(c->owner, T_STOP, NULL, 0);
}

static const bl_handler counter_handler = {
    .init = h_init, .handle = h_handle, .terminate = h_terminate};

/* Idle handlers that kept their stacks, and kept stacks taken back, on all schedulers. */
static void keep_counts(uint64_t *keeps, uint64_t *sheds)
{
    bl_runtime_stats rs;
    *keeps = *sheds = 0;
    if (bl_runtime_stats_get(&rs) != 0) return;
    for (unsigned i = 0; i < rs.schedulers; i++) {
        bl_scheduler_stats st;
        if (bl_scheduler_stats_get(i, &st) != 0) continue;
        *keeps += st.stack_keeps;
        *sheds += st.stack_sheds;
    }
}

/* Yields until p holds no stack, for at most 5 s; false if it still does. */
static bool until_stackless(bl_proc *p)
{
    uint64_t end = bl__now_ns() + 5000000000u;
    while (BL_PEEK(p->stack) != NULL || atomic_load(&p->status) != BL_STATUS_WAITING) {
        if (bl__now_ns() > end) return false;
        bl_yield();
    }
    return true;
}

static void handler_main(void *arg)
{
    counter c = {.owner = bl_self()};
    bl_pid h;
    BL_CHECK_EQ(bl_spawn_handler(&h, NULL, &c, NULL), -EINVAL);
    BL_CHECK_EQ(bl_spawn_handler(&h, &counter_handler, &c, NULL), 0);
    bl_proc *p = bl__proc_lookup(h);
    uint64_t keeps0, sheds0, keeps1, sheds1;
    keep_counts(&keeps0, &sheds0);
    for (int i = 1; i <= 100; i++) {
        bl_send(h, T_PING, NULL, 0);
        bl_msg *m = bl_test_recv_tag(T_PONG, 5000);
        BL_CHECK(m && *(int *)m->data == i);
        bl_msg_free(m);
    }
    /* Idle between messages, it parks keeping its stack (sched/keep.c)
     * each time, and its scheduler takes the stack back when idle, or
     * after two turns (64 picks each) if it is kept busy, as this process
     * keeps its own busy if the two share it. */
    BL_CHECK(until_stackless(p));
    keep_counts(&keeps1, &sheds1);
    BL_CHECK(keeps1 - keeps0 >= 100);
    BL_CHECK(sheds1 - sheds0 >= 1);
    /* Blocked inside handle: it keeps one. */
    bl_send(h, T_BLOCK, NULL, 0);
    bl_msg *m = bl_test_recv_tag(T_PONG, 5000);
    bl_msg_free(m);
    while (atomic_load(&p->status) != BL_STATUS_WAITING) bl_yield();
    BL_CHECK(p->stack != NULL);
    bl_send(h, T_GO, NULL, 0);
    m = bl_test_recv_tag(T_PONG, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    BL_CHECK(until_stackless(p));
    bl_send(h, T_STOP, NULL, 0);
    m = bl_test_recv_tag(T_STOP, 5000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    while (bl_is_alive(h)) bl_yield();
    BL_CHECK_EQ(c.inits, 1);
    BL_CHECK_EQ(c.terminated, 1);
    BL_CHECK_EQ(c.reason, 42);
    BL_CHECK_EQ(c.handled, 102); /* 100 pings, the blocking one, the stop */
}

Test(spawn, handler_process_gives_its_stack_back_when_idle)
{
    bl_test_run(NULL, handler_main, NULL);
}

static int refuse_init(void *arg, void **state)
{
    return 5;
}
static int never_handle(void *state, bl_msg *m)
{
    BL_CHECK(0 && "handle after a failed init");
    return 0;
}
static const bl_handler refusing = {.init = refuse_init, .handle = never_handle, .terminate = NULL};

static void refuse_main(void *arg)
{
    bl_pid h;
    BL_CHECK_EQ(bl_spawn_handler(&h, &refusing, NULL, NULL), 0);
    bl_send(h, T_PING, NULL, 0);
    while (bl_is_alive(h)) bl_yield();
}

Test(spawn, handler_init_failure_exits)
{
    bl_test_run(NULL, refuse_main, NULL);
}

/* ---- a million processes ---- */

static int m_handle(void *state, bl_msg *m)
{
    bl_send(*(bl_pid *)state, T_PONG, NULL, 0);
    return BL_STOP; /* exit (normally) after one message */
}
static const bl_handler one_shot = {.init = NULL, .handle = m_handle, .terminate = NULL};

static void million_main(void *arg)
{
    uint32_t n = BL_SCALE(1000000);
    bl_pid self = bl_self();
    bl_pid *pids = malloc(sizeof(bl_pid) * n);
    for (uint32_t i = 0; i < n; i++)
        BL_CHECK_EQ(bl_spawn_handler(&pids[i], &one_shot, &self, NULL), 0);
    /* All alive at once, and the table grew past one chunk. */
    BL_CHECK(bl__ptab_extent() >= n);
    for (uint32_t i = 0; i < n; i += n / 100) BL_CHECK(bl_is_alive(pids[i]));
    for (uint32_t i = 0; i < n; i++) bl_send(pids[i], T_PING, NULL, 0);
    uint32_t got = 0;
    while (got < n) {
        bl_msg *m = bl_receive(30000);
        BL_CHECK(m != NULL);
        if (!m) break;
        got++;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(got, n);
    /* Each sent its PONG just before exiting: wait for the last exits. */
    BL_TEST_UNTIL(bl__live(bl__rt) == 1, 30000);
    for (uint32_t i = 0; i < n; i += n / 100) BL_CHECK(!bl_is_alive(pids[i]));
    free(pids);
    BL_CHECK(bl__live(bl__rt) == 1);
}

Test(spawn, one_million_processes, .timeout = 200)
{
    bl_test_run(NULL, million_main, NULL);
}

/* ---- the count alive, kept per scheduler ---- */

#include <pthread.h>

#define LIVE_EACH 200

static void wait_stop(void *arg)
{
    (void)arg;
    bl_msg_free(bl_test_recv_tag(T_STOP, 30000));
}

static bl_pid outside_pids[LIVE_EACH];
static int outside_failed;

/* A thread that is not a scheduler spawns: the runtime's outside count. */
static void *spawn_outside(void *arg)
{
    (void)arg;
    for (int i = 0; i < LIVE_EACH; i++)
        if (bl_spawn(&outside_pids[i], wait_stop, NULL, NULL) != 0) outside_failed++;
    return NULL;
}

static int64_t processes_now(void)
{
    bl_runtime_stats st;
    BL_CHECK_EQ(bl_runtime_stats_get(&st), 0);
    return st.processes;
}

/*
 * Processes spawned on one scheduler end on the other, and others are
 * spawned from outside: the count adds up each scheduler's spawns less its
 * exits, so each scheduler alone is off (one gains, the other loses), and
 * only the sum is right.
 */
static void live_main(void *arg)
{
    (void)arg;
    int64_t base = processes_now();
    BL_CHECK_EQ(base, 1);
    int here = bl_current_scheduler();
    bl_spawn_opts there = {.scheduler = 2 - here, .bound = true}; /* the other one */
    bl_pid pids[LIVE_EACH];
    bl_ref refs[2 * LIVE_EACH];
    for (int i = 0; i < LIVE_EACH; i++) BL_CHECK_EQ(bl_spawn(&pids[i], wait_stop, NULL, &there), 0);
    pthread_t t;
    BL_CHECK_EQ(pthread_create(&t, NULL, spawn_outside, NULL), 0);
    pthread_join(t, NULL);
    BL_CHECK_EQ(outside_failed, 0);
    BL_CHECK_EQ(processes_now(), base + 2 * LIVE_EACH);
    for (int i = 0; i < LIVE_EACH; i++) {
        BL_CHECK_EQ(bl_monitor(pids[i], &refs[i]), 0);
        BL_CHECK_EQ(bl_monitor(outside_pids[i], &refs[LIVE_EACH + i]), 0);
        bl_send(pids[i], T_STOP, NULL, 0);
        bl_send(outside_pids[i], T_STOP, NULL, 0);
    }
    for (int i = 0; i < 2 * LIVE_EACH; i++) {
        bl_msg *m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &refs[i], 30000, 0), 0);
        bl_msg_free(m);
    }
    /* The DOWNs go out just before the count drops. */
    BL_CHECK(BL_TEST_UNTIL(processes_now() == base, 30000));
    /* The other scheduler saw more exits than spawns: its own count is
     * negative, and only the sum is the count. */
    BL_CHECK(atomic_load(&bl__rt->scheds[1 - here]->st.live) < 0);
}

Test(spawn, the_count_alive_holds_when_processes_end_on_another_scheduler)
{
    bl_test_run(NULL, live_main, NULL);
}

/* ---- no stack to be had ---- */

#include <sys/resource.h>
#include <unistd.h>

#define BIG_STACK ((size_t)8 << 20)
#define STACKLESS 24

/* The address space's size now (bytes), from /proc. */
static long vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = -1;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = -1;
        fclose(f);
    }
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

static uint64_t stack_fails(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < bl__rt->nsched; i++) n += BL_STAT(bl__rt->scheds[i], nostack_fails);
    return n;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The address space is capped so that only a few 8 MiB stacks fit: the
 * processes that cannot get one wait without the schedulers retrying mmap
 * at every pick (which spun a core at 100% until memory came back), and
 * they all run once the cap is lifted.
 */
/* Tells the parent it runs (it has a stack), then waits for T_STOP. */
static void go_then_wait_stop(void *arg)
{
    bl_send(*(bl_pid *)arg, T_GO, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_STOP, 30000));
}

static void stackless_main(void *arg)
{
    (void)arg;
    struct rlimit old, cap;
    BL_CHECK_EQ(getrlimit(RLIMIT_AS, &old), 0);
    long vm = vm_bytes();
    BL_CHECK(vm > 0);
    cap = old;
    cap.rlim_cur = (rlim_t)vm + ((rlim_t)48 << 20); /* room for five stacks and a little */
    BL_CHECK_EQ(setrlimit(RLIMIT_AS, &cap), 0);

    bl_pid self = bl_self(), pids[STACKLESS];
    bl_ref refs[STACKLESS];
    bl_spawn_opts big = {.stack_size = BIG_STACK};
    for (int i = 0; i < STACKLESS; i++) {
        BL_CHECK_EQ(bl_spawn(&pids[i], go_then_wait_stop, &self, &big), 0);
        BL_CHECK_EQ(bl_monitor(pids[i], &refs[i]), 0);
    }
    bl_msg_free(bl_test_recv_tag(T_GO, 10000)); /* the first one runs */
    int started = 1;

    /* A third of a second with the others stuck: a few tries each, and the
     * CPU nearly idle (schedulers retrying at every pick made a hundred
     * thousand tries and used both cores the whole time). */
    uint64_t f0 = stack_fails(), c0 = cpu_ns(), t_end = (uint64_t)bl_test_ms() + 300;
    bl_msg *m;
    while ((uint64_t)bl_test_ms() < t_end &&
           (m = bl_receive((int64_t)(t_end - (uint64_t)bl_test_ms())))) {
        started += m->tag == T_GO;
        bl_msg_free(m);
    }
    uint64_t f1 = stack_fails(), c1 = cpu_ns();
    BL_CHECK(started < STACKLESS); /* the cap held some back */
    BL_CHECK(f1 > 0 && f1 - f0 < 1000);
    BL_CHECK(c1 - c0 < 150000000u);

    /* Memory back: every one of them gets its stack and runs. */
    BL_CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);
    for (int i = 0; i < STACKLESS; i++) bl_send(pids[i], T_STOP, NULL, 0);
    for (int i = 0; i < STACKLESS; i++) {
        m = NULL;
        BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &refs[i], 30000, 0), 0);
        bl_reason why;
        BL_CHECK(m && bl_msg_reason(m, &why) == 0 && why.kind == BL_NORMAL);
        bl_msg_free(m);
    }
}

/* A cap on the address space and sanitizers' shadow memory do not mix. */
#if !defined(BL_ASAN) && !defined(BL_TSAN)
Test(spawn, processes_wait_for_a_stack_without_spinning)
{
    bl_test_run(NULL, stackless_main, NULL);
}
#endif

/* Plain (stackful) processes: many spawned and exited, stacks recycled. */
static void tiny(void *arg)
{
    bl_send(*(bl_pid *)arg, T_PONG, NULL, 0);
}

static void churn_main(void *arg)
{
    uint32_t n = BL_SCALE(200000);
    bl_pid self = bl_self();
    for (uint32_t i = 0; i < n; i++) {
        BL_CHECK_EQ(bl_spawn(NULL, tiny, &self, NULL), 0);
        if (i % 1000 == 999)
            for (int k = 0; k < 1000; k++) bl_msg_free(bl_test_recv_tag(T_PONG, 10000));
    }
    for (uint32_t i = 0; i < n % 1000; i++) bl_msg_free(bl_test_recv_tag(T_PONG, 10000));
    /* The pools hold few stacks: they were reused, not leaked. */
    size_t mapped = 0;
    for (unsigned i = 0; i < bl__rt->nsched; i++) mapped += bl__rt->scheds[i]->stacks.mapped;
    BL_CHECK(mapped < (size_t)5000 * 256 * 1024);
}

Test(spawn, stacks_are_recycled, .timeout = 120)
{
    bl_test_run(NULL, churn_main, NULL);
}

/* ---- restarting the runtime after heavy churn ---- */

#include <semaphore.h>

static sem_t churn_done;

static void churn_then_post(void *arg)
{
    /* Enough exits that schedulers hand slot batches to the shared pool. */
    bl_pid self = bl_self();
    for (int i = 0; i < 5000; i++) bl_spawn(NULL, tiny, &self, NULL);
    for (int i = 0; i < 5000; i++) bl_msg_free(bl_test_recv_tag(T_PONG, 10000));
    sem_post(&churn_done);
}

Test(spawn, restart_after_churn_spawns_from_outside)
{
    sem_init(&churn_done, 0, 0);
    for (int round = 0; round < 3; round++) {
        bl_config c = {.schedulers = 2};
        cr_assert_eq(bl_runtime_start(&c), 0, "%s", bl_runtime_error());
        /* Spawns from this thread, which is not a scheduler: the second and
         * later ones draw on slot batches the churn released. */
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(bl_spawn(NULL, churn_then_post, NULL, NULL), 0);
            while (sem_wait(&churn_done) != 0) {
            }
        }
        bl_runtime_stop();
        cr_assert_eq(bl_runtime_wait(), 0);
    }
}

/* ---- a handler's release comes before anyone can see the death ---- */

static _Atomic int releases;

static int slow_release_handle(void *state, bl_msg *m)
{
    (void)state;
    (void)m;
    return BL_STOP;
}

/* Takes a while, so that a death seen early would catch it unfinished. */
static void slow_release(void *state)
{
    (void)state;
    uint64_t end = bl__now_ns() + 2000000u;
    while (bl__now_ns() < end) {
    }
    atomic_fetch_add(&releases, 1);
}

static const bl_handler slow_releaser = {.handle = slow_release_handle, .release = slow_release};

static void release_order_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        int before = atomic_load(&releases);
        bl_pid h;
        /* On the other scheduler, so that this process watches it die. */
        bl_spawn_opts o = {.scheduler = bl_current_scheduler() == 0 ? 2 : 1};
        BL_CHECK_EQ(bl_spawn_handler(&h, &slow_releaser, NULL, &o), 0);
        BL_CHECK_EQ(bl_send(h, T_STOP, NULL, 0), 0);
        if (i % 2 == 0) {
            /* Found dead by polling: released already. */
            while (bl_is_alive(h)) bl_yield();
        } else {
            /* A monitor set during the death: its DOWN (noproc or the real
             * reason) comes after the release. */
            bl_ref ref;
            BL_CHECK_EQ(bl_monitor(h, &ref), 0);
            bl_msg *m = bl_test_recv_tag(BL_TAG_DOWN, 5000);
            BL_CHECK(m != NULL);
            bl_msg_free(m);
        }
        BL_CHECK_EQ(atomic_load(&releases), before + 1);
    }
}

Test(spawn, release_runs_before_the_death_shows)
{
    bl_config cfg = {.schedulers = 2};
    bl_test_run(&cfg, release_order_main, NULL);
}
