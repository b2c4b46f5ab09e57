/*
 * Registry: the owner changing what it registered (update_value,
 * unregister_match) and via names that carry a value
 * ({:via, Registry, {reg, key, value}}).
 */
#include <errno.h>
#include <stdlib.h>

#include "beamline/registry.h"
#include "bl_test.h"
#include "reg_test.h"

enum { T_CMD = 1, T_REPLY, T_STOP, T_DONE };

static const bl_config quiet = {.quiet = true};

/* The value of key's only entry as an int, or -1. */
static int value_int(bl_registry *reg, const char *key)
{
    bl_registry_entry *e = NULL;
    int v = -1;
    if (bl_registry_lookup(reg, key, strlen(key), &e) == 1 && e[0].value_len == sizeof v)
        memcpy(&v, e[0].value, sizeof v);
    bl_registry_free(e);
    return v;
}

/* ---- a helper process: registers key = "held" and waits to be told to exit ---- */

static void holder(void *arg)
{
    bl_registry *reg = arg;
    bl_msg *m = bl_test_recv_tag(T_CMD, 10000);
    int rc = bl_registry_register(reg, "held", 4, "x", 1, NULL);
    if (m) bl_send(m->from, T_REPLY, &rc, sizeof rc);
    bl_msg_free(m);
    bl_msg_free(bl_test_recv_tag(T_STOP, 10000));
}

static bl_pid start_holder(bl_registry *reg)
{
    bl_pid p;
    BL_CHECK_EQ(bl_spawn(&p, holder, reg, NULL), 0);
    bl_send(p, T_CMD, NULL, 0);
    bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
    BL_CHECK(m && *(const int *)m->data == 0);
    bl_msg_free(m);
    return p;
}

/* ---- update_value ---- */

/* Adds *(int *)arg to the int value. */
static int add(const void *old, size_t len, void *arg, const void **value, size_t *value_len)
{
    static int out; /* read by update_value before it returns */
    int v = 0;
    if (len != sizeof v) return -EBADMSG;
    memcpy(&v, old, sizeof v);
    out = v + *(int *)arg;
    *value = &out;
    *value_len = sizeof out;
    return 0;
}

typedef struct bytes {
    const void *p;
    size_t n;
} bytes;

/* Replaces the value with *(bytes *)arg. */
static int set(const void *old, size_t len, void *arg, const void **value, size_t *value_len)
{
    (void)old, (void)len;
    bytes *b = arg;
    *value = b->p;
    *value_len = b->n;
    return 0;
}

static int refuse(const void *old, size_t len, void *arg, const void **value, size_t *value_len)
{
    (void)old, (void)len, (void)arg, (void)value, (void)value_len;
    return -EAGAIN;
}

/* Unregisters the key it is updating, then asks for a new value. */
static int unregister_inside(const void *old, size_t len, void *arg, const void **value,
                             size_t *value_len)
{
    (void)old, (void)len;
    BL_CHECK_EQ(bl_registry_unregister(arg, "k", 1), 1);
    static const int v = 9;
    *value = &v;
    *value_len = sizeof v;
    return 0;
}

