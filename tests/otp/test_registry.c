/*
 * Registry: unique and duplicate keys, lookup, dispatch, match, count,
 * keys, unregister, cleanup when owners exit (normally or killed),
 * partitions under concurrent use, via names, and the lifecycle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "beamline/registry.h"
#include "bl_test.h"
#include "reg_test.h"

enum { T_CMD = 1, T_REPLY, T_BCAST, T_GOT, T_DONE, T_GO, T_HANDLE };

/* ---- an agent: a process that registers what it is told to ---- */

enum { OP_REG, OP_UNREG, OP_EXIT, OP_WAIT };

typedef struct cmd {
    int op;
    bl_registry *reg;
    char key[32];
    char val[32];
} cmd;

typedef struct reply {
    int rc;
    bl_pid holder;
} reply;

/* Serves commands; a broadcast (T_BCAST) is reported to the sender of the payload pid. */
static void agent(void *arg)
{
    (void)arg;
    for (;;) {
        bl_msg *m = bl_receive(BL_INFINITY);
        if (!m) return;
        if (m->tag == T_BCAST) {
            bl_pid to;
            memcpy(&to, m->data, sizeof to);
            bl_pid me = bl_self();
            bl_send(to, T_GOT, &me, sizeof me);
            bl_msg_free(m);
            continue;
        }
        cmd c;
        memcpy(&c, m->data, sizeof c);
        reply r = {0, BL_PID_NONE};
        switch (c.op) {
        case OP_REG:
            r.rc =
                bl_registry_register(c.reg, c.key, strlen(c.key), c.val, strlen(c.val), &r.holder);
            break;
        case OP_UNREG:
            r.rc = bl_registry_unregister(c.reg, c.key, strlen(c.key));
            break;
        default:
            break;
        }
        bl_send(m->from, T_REPLY, &r, sizeof r);
        bl_msg_free(m);
        if (c.op == OP_EXIT) return;
    }
}

/* Has agent a run op on key (value val); returns its result. */
static int agent_do(bl_pid a, bl_registry *reg, int op, const char *key, const char *val,
                    bl_pid *holder)
{
    cmd c = {.op = op, .reg = reg};
    snprintf(c.key, sizeof c.key, "%s", key ? key : "");
    snprintf(c.val, sizeof c.val, "%s", val ? val : "");
    bl_send(a, T_CMD, &c, sizeof c);
    bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
    BL_CHECK(m != NULL);
    if (!m) return -9999;
    reply r;
    memcpy(&r, m->data, sizeof r);
    bl_msg_free(m);
    if (holder) *holder = r.holder;
    return r.rc;
}

static int wait_down(bl_ref ref, bl_reason *out)
{
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_ref, &ref, 10000, 0) != 0) return -1;
    bl_reason r;
    BL_CHECK_EQ(bl_msg_reason(m, &r), 0);
    int kind = r.kind;
    if (out) {
        *out = r;
        out->detail = NULL;
    }
    bl_msg_free(m);
    return kind;
}

static int lookup_n(bl_registry *reg, const char *key)
{
    bl_registry_entry *e = NULL;
    int n = bl_registry_lookup(reg, key, strlen(key), &e);
    bl_registry_free(e);
    return n;
}

/* ---- unique keys ---- */

