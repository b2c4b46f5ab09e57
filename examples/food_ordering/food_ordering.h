/*
 * food_ordering.h - a server that answers a slow call later, with
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
 */
#ifndef FOOD_ORDERING_H
#define FOOD_ORDERING_H

#include <beamline.h>

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

#endif