static void update_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    int one = 1, inc = 1;
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, &one, sizeof one, NULL), 0);

    /* {new, old}. */
    bl_registry_entry *pair = NULL;
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, add, &inc, &pair), 0);
    BL_CHECK(pair != NULL);
    if (pair) {
        BL_CHECK(pair[0].pid == bl_self() && pair[1].pid == bl_self());
        BL_CHECK(pair[0].value_len == sizeof(int) && *(const int *)pair[0].value == 2);
        BL_CHECK(pair[1].value_len == sizeof(int) && *(const int *)pair[1].value == 1);
    }
    bl_registry_free(pair);
    BL_CHECK_EQ(value_int(reg, "k"), 2);
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, add, &inc, NULL), 0);
    BL_CHECK_EQ(value_int(reg, "k"), 3);

    /* Growing (the entry moves), shrinking (in place), growing back into the room. */
    char big[300];
    memset(big, 'b', sizeof big);
    bytes b = {big, sizeof big};
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, set, &b, &pair), 0);
    BL_CHECK(pair && pair[0].value_len == 300 && pair[1].value_len == sizeof(int));
    bl_registry_free(pair);
    bl_registry_entry *e = NULL;
    BL_CHECK_EQ(bl_registry_lookup(reg, "k", 1, &e), 1);
    BL_CHECK(e && e[0].value_len == 300 && memcmp(e[0].value, big, 300) == 0);
    bl_registry_free(e);
    b = (bytes){"s", 1};
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, set, &b, NULL), 0);
    b = (bytes){NULL, 0};
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, set, &b, &pair), 0);
    BL_CHECK(pair && pair[0].value == NULL && pair[0].value_len == 0 && pair[1].value_len == 1);
    bl_registry_free(pair);
    b = (bytes){big, 200};
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, set, &b, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup(reg, "k", 1, &e), 1);
    BL_CHECK(e && e[0].value_len == 200 && e[0].pid == bl_self());
    bl_registry_free(e);
    BL_CHECK_EQ(bl_registry_count(reg), 1);
    bl_registry_key *keys = NULL;
    BL_CHECK_EQ(bl_registry_keys(reg, bl_self(), &keys), 1);
    bl_registry_free(keys);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "k", 1), bl_self());

    /* A refusal, or a bad answer, changes nothing. */
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, refuse, NULL, &pair), -EAGAIN);
    BL_CHECK(pair == NULL);
    b = (bytes){NULL, 5};
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, set, &b, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_lookup(reg, "k", 1, &e), 1);
    BL_CHECK(e && e[0].value_len == 200);
    bl_registry_free(e);

    /* Elixir's :error: not registered, or registered by another process. */
    BL_CHECK_EQ(bl_registry_update_value(reg, "none", 4, add, &inc, NULL), -ENOENT);
    bl_pid h = start_holder(reg);
    BL_CHECK_EQ(bl_registry_update_value(reg, "held", 4, set, &b, &pair), -ENOENT);
    BL_CHECK(pair == NULL);
    BL_CHECK_EQ(bl_registry_lookup(reg, "held", 4, &e), 1);
    BL_CHECK(e && e[0].pid == h && e[0].value_len == 1);
    bl_registry_free(e);
    bl_send(h, T_STOP, NULL, 0);

    /* The callback unregistering the key: nothing to update any more. */
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, unregister_inside, reg, NULL), -ENOENT);
    BL_CHECK_EQ(bl_registry_lookup_pid(reg, "k", 1), BL_PID_NONE);

    /* Bad input. */
    BL_CHECK_EQ(bl_registry_update_value(NULL, "k", 1, add, &inc, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, NULL, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_update_value(reg, NULL, 1, add, &inc, NULL), -EINVAL);
    static char longkey[BL_REGISTRY_KEY_MAX + 1];
    BL_CHECK_EQ(bl_registry_update_value(reg, longkey, sizeof longkey, add, &inc, NULL),
                -ENAMETOOLONG);
    bl_registry *dup = start_reg(BL_REGISTRY_DUPLICATE, 1);
    if (dup) {
        BL_CHECK_EQ(bl_registry_register(dup, "k", 1, &one, sizeof one, NULL), 0);
        BL_CHECK_EQ(bl_registry_update_value(dup, "k", 1, add, &inc, NULL), -EINVAL);
        stop_reg(dup);
    }
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    BL_CHECK_EQ(bl_registry_update_value(reg, "k", 1, add, &inc, NULL), -ESRCH);
    bl_registry_release(reg);
}

Test(registry_values, update_value)
{
    bl_test_run(&quiet, update_main, NULL);
}

/* Readers on another scheduler see the old value or the new one, whole. */
typedef struct race {
    bl_registry *reg;
    bl_pid owner;
    _Atomic int torn;
    _Atomic long reads;
} race;

static bool whole(const bl_registry_entry *e, size_t len, char c)
{
    if (e->value_len != len) return false;
    for (size_t i = 0; i < len; i++)
        if (((const char *)e->value)[i] != c) return false;
    return true;
}

