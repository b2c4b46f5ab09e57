/*
 * tests/core/test_names.c - the registered-name table (core/names.h), used
 * directly, without the runtime.
 *
 * Criterion runs each test in its own child, so each test starts with an
 * uninitialised table.  The concurrency tests encode the name's id in every
 * pid they register, so a reader can check that whereis only ever returns a
 * pid that was validly associated with that name.  Threads record failures
 * in counters; the test thread asserts on them after joining.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/names.h"

/* Sanitizer builds run the same tests on smaller numbers. */
#if defined(__SANITIZE_THREAD__) || defined(BL_TSAN)
#define SCALE(n) ((n) / 8)
#elif defined(__SANITIZE_ADDRESS__) || defined(BL_ASAN)
#define SCALE(n) ((n) / 4)
#else
#define SCALE(n) (n)
#endif

static void fini(void)
{
    bl__names_destroy();
}

/* A name of exactly n bytes (n < sizeof buf) ending in `last`. */
static char *name_of_len(char *buf, size_t n, char last)
{
    memset(buf, 'x', n);
    buf[n - 1] = last;
    buf[n] = '\0';
    return buf;
}

Test(names, lifecycle_and_uninitialised)
{
    char buf[16];
    /* Never initialised: every call answers without crashing. */
    bl__names_destroy();
    cr_assert_eq(bl__names_register("a", 1), -ESRCH);
    cr_assert_eq(bl__names_whereis("a"), BL_PID_NONE);
    cr_assert_eq(bl__names_unregister("a", NULL), -ENOENT);
    cr_assert_eq(bl__names_unregister_pid(1), -ENOENT);
    cr_assert_eq(bl__names_name_of(1, buf, sizeof buf), -ENOENT);
    cr_assert_eq(bl__names_count(), 0);
    /* Argument errors come before "not initialised". */
    cr_assert_eq(bl__names_register(NULL, 1), -EINVAL);

    cr_assert_eq(bl__names_init(0), -EINVAL);
    cr_assert_eq(bl__names_init(4), 0);
    cr_assert_eq(bl__names_init(4), -EALREADY);
    cr_assert_eq(bl__names_register("a", 1), 0);
    bl__names_destroy();
    bl__names_destroy();
    cr_assert_eq(bl__names_whereis("a"), BL_PID_NONE);
    cr_assert_eq(bl__names_register("a", 1), -ESRCH);

    /* A new table after destroy starts empty. */
    cr_assert_eq(bl__names_init(2), 0);
    cr_assert_eq(bl__names_count(), 0);
    cr_assert_eq(bl__names_whereis("a"), BL_PID_NONE);
    cr_assert_eq(bl__names_register("a", 7), 0);
    cr_assert_eq(bl__names_whereis("a"), 7);
    bl__names_destroy();
}

Test(names, bad_arguments, .fini = fini)
{
    char big[BL_NAME_MAX + 2];
    cr_assert_eq(bl__names_init(4), 0);
    name_of_len(big, BL_NAME_MAX + 1, 'z');

    cr_assert_eq(bl__names_register(NULL, 1), -EINVAL);
    cr_assert_eq(bl__names_register("", 1), -EINVAL);
    cr_assert_eq(bl__names_register("p", 0), -EINVAL);
    cr_assert_eq(bl__names_register(big, 1), -ENAMETOOLONG);
    cr_assert_eq(bl__names_count(), 0);

    cr_assert_eq(bl__names_whereis(NULL), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis(""), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis(big), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis("never"), BL_PID_NONE);

    cr_assert_eq(bl__names_unregister(NULL, NULL), -EINVAL);
    cr_assert_eq(bl__names_unregister("", NULL), -EINVAL);
    cr_assert_eq(bl__names_unregister(big, NULL), -ENAMETOOLONG);
    cr_assert_eq(bl__names_unregister("never", NULL), -ENOENT);

    cr_assert_eq(bl__names_unregister_pid(0), -ENOENT);
    cr_assert_eq(bl__names_unregister_pid(42), -ENOENT);

    cr_assert_eq(bl__names_name_of(42, NULL, 8), -EINVAL);
    cr_assert_eq(bl__names_name_of(0, big, sizeof big), -ENOENT);
    cr_assert_eq(bl__names_name_of(42, big, sizeof big), -ENOENT);
}

