/* http_hello: a routed HTTP server in a few lines (the top-level README shows it). */
#include <beamline.h>
#include <beamline/http.h>
#include <stdio.h>

static int hello(bl_http_req *req, void *arg)
{
    (void)arg;
    bl_http_set_header(req, "Content-Type", "text/plain");
    return bl_http_reply(req, 200, "Hello, World!\n", 14);
}

static int user(bl_http_req *req, void *arg)
{
    (void)arg;
    size_t n;
    const char *id = bl_http_param(req, "id", &n);
    char body[128];
    int len = snprintf(body, sizeof body, "user %.*s\n", (int)n, id);
    return bl_http_reply(req, 200, body, (size_t)len);
}

static void serve(void *arg)
{
    (void)arg;
    bl_http_router *r;
    bl_http_router_new(&r);
    bl_http_route(r, "GET", "/", hello, NULL);
    bl_http_route(r, "GET", "/users/:id", user, NULL);
    bl_http_server *s;
    bl_msg *m;
    bl_http_server_opts o = {.router = r, .listener = {.host = "127.0.0.1", .port = 8080}};
    if (bl_http_start(&s, &o) == 0) bl_recv(&m, NULL, NULL, BL_INFINITY, 0); /* for ever */
}

int main(void)
{
    bl_config c = {0};
    return bl_main(&c, serve, NULL);
}
