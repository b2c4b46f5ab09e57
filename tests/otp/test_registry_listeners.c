/*
 * Registry listeners (Elixir's :listeners): register and unregister events
 * sent to named processes, their payload, and what sends none.
 *
 * "No event" is checked by order, never by waiting: a change that must not
 * be reported is followed by one that must, and the next event has to be
 * that one.
 */
#include <errno.h>

#include "beamline/registry.h"
#include "bl_test.h"

enum { T_CMD = 1, T_REPLY, T_STOP };

static const bl_config quiet = {.quiet = true};

#define LISTENER "reg_listener"

static bool match_event(const bl_msg *m, void *arg)
{
    (void)arg;
    return m->tag == BL_TAG_REGISTRY_REGISTER || m->tag == BL_TAG_REGISTRY_UNREGISTER;
}

/* Receives the next event and checks it: tag, registry, pid, key and value. */
static void expect(bl_registry *reg, uint32_t tag, bl_pid pid, const char *key, const char *value)
{
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, match_event, NULL, 10000, 0), 0);
    if (!m) return;
    bl_registry_event ev;
    const void *k = (void *)1, *v = (void *)1;
    BL_CHECK_EQ(bl_registry_event_decode(m, &ev, &k, &v), 0);
    BL_CHECK_EQ(m->tag, tag);
    BL_CHECK_EQ(m->from, pid);
    BL_CHECK_EQ(ev.registry, bl_registry_pid(reg));
    BL_CHECK_EQ(ev.pid, pid);
    BL_CHECK(ev.key_len == strlen(key) && (!ev.key_len || memcmp(k, key, ev.key_len) == 0));
    BL_CHECK(ev.key_len || k == NULL);
    size_t vlen = value ? strlen(value) : 0;
    BL_CHECK(ev.value_len == vlen && (!vlen || memcmp(v, value, vlen) == 0));
    BL_CHECK(vlen || v == NULL);
    bl_msg_free(m);
}

/* A process that runs one registry call on command: op 'r' register, 'u' unregister. */
typedef struct cmd {
    char op;
    bl_registry *reg;
    char key[16];
    char val[16];
} cmd;

static void agent(void *arg)
{
    (void)arg;
    for (;;) {
        bl_msg *m = bl_receive(10000);
        if (!m || m->tag == T_STOP) {
            bl_msg_free(m);
            return;
        }
        cmd c;
        memcpy(&c, m->data, sizeof c);
        int rc = c.op == 'r'
                     ? bl_registry_register(c.reg, c.key, strlen(c.key), c.val, strlen(c.val), NULL)
                     : bl_registry_unregister(c.reg, c.key, strlen(c.key));
        bl_send(m->from, T_REPLY, &rc, sizeof rc);
        bl_msg_free(m);
    }
}

static int agent_do(bl_pid a, bl_registry *reg, char op, const char *key, const char *val)
{
    cmd c = {.op = op, .reg = reg};
    snprintf(c.key, sizeof c.key, "%s", key);
    snprintf(c.val, sizeof c.val, "%s", val ? val : "");
    bl_send(a, T_CMD, &c, sizeof c);
    bl_msg *m = bl_test_recv_tag(T_REPLY, 10000);
    int rc = m ? *(const int *)m->data : -9999;
    bl_msg_free(m);
    return rc;
}

static bool is_v1(bl_pid pid, const void *value, size_t len, void *arg)
{
    (void)pid, (void)arg;
    return len == 2 && memcmp(value, "v1", 2) == 0;
}

