/*
 * examples/food_ordering/food_ordering.c: a deferred reply, with other calls answered
 * while the order is pending.  The cook here does not sleep: it tells the
 * test it is cooking and waits for the test's go, so "pending" is a fact,
 * not a timing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "examples/food_ordering/food_ordering.h"

#include "bl_test.h"

enum { T_COOKING = 1, T_GO, T_RESULT };

static _Atomic bl_pid test_pid;

/* The test's cook: reports its worker's pid, then waits for go. */
static void cook_on_signal(const char *user, const char *item)
{
    bl_pid me = bl_self();
    bl_send(atomic_load(&test_pid), T_COOKING, &me, sizeof me);
    bl_msg_free(bl_test_recv_tag(T_GO, 5000));
}

/* Waits for a worker to start cooking; returns its pid. */
static bl_pid cooking(void)
{
    bl_msg *m = bl_test_recv_tag(T_COOKING, 5000);
    bl_pid pid = BL_PID_NONE;
    if (m) memcpy(&pid, m->data, sizeof pid);
    bl_msg_free(m);
    return pid;
}

typedef struct customer {
    const char *user, *item;
} customer;

/* A customer process: places one order, sends the result to the test. */
static void customer_main(void *arg)
{
    const customer *c = arg;
    int rc = food_place_order(c->user, c->item);
    bl_send(atomic_load(&test_pid), T_RESULT, &rc, sizeof rc);
}

/* The next customer result: the place_order return code, or 1 when none came within ms. */
static int result(int64_t ms)
{
    bl_msg *m = bl_test_recv_tag(T_RESULT, ms);
    int rc = 1;
    if (m) memcpy(&rc, m->data, sizeof rc);
    bl_msg_free(m);
    return rc;
}

static void pending_main(void *arg)
{
    atomic_store(&test_pid, bl_self());
    BL_CHECK_EQ(food_server_start_link(cook_on_signal), 0);
    char items[4][FOOD_NAME];

    /* Tom orders a pizza; the worker is cooking, Tom is waiting. */
    static const customer tom = {"Tom", "pizza"}, jhon = {"Jhon", "burger"};
    BL_CHECK_EQ(bl_spawn(NULL, customer_main, (void *)&tom, NULL), 0);
    bl_pid w1 = cooking();
    BL_CHECK(w1 != BL_PID_NONE);
    BL_CHECK_EQ(result(0), 1);

    /* The server is not blocked: list_orders is answered while the order is pending. */
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), 0);
    BL_CHECK_EQ(result(0), 1);

    /* A second order, pending too; it finishes first, and its reply reaches Jhon. */
    BL_CHECK_EQ(bl_spawn(NULL, customer_main, (void *)&jhon, NULL), 0);
    bl_pid w2 = cooking();
    BL_CHECK(w2 != BL_PID_NONE && w2 != w1);
    BL_CHECK_EQ(food_list_orders("Jhon", items, 4), 0);
    BL_CHECK_EQ(bl_send(w2, T_GO, NULL, 0), 0);
    BL_CHECK_EQ(result(5000), 0);
    BL_CHECK_EQ(food_list_orders("Jhon", items, 4), 1);
    BL_CHECK(strcmp(items[0], "burger") == 0);
    /* Tom is still waiting for his pizza. */
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), 0);
    BL_CHECK_EQ(result(0), 1);

    BL_CHECK_EQ(bl_send(w1, T_GO, NULL, 0), 0);
    BL_CHECK_EQ(result(5000), 0);
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), 1);
    BL_CHECK(strcmp(items[0], "pizza") == 0);

    /* Newest first. */
    static const customer tom2 = {"Tom", "ice cream"};
    BL_CHECK_EQ(bl_spawn(NULL, customer_main, (void *)&tom2, NULL), 0);
    bl_pid w3 = cooking();
    BL_CHECK_EQ(bl_send(w3, T_GO, NULL, 0), 0);
    BL_CHECK_EQ(result(5000), 0);
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), 2);
    BL_CHECK(strcmp(items[0], "ice cream") == 0 && strcmp(items[1], "pizza") == 0);
    BL_CHECK_EQ(food_list_orders("Tom", NULL, 0), 2);
    BL_CHECK_EQ(food_list_orders("Nobody", items, 4), 0);
}

Test(food_ordering, reply_later)
{
    bl_test_run(NULL, pending_main, NULL);
}

/* The default cook, and the client's errors. */
static void default_main(void *arg)
{
    char items[4][FOOD_NAME];
    BL_CHECK_EQ(food_place_order("Tom", "pizza"), -ESRCH);
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), -ESRCH);
    BL_CHECK_EQ(food_server_start_link(NULL), 0);
    BL_CHECK_EQ(food_server_start_link(NULL), -EEXIST);
    BL_CHECK_EQ(food_place_order("Tom", "pizza"), 0);
    BL_CHECK_EQ(food_list_orders("Tom", items, 4), 1);
    BL_CHECK_EQ(food_place_order(NULL, "pizza"), -EINVAL);
    BL_CHECK_EQ(food_place_order("Tom", ""), -EINVAL);
    BL_CHECK_EQ(food_place_order("Tom", "a very long name for a pizza, really"), -ENAMETOOLONG);
    BL_CHECK_EQ(food_list_orders(NULL, items, 4), -EINVAL);
}

Test(food_ordering, default_cook_and_errors)
{
    bl_test_run(NULL, default_main, NULL);
}