Test(names, register_whereis_unregister, .fini = fini)
{
    bl_pid owner = 0;
    cr_assert_eq(bl__names_init(8), 0);

    cr_assert_eq(bl__names_register("logger", 101), 0);
    cr_assert_eq(bl__names_whereis("logger"), 101);
    cr_assert_eq(bl__names_count(), 1);

    /* Prefixes and extensions are different names. */
    cr_assert_eq(bl__names_whereis("logge"), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis("loggers"), BL_PID_NONE);
    cr_assert_eq(bl__names_register("logge", 102), 0);
    cr_assert_eq(bl__names_register("loggers", 103), 0);
    cr_assert_eq(bl__names_whereis("logger"), 101);
    cr_assert_eq(bl__names_whereis("logge"), 102);
    cr_assert_eq(bl__names_whereis("loggers"), 103);
    cr_assert_eq(bl__names_count(), 3);

    cr_assert_eq(bl__names_unregister("logger", &owner), 0);
    cr_assert_eq(owner, 101);
    cr_assert_eq(bl__names_whereis("logger"), BL_PID_NONE);
    cr_assert_eq(bl__names_unregister("logger", &owner), -ENOENT);
    cr_assert_eq(bl__names_whereis("logge"), 102);
    cr_assert_eq(bl__names_count(), 2);

    /* Re-register the freed name, to the old pid and then to a new one. */
    cr_assert_eq(bl__names_register("logger", 101), 0);
    cr_assert_eq(bl__names_whereis("logger"), 101);
    cr_assert_eq(bl__names_unregister("logger", NULL), 0);
    cr_assert_eq(bl__names_register("logger", 201), 0);
    cr_assert_eq(bl__names_whereis("logger"), 201);

    /* Pids with high bits (generation, node) are kept whole. */
    bl_pid big = ((bl_pid)0x7f << 56) | ((bl_pid)0xabcdef << 32) | 0x12345678;
    cr_assert_eq(bl__names_register("remote", big), 0);
    cr_assert_eq(bl__names_whereis("remote"), big);
    cr_assert_eq(bl__names_unregister("remote", &owner), 0);
    cr_assert_eq(owner, big);
}

Test(names, exists_and_busy, .fini = fini)
{
    char buf[32];
    cr_assert_eq(bl__names_init(8), 0);
    cr_assert_eq(bl__names_register("srv", 1), 0);

    /* Name taken: nothing changes, whoever asks. */
    cr_assert_eq(bl__names_register("srv", 2), -EEXIST);
    cr_assert_eq(bl__names_register("srv", 1), -EEXIST);
    cr_assert_eq(bl__names_whereis("srv"), 1);
    cr_assert_eq(bl__names_count(), 1);
    cr_assert_eq(bl__names_name_of(2, buf, sizeof buf), -ENOENT);

    /* A pid holds at most one name. */
    cr_assert_eq(bl__names_register("other", 1), -EBUSY);
    cr_assert_eq(bl__names_whereis("other"), BL_PID_NONE);
    cr_assert_eq(bl__names_count(), 1);
    cr_assert_eq(bl__names_name_of(1, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "srv");

    /* Once its name is gone the pid may take another. */
    cr_assert_eq(bl__names_unregister("srv", NULL), 0);
    cr_assert_eq(bl__names_register("other", 1), 0);
    cr_assert_eq(bl__names_name_of(1, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "other");
    cr_assert_eq(bl__names_register("srv", 2), 0);
    cr_assert_eq(bl__names_count(), 2);
}

Test(names, capacity_exhaustion_and_recovery, .fini = fini)
{
    enum { CAP = 8 };
    char name[32];
    cr_assert_eq(bl__names_init(CAP), 0);
    for (int i = 0; i < CAP; i++) {
        snprintf(name, sizeof name, "n%d", i);
        cr_assert_eq(bl__names_register(name, (bl_pid)(100 + i)), 0);
    }
    cr_assert_eq(bl__names_count(), CAP);
    cr_assert_eq(bl__names_register("one-more", 999), -ENOSPC);

    /* A flood of attempts: -ENOSPC every time, nothing grows or changes. */
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof name, "flood-%d", i);
        cr_assert_eq(bl__names_register(name, (bl_pid)(1000 + i)), -ENOSPC);
    }
    cr_assert_eq(bl__names_count(), CAP);
    /* A taken name or a busy pid reports that, not the full table. */
    cr_assert_eq(bl__names_register("n3", 999), -EEXIST);
    cr_assert_eq(bl__names_register("fresh", 103), -EBUSY);
    for (int i = 0; i < CAP; i++) {
        snprintf(name, sizeof name, "n%d", i);
        cr_assert_eq(bl__names_whereis(name), (bl_pid)(100 + i));
    }

    /* Recovery: one unregister makes room for one name. */
    cr_assert_eq(bl__names_unregister("n3", NULL), 0);
    cr_assert_eq(bl__names_register("one-more", 999), 0);
    cr_assert_eq(bl__names_register("two-more", 998), -ENOSPC);
    cr_assert_eq(bl__names_whereis("one-more"), 999);
    cr_assert_eq(bl__names_unregister_pid(100), 0);
    cr_assert_eq(bl__names_register("two-more", 998), 0);
    cr_assert_eq(bl__names_count(), CAP);

    /* Drain, then fill with new names and drain again, many times: entries are recycled. */
    for (int i = 0; i < CAP; i++) {
        snprintf(name, sizeof name, "n%d", i);
        (void)bl__names_unregister(name, NULL);
    }
    (void)bl__names_unregister("one-more", NULL);
    (void)bl__names_unregister("two-more", NULL);
    cr_assert_eq(bl__names_count(), 0);
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < CAP; i++) {
            snprintf(name, sizeof name, "r%d-%d", round, i);
            cr_assert_eq(bl__names_register(name, (bl_pid)(1 + round * CAP + i)), 0);
        }
        cr_assert_eq(bl__names_register("extra", 1u << 30), -ENOSPC);
        for (int i = 0; i < CAP; i++) {
            snprintf(name, sizeof name, "r%d-%d", round, i);
            cr_assert_eq(bl__names_whereis(name), (bl_pid)(1 + round * CAP + i));
            if (i % 2)
                cr_assert_eq(bl__names_unregister(name, NULL), 0);
            else
                cr_assert_eq(bl__names_unregister_pid((bl_pid)(1 + round * CAP + i)), 0);
            cr_assert_eq(bl__names_whereis(name), BL_PID_NONE);
        }
        cr_assert_eq(bl__names_count(), 0);
    }
}

