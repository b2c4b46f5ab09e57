/*
 * bucket_registry.h - the key-value store of the Elixir guide (seed 002):
 * buckets are agents, and a registry gen_server names them and monitors them.
 *
 *   bucket     an agent holding a map of string keys to numbers: put, get, delete
 *   registry   a gen_server mapping bucket names to bucket pids:
 *                create  cast: starts a bucket under that name (if none)
 *                lookup  call: the bucket's pid, or an error
 *              It monitors every bucket it starts, and its handle_info forgets
 *              a bucket whose DOWN arrives, so it never hands out a dead pid.
 *
 * As the guide concludes, buckets are monitored, not linked: a bucket that
 * crashes must not take the registry down (supervising buckets comes next).
 */
#ifndef BUCKET_REGISTRY_H
#define BUCKET_REGISTRY_H

#include <beamline.h>

#define KV_NAME 64 /* room for a key or a bucket name, NUL included */

/* Starts an empty bucket (unlinked).  Errors as bl_agent_start. */
int bucket_start(bl_pid *bucket);
/* Sets key to value.  0; -EINVAL (NULL or empty key), -ENAMETOOLONG, or an agent call's error. */
int bucket_put(bl_pid bucket, const char *key, long value);
/* The value of key in *value: 0, -ENOENT when the key is absent (Elixir's nil), errors as put. */
int bucket_get(bl_pid bucket, const char *key, long *value);
/* Removes key and returns its value in *value (may be NULL): 0, -ENOENT, errors as put. */
int bucket_delete(bl_pid bucket, const char *key, long *value);

/* Starts a registry linked to the caller.  Errors as bl_gen_server_start. */
int kv_registry_start_link(bl_pid *registry);
/* Makes sure a bucket named name exists (a cast: returns 0 at once; -EINVAL, -ENAMETOOLONG). */
int kv_registry_create(bl_pid registry, const char *name);
/* The bucket named name in *bucket: 0, -ENOENT (Elixir's :error), or a call's error. */
int kv_registry_lookup(bl_pid registry, const char *name, bl_pid *bucket);

#endif