static void reader(void *arg)
{
    race *r = arg;
    uint32_t stop = T_STOP;
    bl_msg *m = NULL;
    bl_send(r->owner, T_REPLY, NULL, 0); /* reading from now on */
    while (bl_recv(&m, bl_match_tag, &stop, 0, 0) != 0) {
        bl_registry_entry *e = NULL;
        if (bl_registry_lookup(r->reg, "v", 1, &e) == 1 && !whole(&e[0], 16, 'a') &&
            !whole(&e[0], 400, 'z'))
            atomic_fetch_add(&r->torn, 1);
        bl_registry_free(e);
        atomic_fetch_add(&r->reads, 1);
        bl_yield();
    }
    bl_msg_free(m);
    bl_send(r->owner, T_DONE, NULL, 0);
}

static void race_main(void *arg)
{
    (void)arg;
    race r = {.reg = start_reg(BL_REGISTRY_UNIQUE, 1), .owner = bl_self()};
    if (!r.reg) return;
    char a[16], z[400];
    memset(a, 'a', sizeof a);
    memset(z, 'z', sizeof z);
    BL_CHECK_EQ(bl_registry_register(r.reg, "v", 1, a, sizeof a, NULL), 0);
    bl_pid rd;
    bl_spawn_opts so = {.scheduler = 2};
    BL_CHECK_EQ(bl_spawn(&rd, reader, &r, &so), 0);
    bl_msg_free(bl_test_recv_tag(T_REPLY, 10000));
    /* At least n updates, and on until the reader has read a fair number of times. */
    int64_t until = bl_test_ms() + 10000;
    for (int i = 0; (i < BL_SCALE(4000) || atomic_load(&r.reads) < 200) && bl_test_ms() < until;
         i++) {
        bytes b = i % 2 ? (bytes){a, sizeof a} : (bytes){z, sizeof z};
        BL_CHECK_EQ(bl_registry_update_value(r.reg, "v", 1, set, &b, NULL), 0);
        if (i % 16 == 0) bl_yield();
    }
    bl_send(rd, T_STOP, NULL, 0);
    bl_msg_free(bl_test_recv_tag(T_DONE, 10000));
    BL_CHECK_EQ(atomic_load(&r.torn), 0);
    BL_CHECK(atomic_load(&r.reads) >= 200);
    stop_reg(r.reg);
}

Test(registry_values, update_value_under_readers)
{
    bl_test_run(&quiet, race_main, NULL);
}

/* ---- unregister_match ---- */

static bool value_is(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)pid;
    const char *want = arg;
    return len == strlen(want) && memcmp(value, want, len) == 0;
}

static bool any(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)pid, (void)value, (void)len, (void)arg;
    return true;
}

/* Unregisters the whole key from inside the predicate, and says yes. */
static bool unregistering(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)pid, (void)value, (void)len;
    bl_registry_unregister(arg, "t", 1);
    return true;
}

static int values_of(bl_registry *reg, const char *key, char *out, size_t cap)
{
    bl_registry_entry *e = NULL;
    int n = bl_registry_lookup(reg, key, strlen(key), &e);
    size_t k = 0;
    for (int i = 0; i < n && k + 1 < cap; i++)
        if (e[i].value_len == 1) out[k++] = *(const char *)e[i].value;
    out[k] = 0;
    bl_registry_free(e);
    return n;
}

