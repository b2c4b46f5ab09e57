/*
 * bl_registry_lock (Registry.lock/3): one holder per key, other keys not
 * held up, the lock passed on when its holder dies, withdrawn requests.
 *
 * Holding is made visible by the holder itself (it reports from inside fn
 * and waits there to be told to go on).  The only timing-based checks are
 * lock timeouts of 2 units (50 ms each) that must pass without the lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/registry.h"
#include "bl_test.h"
#include "reg_test.h"

#define UNIT 50 /* ms */

enum { T_IN = 1, T_GO, T_DONE };

static const bl_config quiet = {.quiet = true};

static void block_forever(void)
{
    uint32_t never = 0xDEAD;
    bl_msg *m = NULL;
    bl_recv(&m, bl_match_tag, &never, BL_INFINITY, 0);
}

/* ---- a locker: locks key, says T_IN from inside, waits for T_GO (or forever) ---- */

typedef struct locker_arg {
    bl_registry *reg;
    const char *key;
    bl_pid owner;
    bool forever; /* never leave fn */
} locker_arg;

static void inside(void *arg)
{
    locker_arg *a = arg;
    bl_send(a->owner, T_IN, NULL, 0);
    if (a->forever) block_forever();
    bl_msg_free(bl_test_recv_tag(T_GO, 10000));
}

static void locker(void *arg)
{
    locker_arg *a = arg;
    int rc = bl_registry_lock(a->reg, a->key, strlen(a->key), BL_INFINITY, inside, a);
    bl_send(a->owner, T_DONE, &rc, sizeof rc);
}

static bl_pid start_locker(locker_arg *a, bl_registry *reg, const char *key, bool forever)
{
    *a = (locker_arg){reg, key, bl_self(), forever};
    bl_pid p;
    BL_CHECK_EQ(bl_spawn(&p, locker, a, NULL), 0);
    return p;
}

/* Waits for a T_IN from pid. */
static void wait_in(bl_pid pid)
{
    bl_msg *m = bl_test_recv_tag(T_IN, 10000);
    BL_CHECK(m && m->from == pid);
    bl_msg_free(m);
}

static void wait_done(bl_pid pid)
{
    bl_msg *m = bl_test_recv_tag(T_DONE, 10000);
    BL_CHECK(m && m->from == pid && *(const int *)m->data == 0);
    bl_msg_free(m);
}

/*
 * Waits until locker w's request is in its partition's queue: w waits
 * (the only wait in bl_registry_lock follows its request) with its monitor
 * on the partition set, and the partition has handled what came before a
 * sync.
 */
static void wait_queued(bl_registry *reg, bl_pid w)
{
    int64_t until = bl_test_ms() + 10000;
    bl_proc_info info;
    while (bl_test_ms() < until) {
        BL_CHECK_EQ(bl_process_info(w, &info), 0);
        if (info.status == BL_PROC_WAITING && info.nmonitors == 1) break;
        bl_yield();
    }
    BL_CHECK(info.status == BL_PROC_WAITING && info.nmonitors == 1);
    BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

static void exclusion_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    locker_arg la;
    bl_pid a = start_locker(&la, reg, "a", false);
    wait_in(a);

    /* "a" is held: another caller does not get it. */
    bool ran = false;
    int64_t t0 = bl_test_ms();
    BL_CHECK_EQ(bl_registry_lock(reg, "a", 1, 2 * UNIT, set_flag, &ran), -ETIMEDOUT);
    BL_CHECK(!ran);
    BL_CHECK(bl_test_ms() - t0 >= 2 * UNIT - 5);
    /* Other keys are free meanwhile, whichever partition they live in. */
    const char *others[] = {"b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 6; i++) {
        ran = false;
        BL_CHECK_EQ(bl_registry_lock(reg, others[i], 1, 10000, set_flag, &ran), 0);
        BL_CHECK(ran);
    }
    /* A registered key is not a lock key. */
    BL_CHECK_EQ(bl_registry_register(reg, "a", 1, NULL, 0, NULL), 0);

    /* Released: the next caller gets it (the withdrawn request above is not in the way). */
    bl_send(a, T_GO, NULL, 0);
    wait_done(a);
    ran = false;
    BL_CHECK_EQ(bl_registry_lock(reg, "a", 1, 10000, set_flag, &ran), 0);
    BL_CHECK(ran);
    /* Waiters are served in the order their requests came. */
    locker_arg lb, lc, ld;
    bl_pid b = start_locker(&lb, reg, "a", false);
    wait_in(b);
    bl_pid c = start_locker(&lc, reg, "a", false);
    wait_queued(reg, c);
    bl_pid d = start_locker(&ld, reg, "a", false);
    wait_queued(reg, d);
    bl_send(b, T_GO, NULL, 0);
    wait_done(b);
    wait_in(c);
    bl_send(c, T_GO, NULL, 0);
    wait_done(c);
    wait_in(d);
    bl_send(d, T_GO, NULL, 0);
    wait_done(d);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    BL_CHECK_EQ(bl_registry_lock(reg, "a", 1, 10000, set_flag, &ran), -ESRCH);
    bl_registry_release(reg);
}

Test(registry_lock, one_holder_per_key)
{
    bl_test_run(&quiet, exclusion_main, NULL);
}

