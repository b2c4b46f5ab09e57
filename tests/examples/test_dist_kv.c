/*
 * examples/dist_kv with a real Elixir node: the iex lines of
 * examples/README.md ("dist_kv from iex"), typed into an Elixir node that
 * calls this node's kv.
 */
#include "../dist/dist_test.h"
#include "examples/dist_kv/dist_kv.h"

static dt_child *ex;
static char me[64], ex_name[64];

static void setup(void)
{
    dt_setup_elixir(&ex, me, ex_name, sizeof me);
}

/* A GenServer.call({:kv, me}, request) from the Elixir node, whose answer must be want. */
#define kv_call(want, request) dt_ask_is(ex, want, "call kv %s 5000 %s", me, request)

static void iex_main(void *arg)
{
    (void)arg;
    bl_dist_opts o = dt_opts();
    BL_CHECK_EQ(bl_dist_start(me, dt_cookie, &o), 0);
    bl_pid kv;
    BL_CHECK_EQ(dist_kv_start_link(&kv), 0);
    kv_call(":error", "{:lookup, \"shopping\"}");
    kv_call(":ok", "{:create, \"shopping\"}");
    kv_call(":ok", "{:lookup, \"shopping\"}");
    kv_call(":ok", "{:put, \"shopping\", \"milk\", 3}");
    kv_call("{:ok, 3}", "{:get, \"shopping\", \"milk\"}");
    kv_call("{:ok, 3}", "{:delete, \"shopping\", \"milk\"}");
    kv_call(":error", "{:get, \"shopping\", \"milk\"}");
    kv_call(":error", "{:put, \"nosuch\", \"milk\", 1}");
    /* Bad requests are answered, and the server lives on. */
    kv_call("{:error, :badarg}", ":hello");
    kv_call("{:error, :badarg}", "{:put, \"shopping\", \"milk\", :three}");
    kv_call("{:error, :badarg}", "{:get, \"shopping\"}");
    kv_call(":ok", "{:create, \"shopping\"}"); /* created again: the same bucket */
    BL_CHECK(bl_is_alive(kv));
    /* The Beamline node is hidden, as C nodes are. */
    char hidden[256];
    BL_CHECK(dt_ask(ex, "hidden", hidden, sizeof hidden) && strstr(hidden, me) != NULL);
    bl_unlink(kv);
    BL_CHECK_EQ(bl_gen_server_stop(kv, NULL, 5000), 0);
    BL_CHECK_EQ(bl_dist_stop(), 0);
}

Test(dist_kv, the_iex_session_of_the_readme, .init = setup, .fini = dt_stop_all)
{
    bl_test_run(NULL, iex_main, NULL);
}