Test(names, name_length_limits, .fini = fini)
{
    char n255[BL_NAME_MAX + 2], n256[BL_NAME_MAX + 2], m255[BL_NAME_MAX + 2];
    char out[BL_NAME_MAX + 1];
    cr_assert_eq(bl__names_init(4), 0);
    name_of_len(n255, BL_NAME_MAX, 'a');
    name_of_len(m255, BL_NAME_MAX, 'b'); /* differs from n255 only in the last byte */
    name_of_len(n256, BL_NAME_MAX + 1, 'a');
    cr_assert_eq(strlen(n255), 255);
    cr_assert_eq(strlen(n256), 256);

    cr_assert_eq(bl__names_register(n255, 1), 0);
    cr_assert_eq(bl__names_register(n256, 2), -ENAMETOOLONG);
    cr_assert_eq(bl__names_whereis(n255), 1);
    cr_assert_eq(bl__names_whereis(m255), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis(n256), BL_PID_NONE);
    cr_assert_eq(bl__names_register(m255, 2), 0);
    cr_assert_eq(bl__names_whereis(m255), 2);
    cr_assert_eq(bl__names_whereis(n255), 1);

    /* 255 bytes + NUL fit exactly in 256; 255 is one too few. */
    cr_assert_eq(bl__names_name_of(1, out, sizeof out), 0);
    cr_assert_str_eq(out, n255);
    cr_assert_eq(bl__names_name_of(1, out, sizeof out - 1), -ERANGE);
    cr_assert_eq(bl__names_unregister(n256, NULL), -ENAMETOOLONG);
    cr_assert_eq(bl__names_unregister(n255, NULL), 0);
    cr_assert_eq(bl__names_whereis(m255), 2);

    /* A short name reusing a long name's entry keeps no stale bytes. */
    cr_assert_eq(bl__names_unregister(m255, NULL), 0);
    cr_assert_eq(bl__names_register("s", 3), 0);
    cr_assert_eq(bl__names_register("t", 4), 0);
    cr_assert_eq(bl__names_name_of(3, out, sizeof out), 0);
    cr_assert_str_eq(out, "s");
    cr_assert_eq(bl__names_whereis(n255), BL_PID_NONE);
}