static void umatch_main(void *arg)
{
    (void)arg;
    char got[16];
    bl_registry *dup = start_reg(BL_REGISTRY_DUPLICATE, 2);
    bl_registry *uniq = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!dup || !uniq) return;
    const char *vals = "abac";
    for (int i = 0; i < 4; i++)
        BL_CHECK_EQ(bl_registry_register(dup, "t", 1, vals + i, 1, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(dup, "u", 1, "a", 1, NULL), 0);

    /* Only the matching entries of this key go, the others keep their order. */
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "t", 1, value_is, "a"), 2);
    BL_CHECK_EQ(values_of(dup, "t", got, sizeof got), 2);
    BL_CHECK(strcmp(got, "bc") == 0);
    BL_CHECK_EQ(values_of(dup, "u", got, sizeof got), 1);
    BL_CHECK_EQ(bl_registry_count(dup), 3);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "t", 1, value_is, "q"), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "none", 4, any, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "t", 1, any, NULL), 2);
    BL_CHECK_EQ(values_of(dup, "t", got, sizeof got), 0);

    /* Another process's entries are never touched. */
    bl_pid h = start_holder(dup);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "held", 4, any, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(dup, "held", 4), h);
    bl_send(h, T_STOP, NULL, 0);

    /* A predicate that changes the entries itself: what it changed is left alone. */
    for (int i = 0; i < 3; i++) BL_CHECK_EQ(bl_registry_register(dup, "t", 1, "x", 1, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "t", 1, unregistering, dup), 0);
    BL_CHECK_EQ(values_of(dup, "t", got, sizeof got), 0);

    /* Many entries: past the copy's stack room. */
    for (int i = 0; i < 100; i++)
        BL_CHECK_EQ(bl_registry_register(dup, "m", 1, i % 2 ? "o" : "e", 1, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(dup, "m", 1, value_is, "o"), 50);
    BL_CHECK_EQ(values_of(dup, "m", got, sizeof got), 50);
    BL_CHECK_EQ(bl_registry_unregister(dup, "m", 1), 50);

    /* A unique registry: the caller's own entry, if it matches. */
    BL_CHECK_EQ(bl_registry_register(uniq, "x", 1, "v", 1, NULL), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, "x", 1, value_is, "w"), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(uniq, "x", 1), bl_self());
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, "x", 1, value_is, "v"), 1);
    BL_CHECK_EQ(bl_registry_lookup_pid(uniq, "x", 1), BL_PID_NONE);
    h = start_holder(uniq);
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, "held", 4, any, NULL), 0);
    BL_CHECK_EQ(bl_registry_lookup_pid(uniq, "held", 4), h);
    bl_send(h, T_STOP, NULL, 0);

    /* Bad input. */
    BL_CHECK_EQ(bl_registry_unregister_match(NULL, "x", 1, any, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, "x", 1, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, NULL, 1, any, NULL), -EINVAL);
    stop_reg(dup);
    BL_CHECK_EQ(bl_registry_stop(uniq, NULL, 10000), 0);
    BL_CHECK_EQ(bl_registry_unregister_match(uniq, "x", 1, any, NULL), -ESRCH);
    bl_registry_release(uniq);
}

Test(registry_values, unregister_match)
{
    bl_test_run(&quiet, umatch_main, NULL);
}

/* ---- via names with a value ---- */

