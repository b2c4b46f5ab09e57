/*
 * net/http_router.c - the router (a table of method + path pattern, tried
 * in order, matched segment by segment with ":name" parameters and a
 * trailing "*") and the request's accessors: method, path, query, path
 * parameters and header fields by name.
 *
 * Header fields are indexed on the first lookup only (a rescan of the
 * head, which the parser already validated), so a handler that never
 * looks at them pays nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_int.h"

/* One route. */
typedef struct route {
    char *method;       /* the method token, or NULL for any */
    char *pattern;      /* the path pattern */
    bl_http_handler fn; /* its handler */
    void *arg;          /* and the handler's argument */
} route;

struct bl_http_router {
    route *routes;      /* in the order added */
    size_t n;           /* how many */
    size_t cap;         /* room for */
    bl_http_handler fb; /* the fallback, or NULL */
    void *fb_arg;       /* its argument */
};

int bl_http_router_new(bl_http_router **out)
{
    if (!out) return -EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void bl_http_router_free(bl_http_router *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].method);
        free(r->routes[i].pattern);
    }
    free(r->routes);
    free(r);
}

/* A pattern: '/' then segments, each literal, ":name" or (last) "*"; params at most MAX. */
static bool pattern_ok(const char *p)
{
    if (p[0] != '/') return false;
    unsigned params = 0;
    for (const char *s = p + 1;;) {
        const char *e = strchrnul(s, '/');
        if (*s == ':' && (e - s < 2 || ++params > BL_HTTP_MAX_PARAMS)) return false;
        if (*s == '*' && (e - s != 1 || *e)) return false;
        for (const char *q = s; q < e; q++)
            if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f) return false;
        if (!*e) return true;
        s = e + 1;
    }
}

int bl_http_route(bl_http_router *r, const char *method, const char *pattern, bl_http_handler h,
                  void *arg)
{
    if (!r || !pattern || !h || !pattern_ok(pattern)) return -EINVAL;
    if (method) {
        size_t n = strlen(method);
        if (!n) return -EINVAL;
        for (size_t i = 0; i < n; i++)
            if (!(bl__http_class[(unsigned char)method[i]] & BL__HTTP_C_TCHAR)) return -EINVAL;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        route *v = realloc(r->routes, cap * sizeof *v);
        if (!v) return -ENOMEM;
        r->routes = v;
        r->cap = cap;
    }
    route *rt = &r->routes[r->n];
    rt->method = method ? strdup(method) : NULL;
    rt->pattern = strdup(pattern);
    if ((method && !rt->method) || !rt->pattern) {
        free(rt->method);
        free(rt->pattern);
        return -ENOMEM;
    }
    rt->fn = h;
    rt->arg = arg;
    r->n++;
    return 0;
}

int bl_http_router_fallback(bl_http_router *r, bl_http_handler h, void *arg)
{
    if (!r) return -EINVAL;
    r->fb = h;
    r->fb_arg = arg;
    return 0;
}

/* Does path[0..len) match pattern?  Fills params (when not NULL) as it goes. */
static bool path_match(const char *pat, const char *path, size_t len, bl__http_param *params,
                       unsigned *np)
{
    if (len == 0 || path[0] != '/') return false;
    const char *p = pat + 1, *s = path + 1, *end = path + len;
    unsigned n = 0;
    for (;;) {
        if (p[0] == '*' && p[1] == 0) break; /* the rest, whatever it is */
        const char *pe = strchrnul(p, '/');
        const char *se = memchr(s, '/', (size_t)(end - s));
        if (!se) se = end;
        if (*p == ':') {
            if (se == s) return false; /* a parameter is never empty */
            if (params)
                params[n] = (bl__http_param){p + 1, (size_t)(pe - p - 1), s, (size_t)(se - s)};
            n++;
        } else if (pe - p != se - s || memcmp(p, s, (size_t)(pe - p)) != 0) {
            return false;
        }
        if (!*pe || se == end) {
            if (*pe || se != end) return false; /* one has more segments than the other */
            break;
        }
        p = pe + 1;
        s = se + 1;
    }
    if (np) *np = n;
    return true;
}

/* Does route rt take method m[0..len)?  A GET route takes HEAD too. */
static bool method_match(const route *rt, const char *m, size_t len)
{
    if (!rt->method) return true;
    if (strlen(rt->method) == len && memcmp(rt->method, m, len) == 0) return true;
    return len == 4 && memcmp(m, "HEAD", 4) == 0 && strcmp(rt->method, "GET") == 0;
}

/* Appends method to the Allow list in allow (", "-separated), once. */
static void allow_add(char *allow, size_t cap, const char *method)
{
    size_t ml = strlen(method), have = strlen(allow);
    for (const char *a = allow; *a;) {
        const char *e = strchrnul(a, ',');
        if ((size_t)(e - a) == ml && memcmp(a, method, ml) == 0) return;
        a = *e ? e + 2 : e;
    }
    if (have + ml + 3 > cap) return;
    if (have) memcpy(allow + have, ", ", 2), have += 2;
    memcpy(allow + have, method, ml + 1);
}

