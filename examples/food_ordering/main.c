/*
 * main.c - food_ordering, the program: orders placed one after the other,
 * then by three customers at once, one of them listing orders while the
 * others are cooking (food_ordering.h).
 *
 * Run: ./food_ordering  (exits 1 if an order is lost or listed wrong)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "food_ordering.h"

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
