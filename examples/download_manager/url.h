/*
 * url.h - the download manager's sources: an http:// or https:// URL, a
 * file:// URL or a plain path, parsed into a dm_url, and the file name a source suggests.
 * Part of the module's API (manager.h includes it); pure functions, usable
 * from any thread.
 */
#ifndef DM_URL_H
#define DM_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_URL_MAX 1024 /* a source, NUL included */

/* What a source names. */
typedef enum dm_kind { DM_SRC_HTTP = 1, DM_SRC_FILE = 2 } dm_kind;

/* A parsed source. */
typedef struct dm_url {
    dm_kind kind;          /* http(s) or a local file */
    bool tls;              /* https: the connection runs TLS */
    char host[256];        /* http: the host (an IPv6 address without brackets) */
    uint16_t port;         /* http: 80 (https: 443) unless given */
    char path[DM_URL_MAX]; /* http: path and query, "/" at least; file: the file's path */
} dm_url;

/*
 * Parses a source: http://host[:port][/path], https://host[:port][/path]
 * (kind DM_SRC_HTTP, tls set), file:///path (or file://localhost/path), or
 * a plain path.  0, or -EINVAL (NULL, empty, control characters or spaces,
 * no host, a bad port, credentials in the URL, a relative file:// path),
 * -EPROTONOSUPPORT (any other scheme), -ENAMETOOLONG.
 */
int dm_parse_source(const char *src, dm_url *out);
/* The file name a source suggests ("index.html" for an http path ending in '/'). */
void dm_guess_name(const char *src, char *buf, size_t len);
/* True if s has a control character, a space or DEL, which no URL may hold. */
bool dm_url_has_bad_chars(const char *s);

#endif
