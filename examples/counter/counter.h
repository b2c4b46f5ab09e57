/*
 * counter.h - the Counter gen_server: every callback of the behaviour once.
 *
 *   init          builds the state (a count) from start's argument
 *   handle_cast   inc / dec: change the count, answer nothing
 *   handle_call   get_count: answers "The count is N"
 *   handle_info   any plain message: logged and ignored
 *   terminate     last words, with the reason given to bl_gen_server_stop
 *
 * The functions are called from a process; the counter runs in a process of
 * its own until it is stopped with bl_gen_server_stop.
 */
#ifndef COUNTER_H
#define COUNTER_H

#include <beamline.h>
#include <stddef.h>

/* Starts an unlinked counter at initial.  Errors as bl_gen_server_start. */
int counter_start(bl_pid *pid, long initial);
/* Adds (inc) or subtracts (dec) by: casts, so they return at once (0). */
int counter_inc(bl_pid pid, long by);
int counter_dec(bl_pid pid, long by);
/* Writes "The count is N" into text.  0, or the errors of bl_gen_server_call. */
int counter_get_count(bl_pid pid, char *text, size_t len);

/* The reason the scenario stops the counter with: Elixir's :boom. */
extern const bl_reason counter_boom;

#endif
