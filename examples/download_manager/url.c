/*
 * url.c - parsing the download manager's sources (see url.h).  A scheme is
 * recognised only when followed by "://", so "a:b" is a local path; http(s)
 * URLs are checked strictly enough that what parses can be sent as a
 * request line and a Host header as it is.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "url.h"

bool dm_url_has_bad_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) return true;
    return false;
}

/* The part of an http(s) URL after "http://" or "https://". */
static int parse_http(const char *p, dm_url *u, bool tls)
{
    if (dm_url_has_bad_chars(p)) return -EINVAL;
    size_t alen = strcspn(p, "/?#");
    if (alen == 0 || memchr(p, '@', alen)) return -EINVAL;
    const char *hs = p, *port = NULL;
    size_t hlen;
    if (*p == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close) return -EINVAL;
        hs = p + 1;
        hlen = (size_t)(close - hs);
        if (close + 1 < p + alen) {
            if (close[1] != ':') return -EINVAL;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon ? (size_t)(colon - p) : alen;
        if (colon) port = colon + 1;
        if (colon && memchr(port, ':', (size_t)(p + alen - port))) return -EINVAL;
    }
    if (hlen == 0 || hlen >= sizeof u->host) return -EINVAL;
    memcpy(u->host, hs, hlen);
    u->host[hlen] = 0;
    u->tls = tls;
    u->port = tls ? 443 : 80;
    if (port) {
        size_t plen = (size_t)(p + alen - port);
        long v = 0;
        if (plen == 0 || plen > 5) return -EINVAL;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) return -EINVAL;
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535) return -EINVAL;
        u->port = (uint16_t)v;
    }
    /* The path and query, without the fragment (never sent). */
    const char *path = p + alen;
    size_t plen = strcspn(path, "#");
    int n = snprintf(u->path, sizeof u->path, "%s%.*s", *path == '/' ? "" : "/", (int)plen, path);
    if (n < 0 || (size_t)n >= sizeof u->path) return -ENAMETOOLONG;
    u->kind = DM_SRC_HTTP;
    return 0;
}

int dm_parse_source(const char *src, dm_url *u)
{
    if (!src || !u || !*src) return -EINVAL;
    memset(u, 0, sizeof *u);
    if (strlen(src) >= DM_URL_MAX) return -ENAMETOOLONG;
    /* A scheme is a letter, then letters, digits, '+', '-' or '.', then "://". */
    size_t i = 0;
    if (isalpha((unsigned char)src[0]))
        while (isalnum((unsigned char)src[i]) || src[i] == '+' || src[i] == '-' || src[i] == '.')
            i++;
    if (i > 0 && strncmp(src + i, "://", 3) == 0) {
        if (i == 4 && strncasecmp(src, "http", 4) == 0) return parse_http(src + 7, u, false);
        if (i == 5 && strncasecmp(src, "https", 5) == 0) return parse_http(src + 8, u, true);
        if (i != 4 || strncasecmp(src, "file", 4) != 0) return -EPROTONOSUPPORT;
        const char *p = src + 7;
        if (strncasecmp(p, "localhost/", 10) == 0) p += 9;
        if (*p != '/') return -EINVAL;
        src = p;
    }
    for (const char *s = src; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return -EINVAL;
    u->kind = DM_SRC_FILE;
    snprintf(u->path, sizeof u->path, "%s", src);
    return 0;
}

void dm_guess_name(const char *src, char *buf, size_t len)
{
    if (!buf || !len) return;
    dm_url u;
    const char *name = "download";
    size_t n = strlen(name);
    if (dm_parse_source(src, &u) == 0) {
        /* The last segment of the path (before the query, for http). */
        size_t end = u.kind == DM_SRC_HTTP ? strcspn(u.path, "?") : strlen(u.path);
        while (u.kind == DM_SRC_FILE && end > 1 && u.path[end - 1] == '/') end--;
        size_t start = end;
        while (start > 0 && u.path[start - 1] != '/') start--;
        if (end > start) {
            name = u.path + start;
            n = end - start;
        } else if (u.kind == DM_SRC_HTTP) {
            name = "index.html";
            n = strlen(name);
        }
        if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.')) {
            name = "download";
            n = strlen(name);
        }
    }
    snprintf(buf, len, "%.*s", (int)n, name);
}