Test(names, unregister_pid, .fini = fini)
{
    bl_pid owner;
    cr_assert_eq(bl__names_init(4), 0);
    cr_assert_eq(bl__names_register("a", 10), 0);
    cr_assert_eq(bl__names_register("b", 20), 0);
    cr_assert_eq(bl__names_unregister_pid(10), 0);
    cr_assert_eq(bl__names_whereis("a"), BL_PID_NONE);
    cr_assert_eq(bl__names_whereis("b"), 20);
    cr_assert_eq(bl__names_unregister_pid(10), -ENOENT);
    cr_assert_eq(bl__names_unregister("a", NULL), -ENOENT);
    cr_assert_eq(bl__names_count(), 1);

    /* The name is free for another pid, and the pid for another name. */
    cr_assert_eq(bl__names_register("a", 30), 0);
    cr_assert_eq(bl__names_register("c", 10), 0);
    cr_assert_eq(bl__names_unregister("c", &owner), 0);
    cr_assert_eq(owner, 10);
    cr_assert_eq(bl__names_unregister_pid(30), 0);
    cr_assert_eq(bl__names_unregister_pid(20), 0);
    cr_assert_eq(bl__names_count(), 0);
}

Test(names, name_of, .fini = fini)
{
    char buf[8];
    cr_assert_eq(bl__names_init(4), 0);
    cr_assert_eq(bl__names_register("worker", 5), 0);

    memset(buf, '#', sizeof buf);
    cr_assert_eq(bl__names_name_of(5, buf, 6), -ERANGE); /* 6 bytes + NUL needed */
    cr_assert_eq(buf[0], '#');                           /* untouched on error */
    cr_assert_eq(bl__names_name_of(5, NULL, 0), -ERANGE);
    cr_assert_eq(bl__names_name_of(5, buf, 7), 0);
    cr_assert_str_eq(buf, "worker");
    cr_assert_eq(bl__names_name_of(6, buf, sizeof buf), -ENOENT);
    cr_assert_eq(bl__names_unregister("worker", NULL), 0);
    cr_assert_eq(bl__names_name_of(5, buf, sizeof buf), -ENOENT);
}

/* Many names sharing buckets: capacity 1 has two buckets; 300 names in 1024. */
Test(names, chains, .fini = fini)
{
    char name[32];
    cr_assert_eq(bl__names_init(1), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "solo-%d", i);
        cr_assert_eq(bl__names_register(name, (bl_pid)(i + 1)), 0);
        cr_assert_eq(bl__names_register("other", (bl_pid)(i + 5000)), -ENOSPC);
        cr_assert_eq(bl__names_whereis(name), (bl_pid)(i + 1));
        cr_assert_eq(bl__names_unregister(name, NULL), 0);
    }
    bl__names_destroy();

    enum { N = 300 };
    cr_assert_eq(bl__names_init(N), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        cr_assert_eq(bl__names_register(name, (bl_pid)(i + 1)), 0);
    }
    cr_assert_eq(bl__names_count(), N);
    /* Remove every third, from the middle of chains as well as the heads. */
    for (int i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "proc-%d", i);
        cr_assert_eq(bl__names_unregister(name, NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        cr_assert_eq(bl__names_whereis(name), i % 3 ? (bl_pid)(i + 1) : BL_PID_NONE, "%s", name);
    }
    for (int i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "proc-%d", i);
        cr_assert_eq(bl__names_register(name, (bl_pid)(i + 1000)), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        cr_assert_eq(bl__names_whereis(name), (bl_pid)(i % 3 ? i + 1 : i + 1000), "%s", name);
    }
    cr_assert_eq(bl__names_count(), N);
}

/* ---- concurrency ---- */

#define NWRITERS 4
#define NREADERS 4
#define NSHARED  24 /* names every writer registers and unregisters */
#define NPRIV    4  /* names only one writer touches, per writer */
#define NGHOST   8  /* names nobody ever registers */
#define NIDS     (NSHARED + NWRITERS * NPRIV)

/* 154 bytes: 20 words to compare. */
#define LONG_PREFIX                                                                                \
    "a-rather-long-shared-name-that-keeps-going-for-many-words-so-that-comparing-it-takes-"        \
    "a-while-and-readers-linger-in-entries-that-writers-are-busy-recycling"

/*
 * pid = (id + 1) << 40 | (writer + 1) << 32 | serial: unique per
 * registration, and it says which name it was registered under and by whom.
 */
static bl_pid pid_encode(int id, int writer, uint32_t serial)
{
    return ((bl_pid)(id + 1) << 40) | ((bl_pid)(writer + 1) << 32) | serial;
}
static int pid_id(bl_pid pid)
{
    return (int)(pid >> 40) - 1;
}
static int pid_writer(bl_pid pid)
{
    return (int)((pid >> 32) & 0xff) - 1;
}
static int priv_id(int writer, int j)
{
    return NSHARED + writer * NPRIV + j;
}

