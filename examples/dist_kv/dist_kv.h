/*
 * dist_kv.h - the bucket registry of the Elixir guide (examples/bucket_registry),
 * served to an Erlang/Elixir cluster: this node's gen_server `kv` answers
 * GenServer.call({:kv, node}, request) from iex.  The requests, Elixir terms:
 *
 *   {:create, bucket}               :ok (a bucket of that name exists afterwards)
 *   {:lookup, bucket}               :ok | :error
 *   {:put, bucket, key, value}      :ok | :error (no such bucket)
 *   {:get, bucket, key}             {:ok, value} | :error (no such bucket or key)
 *   {:delete, bucket, key}          {:ok, value} | :error
 *
 * bucket and key are strings (binaries), value an integer; anything else is
 * answered {:error, :badarg}.  Underneath, the registry gen_server and its
 * bucket agents of bucket_registry.h, linked to `kv`.
 */
#ifndef DIST_KV_H
#define DIST_KV_H

#include <beamline.h>

/* The name `kv` is registered under on this node. */
#define DIST_KV_NAME "kv"

/* Process only: starts `kv` (and its registry) linked to the caller.  Errors
 * as bl_gen_server_start (-EEXIST when the name is taken). */
int dist_kv_start_link(bl_pid *kv);

#endif