static void death_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_DUPLICATE, 2);
    if (!reg) return;
    /* The holder dies inside fn: the waiter gets the lock. */
    locker_arg la, lb;
    bl_pid a = start_locker(&la, reg, "k", true);
    wait_in(a);
    bl_pid b = start_locker(&lb, reg, "k", false);
    wait_queued(reg, b);
    bool ran = false;
    BL_CHECK_EQ(bl_registry_lock(reg, "k", 1, 2 * UNIT, set_flag, &ran), -ETIMEDOUT);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(a, &kill), 0);
    wait_in(b);
    bl_send(b, T_GO, NULL, 0);
    wait_done(b);

    /* A waiter that dies while waiting is skipped. */
    a = start_locker(&la, reg, "k", false);
    wait_in(a);
    bl_pid w = start_locker(&lb, reg, "k", false);
    wait_queued(reg, w);
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(w, &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(w, &kill), 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    bl_send(a, T_GO, NULL, 0);
    wait_done(a);
    ran = false;
    BL_CHECK_EQ(bl_registry_lock(reg, "k", 1, 10000, set_flag, &ran), 0);
    BL_CHECK(ran);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    stop_reg(reg);
}

Test(registry_lock, passed_on_when_the_holder_dies)
{
    bl_test_run(&quiet, death_main, NULL);
}

/* ---- many callers: at most one inside per key, all of them served ---- */

#define KEYS 3

typedef struct crowd {
    bl_registry *reg;
    bl_pid owner;
    int rounds;
    _Atomic int in[KEYS];  /* callers inside fn, per key */
    _Atomic int max[KEYS]; /* the most seen at once */
    _Atomic long served;
} crowd;

typedef struct visit {
    crowd *c;
    int k;
} visit;

static void visit_fn(void *arg)
{
    visit *v = arg;
    crowd *c = v->c;
    int now = atomic_fetch_add(&c->in[v->k], 1) + 1;
    int seen = atomic_load(&c->max[v->k]);
    while (now > seen && !atomic_compare_exchange_weak(&c->max[v->k], &seen, now)) {
    }
    for (int i = 0; i < 3; i++) bl_yield(); /* let others try to get in */
    atomic_fetch_sub(&c->in[v->k], 1);
    atomic_fetch_add(&c->served, 1);
}

static void crowd_member(void *arg)
{
    crowd *c = arg;
    int rc = 0;
    for (int i = 0; i < c->rounds && !rc; i++) {
        visit v = {c, i % KEYS};
        char key[2] = {(char)('x' + v.k), 0};
        rc = bl_registry_lock(c->reg, key, 1, 30000, visit_fn, &v);
    }
    bl_send(c->owner, T_DONE, &rc, sizeof rc);
}

static void crowd_main(void *arg)
{
    (void)arg;
    crowd c = {.reg = start_reg(BL_REGISTRY_UNIQUE, BL_REGISTRY_SCHEDULERS),
               .owner = bl_self(),
               .rounds = BL_SCALE(200)};
    if (!c.reg) return;
    enum { N = 8 };
    for (int i = 0; i < N; i++) {
        bl_spawn_opts so = {.scheduler = i % 2 + 1};
        BL_CHECK_EQ(bl_spawn(NULL, crowd_member, &c, &so), 0);
    }
    for (int i = 0; i < N; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 60000);
        BL_CHECK(m && *(const int *)m->data == 0);
        bl_msg_free(m);
    }
    BL_CHECK_EQ(atomic_load(&c.served), (long)N * c.rounds);
    for (int k = 0; k < KEYS; k++) BL_CHECK_EQ(atomic_load(&c.max[k]), 1);
    stop_reg(c.reg);
}

Test(registry_lock, crowd_on_few_keys)
{
    bl_test_run(&quiet, crowd_main, NULL);
}

static void bad_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 1);
    if (!reg) return;
    bool ran = false;
    static char longkey[BL_REGISTRY_KEY_MAX + 1];
    BL_CHECK_EQ(bl_registry_lock(NULL, "k", 1, 1000, set_flag, &ran), -EINVAL);
    BL_CHECK_EQ(bl_registry_lock(reg, "k", 1, 1000, NULL, &ran), -EINVAL);
    BL_CHECK_EQ(bl_registry_lock(reg, NULL, 1, 1000, set_flag, &ran), -EINVAL);
    BL_CHECK_EQ(bl_registry_lock(reg, "k", 1, -5, set_flag, &ran), -EINVAL);
    BL_CHECK_EQ(bl_registry_lock(reg, longkey, sizeof longkey, 1000, set_flag, &ran),
                -ENAMETOOLONG);
    BL_CHECK(!ran);
    /* The empty key and the longest one are keys like any other. */
    BL_CHECK_EQ(bl_registry_lock(reg, NULL, 0, 1000, set_flag, &ran), 0);
    BL_CHECK(ran);
    ran = false;
    BL_CHECK_EQ(bl_registry_lock(reg, longkey, BL_REGISTRY_KEY_MAX, 1000, set_flag, &ran), 0);
    BL_CHECK(ran);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
    stop_reg(reg);
}

Test(registry_lock, bad_input)
{
    bl_test_run(&quiet, bad_main, NULL);
}