static struct {
    char names[NIDS + NGHOST][BL_NAME_MAX + 1];
    /* Private names: the pid while registered and not being changed, else 0
     * (stored after register returns, cleared before unregister starts). */
    _Atomic bl_pid stable[NIDS];
    _Atomic int failures;
    char first[512];
    long writer_iters;
    long reader_iters;
} cc;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond) && atomic_fetch_add(&cc.failures, 1) == 0)                                     \
            snprintf(cc.first, sizeof cc.first, __VA_ARGS__);                                      \
    } while (0)

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: cheap, and each thread replays the same sequence. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static void *writer_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1);
    uint32_t serial = 0;
    bl_pid mine[NPRIV] = {0}; /* this writer's private registrations */
    bl_pid shared_last = 0;   /* last shared registration, for unregister_pid */
    char buf[BL_NAME_MAX + 1];

    for (long it = 0; it < cc.writer_iters; it++) {
        uint64_t r = rng_next(&rng);
        bool priv = r & 1;
        int j = (int)((r >> 8) % NPRIV);
        int id = priv ? priv_id(w, j) : (int)((r >> 8) % NSHARED);
        const char *name = cc.names[id];
        bl_pid pid = pid_encode(id, w, ++serial);
        int rc;
        bl_pid owner = 0;

        switch ((r >> 4) % 4) {
        case 0:
        case 1: /* register */
            rc = bl__names_register(name, pid);
            if (!priv) {
                CHECK(rc == 0 || rc == -EEXIST || rc == -ENOSPC, "shared register: %d", rc);
                if (rc == 0) shared_last = pid;
                bl_pid seen = bl__names_whereis(name);
                CHECK(seen == BL_PID_NONE || pid_id(seen) == id, "whereis %s -> %llx", name,
                      (unsigned long long)seen);
            } else if (mine[j]) {
                CHECK(rc == -EEXIST, "private register while held: %d", rc);
                CHECK(bl__names_whereis(name) == mine[j], "private whereis changed");
            } else {
                CHECK(rc == 0 || rc == -ENOSPC, "private register: %d", rc);
                if (rc == 0) {
                    mine[j] = pid;
                    /* Our own register returned: whereis must see it. */
                    CHECK(bl__names_whereis(name) == pid, "private whereis after register");
                    CHECK(bl__names_name_of(pid, buf, sizeof buf) == 0 && !strcmp(buf, name),
                          "name_of after register");
                    atomic_store(&cc.stable[id], pid);
                } else {
                    CHECK(bl__names_whereis(name) == BL_PID_NONE, "private whereis after ENOSPC");
                }
            }
            break;
        case 2: /* unregister by name */
            if (priv) atomic_store(&cc.stable[id], 0);
            rc = bl__names_unregister(name, &owner);
            if (!priv) {
                CHECK(rc == 0 || rc == -ENOENT, "shared unregister: %d", rc);
                CHECK(rc != 0 || pid_id(owner) == id, "unregister %s owner %llx", name,
                      (unsigned long long)owner);
            } else {
                CHECK(rc == (mine[j] ? 0 : -ENOENT), "private unregister: %d", rc);
                CHECK(rc != 0 || owner == mine[j], "private owner %llx", (unsigned long long)owner);
                mine[j] = 0;
                CHECK(bl__names_whereis(name) == BL_PID_NONE, "private whereis after unregister");
            }
            break;
        default: /* unregister by pid, as a dying process would */
            if (priv) {
                atomic_store(&cc.stable[id], 0);
                rc = bl__names_unregister_pid(mine[j] ? mine[j] : pid);
                CHECK(rc == (mine[j] ? 0 : -ENOENT), "private unregister_pid: %d", rc);
                mine[j] = 0;
                CHECK(bl__names_whereis(name) == BL_PID_NONE, "private whereis after exit");
            } else if (shared_last) {
                rc = bl__names_unregister_pid(shared_last);
                CHECK(rc == 0 || rc == -ENOENT, "shared unregister_pid: %d", rc);
                CHECK(bl__names_unregister_pid(shared_last) == -ENOENT, "pid still named");
                shared_last = 0;
            }
            break;
        }
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    int rd = (int)(intptr_t)arg;
    uint64_t rng = 0xd1b54a32d192ed03ull * (uint64_t)(rd + 17);
    for (long it = 0; it < cc.reader_iters; it++) {
        int id = (int)(rng_next(&rng) % (NIDS + NGHOST));
        const char *name = cc.names[id];
        if (id >= NIDS) {
            CHECK(bl__names_whereis(name) == BL_PID_NONE, "ghost %s found", name);
            continue;
        }
        /* For a private name, a stable pid before and after the lookup means
         * the name was registered to it throughout: whereis must return it. */
        bl_pid before = id >= NSHARED ? atomic_load(&cc.stable[id]) : 0;
        bl_pid seen = bl__names_whereis(name);
        bl_pid after = id >= NSHARED ? atomic_load(&cc.stable[id]) : 0;
        if (seen != BL_PID_NONE) {
            CHECK(pid_id(seen) == id, "whereis %s -> pid of %d", name, pid_id(seen));
            int w = pid_writer(seen);
            CHECK(w >= 0 && w < NWRITERS, "whereis %s -> bad writer %d", name, w);
            if (id >= NSHARED)
                CHECK(w == (id - NSHARED) / NPRIV, "private %s -> writer %d", name, w);
        }
        if (before && before == after)
            CHECK(seen == before, "%s registered throughout, whereis -> %llx", name,
                  (unsigned long long)seen);
    }
    return NULL;
}