static void via_main(void *arg)
{
    (void)arg;
    bl_registry *reg = start_reg(BL_REGISTRY_UNIQUE, 2);
    if (!reg) return;
    unsigned char buf[64];
    bl_name name;
    BL_CHECK_EQ(bl_registry_name_value(&name, reg, "svc", 3, "meta", 4, buf, sizeof buf), 0);
    BL_CHECK(name.via == &bl_registry_via_value && name.via_arg == reg && name.key == buf);
    BL_CHECK_EQ(name.key_len, BL_REGISTRY_NAME_VALUE_SIZE(3, 4));

    /* A gen_server registered with the value. */
    bl_pid s1 = 0, s2 = 0;
    bl_gen_server_opts go = {.name = &name};
    BL_CHECK_EQ(bl_gen_server_start(&s1, &srv, NULL, &go), 0);
    bl_registry_entry *e = NULL;
    BL_CHECK_EQ(bl_registry_lookup(reg, "svc", 3, &e), 1);
    BL_CHECK(e && e[0].pid == s1 && e[0].value_len == 4 && memcmp(e[0].value, "meta", 4) == 0);
    bl_registry_free(e);
    /* Found by either form of the name. */
    BL_CHECK_EQ(bl_name_whereis(&name), s1);
    bl_name plain = bl_registry_name(reg, "svc", 3);
    BL_CHECK_EQ(bl_name_whereis(&plain), s1);
    bl_msg *rep = NULL;
    BL_CHECK_EQ(bl_gen_server_call(bl_name_whereis(&name), 1, NULL, 0, &rep, 5000), 0);
    bl_msg_free(rep);
    /* Taken: the holder comes back, whatever the value. */
    unsigned char buf2[64];
    bl_name other;
    BL_CHECK_EQ(bl_registry_name_value(&other, reg, "svc", 3, "else", 4, buf2, sizeof buf2), 0);
    go.name = &other;
    BL_CHECK_EQ(bl_gen_server_start(&s2, &srv, NULL, &go), -EEXIST);
    BL_CHECK_EQ(s2, s1);
    BL_CHECK_EQ(bl_gen_server_stop(s1, NULL, 5000), 0);
    BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
    BL_CHECK_EQ(bl_name_whereis(&name), BL_PID_NONE);

    /* The ops directly: an empty value, and unregistering by the key alone. */
    const bl_via_ops *ops = &bl_registry_via_value;
    BL_CHECK_EQ(bl_registry_name_value(&name, reg, "me", 2, NULL, 0, buf, sizeof buf), 0);
    BL_CHECK_EQ(ops->register_name(reg, name.key, name.key_len), 0);
    BL_CHECK_EQ(ops->whereis_name(reg, name.key, name.key_len), bl_self());
    BL_CHECK_EQ(bl_registry_lookup(reg, "me", 2, &e), 1);
    BL_CHECK(e && e[0].value_len == 0);
    bl_registry_free(e);
    BL_CHECK_EQ(ops->register_name(reg, name.key, name.key_len), -EEXIST);
    BL_CHECK_EQ(ops->unregister_name(reg, name.key, name.key_len), 0);
    BL_CHECK_EQ(ops->unregister_name(reg, name.key, name.key_len), -ENOENT);

    /* Malformed key bytes, bad arguments, a duplicate registry. */
    uint64_t huge = 1u << 20;
    memcpy(buf, &huge, sizeof huge);
    BL_CHECK_EQ(ops->register_name(reg, buf, 12), -EINVAL);
    BL_CHECK_EQ(ops->whereis_name(reg, buf, 12), BL_PID_NONE);
    BL_CHECK_EQ(ops->unregister_name(reg, buf, 12), -EINVAL);
    BL_CHECK_EQ(ops->register_name(reg, buf, 3), -EINVAL);
    BL_CHECK_EQ(bl_registry_name_value(&name, reg, "svc", 3, "meta", 4, buf, 14), -ENOBUFS);
    BL_CHECK_EQ(bl_registry_name_value(&name, reg, "svc", 3, NULL, 4, buf, sizeof buf), -EINVAL);
    BL_CHECK_EQ(bl_registry_name_value(NULL, reg, "svc", 3, NULL, 0, buf, sizeof buf), -EINVAL);
    BL_CHECK_EQ(bl_registry_name_value(&name, NULL, "svc", 3, NULL, 0, buf, sizeof buf), -EINVAL);
    static char longkey[BL_REGISTRY_KEY_MAX + 1];
    static unsigned char lbuf[BL_REGISTRY_NAME_VALUE_SIZE(BL_REGISTRY_KEY_MAX + 1, 0)];
    BL_CHECK_EQ(
        bl_registry_name_value(&name, reg, longkey, sizeof longkey, NULL, 0, lbuf, sizeof lbuf),
        -ENAMETOOLONG);
    bl_registry *dup = start_reg(BL_REGISTRY_DUPLICATE, 1);
    if (dup) {
        BL_CHECK_EQ(bl_registry_name_value(&name, dup, "d", 1, "v", 1, buf, sizeof buf), 0);
        BL_CHECK_EQ(ops->register_name(dup, name.key, name.key_len), -EINVAL);
        BL_CHECK_EQ(ops->whereis_name(dup, name.key, name.key_len), BL_PID_NONE);
        stop_reg(dup);
    }
    stop_reg(reg);
}

Test(registry_values, via_with_value)
{
    bl_test_run(&quiet, via_main, NULL);
}