static void events_main(void *arg)
{
    (void)arg;
    bl_pid self = bl_self();
    BL_CHECK_EQ(bl_register(LISTENER, self), 0);
    /* A name nobody holds is skipped. */
    const char *names[] = {"reg_nobody", LISTENER};
    bl_registry_opts o = {
        .keys = BL_REGISTRY_DUPLICATE, .partitions = 2, .listeners = names, .nlisteners = 2};
    bl_registry *reg = NULL;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    if (!reg) return;

    /* Register: {:register, reg, key, pid, value}, from the registering process. */
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, "v", 1, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "k", "v");
    BL_CHECK_EQ(bl_registry_register(reg, "", 0, NULL, 0, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "", NULL);
    bl_pid a;
    BL_CHECK_EQ(bl_spawn(&a, agent, NULL, NULL), 0);
    BL_CHECK_EQ(agent_do(a, reg, 'r', "k", "w"), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, a, "k", "w");

    /* Unregister: {:unregister, reg, key, pid}; none for a key the caller does not hold. */
    BL_CHECK_EQ(bl_registry_unregister(reg, "k", 1), 1);
    expect(reg, BL_TAG_REGISTRY_UNREGISTER, self, "k", NULL);
    BL_CHECK_EQ(bl_registry_unregister(reg, "none", 4), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "after", 5, "1", 1, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "after", "1");

    /* unregister_match: an event once the caller has nothing left under the key. */
    BL_CHECK_EQ(bl_registry_register(reg, "m", 1, "v1", 2, NULL), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "m", 1, "v2", 2, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "m", "v1");
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "m", "v2");
    BL_CHECK_EQ(bl_registry_unregister_match(reg, "m", 1, is_v1, NULL), 1);
    BL_CHECK_EQ(bl_registry_register(reg, "m", 1, "v1", 2, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "m", "v1");
    BL_CHECK_EQ(bl_registry_unregister_match(reg, "m", 1, is_v1, NULL), 1);
    BL_CHECK_EQ(bl_registry_unregister(reg, "m", 1), 1);
    expect(reg, BL_TAG_REGISTRY_UNREGISTER, self, "m", NULL);

    /* An owner's exit sends nothing (listeners monitor if they care). */
    bl_ref ref;
    BL_CHECK_EQ(bl_monitor(a, &ref), 0);
    bl_send(a, T_STOP, NULL, 0);
    bl_msg *m = NULL;
    BL_CHECK_EQ(bl_recv(&m, bl_match_ref, &ref, 10000, 0), 0);
    bl_msg_free(m);
    BL_CHECK_EQ(bl_registry_sync(reg, 10000), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "next", 4, NULL, 0, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "next", NULL);

    /* The name is looked up at each event: a listener may come and go. */
    BL_CHECK_EQ(bl_unregister(LISTENER), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "unheard", 7, NULL, 0, NULL), 0);
    BL_CHECK_EQ(bl_register(LISTENER, self), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "heard", 5, NULL, 0, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "heard", NULL);

    /* A large value goes whole. */
    static char big[5000];
    memset(big, 'q', sizeof big - 1);
    BL_CHECK_EQ(bl_registry_register(reg, "big", 3, big, strlen(big), NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "big", big);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    bl_registry_release(reg);

    /* A unique registry: a refused register sends nothing; a via name's does. */
    o = (bl_registry_opts){.keys = BL_REGISTRY_UNIQUE, .listeners = names + 1, .nlisteners = 1};
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    BL_CHECK_EQ(bl_spawn(&a, agent, NULL, NULL), 0);
    BL_CHECK_EQ(agent_do(a, reg, 'r', "u", "x"), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, a, "u", "x");
    BL_CHECK_EQ(bl_registry_register(reg, "u", 1, "y", 1, NULL), -EEXIST);
    BL_CHECK_EQ(agent_do(a, reg, 'u', "u", NULL), 1);
    expect(reg, BL_TAG_REGISTRY_UNREGISTER, a, "u", NULL);
    bl_send(a, T_STOP, NULL, 0);
    BL_CHECK_EQ(bl_registry_via.register_name(reg, "svc", 3), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, self, "svc", NULL);
    BL_CHECK_EQ(bl_registry_via.unregister_name(reg, "svc", 3), 0);
    expect(reg, BL_TAG_REGISTRY_UNREGISTER, self, "svc", NULL);
    BL_CHECK_EQ(bl_registry_stop(reg, NULL, 10000), 0);
    bl_registry_release(reg);
    BL_CHECK_EQ(bl_unregister(LISTENER), 0);
    BL_CHECK_EQ(bl_mailbox_len(), 0);
}

Test(registry_listeners, events)
{
    bl_test_run(&quiet, events_main, NULL);
}

static void bad_main(void *arg)
{
    (void)arg;
    bl_registry *reg = NULL;
    const char *empty[] = {""}, *null[] = {NULL};
    char toolong[300];
    memset(toolong, 'n', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = 0;
    const char *lng[] = {toolong};
    const char *many[BL_REGISTRY_LISTENERS_MAX + 1];
    for (size_t i = 0; i <= BL_REGISTRY_LISTENERS_MAX; i++) many[i] = "l";
    bl_registry_opts o = {.nlisteners = 1};
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), -EINVAL);
    o.listeners = empty;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), -EINVAL);
    o.listeners = null;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), -EINVAL);
    o.listeners = lng;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), -ENAMETOOLONG);
    o = (bl_registry_opts){.listeners = many, .nlisteners = BL_REGISTRY_LISTENERS_MAX + 1};
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), -EINVAL);
    BL_CHECK(reg == NULL);
    /* The most listeners is fine; the names are copies. */
    char name[8] = "l";
    const char *one[] = {name};
    o.nlisteners = BL_REGISTRY_LISTENERS_MAX;
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    bl_registry_stop(reg, NULL, 10000);
    bl_registry_release(reg);
    o = (bl_registry_opts){.listeners = one, .nlisteners = 1};
    BL_CHECK_EQ(bl_registry_start_link(&o, &reg), 0);
    name[0] = 'x';
    BL_CHECK_EQ(bl_register("l", bl_self()), 0);
    BL_CHECK_EQ(bl_registry_register(reg, "k", 1, NULL, 0, NULL), 0);
    expect(reg, BL_TAG_REGISTRY_REGISTER, bl_self(), "k", NULL);
    bl_registry_stop(reg, NULL, 10000);
    bl_registry_release(reg);

    /* Decoding: anything but a well-formed event is refused. */
    bl_registry_event ev;
    BL_CHECK_EQ(bl_send(bl_self(), 5, "abc", 3), 0);
    bl_msg *m = bl_receive(1000);
    BL_CHECK_EQ(bl_registry_event_decode(m, &ev, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_event_decode(NULL, &ev, NULL, NULL), -EINVAL);
    BL_CHECK_EQ(bl_registry_event_decode(m, NULL, NULL, NULL), -EINVAL);
    bl_msg_free(m);
}

Test(registry_listeners, bad_options)
{
    bl_test_run(&quiet, bad_main, NULL);
}