void bl__http_route(const bl_http_router *r, bl_http_req *req, bl_http_handler *h, void **arg,
                    char *allow, size_t allow_cap)
{
    const char *m = req->h.method_name;
    size_t ml = req->h.method_len;
    allow[0] = 0;
    for (size_t i = 0; i < r->n; i++) {
        const route *rt = &r->routes[i];
        if (!path_match(rt->pattern, req->h.path, req->h.path_len, NULL, NULL)) continue;
        if (method_match(rt, m, ml)) {
            path_match(rt->pattern, req->h.path, req->h.path_len, req->params, &req->nparams);
            *h = rt->fn;
            *arg = rt->arg;
            return;
        }
        allow_add(allow, allow_cap, rt->method);
        if (strcmp(rt->method, "GET") == 0) allow_add(allow, allow_cap, "HEAD");
    }
    /* No route for this method: 405 if the path has some, else the fallback or 404. */
    *h = !allow[0] ? r->fb : NULL;
    *arg = r->fb_arg;
}

/* ---- the request's accessors ---- */

const char *bl_http_method(const bl_http_req *req, size_t *len)
{
    if (len) *len = req ? req->h.method_len : 0;
    return req ? req->h.method_name : NULL;
}

const char *bl_http_path(const bl_http_req *req, size_t *len)
{
    if (len) *len = req ? req->h.path_len : 0;
    return req ? req->h.path : NULL;
}

const char *bl_http_query(const bl_http_req *req, size_t *len)
{
    if (len) *len = 0;
    if (!req) return NULL;
    const char *q = memchr(req->h.target, '?', req->h.target_len);
    if (!q) return NULL;
    if (len) *len = (size_t)(req->h.target + req->h.target_len - q - 1);
    return q + 1;
}

int bl_http_version(const bl_http_req *req)
{
    return req ? req->h.minor : -EINVAL;
}

const char *bl_http_param(const bl_http_req *req, const char *name, size_t *len)
{
    if (len) *len = 0;
    if (!req || !name) return NULL;
    size_t nl = strlen(name);
    for (unsigned i = 0; i < req->nparams; i++) {
        const bl__http_param *p = &req->params[i];
        if (p->name_len == nl && memcmp(p->name, name, nl) == 0) {
            if (len) *len = p->value_len;
            return p->value;
        }
    }
    return NULL;
}

int64_t bl_http_body_length(const bl_http_req *req)
{
    if (!req) return -EINVAL;
    return req->h.chunked ? -1 : (int64_t)req->h.content_length;
}

/*
 * Indexes the head's fields: after the request line, "name:" OWS value
 * OWS CRLF each, up to the empty line (the parser checked all of it and
 * counted at most max_headers fields).
 */
static void index_fields(bl_http_req *req)
{
    const char *h = req->head, *end = h + req->h.head_len - 2;
    /* The request line's end (empty lines may come before it). */
    const char *p = memchr(req->h.method_name, '\n', (size_t)(end - req->h.method_name));
    int n = 0;
    uint32_t max = req->c->o.max_headers;
    while (p && ++p < end && (uint32_t)n < max) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = eol ? memchr(p, ':', (size_t)(eol - p)) : NULL;
        if (!colon) break; /* cannot happen in a head the parser accepted */
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        req->fields[n++] = (bl__http_hfield){(uint32_t)(p - h), (uint32_t)(colon - p),
                                             (uint32_t)(v - h), (uint32_t)(ve - v)};
        p = eol + 1;
    }
    req->nfields = n;
}

int bl_http_header_at(bl_http_req *req, size_t i, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    if (!req) return -EINVAL;
    if (req->nfields < 0) index_fields(req);
    if (i >= (size_t)req->nfields) return -ENOENT;
    const bl__http_hfield *f = &req->fields[i];
    if (name) *name = req->head + f->name_off;
    if (name_len) *name_len = f->name_len;
    if (value) *value = req->head + f->value_off;
    if (value_len) *value_len = f->value_len;
    return 0;
}

const char *bl_http_header(bl_http_req *req, const char *name, size_t *len)
{
    if (len) *len = 0;
    if (!req || !name) return NULL;
    if (req->nfields < 0) index_fields(req);
    size_t nl = strlen(name);
    for (int i = 0; i < req->nfields; i++) {
        const bl__http_hfield *f = &req->fields[i];
        if (f->name_len == nl && strncasecmp(req->head + f->name_off, name, nl) == 0) {
            if (len) *len = f->value_len;
            return req->head + f->value_off;
        }
    }
    return NULL;
}
