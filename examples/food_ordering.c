/*
 * food_ordering.c - a server that answers a slow call later, with
 * bl_gen_server_reply, and keeps serving other calls meanwhile.
 *
 * place_order is slow (the food is cooked).  handle_call does not answer:
 * it spawns a worker that cooks, then sends the server {order_placed,
 * order, from}.  The server's handle_info records the order and answers the
 * waiting caller with bl_gen_server_reply(from, ...).  Between the two, the
 * server is free: list_orders is answered at once.
 *
 * The seed cooks for 6 s; here the default cook sleeps 200 ms, and the cook
 * is a parameter (tests pass one that waits for their signal instead).
 * Run: ./food_ordering  (exits 1 if an order is lost or listed wrong)
 */
#include <beamline.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the module's API ---- */

#define FOOD_SERVER  "food_ordering_server" /* the server's local name */
#define FOOD_NAME    32                     /* room for a user or an item, NUL included */
#define FOOD_COOK_MS 200                    /* how long the default cook takes */

/* Cooks one order; runs in a worker process of its own, and may block. */
typedef void (*food_cook_fn)(const char *user, const char *item);

/*
 * Starts the server linked to the caller, named FOOD_SERVER, with the given
 * cook (NULL: sleep FOOD_COOK_MS).  0, -EEXIST, or the errors of bl_gen_server_start.
 */
int food_server_start_link(food_cook_fn cook);
/*
 * Orders item for user and waits (up to 10 s) until it is cooked.  0;
 * -EINVAL for NULL or empty strings, -ENAMETOOLONG for ones of FOOD_NAME
 * bytes or more, -ESRCH when the server is not running, -ENOMEM when no
 * worker could be started, or the other errors of bl_gen_server_call.
 */
int food_place_order(const char *user, const char *item);
/* Copies up to max of user's items, newest first; returns how many user has, or errors as above. */
int food_list_orders(const char *user, char items[][FOOD_NAME], int max);

/* ---- the server ---- */

/* Requests, as gen_server tags, and the worker's message. */
enum { FOOD_PLACE = 1, FOOD_LIST, FOOD_PLACED };

typedef struct order {
    char user[FOOD_NAME];
    char item[FOOD_NAME];
} order;

/* What a worker cooks, and whom to tell: {order_placed, user, item, from}. */
typedef struct job {
    order order;
    bl_gs_from from; /* the caller waiting in place_order */
    food_cook_fn cook;
} job;

typedef struct kitchen {
    order *orders; /* every order placed, oldest first */
    int n, cap;
    food_cook_fn cook;
} kitchen;

static void default_cook(const char *user, const char *item)
{
    bl_sleep(FOOD_COOK_MS);
}

/* The worker: cooks, then reports to the server by name; frees its job. */
static void worker(void *arg)
{
    job *j = arg;
    j->cook(j->order.user, j->order.item);
    bl_send_name(FOOD_SERVER, FOOD_PLACED, j, sizeof *j);
    free(j);
}

static void food_init(void *arg, void **state, bl_gs_result *r)
{
    kitchen *k = calloc(1, sizeof *k);
    if (!k) {
        bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start returns -ECHILD */
        return;
    }
    food_cook_fn cook = *(food_cook_fn *)arg;
    k->cook = cook ? cook : default_cook;
    *state = k;
}

/* Strings from a message are bytes: make sure they end. */
static void terminate_strings(order *o)
{
    o->user[FOOD_NAME - 1] = o->item[FOOD_NAME - 1] = 0;
}

static void food_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    kitchen *k = *state;
    if (m->tag == FOOD_PLACE && m->len == sizeof(order)) {
        job *j = malloc(sizeof *j);
        if (j) {
            memcpy(&j->order, m->data, sizeof j->order);
            terminate_strings(&j->order);
            printf("Received new order request from %s\n", j->order.user);
            j->from = r->from; /* the worker's message brings it back to handle_info */
            j->cook = k->cook;
        }
        if (!j || bl_spawn(NULL, worker, j, NULL) != 0) {
            free(j);
            int err = -ENOMEM;
            bl_gs_reply(r, &err, sizeof err);
        }
        /* No reply now: the caller keeps waiting, and the server goes on. */
    } else if (m->tag == FOOD_LIST && m->len == FOOD_NAME) {
        char user[FOOD_NAME];
        memcpy(user, m->data, sizeof user);
        user[FOOD_NAME - 1] = 0;
        /* The user's items, newest first (Elixir's [item | existing_orders]). */
        char(*items)[FOOD_NAME] = malloc((size_t)(k->n ? k->n : 1) * FOOD_NAME);
        int count = 0;
        if (!items) return; /* no answer: the caller times out */
        for (int i = k->n - 1; i >= 0; i--)
            if (strcmp(k->orders[i].user, user) == 0)
                memcpy(items[count++], k->orders[i].item, FOOD_NAME);
        bl_gs_reply(r, items, (size_t)count * FOOD_NAME);
        free(items);
    }
}

