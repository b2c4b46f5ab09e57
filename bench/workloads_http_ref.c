/*
 * bench/workloads_http_ref.c - the reference for http_parse_49b: the same
 * 49-byte request parsed by Debian's libhttp-parser (nodejs/http-parser,
 * libhttp-parser-dev), with no callbacks, parser set-up included.  Built
 * only when that library is installed (bench/CMakeLists.txt).
 */
#include <http_parser.h>
#include <math.h>
#include <string.h>

#include "bench_util.h"
#include "workloads.h"

static const char req49[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

double wl_http_parse_49b_libhttp_parser(void)
{
    enum { N = 1000000 };
    size_t len = sizeof req49 - 1;
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    uint64_t t0 = now_ns();
    for (int i = 0; i < N; i++) {
        const char *buf = req49;
        __asm__ volatile("" : "+r"(buf));
        http_parser p;
        http_parser_init(&p, HTTP_REQUEST);
        size_t n = http_parser_execute(&p, &settings, buf, len);
        if (n != len || HTTP_PARSER_ERRNO(&p) != HPE_OK) return NAN;
    }
    uint64_t t1 = now_ns();
    return (double)(t1 - t0) / N;
}
