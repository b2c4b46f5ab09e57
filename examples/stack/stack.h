/*
 * stack.h - the Stack server: a stack of numbers behind a gen_server.
 *
 *   push       cast: puts a number on top
 *   pop        call: takes the top number off, or answers "empty"
 *   get_stack  call: the whole stack, top first
 *   stats      a plain message (handle_info): logs the stack's length
 *
 * Elixir's Stack matches [num | state] in pop, so popping an empty stack
 * crashes the server.  Here pop answers an empty reply instead, and
 * stack_pop returns -ENOENT: errors are values.
 */
#ifndef STACK_H
#define STACK_H

#include <beamline.h>

/* Starts an empty stack server linked to the caller.  Errors as bl_gen_server_start. */
int stack_start_link(bl_pid *pid);
/* Pushes num (a cast: returns 0 at once). */
int stack_push(bl_pid pid, long num);
/* Pops the top into *num: 0, -ENOENT when the stack is empty, or a call's error. */
int stack_pop(bl_pid pid, long *num);
/* Copies up to max numbers, top first, into out; returns the stack's depth or a call's error. */
int stack_get(bl_pid pid, long *out, int max);
/* Asks the server to log its length (a plain message, handled by handle_info). */
int stack_stats(bl_pid pid);

#endif
