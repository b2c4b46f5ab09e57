/*
 * crash_dummy.h - supervisors at work: a CrashDummy server, and supervisors
 * of dummies for each strategy and each restart type.
 *
 * A CrashDummy is a named gen_server whose state is a number drawn when it
 * starts, so a restarted dummy is easy to spot: new pid, new number.  It
 * crashes on a boom cast and stops normally on a stop_gracefully cast.
 *
 * The first supervisor holds dummy1, dummy2 and dummy3, permanent, under
 * the strategy it is given; the second holds permanent_dummy,
 * temporary_dummy and transient_dummy under one_for_one.
 */
#ifndef CRASH_DUMMY_H
#define CRASH_DUMMY_H

#include <beamline.h>
#include <beamline/supervisor.h>

/*
 * Starts a dummy registered under the name arg (a string that outlives
 * it), linked to the caller: a bl_start_fn for child specs.
 */
int crash_dummy_start_link(void *name, bl_pid *pid);
/* Casts to the dummy called name: 0, or -ESRCH when no process has that name. */
int crash_dummy_boom(const char *name);
int crash_dummy_stop_gracefully(const char *name);
/* The dummy's number (> 0), or a negative errno (-ESRCH: no such dummy). */
long crash_dummy_state(const char *name);

/* Starts the first supervisor: dummy1..3, permanent, with the given strategy. */
int crash_dummy_supervisor_start_link(bl_pid *sup, bl_sup_strategy strategy);
/* Starts the second: permanent_dummy, temporary_dummy, transient_dummy (one_for_one). */
int crash_dummy_restarts_supervisor_start_link(bl_pid *sup);
/* Finds child id in sup's which_children: 0, -ENOENT, or a call's error. */
int crash_dummy_child(bl_pid sup, const char *id, bl_sup_child *out);

#endif