static void unique_main(void *arg)
{
    unsigned parts = (unsigned)(uintptr_t)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, parts);
    if (!reg) return;
    bl_pid me = bl_self();
    BL_CHECK_EQ(bl_registry_partitions(reg), parts ? parts : 1);
    BL_CHECK_EQ(bl_registry_register(reg, "a", 1, "va", 2, NULL), 0);

    bl_registry_entry *e = NULL;
    BL_CHECK_EQ(bl_registry_lookup(reg, "a", 1, &e), 1);
    BL_CHECK(e && e[0].pid == me && e[0].value_len == 2 && memcmp(e[0].value, "va", 2) == 0);
    bl_registry_free(e);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "a", 1), me);
    BL_CHECK_EQ(bl_registry_lookup(reg, "nope", 4, &e), 0);
    BL_CHECK(e == NULL);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "nope", 4), BL_PID_NONE);

    /* Taken: by ourselves, and for another process; the holder is given. */
    bl_pid holder = 0;
    BL_CHECK_EQ(bl_registry_register(reg, "a", 1, "x", 1, &holder), -EEXIST);
    BL_CHECK_EQ(holder, me);
    bl_pid a;
    BL_CHECK_EQ(bl_spawn(&a, agent, NULL, NULL), 0);
    holder = 0;
    BL_CHECK_EQ(agent_do(a, reg, OP_REG, "a", "y", &holder), -EEXIST);
    BL_CHECK_EQ(holder, me);
    BL_CHECK_EQ(agent_do(a, reg, OP_REG, "b", "vb", NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "b", 1), a);
    BL_CHECK_EQ(bl_registry_count(reg), 2);

    /* An empty key and an empty value are fine. */
    BL_CHECK_EQ(bl_registry_register(reg, NULL, 0, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup(reg, NULL, 0, &e), 1);
    BL_CHECK(e && e[0].pid == me && e[0].value == NULL && e[0].value_len == 0);
    bl_registry_free(e);
    bl_registry_key *none = NULL;
    BL_CHECK_EQ(bl_registry_keys(reg, BL_PID_NONE, &none), 0); /* pid 0 owns nothing */
    BL_CHECK(none == NULL);
    BL_CHECK_EQ(bl_registry_unregister(reg, NULL, 0), 1);

    /* keys: per pid. */
    bl_registry_key *k = NULL;
    BL_CHECK_EQ(bl_registry_keys(reg, me, &k), 1);
    BL_CHECK(k && k[0].len == 1 && memcmp(k[0].key, "a", 1) == 0);
    bl_registry_free(k);
    BL_CHECK_EQ(bl_registry_keys(reg, a, &k), 1);
    BL_CHECK(k && k[0].len == 1 && memcmp(k[0].key, "b", 1) == 0);
    bl_registry_free(k);

    /* Unregister: only our own entry; then the key is free for others. */
    BL_CHECK_EQ(agent_do(a, reg, OP_UNREG, "a", NULL, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "a", 1), me);
    BL_CHECK_EQ(bl_registry_unregister(reg, "a", 1), 1);
    BL_CHECK_EQ(bl_registry_unregister(reg, "a", 1), 0);
    BL_CHECK_EQ(lookup_n(reg, "a"), 0);
    BL_CHECK_EQ(bl_registry_keys(reg, me, &k), 0);
    BL_CHECK(k == NULL);
    BL_CHECK_EQ(agent_do(a, reg, OP_REG, "a", "z", NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "a", 1), a);
    BL_CHECK_EQ(bl_registry_count(reg), 2);
    /* Registering again after unregistering everything (monitor off, then on). */
    BL_CHECK_EQ(bl_registry_register(reg, "c", 1, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister(reg, "c", 1), 1);
    BL_CHECK_EQ(bl_registry_register(reg, "c", 1, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "c", 1), me);

    agent_do(a, reg, OP_EXIT, NULL, NULL, NULL);
    stop_reg(reg);
}

Test(registry, unique_register_lookup_eexist)
{
    bl_test_run(NULL, unique_main, (void *)(uintptr_t)0);
    bl_test_run(NULL, unique_main, (void *)(uintptr_t)3);
}

/* ---- duplicate keys and dispatch ---- */

typedef struct bcast {
    int calls;   /* fn calls */
    int entries; /* entries seen */
    int lookups; /* lookup from inside fn: no deadlock */
    bl_registry *reg;
} bcast;

static void broadcast(const bl_registry_entry *e, size_t n, void *arg)
{
    bcast *b = arg;
    b->calls++;
    b->entries += (int)n;
    /* The callback may use the registry: no lock is held. */
    b->lookups = lookup_n(b->reg, "topic");
    bl_pid me = bl_self();
    for (size_t i = 0; i < n; i++) bl_send(e[i].pid, T_BCAST, &me, sizeof me);
}

static void duplicate_main(void *arg)
{
    unsigned parts = (unsigned)(uintptr_t)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_DUPLICATE, parts);
    if (!reg) return;
    bl_pid me = bl_self();
    /* The same key twice from the same process, as Elixir allows. */
    BL_CHECK_EQ(bl_registry_register(reg, "topic", 5, "1", 1, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "topic", 5, "2", 1, NULL), 0);
    enum { NA = 6 };
    bl_pid a[NA];
    for (int i = 0; i < NA; i++) {
        bl_spawn_opts so = {.scheduler = i % 2 + 1};
        BL_CHECK_EQ(bl_spawn(&a[i], agent, NULL, &so), 0);
        BL_CHECK_EQ(agent_do(a[i], reg, OP_REG, "topic", "agent", NULL), 0);
    }
    BL_CHECK_EQ(agent_do(a[0], reg, OP_REG, "other", "o", NULL), 0);

    bl_registry_entry *e = NULL;
    BL_CHECK_EQ(bl_registry_lookup(reg, "topic", 5, &e), NA + 2);
    int mine = 0, agents = 0;
    for (int i = 0; e && i < NA + 2; i++) {
        if (e[i].pid == me) {
            /* Our two entries, in registration order. */
            BL_CHECK(e[i].value_len == 1 && *(const char *)e[i].value == "12"[mine]);
            mine++;
        } else if (e[i].value_len == 5 && memcmp(e[i].value, "agent", 5) == 0) {
            agents++;
        }
    }
    BL_CHECK_EQ(mine, 2);
    BL_CHECK_EQ(agents, NA);
    bl_registry_free(e);
    BL_CHECK_EQ(bl_registry_count(reg), NA + 3);

    /* Dispatch: once per partition holding entries; everyone hears. */
    bcast b = {.reg = reg};
    BL_CHECK_EQ(bl_registry_dispatch(reg, "topic", 5, broadcast, &b), NA + 2);
    BL_CHECK_EQ(b.entries, NA + 2);
    BL_CHECK(b.calls >= 1 && b.calls <= (int)bl_registry_partitions(reg));
    BL_CHECK_EQ(b.lookups, NA + 2);
    int got = 0;
    bool seen[NA] = {false};
    for (int i = 0; i < NA; i++) {
        bl_msg *m = bl_test_recv_tag(T_GOT, 10000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_pid p;
        memcpy(&p, m->data, sizeof p);
        for (int j = 0; j < NA; j++)
            if (a[j] == p && !seen[j]) seen[j] = true, got++;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(got, NA);
    for (int i = 0; i < 2; i++) { /* our own two entries */
        bl_msg *m = bl_test_recv_tag(T_BCAST, 10000);
        BL_CHECK(m != NULL);
        bl_msg_free(m);
    }
    /* No entries: fn is not called. */
    b = (bcast){.reg = reg};
    BL_CHECK_EQ(bl_registry_dispatch(reg, "none", 4, broadcast, &b), 0);
    BL_CHECK_EQ(b.calls, 0);

    /* keys lists a key once per entry. */
    bl_registry_key *k = NULL;
    BL_CHECK_EQ(bl_registry_keys(reg, me, &k), 2);
    BL_CHECK(k && k[0].len == 5 && memcmp(k[0].key, "topic", 5) == 0 && k[1].len == 5);
    bl_registry_free(k);
    BL_CHECK_EQ(bl_registry_keys(reg, a[0], &k), 2);
    BL_CHECK(k && memcmp(k[0].key, "topic", 5) == 0 && k[1].len == 5 &&
             memcmp(k[1].key, "other", 5) == 0);
    bl_registry_free(k);

    /* Unregister removes all of the caller's entries under the key, no others. */
    BL_CHECK_EQ(bl_registry_unregister(reg, "topic", 5), 2);
    BL_CHECK_EQ(agent_do(a[1], reg, OP_UNREG, "topic", NULL, NULL), 1);
    BL_CHECK_EQ(lookup_n(reg, "topic"), NA - 1);
    BL_CHECK_EQ(bl_registry_count(reg), NA);
    /* A unique-only via name does not apply to duplicate registries. */
    BL_CHECK_EQ(bl_registry_via.register_name(reg, "v", 1), -EINVAL);
    BL_CHECK_EQ(bl_registry_via.whereis_name(reg, "topic", 5), BL_PID_NONE);

    for (int i = 0; i < NA; i++) agent_do(a[i], reg, OP_EXIT, NULL, NULL, NULL);
    stop_reg(reg);
}

Test(registry, duplicate_register_and_dispatch)
{
    bl_test_run(NULL, duplicate_main, (void *)(uintptr_t)1);
    bl_test_run(NULL, duplicate_main, (void *)(uintptr_t)BL_REGISTRY_SCHEDULERS);
    bl_test_run(NULL, duplicate_main, (void *)(uintptr_t)5);
}

/* ---- match ---- */

static bool greater(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)pid;
    int v;
    if (len != sizeof v) return false;
    memcpy(&v, value, sizeof v);
    return v > *(int *)arg;
}

static bool is_pid(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)value, (void)len;
    return pid == *(bl_pid *)arg;
}

