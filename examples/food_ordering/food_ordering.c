/*
 * food_ordering.c - the food ordering server (see food_ordering.h): its
 * callbacks, the worker that cooks an order, and the client side.
 */
#include <beamline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "food_ordering.h"

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