static void food_info(void **state, const bl_msg *m, bl_gs_result *r)
{
    kitchen *k = *state;
    if (m->tag != FOOD_PLACED || m->len != sizeof(job)) return;
    job j;
    memcpy(&j, m->data, sizeof j);
    terminate_strings(&j.order);
    int status = 0;
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 8;
        order *o = realloc(k->orders, (size_t)cap * sizeof *o);
        if (o) {
            k->orders = o;
            k->cap = cap;
        }
    }
    if (k->n < k->cap) {
        k->orders[k->n++] = j.order;
        printf("Order %s ready for %s\n", j.order.item, j.order.user);
    } else {
        status = -ENOMEM;
    }
    /* Answer the caller still waiting in place_order: {:ok, :order_placed}. */
    bl_gen_server_reply(j.from, &status, sizeof status);
}

static void food_release(void *state)
{
    kitchen *k = state;
    free(k->orders);
    free(k);
}

static const bl_gen_server food_callbacks = {
    .init = food_init,
    .handle_call = food_call,
    .handle_info = food_info,
    .release = food_release,
};

/* ---- the client side ---- */

/* Copies s into a name field: 0, -EINVAL (NULL or empty), -ENAMETOOLONG. */
static int set_name(char field[FOOD_NAME], const char *s)
{
    if (!s || !s[0]) return -EINVAL;
    size_t len = strnlen(s, FOOD_NAME);
    if (len == FOOD_NAME) return -ENAMETOOLONG;
    memcpy(field, s, len + 1);
    return 0;
}

int food_server_start_link(food_cook_fn cook)
{
    bl_name name = BL_NAME_LOCAL(FOOD_SERVER);
    bl_gen_server_opts opts = {.name = &name};
    bl_pid pid;
    /* init reads the cook before start returns, so a pointer to it is enough. */
    return bl_gen_server_start_link(&pid, &food_callbacks, &cook, &opts);
}

int food_place_order(const char *user, const char *item)
{
    order o = {0};
    int rc;
    if ((rc = set_name(o.user, user)) || (rc = set_name(o.item, item))) return rc;
    bl_pid server = bl_whereis(FOOD_SERVER);
    if (!server) return -ESRCH;
    bl_msg *reply = NULL;
    /* Cooking takes a while: wait longer than the default 5 s. */
    rc = bl_gen_server_call(server, FOOD_PLACE, &o, sizeof o, &reply, 10000);
    if (rc == 0) {
        if (reply->len == sizeof rc)
            memcpy(&rc, reply->data, sizeof rc);
        else
            rc = -EPROTO;
    }
    bl_msg_free(reply);
    return rc;
}

int food_list_orders(const char *user, char items[][FOOD_NAME], int max)
{
    char key[FOOD_NAME] = {0};
    int rc = set_name(key, user);
    if (rc) return rc;
    bl_pid server = bl_whereis(FOOD_SERVER);
    if (!server) return -ESRCH;
    bl_msg *reply = NULL;
    rc = bl_gen_server_call(server, FOOD_LIST, key, sizeof key, &reply, BL_GS_DEFAULT_TIMEOUT);
    if (rc == 0) {
        rc = (int)(reply->len / FOOD_NAME);
        if (items && max > 0) memcpy(items, reply->data, (size_t)(rc < max ? rc : max) * FOOD_NAME);
    }
    bl_msg_free(reply);
    return rc;
}

#ifndef BL_EXAMPLE_NO_MAIN
/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "food_ordering: expected %s (line %d)\n", #cond, __LINE__);            \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

enum { DONE = 1 }; /* a customer process has finished */

/* Prints user's orders as IO.inspect(label: ...) would; returns how many. */
static int print_orders(const char *label, const char *user)
{
    char items[8][FOOD_NAME];
    int n = food_list_orders(user, items, 8);
    printf("%s: [", label);
    for (int i = 0; i < n && i < 8; i++) printf(i ? ", \"%s\"" : "\"%s\"", items[i]);
    printf("]\n");
    return n;
}

/* Three customers ordering at the same time; each tells main when done. */
static void jhon(void *arg)
{
    EXPECT(food_place_order("Jhon", "burger") == 0);
    bl_send(*(bl_pid *)arg, DONE, NULL, 0);
}

static void tom(void *arg)
{
    EXPECT(food_place_order("Tom", "ice cream") == 0);
    EXPECT(print_orders("Toms orders", "Tom") == 2);
    bl_send(*(bl_pid *)arg, DONE, NULL, 0);
}

static void tom_peeking(void *arg)
{
    /* Answered at once, even while orders are cooking: pizza, and ice cream if ready. */
    EXPECT(print_orders("Toms orders (while cooking)", "Tom") >= 1);
    bl_send(*(bl_pid *)arg, DONE, NULL, 0);
}

static void scenario(void *arg)
{
    EXPECT(food_server_start_link(NULL) == 0);

    /* One after the other: each call waits for its order to be cooked. */
    EXPECT(food_place_order("Jhon", "sandwich") == 0);
    EXPECT(food_place_order("Tom", "pizza") == 0);

    /* Ordering simultaneously from different processes. */
    bl_pid me = bl_self();
    bl_entry_fn customers[] = {jhon, tom, tom_peeking};
    for (int i = 0; i < 3; i++) EXPECT(bl_spawn(NULL, customers[i], &me, NULL) == 0);
    uint32_t done = DONE;
    for (int i = 0; i < 3; i++) {
        bl_msg *m = NULL;
        EXPECT(bl_recv(&m, bl_match_tag, &done, 5000, 0) == 0);
        bl_msg_free(m);
    }
    EXPECT(print_orders("Jhons orders", "Jhon") == 2);
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
#endif