static void match_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_DUPLICATE, 2);
    if (!reg) return;
    for (int v = 1; v <= 10; v++)
        BL_CHECK_EQ(bl_registry_register(reg, "k", 1, &v, sizeof v, 0), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, "txt", 3, NULL), 0);
    bl_pid a;
    BL_CHECK_EQ(bl_spawn(&a, agent, NULL, NULL), 0);
    BL_CHECK_EQ(agent_do(a, reg, OP_REG, "k", "abc", NULL), 0);

    int five = 5;
    bl_registry_entry *e = NULL;
    BL_CHECK_EQ(bl_registry_match(reg, "k", 1, greater, &five, &e), 5);
    int sum = 0;
    for (int i = 0; e && i < 5; i++) {
        int v;
        memcpy(&v, e[i].value, sizeof v);
        BL_CHECK(v > 5);
        BL_CHECK_EQ(e[i].pid, bl_self());
        sum += v;
    }
    BL_CHECK_EQ(sum, 6 + 7 + 8 + 9 + 10);
    bl_registry_free(e);
    /* Counting only (count_match). */
    BL_CHECK_EQ(bl_registry_match(reg, "k", 1, greater, &five, NULL), 5);
    int big = 100;
    BL_CHECK_EQ(bl_registry_match(reg, "k", 1, greater, &big, &e), 0);
    BL_CHECK(e == NULL);
    BL_CHECK_EQ(bl_registry_match(reg, "k", 1, is_pid, &a, &e), 1);
    BL_CHECK(e && e[0].pid == a && e[0].value_len == 3 && memcmp(e[0].value, "abc", 3) == 0);
    bl_registry_free(e);
    BL_CHECK_EQ(bl_registry_match(reg, "zz", 2, is_pid, &a, &e), 0);
    BL_CHECK_EQ(bl_registry_match(reg, "k", 1, NULL, &a, &e), -EINVAL);

    agent_do(a, reg, OP_EXIT, NULL, NULL, NULL);
    stop_reg(reg);
}

Test(registry, match_with_a_predicate)
{
    bl_test_run(NULL, match_main, NULL);
}

/* ---- count and keys over many keys ---- */

static void count_keys_main(void *arg)
{
    (void)arg;
    enum { N = 300 };
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 4);
    if (!reg) return;
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        BL_CHECK_EQ(bl_registry_register(reg, key, (size_t)n, &i, sizeof i, NULL), 0);
    }
    BL_CHECK_EQ(bl_registry_count(reg), N);
    bl_registry_key *k = NULL;
    BL_CHECK_EQ(bl_registry_keys(reg, bl_self(), &k), N);
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    for (int i = 0; k && i < N; i++) {
        int v = -1;
        char buf[32] = {0};
        memcpy(buf, k[i].key, k[i].len < 31 ? k[i].len : 31);
        if (sscanf(buf, "key-%d", &v) == 1 && v >= 0 && v < N) seen[v] = true;
    }
    bl_registry_free(k);
    int distinct = 0;
    for (int i = 0; i < N; i++) distinct += seen[i];
    BL_CHECK_EQ(distinct, N);
    /* Values come back as registered. */
    for (int i = 0; i < N; i += 37) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        bl_registry_entry *e = NULL;
        BL_CHECK_EQ(bl_registry_lookup(reg, key, (size_t)n, &e), 1);
        int v = -1;
        if (e) memcpy(&v, e[0].value, sizeof v);
        BL_CHECK_EQ(v, i);
        bl_registry_free(e);
    }
    BL_CHECK_EQ(bl_registry_keys(reg, BL_PID_NONE, &k), 0);
    for (int i = 0; i < N; i += 2) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        BL_CHECK_EQ(bl_registry_unregister(reg, key, (size_t)n), 1);
    }
    BL_CHECK_EQ(bl_registry_count(reg), N / 2);
    BL_CHECK_EQ(bl_registry_keys(reg, bl_self(), &k), N / 2);
    bl_registry_free(k);
    stop_reg(reg);
}