/* Runs writers and readers against a table of `capacity`, then checks what is left. */
static void run_concurrent(size_t capacity, long writer_iters, long reader_iters)
{
    char buf[BL_NAME_MAX + 1];
    memset(&cc, 0, sizeof cc);
    cc.writer_iters = writer_iters;
    cc.reader_iters = reader_iters;
    for (int i = 0; i < NSHARED; i++) {
        /* Some names fit in one word, some span many (a longer window for
         * a lookup to be overtaken by a reuse of the entry it is reading). */
        if (i % 3)
            snprintf(cc.names[i], sizeof cc.names[i], "shared-%d", i);
        else
            snprintf(cc.names[i], sizeof cc.names[i], "%s-%d", LONG_PREFIX, i);
    }
    for (int w = 0; w < NWRITERS; w++)
        for (int j = 0; j < NPRIV; j++)
            snprintf(cc.names[priv_id(w, j)], sizeof cc.names[0], "private-%d-%d", w, j);
    for (int g = 0; g < NGHOST; g++)
        snprintf(cc.names[NIDS + g], sizeof cc.names[0], "ghost-%d", g);

    cr_assert_eq(bl__names_init(capacity), 0);
    pthread_t th[NWRITERS + NREADERS];
    for (int i = 0; i < NREADERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, reader_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NWRITERS; i++)
        cr_assert_eq(pthread_create(&th[NREADERS + i], NULL, writer_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NWRITERS + NREADERS; i++) pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&cc.failures), 0, "%d failure(s), first: %s",
                 atomic_load(&cc.failures), cc.first);

    /* Quiet now: the count matches what lookups find, and each index agrees. */
    size_t found = 0;
    for (int id = 0; id < NIDS; id++) {
        bl_pid pid = bl__names_whereis(cc.names[id]);
        if (pid == BL_PID_NONE) continue;
        found++;
        cr_assert_eq(pid_id(pid), id);
        cr_assert_eq(bl__names_name_of(pid, buf, sizeof buf), 0);
        cr_assert_str_eq(buf, cc.names[id]);
    }
    cr_assert_eq(bl__names_count(), found);
    cr_assert_leq(found, capacity);
    for (int id = 0; id < NIDS; id++) {
        bl_pid pid = bl__names_whereis(cc.names[id]);
        if (pid != BL_PID_NONE) cr_assert_eq(bl__names_unregister_pid(pid), 0);
    }
    cr_assert_eq(bl__names_count(), 0);
    /* Every entry came back: the table fills to capacity again. */
    for (size_t i = 0; i < capacity; i++) {
        snprintf(buf, sizeof buf, "refill-%zu", i);
        cr_assert_eq(bl__names_register(buf, (bl_pid)(i + 1)), 0);
    }
    cr_assert_eq(bl__names_register("refill-extra", 1u << 30), -ENOSPC);
    bl__names_destroy();
}

/*
 * Roomy table (no -ENOSPC), then a table smaller than the name set, where
 * entries are recycled under the readers all the time.
 */
Test(names, concurrent_register_unregister_whereis, .timeout = 60, .fini = fini)
{
    static const size_t capacities[] = {64, 12};
    for (size_t i = 0; i < sizeof capacities / sizeof capacities[0]; i++)
        run_concurrent(capacities[i], SCALE(500000), SCALE(1000000));
}
