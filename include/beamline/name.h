/*
 * beamline/name.h - registered names (Erlang's register/whereis).
 *
 * A name is a string of 1 to 255 bytes naming at most one live process; a
 * process holds at most one name.  The name is freed when its process dies,
 * before any DOWN message for that process is delivered.  Lookups take no
 * lock.  The table's capacity is bl_config.max_names (BEAMLINE_MAX_NAMES,
 * default 65536): names cannot exhaust memory, registering beyond it fails.
 */
#ifndef BEAMLINE_NAME_H
#define BEAMLINE_NAME_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Registers name for pid.  Returns 0, or -EINVAL (NULL or empty name,
 * malformed pid), -ENAMETOOLONG, -EEXIST (the name is taken), -EBUSY (pid
 * already has a name), -ESRCH (pid is not alive, or the runtime is not
 * running), -ENOSPC (max_names reached).
 */
int bl_register(const char *name, bl_pid pid);

/* Frees name.  Returns 0, -ENOENT (not registered), -EINVAL, -ESRCH (runtime not running). */
int bl_unregister(const char *name);

/* The process registered as name, or BL_PID_NONE. */
bl_pid bl_whereis(const char *name);

/* Sends to the process registered as name: as bl_send, or -ENOENT if none. */
int bl_send_name(const char *name, uint32_t tag, const void *data, size_t len);

/*
 * Process only: monitors the process registered as name (bl_monitor).  If
 * none is, DOWN with reason noproc arrives at once (m->from is BL_PID_NONE).
 * Returns 0, -EPERM, -EINVAL (NULL ref, NULL or empty name), -ENAMETOOLONG
 * (as bl_register), -ENOMEM.
 */
int bl_monitor_name(const char *name, bl_ref *ref);

#ifdef __cplusplus
}
#endif

#endif /* BEAMLINE_NAME_H */