Test(registry, count_and_keys)
{
    bl_test_run(NULL, count_keys_main, NULL);
}

/* ---- cleanup when the owner exits ---- */

static void register_and_return(void *arg)
{
    bl_registry *reg = arg;
    BL_CHECK_EQ(bl_registry_register(reg, "brief", 5, "x", 1, NULL), 0);
}

static void cleanup_main(void *arg)
{
    bl_registry_kind kind = (bl_registry_kind)(uintptr_t)arg;
    bl_registry *reg = start_reg(kind, BL_REGISTRY_SCHEDULERS);
    if (!reg) return;
    BL_CHECK_EQ(bl_registry_register(reg, "keep", 4, NULL, 0, NULL), 0);
    for (int how = 0; how < 2; how++) { /* 0: normal exit, 1: killed */
        bl_pid a;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&a, &ref, agent, NULL, NULL), 0);
        BL_CHECK_EQ(agent_do(a, reg, OP_REG, "k1", "v", NULL), 0);
        BL_CHECK_EQ(agent_do(a, reg, OP_REG, "k2", "v", NULL), 0);
        if (kind == BL_REGISTRY_DUPLICATE) BL_CHECK_EQ(agent_do(a, reg, OP_REG, "k1", "w", 0), 0);
        int mine = kind == BL_REGISTRY_DUPLICATE ? 3 : 2;
        BL_CHECK_EQ(bl_registry_count(reg), 1 + mine);
        if (how == 0) {
            agent_do(a, reg, OP_EXIT, NULL, NULL, NULL);
            BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
        } else {
            bl_reason kill = BL_REASON(BL_KILL);
            BL_CHECK_EQ(bl_exit_pid(a, &kill), 0);
            BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
        }
        /* Dead entries are not looked up even before the cleanup. */
        BL_CHECK_EQ(lookup_n(reg, "k1"), 0);
        BL_CHECK_EQ(bl_registry_lookup_pid(reg, "k2", 2), BL_PID_NONE);
        /* The sync guarantees the partitions have removed them. */
        BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
        BL_CHECK_EQ(bl_registry_count(reg), 1);
        bl_registry_key *k = NULL;
        BL_CHECK_EQ(bl_registry_keys(reg, a, &k), 0);
        BL_CHECK_EQ(bl_registry_lookup_pid(reg, "keep", 4), bl_self());
    }
    /* A process that registers and exits at once (its monitor may come after its death). */
    for (int i = 0; i < 20; i++) {
        bl_pid p;
        bl_ref ref;
        bl_spawn_opts so = {.scheduler = i % 2 + 1};
        BL_CHECK_EQ(bl_spawn_monitor(&p, &ref, register_and_return, reg, &so), 0);
        BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
        BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
        BL_CHECK_EQ(bl_registry_count(reg), 1);
    }
    if (kind == BL_REGISTRY_UNIQUE) {
        /* A key whose holder died is free before the cleanup, and the
         * cleanup of the dead holder leaves the new entry alone. */
        bl_pid a, b;
        bl_ref ref;
        BL_CHECK_EQ(bl_spawn_monitor(&a, &ref, agent, NULL, NULL), 0);
        BL_CHECK_EQ(bl_spawn(&b, agent, NULL, NULL), 0);
        BL_CHECK_EQ(agent_do(a, reg, OP_REG, "slot", "a", NULL), 0);
        bl_reason kill = BL_REASON(BL_KILL);
        bl_exit_pid(a, &kill);
        BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
        BL_CHECK_EQ(agent_do(b, reg, OP_REG, "slot", "b", NULL), 0);
        BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
        BL_CHECK_EQ(bl_registry_lookup_pid(reg, "slot", 4), b);
        BL_CHECK_EQ(bl_registry_count(reg), 2);
        agent_do(b, reg, OP_EXIT, NULL, NULL, NULL);
    }
    stop_reg(reg);
}

Test(registry, cleanup_on_owner_death_unique)
{
    bl_test_run(NULL, cleanup_main, (void *)(uintptr_t)BL_REGISTRY_UNIQUE);
}

Test(registry, cleanup_on_owner_death_duplicate)
{
    bl_test_run(NULL, cleanup_main, (void *)(uintptr_t)BL_REGISTRY_DUPLICATE);
}

/* ---- partitions under concurrent registration ---- */

typedef struct work {
    bl_registry *uniq; /* unique registry: one key per worker */
    bl_registry *dup;  /* duplicate registry: everyone under "all" */
    bl_pid test;       /* gets T_DONE */
    int id;            /* worker number */
    int n;             /* workers */
} work;

