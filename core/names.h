/*
 * core/names.h - the table of registered process names (Erlang's register/
 * whereis), used by bl_register, bl_whereis and send-by-name.
 *
 * A name is 1..BL_NAME_MAX bytes of anything but NUL, compared bytewise.  A
 * name names at most one pid and a pid holds at most one name.  The table
 * holds at most `capacity` names at once: every byte it will ever use is
 * allocated by bl__names_init, so a flood of registrations gets -ENOSPC and
 * never grows memory.
 *
 * Threads: bl__names_whereis may be called from any thread at any time
 * between init and destroy; it takes no lock and never waits for a writer.
 * The other calls may also come from any thread; they serialise on striped
 * locks (never one global lock).  bl__names_init and bl__names_destroy must
 * not race with any other call.
 *
 * This module only keeps the table: it does not know whether a pid is alive.
 * The caller checks liveness before registering and calls
 * bl__names_unregister_pid when a process exits.
 */
#ifndef BL_CORE_NAMES_H
#define BL_CORE_NAMES_H

#include <stddef.h>

#include "beamline.h"

#define BL_NAME_MAX 255 /* longest name in bytes, excluding the NUL */

/*
 * Allocates a table for `capacity` names.  Returns 0, -EINVAL for capacity
 * 0, -EALREADY when already initialised, -ENOMEM (also for a capacity too
 * large to index with 32 bits).
 */
int bl__names_init(size_t capacity);

/* Frees everything.  Safe if never initialised, and callable twice. */
void bl__names_destroy(void);

/*
 * Gives `pid` the name `name`.  Returns 0; -EINVAL for a NULL or empty name
 * or pid 0; -ENAMETOOLONG above BL_NAME_MAX bytes; -ESRCH when the table is
 * not initialised; -EEXIST when the name is taken (the table is unchanged);
 * -EBUSY when pid already holds a name; -ENOSPC when `capacity` names are
 * registered.  Errors are checked in that order.
 */
int bl__names_register(const char *name, bl_pid pid);

/*
 * Removes `name`.  Returns 0 and stores the pid that held it in *owner
 * (owner may be NULL); -EINVAL for a NULL or empty name; -ENAMETOOLONG above
 * BL_NAME_MAX bytes; -ENOENT when the name is not registered (or the table
 * is not initialised).
 */
int bl__names_unregister(const char *name, bl_pid *owner);

/* Removes the name `pid` holds (a process exits).  Returns 0 or -ENOENT. */
int bl__names_unregister_pid(bl_pid pid);

/*
 * The pid registered under `name`, or BL_PID_NONE when there is none or the
 * name is malformed.  Lock-free and linearizable with register/unregister.
 */
bl_pid bl__names_whereis(const char *name);

/*
 * Copies the name `pid` holds, NUL-terminated, into buf[0..len).  Returns 0;
 * -ENOENT when pid holds no name; -ERANGE when len is too small (buf is then
 * untouched); -EINVAL when buf is NULL and len is not 0.
 */
int bl__names_name_of(bl_pid pid, char *buf, size_t len);

/* Names registered now (a snapshot; exact when no writer is running). */
size_t bl__names_count(void);

#endif /* BL_CORE_NAMES_H */
