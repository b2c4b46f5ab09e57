/*
 * bench/workloads_http.c - the HTTP request parser on its own: ns to parse
 * the head of the 49-byte request wrk sends for /plaintext
 * ("GET /plaintext HTTP/1.1", "Host: 127.0.0.1:8080"), parser set-up
 * included, as each request on a connection pays it.  No runtime is
 * involved; the figure is the mean over a million parses.
 */
#include <math.h>
#include <string.h>

#include "bench_util.h"
#include "net/http_parser.h"
#include "workloads.h"

/* The request, 49 bytes: what wrk sends for http://127.0.0.1:8080/plaintext. */
static const char req49[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

double wl_http_parse_49b(void)
{
    enum { N = 1000000 };
    size_t len = sizeof req49 - 1;
    uint64_t t0 = now_ns();
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        /* The compiler must not hoist the parse out of the loop: the bytes may change. */
        const char *buf = req49;
        __asm__ volatile("" : "+r"(buf));
        bl_http_parser p;
        bl_http_head r;
        bl_http_parser_init(&p, 8192, 1u << 20);
        int n = bl_http_parse(&p, buf, len, &r);
        if (n != (int)len || r.path_len != 10) return NAN;
        sum += r.path_len;
    }
    uint64_t t1 = now_ns();
    __asm__ volatile("" : : "r"(sum));
    return (double)(t1 - t0) / N;
}