static void worker(void *arg)
{
    work *w = arg;
    char key[32];
    int n = snprintf(key, sizeof key, "w%d", w->id);
    BL_CHECK_EQ(bl_registry_register(w->uniq, key, (size_t)n, &w->id, sizeof w->id, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(w->dup, "all", 3, &w->id, sizeof w->id, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(w->uniq, key, (size_t)n), bl_self());
    /* Look up others while they register: found or not, never garbage. */
    for (int i = 0; i < 8; i++) {
        int other = (w->id * 7 + i * 13) % w->n;
        n = snprintf(key, sizeof key, "w%d", other);
        bl_registry_entry *e = NULL;
        int c = bl_registry_lookup(w->uniq, key, (size_t)n, &e);
        BL_CHECK(c == 0 || c == 1);
        if (c == 1) {
            int v;
            memcpy(&v, e[0].value, sizeof v);
            BL_CHECK_EQ(v, other);
        }
        bl_registry_free(e);
        bl_yield();
    }
    bl_send(w->test, T_DONE, NULL, 0);
    uint32_t go = T_GO;
    bl_msg *m = NULL;
    if (bl_recv(&m, bl_match_tag, &go, BL_INFINITY, 0) == 0) bl_msg_free(m);
}

static void all_sum(const bl_registry_entry *e, size_t n, void *arg)
{
    long *sum = arg;
    for (size_t i = 0; i < n; i++) {
        int v;
        memcpy(&v, e[i].value, sizeof v);
        *sum += v;
    }
}

static void concurrent_main(void *arg)
{
    (void)arg;
    const int N = BL_SCALE(2000);
    bl_registry *uniq = start_reg(BL_REGISTRY_UNIQUE, BL_REGISTRY_SCHEDULERS);
    bl_registry *dup = start_reg(BL_REGISTRY_DUPLICATE, BL_REGISTRY_SCHEDULERS);
    if (!uniq || !dup) return;
    BL_CHECK_EQ(bl_registry_partitions(uniq), bl_schedulers());
    work *w = calloc((size_t)N, sizeof *w);
    bl_pid *pids = calloc((size_t)N, sizeof *pids);
    bl_ref *refs = calloc((size_t)N, sizeof *refs);
    for (int i = 0; i < N; i++) {
        w[i] = (work){uniq, dup, bl_self(), i, N};
        bl_spawn_opts so = {.scheduler = i % (int)bl_schedulers() + 1};
        BL_CHECK_EQ(bl_spawn_monitor(&pids[i], &refs[i], worker, &w[i], &so), 0);
    }
    for (int i = 0; i < N; i++) {
        bl_msg *m = bl_test_recv_tag(T_DONE, 30000);
        BL_CHECK(m != NULL);
        if (!m) break;
        bl_msg_free(m);
    }
    BL_CHECK_EQ(bl_registry_count(uniq), N);
    BL_CHECK_EQ(bl_registry_count(dup), N);
    BL_CHECK_EQ(lookup_n(dup, "all"), N);
    long sum = 0;
    BL_CHECK_EQ(bl_registry_dispatch(dup, "all", 3, all_sum, &sum), N);
    BL_CHECK_EQ(sum, (long)N * (N - 1) / 2);
    for (int i = 0; i < N; i += 97) {
        char key[32];
        int n = snprintf(key, sizeof key, "w%d", i);
        BL_CHECK_EQ(bl_registry_lookup_pid(uniq, key, (size_t)n), pids[i]);
        bl_registry_key *k = NULL;
        BL_CHECK_EQ(bl_registry_keys(dup, pids[i], &k), 1);
        bl_registry_free(k);
    }
    for (int i = 0; i < N; i++) bl_send(pids[i], T_GO, NULL, 0);
    for (int i = 0; i < N; i++) BL_CHECK_EQ(wait_down(refs[i], NULL), BL_NORMAL);
    BL_CHECK_EQ(bl_registry_sync(uniq, 10000), 0);
    BL_CHECK_EQ(bl_registry_sync(dup, 10000), 0);
    BL_CHECK_EQ(bl_registry_count(uniq), 0);
    BL_CHECK_EQ(bl_registry_count(dup), 0);
    BL_CHECK_EQ(lookup_n(dup, "all"), 0);
    free(w);
    free(pids);
    free(refs);
    stop_reg(uniq);
    stop_reg(dup);
}

Test(registry, partitions_concurrent_registration)
{
    bl_test_run(NULL, concurrent_main, NULL);
}

/* ---- via names ---- */

static void via_agent(void *arg)
{
    bl_registry *reg = arg;
    bl_msg *m = bl_receive(10000);
    int rc = bl_registry_via.register_name(reg, "svc", 3);
    if (m) {
        bl_send(m->from, T_REPLY, &rc, sizeof rc);
        bl_msg_free(m);
    }
}

static void via_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    const bl_via_ops *ops = &bl_registry_via;
    BL_CHECK_EQ(ops->register_name(reg, "svc", 3), 0);
    BL_CHECK_EQ(ops->whereis_name(reg, "svc", 3), bl_self());
    /* Taken for another process. */
    bl_pid a;
    BL_CHECK_EQ(bl_spawn(&a, via_agent, reg, NULL), 0);
    bl_send(a, T_CMD, NULL, 0);
    bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
    int rc = 0;
    if (m) memcpy(&rc, m->data, sizeof rc);
    bl_msg_free(m);
    BL_CHECK_EQ(rc, -EEXIST);
    BL_CHECK_EQ(ops->unregister_name(reg, "svc", 3), 0);
    BL_CHECK_EQ(ops->unregister_name(reg, "svc", 3), -ENOENT);
    BL_CHECK_EQ(ops->whereis_name(reg, "svc", 3), BL_PID_NONE);
    BL_CHECK_EQ(ops->register_name(NULL, "svc", 3), -EINVAL);

    bl_name name = bl_registry_name(reg, "server", 6);
    BL_CHECK(name.via == &bl_registry_via && name.via_arg == reg && name.key_len == 6);
    BL_CHECK(name.local == NULL);

    /* A gen_server named through the registry. */
    bl_pid s1 = 0, s2 = 0;
    bl_gen_server_opts go = {.name = &name};
    BL_CHECK_EQ(bl_gen_server_start(&s1, &srv, NULL, &go), 0);
    BL_CHECK_EQ(bl_name_whereis(&name), s1);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "server", 6), s1);
    bl_msg *rep = NULL;
    BL_CHECK_EQ(bl_gen_server_call(bl_name_whereis(&name), 1, NULL, 0, &rep, 5000), 0);
    BL_CHECK(rep && rep->len == 4 && memcmp(rep->data, "pong", 4) == 0);
    bl_msg_free(rep);
    /* Already started: the holder comes back. */
    BL_CHECK_EQ(bl_gen_server_start(&s2, &srv, NULL, &go), -EEXIST);
    BL_CHECK_EQ(s2, s1);
    /* Stopped: the name is free again. */
    BL_CHECK_EQ(bl_gen_server_stop(s1, NULL, 5000), 0);
    BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
    BL_CHECK_EQ(bl_name_whereis(&name), BL_PID_NONE);
    BL_CHECK_EQ(bl_gen_server_start(&s2, &srv, NULL, &go), 0);
    BL_CHECK(s2 != s1 && bl_name_whereis(&name) == s2);
    BL_CHECK_EQ(bl_gen_server_stop(s2, NULL, 5000), 0);
    stop_reg(reg);
}

