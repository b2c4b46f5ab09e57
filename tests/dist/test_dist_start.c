/*
 * Starting a node: bad names and cookies, the cookie file as Erlang makes
 * it, the environment, and epmd started when none answers (or not).
 */
#include "dist_test.h"

#include <sys/stat.h>

#include "beamline/dirty.h"

static char home[64];

static void no_epmd(void)
{
    dt_need("epmd");
    dt_init_host();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", dt_free_port());
    setenv("ERL_EPMD_PORT", ps, 1);
    snprintf(home, sizeof home, "/tmp/bl_dist_home_XXXXXX");
    cr_assert(mkdtemp(home));
    setenv("HOME", home, 1);
    unsetenv("BEAMLINE_COOKIE");
    unsetenv("BEAMLINE_NODE");
}

/* Stops the epmd the node started, on the private port (none running is fine). */
static long kill_epmd(void *arg)
{
    /* epmd refuses -kill while a node is registered, and takes a moment to
     * see the registration socket closed: try for up to 2 s. */
    for (int i = 0; i < 100; i++) {
        if (system("epmd -kill >/dev/null 2>&1") != 0) {
            /* refused, or none running: -names says which */
        }
        if (system("epmd -names >/dev/null 2>&1") != 0) return 0;
        usleep(20000);
    }
    return -1;
}

/* After the test, or after a failure that ended it early: epmd and the home go. */
static void cleanup(void)
{
    kill_epmd(NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    unlink(path);
    rmdir(home);
}

static void start_main(void *arg)
{
    bl_dist_opts o = dt_opts();
    o.no_epmd_start = true;
    BL_CHECK_EQ(bl_dist_start(NULL, "c", &o), -EINVAL); /* no name anywhere */
    BL_CHECK_EQ(bl_dist_start("", "c", &o), -EINVAL);
    BL_CHECK_EQ(bl_dist_start("a b", "c", &o), -EINVAL);
    BL_CHECK_EQ(bl_dist_start("a@", "c", &o), -EINVAL);
    BL_CHECK_EQ(bl_dist_start("a@b@c", "c", &o), -EINVAL);
    BL_CHECK_EQ(bl_dist_start("a", "", &o), -EINVAL);
    BL_CHECK_EQ(bl_dist_start("a", "c", &o), -ECONNREFUSED); /* no epmd, none started */
    BL_CHECK(strcmp(bl_dist_node(), "nonode@nohost") == 0);
    BL_CHECK_EQ(bl_dist_connect("x@y"), -ENOTCONN);
    BL_CHECK_EQ(bl_dist_stop(), -ENOTCONN);
    BL_CHECK_EQ(bl_dist_monitor_nodes(true), -ENOTCONN);

    /* No cookie given: ~/.erlang.cookie is made, 20 capital letters, mode 0400. */
    o.no_epmd_start = false;
    setenv("BEAMLINE_NODE", "envnode", 1);
    BL_CHECK_EQ(bl_dist_start(NULL, NULL, &o), 0); /* and epmd started */
    char want[96];
    BL_CHECK(strcmp(bl_dist_node(), dt_node("envnode", want, sizeof want)) == 0);
    char path[128], cookie[64] = {0};
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    struct stat st;
    BL_CHECK_EQ(stat(path, &st), 0);
    BL_CHECK_EQ(st.st_mode & 0777, 0400);
    FILE *f = fopen(path, "r");
    BL_CHECK(f && fgets(cookie, sizeof cookie, f));
    if (f) fclose(f);
    BL_CHECK_EQ(strlen(cookie), 20);
    for (size_t i = 0; i < strlen(cookie); i++) BL_CHECK(cookie[i] >= 'A' && cookie[i] <= 'Z');
    BL_CHECK_EQ(bl_dist_stop(), 0);
    /* The next start reads it (and finds the epmd started above). */
    BL_CHECK_EQ(bl_dist_start("again", NULL, &o), 0);
    BL_CHECK_EQ(bl_dist_stop(), 0);
    long r;
    BL_CHECK_EQ(bl_dirty_run(kill_epmd, NULL, &r), 0);
    BL_CHECK_EQ(r, 0);
}

Test(dist_start, names_cookies_and_epmd, .init = no_epmd, .fini = cleanup)
{
    BL_CHECK_EQ(bl_dist_start("a", "c", NULL), -EPERM); /* outside a process */
    bl_test_run(NULL, start_main, NULL);
}