Test(registry, via_names)
{
    bl_test_run(NULL, via_main, NULL);
}

/* ---- lifecycle ---- */

/* Waits (bounded, yielding) until calls on reg fail with -ESRCH. */
static bool wait_stopped(bl_registry *reg)
{
    for (int i = 0; i < 1000000; i++) {
        if (bl_registry_count(reg) == -ESRCH) return true;
        bl_yield();
    }
    return false;
}

/* Starts a registry linked to itself, hands the test a reference, and waits. */
static void parent_proc(void *arg)
{
    bl_pid test = *(bl_pid *)arg;
    bl_registry_opts o = {.keys = BL_REGISTRY_UNIQUE, .partitions = 2, .name = "reg.parent"};
    bl_registry *reg = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    bl_send(test, T_HANDLE, &reg, sizeof reg);
    bl_receive(BL_INFINITY);
}

static void lifecycle_main(void *arg)
{
    (void)arg;
    /* Named: found by name, the name is taken while it runs. */
    bl_registry_opts o = {.keys = BL_REGISTRY_DUPLICATE, .partitions = 3, .name = "reg.a"};
    bl_registry *reg = NULL, *again = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    if (!reg) return;
    bl_registry *found = bl_registry_whereis("reg.a");
    BL_CHECK(found == reg);
    bl_registry_release(found);
    BL_CHECK_EQ(bl_whereis("reg.a"), bl_registry_pid(reg));
    BL_CHECK_EQ(bl_registry_start_link(&o, &again), -EEXIST);
    BL_CHECK(again == NULL);
    BL_CHECK(bl_registry_whereis("reg.none") == NULL);
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, NULL, 0, NULL), 0);
    /* Stop: the processes go, calls fail, the handle stays valid. */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(bl_registry_pid(reg), &ref), 0);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    BL_CHECK_EQ(bl_registry_count(reg), -ESRCH);
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, NULL, 0, NULL), -ESRCH);
    BL_CHECK_EQ(lookup_n(reg, "k"), -ESRCH);
    BL_CHECK_EQ(bl_registry_sync(reg, 1000), -ESRCH);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 1000), -ESRCH);
    BL_CHECK(bl_registry_whereis("reg.a") == NULL);
    bl_registry_release(reg);
    /* The name is free again. */
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    stop_reg(reg);

    /* Killing the top process takes the partitions with it. */
    reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    bl_unlink(bl_registry_pid(reg)); /* we do not want its killed */
    BL_CHECK_EQ(bl_monitor(bl_registry_pid(reg), &ref), 0);
    bl_reason kill = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_exit_pid(bl_registry_pid(reg), &kill), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_KILLED);
    BL_CHECK(wait_stopped(reg));
    bl_registry_release(reg);

    /* A partition that dies stops the registry (shutdown). */
    reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    bl_trap_exit(true); /* its shutdown reaches us through the link */
    bl_proc_info info;
    BL_CHECK_EQ(bl_process_info(bl_registry_pid(reg), &info), 0);
    bl_pid victim = BL_PID_NONE;
    for (uint32_t i = 0; i < info.nlinks && i < BL_INFO_MAX_PIDS; i++)
        if (info.links[i] != bl_self()) victim = info.links[i];
    BL_CHECK(victim != BL_PID_NONE);
    BL_CHECK_EQ(info.nlinks, 3);
    BL_CHECK_EQ(bl_monitor(bl_registry_pid(reg), &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(victim, &kill), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    BL_CHECK(wait_stopped(reg));
    bl_msg *m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m && m->from == bl_registry_pid(reg));
    bl_msg_free(m);
    bl_registry_release(reg);

    /* An exit signal (a supervisor's shutdown) stops it with that reason. */
    reg = start_reg(BL_REGISTRY_DUPLICATE, 2);
    if (!reg) return;
    BL_CHECK_EQ(bl_monitor(bl_registry_pid(reg), &ref), 0);
    bl_reason sd = {.kind = BL_SHUTDOWN, .detail = "bye", .detail_len = 3};
    BL_CHECK_EQ(bl_exit_pid(bl_registry_pid(reg), &sd), 0);
    bl_reason got;
    BL_CHECK_EQ(wait_down(ref, &got), BL_SHUTDOWN);
    BL_CHECK_EQ(got.detail_len, 3);
    BL_CHECK(wait_stopped(reg));
    m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m != NULL);
    bl_msg_free(m);
    bl_registry_release(reg);
    bl_trap_exit(false);

    /* The parent's exit takes the registry down. */
    bl_pid me = bl_self(), parent;
    BL_CHECK_EQ(bl_spawn(&parent, parent_proc, &me, NULL), 0);
    m = bl_test_recv_tag(T_HANDLE, 10000);
    BL_CHECK(m != NULL);
    if (!m) return;
    memcpy(&reg, m->data, sizeof reg);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_monitor(bl_registry_pid(reg), &ref), 0);
    BL_CHECK_EQ(bl_exit_pid(parent, &sd), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_SHUTDOWN);
    BL_CHECK(wait_stopped(reg));
    bl_registry_release(reg);

    /* stop with a reason; a linked caller that traps gets the EXIT. */
    reg = start_reg(BL_REGISTRY_UNIQUE, 1);
    if (!reg) return;
    bl_trap_exit(true);
    bl_reason custom = {.kind = BL_CUSTOM, .code = 9};
    BL_CHECK_EQ(bl_registry_stop(reg, &custom, 10000), 0);
    m = bl_test_recv_tag(BL_TAG_EXIT, 10000);
    BL_CHECK(m && bl_msg_reason(m, &got) == 0 && got.kind == BL_CUSTOM && got.code == 9);
    bl_msg_free(m);
    bl_trap_exit(false);
    bl_registry_release(reg);
}

Test(registry, lifecycle)
{
    bl_test_run(NULL, lifecycle_main, NULL);
}

/* ---- start function for supervisors ---- */

static void start_fn_main(void *arg)
{
    (void)arg;
    bl_registry *h = NULL;
    bl_registry_opts o = {.keys = BL_REGISTRY_UNIQUE, .name = "reg.sup", .handle = &h};
    bl_start_fn fn = bl_registry_start_fn;
    bl_pid pid = 0;
    BL_CHECK_EQ(fn(&o, &pid), 0);
    BL_CHECK(h != NULL && pid == bl_registry_pid(h));
    BL_CHECK_EQ(bl_whereis("reg.sup"), pid);
    BL_CHECK_EQ(bl_registry_register(h, "x", 1, NULL, 0, NULL), 0);
    /* A restart: the old reference is released, the new one stored. */
    BL_CHECK_EQ(bl_registry_stop(h, NULL, 10000), 0);
    bl_registry *old = h;
    bl_registry_retain(old); /* keep it to check it still answers -ESRCH */
    BL_CHECK_EQ(fn(&o, &pid), 0);
    BL_CHECK(h != NULL && h != old && pid == bl_registry_pid(h));
    BL_CHECK_EQ(bl_registry_count(old), -ESRCH);
    BL_CHECK_EQ(bl_registry_count(h), 0);
    bl_registry_release(old);
    /* Without a handle slot: reached by name. */
    bl_registry_opts o2 = {.keys = BL_REGISTRY_DUPLICATE, .name = "reg.sup2"};
    BL_CHECK_EQ(fn(&o2, &pid), 0);
    bl_registry *r2 = bl_registry_whereis("reg.sup2");
    BL_CHECK(r2 != NULL && bl_registry_pid(r2) == pid);
    stop_reg(r2);
    stop_reg(h);
    BL_CHECK_EQ(fn(NULL, &pid), -EINVAL);
    BL_CHECK_EQ(fn(&o, NULL), -EINVAL);
}

Test(registry, start_fn)
{
    bl_test_run(NULL, start_fn_main, NULL);
}

/* ---- errors ---- */

typedef struct thread_res {
    bl_registry *reg;
    int reg_rc, unreg_rc, start_rc, lookup_rc, sync_rc;
} thread_res;

/* A plain thread: no calling process. */
static void *outside(void *arg)
{
    thread_res *t = arg;
    t->reg_rc = bl_registry_register(t->reg, "k", 1, NULL, 0, NULL);
    t->unreg_rc = bl_registry_unregister(t->reg, "k", 1);
    bl_registry *r;
    t->start_rc = bl_registry_start_link(NULL, &r);
    t->lookup_rc = lookup_n(t->reg, "x"); /* lookups work from any thread */
    t->sync_rc = bl_registry_sync(t->reg, 100);
    return NULL;
}

static void errors_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 1);
    if (!reg) return;
    char big[BL_REGISTRY_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    BL_CHECK_EQ(bl_registry_register(NULL, "k", 1, NULL, 0, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_register(reg, NULL, 1, NULL, 0, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, NULL, 3, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_register(reg, big, sizeof big, NULL, 0, NULL), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_registry_register(reg, big, BL_REGISTRY_KEY_MAX, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister(reg, big, sizeof big), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_registry_unregister(NULL, "k", 1), -EINVAL);
    bl_registry_entry *e;
    BL_CHECK_EQ(bl_registry_lookup(reg, "k", 1, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_lookup(NULL, "k", 1, &e), -EINVAL);
    BL_CHECK_EQ(bl_registry_lookup(reg, big, sizeof big, &e), -ENAMETOOLONG);
    BL_CHECK_EQ(bl_registry_dispatch(reg, "k", 1, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_count(NULL), -EINVAL);
    bl_registry_key *k;
    BL_CHECK_EQ(bl_registry_keys(NULL, bl_self(), &k), -EINVAL);
    BL_CHECK_EQ(bl_registry_keys(reg, bl_self(), NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_sync(NULL, 100), -EINVAL);
    BL_CHECK_EQ(bl_registry_sync(reg, -5), -EINVAL);
    BL_CHECK_EQ(bl_registry_stop(NULL, NULL, 100), -EINVAL);
    bl_reason killr = BL_REASON(BL_KILL);
    BL_CHECK_EQ(bl_registry_stop(reg, &killr, 100), -EINVAL);
    BL_CHECK_EQ(bl_registry_lookup_pid(NULL, "k", 1), BL_PID_NONE);
    BL_CHECK_EQ(bl_registry_pid(NULL), BL_PID_NONE);
    BL_CHECK_EQ(bl_registry_partitions(NULL), 0);
    bl_registry_release(NULL);
    bl_registry_retain(NULL);
    bl_registry_free(NULL);

    bl_registry *r2 = NULL;
    BL_CHECK_EQ(bl_registry_start_link(NULL, NULL), -EINVAL);
    bl_registry_opts bad = {.keys = (bl_registry_kind)7};
    BL_CHECK_EQ(bl_registry_start_link(&bad, &r2), -EINVAL);
    bad = (bl_registry_opts){.partitions = BL_REGISTRY_PARTITIONS_MAX + 1};
    BL_CHECK_EQ(bl_registry_start_link(&bad, &r2), -EINVAL);
    bad = (bl_registry_opts){.name = ""};
    BL_CHECK_EQ(bl_registry_start_link(&bad, &r2), -EINVAL);
    BL_CHECK(r2 == NULL);

    /* Caller identity needed: -EPERM from a thread that is not a process. */
    thread_res t = {.reg = reg};
    pthread_t th;
    BL_CHECK_EQ(pthread_create(&th, NULL, outside, &t), 0);
    pthread_join(th, NULL);
    BL_CHECK_EQ(t.reg_rc, -EPERM);
    BL_CHECK_EQ(t.unreg_rc, -EPERM);
    BL_CHECK_EQ(t.start_rc, -EPERM);
    BL_CHECK_EQ(t.lookup_rc, 0);
    BL_CHECK_EQ(t.sync_rc, -EPERM);
    stop_reg(reg);
}

Test(registry, errors)
{
    bl_test_run(NULL, errors_main, NULL);
}

/* ---- left running when the runtime stops ---- */

static void abandon_main(void *arg)
{
    (void)arg;
    /* Neither stopped nor released before the runtime stops: its processes'
     * release hooks and the handle's reference must still free everything
     * (LeakSanitizer checks), here with the handle given back first. */
    bl_registry *reg = start_reg(BL_REGISTRY_DUPLICATE, 2);
    if (!reg) return;
    for (int i = 0; i < 50; i++) BL_CHECK_EQ(bl_registry_register(reg, "t", 1, &i, sizeof i, 0), 0);
    bl_pid a;
    BL_CHECK_EQ(bl_spawn(&a, agent, NULL, NULL), 0);
    BL_CHECK_EQ(agent_do(a, reg, OP_REG, "t", "x", NULL), 0);
    bl_registry_release(reg);
}

Test(registry, runtime_stop_frees_a_running_registry)
{
    bl_test_run(NULL, abandon_main, NULL);
}

/* ---- sharing the scheduler ---- */

/*
 * On one scheduler: a loop of registrations is charged a reduction each, so
 * a process queued behind it runs before the loop ends; and the partition
 * purges a dead owner's many keys over several slices, so the owner's
 * monitor sees the count part-way down.  Without the charges both run to
 * the end in one slice, and neither is seen.
 */
#define MANY_KEYS 20000

static _Atomic bool queued_ran;

static void mark_ran(void *arg)
{
    (void)arg;
    atomic_store(&queued_ran, true);
}

static void register_many_and_exit(void *arg)
{
    bl_registry *reg = arg;
    for (uint32_t k = 0; k < MANY_KEYS; k++)
        BL_CHECK_EQ(bl_registry_register(reg, &k, sizeof k, NULL, 0, NULL), 0);
}

static void share_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 1);
    if (!reg) return;
    atomic_store(&queued_ran, false);
    BL_CHECK_EQ(bl_spawn(NULL, mark_ran, NULL, NULL), 0);
    long seen_at = -1;
    for (uint32_t k = 0; k < MANY_KEYS; k++) {
        BL_CHECK_EQ(bl_registry_register(reg, &k, sizeof k, NULL, 0, NULL), 0);
        if (seen_at < 0 && atomic_load(&queued_ran)) seen_at = k;
    }
    BL_CHECK(seen_at >= 0 && seen_at < MANY_KEYS - 1);
    for (uint32_t k = 0; k < MANY_KEYS; k++)
        BL_CHECK_EQ(bl_registry_unregister(reg, &k, sizeof k), 1);
    BL_CHECK_EQ(bl_registry_count(reg), 0);

    bl_pid owner;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&owner, &ref, register_many_and_exit, reg, NULL), 0);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
    bool part_way = false;
    int64_t n;
    BL_CHECK(BL_TEST_UNTIL((n = bl_registry_count(reg), part_way |= n > 0 && n < MANY_KEYS, n == 0),
                           30000));
    BL_CHECK(part_way);
    stop_reg(reg);
}

Test(registry, long_table_work_shares_the_scheduler)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, share_main, NULL);
}

/*
 * On one scheduler: the last release of a big table frees it on the dirty
 * pool, with the caller parked, so a process that wants to run meanwhile
 * runs before the release returns.  Freed in the caller, it could not.
 */
#define BIG_TABLE 100000

static _Atomic long ticks;
static _Atomic bool ticks_stop;

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&ticks_stop)) {
        atomic_fetch_add(&ticks, 1);
        bl_yield();
    }
}

static void big_free_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 1);
    if (!reg) return;
    for (uint32_t k = 0; k < BIG_TABLE; k++)
        BL_CHECK_EQ(bl_registry_register(reg, &k, sizeof k, NULL, 0, NULL), 0);
    /* Stopped, the table keeps its entries until the last reference goes. */
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    atomic_store(&ticks, 0);
    atomic_store(&ticks_stop, false);
    bl_pid t;
    bl_ref ref;
    BL_CHECK_EQ(bl_spawn_monitor(&t, &ref, ticker, NULL, NULL), 0);
    BL_CHECK(BL_TEST_UNTIL(atomic_load(&ticks) > 0, 10000));
    long before = atomic_load(&ticks);
    bl_registry_release(reg);
    BL_CHECK(atomic_load(&ticks) > before);
    atomic_store(&ticks_stop, true);
    BL_CHECK_EQ(wait_down(ref, NULL), BL_NORMAL);
}

Test(registry, a_big_table_is_freed_off_the_scheduler, .timeout = 120)
{
    bl_config c = {.schedulers = 1};
    bl_test_run(&c, big_free_main, NULL);
}
