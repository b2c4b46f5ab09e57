/*
 * A Criterion-compatible test runner for the TSan build only.
 *
 * Criterion 2.4 cannot start under ThreadSanitizer: its inheritable arena
 * cannot find address space beside TSan's shadow mappings, so every test
 * binary aborts before running a test.  The TSan preset compiles the same
 * test sources against this header instead.  It supports the subset of the
 * API the suite uses: Test() with .timeout/.signal/.exit_code/.disabled/
 * .init/.fini, cr_assert* / cr_expect*, cr_skip_test, cr_log_*.  Each test
 * runs in its own forked child, as with Criterion, and the runner prints
 * Criterion's synthesis line.
 */
#ifndef BL_TSAN_SHIM_CRITERION_H
#define BL_TSAN_SHIM_CRITERION_H

#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* cr_assert(x) without a message expands to an empty format string. */
#pragma GCC diagnostic ignored "-Wformat-zero-length"

struct criterion_test_extra {
    double timeout; /* seconds, 0 = the runner's default */
    int signal;     /* the test passes if it dies of this signal */
    int exit_code;  /* expected exit status */
    bool disabled;  /* skip it */
    void (*init)(void);
    void (*fini)(void);
    const char *description;
};

struct bl_shim_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct criterion_test_extra extra;
    struct bl_shim_test *next;
};

static struct bl_shim_test *bl_shim_tests;
static int bl_shim_expect_failed;

#define Test(suite, name, ...)                                                                     \
    static void suite##_##name##_impl(void);                                                       \
    static struct bl_shim_test suite##_##name##_reg = {                                            \
        #suite, #name, suite##_##name##_impl, {__VA_ARGS__}, NULL};                                \
    __attribute__((constructor)) static void suite##_##name##_ctor(void)                           \
    {                                                                                              \
        struct bl_shim_test **t = &bl_shim_tests;                                                  \
        while (*t) t = &(*t)->next;                                                                \
        *t = &suite##_##name##_reg;                                                                \
    }                                                                                              \
    static void suite##_##name##_impl(void)

__attribute__((format(printf, 5, 6))) static inline void
bl_shim_fail(bool fatal, const char *expr, const char *file, int line, const char *fmt, ...)
{
    char msg[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[----] %s:%d: Assertion failed: %s%s%s\n", file, line, expr,
            msg[0] ? ": " : "", msg);
    if (fatal) _exit(1);
    bl_shim_expect_failed = 1;
}

#define BL_SHIM_CHECK(fatal, cond, expr, ...)                                                      \
    do {                                                                                           \
        if (!(cond)) bl_shim_fail(fatal, expr, __FILE__, __LINE__, "" __VA_ARGS__);                \
    } while (0)

#define cr_assert(c, ...)            BL_SHIM_CHECK(1, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...)        BL_SHIM_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)      BL_SHIM_CHECK(1, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)     BL_SHIM_CHECK(1, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)      BL_SHIM_CHECK(1, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)     BL_SHIM_CHECK(1, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)      BL_SHIM_CHECK(1, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)     BL_SHIM_CHECK(1, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(a, ...)       BL_SHIM_CHECK(1, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_assert_not_null(a, ...)   BL_SHIM_CHECK(1, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)  BL_SHIM_CHECK(1, !strcmp((a), (b)), #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) BL_SHIM_CHECK(1, strcmp((a), (b)), #a " != " #b, __VA_ARGS__)
#define cr_assert_fail(...)          BL_SHIM_CHECK(1, 0, "fail", __VA_ARGS__)
#define cr_expect(c, ...)            BL_SHIM_CHECK(0, (c), #c, __VA_ARGS__)
#define cr_expect_not(c, ...)        BL_SHIM_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_eq(a, b, ...)      BL_SHIM_CHECK(0, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)     BL_SHIM_CHECK(0, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)      BL_SHIM_CHECK(0, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)     BL_SHIM_CHECK(0, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)      BL_SHIM_CHECK(0, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)     BL_SHIM_CHECK(0, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_expect_null(a, ...)       BL_SHIM_CHECK(0, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_expect_not_null(a, ...)   BL_SHIM_CHECK(0, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_log_info(...)             (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...)             cr_log_info(__VA_ARGS__)
#define cr_log_error(...)            cr_log_info(__VA_ARGS__)
#define cr_skip_test(...)            (cr_log_info("skipped: " __VA_ARGS__), _exit(77))
#define cr_skip(...)                 cr_skip_test(__VA_ARGS__)

/* Runs one test in a child.  Returns 0 pass, 1 fail, 2 crash, 3 skip. */
static inline int bl_shim_run(struct bl_shim_test *t, double timeout)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        double to = t->extra.timeout > 0 ? t->extra.timeout : timeout;
        if (to > 0) alarm((unsigned)(to + 0.999));
        if (t->extra.init) t->extra.init();
        t->fn();
        if (t->extra.fini) t->extra.fini();
        fflush(NULL);
        _exit(bl_shim_expect_failed ? 1 : t->extra.exit_code);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFSIGNALED(status)) return WTERMSIG(status) == t->extra.signal ? 0 : 2;
    if (t->extra.signal) return 1;
    if (WEXITSTATUS(status) == 77) return 3;
    return WEXITSTATUS(status) == t->extra.exit_code ? 0 : 1;
}

int main(int argc, char **argv)
{
    double timeout = 0;
    const char *filter = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = atof(argv[++i]);
        else if (!strncmp(argv[i], "--timeout=", 10))
            timeout = atof(argv[i] + 10);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strncmp(argv[i], "--filter=", 9))
            filter = argv[i] + 9;
        else if (!strncmp(argv[i], "--verbose", 9))
            verbose = true;
    }
    int tested = 0, passing = 0, failing = 0, crashing = 0;
    for (struct bl_shim_test *t = bl_shim_tests; t; t = t->next) {
        char full[512];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if ((filter && fnmatch(filter, full, 0) != 0) || t->extra.disabled) continue;
        int r = bl_shim_run(t, timeout);
        tested++;
        static const char *const word[] = {"PASS", "FAIL", "CRASH", "SKIP"};
        if (r == 0 || r == 3)
            passing++;
        else if (r == 1)
            failing++;
        else
            crashing++;
        if (verbose || r == 1 || r == 2)
            fprintf(stderr, "[%s] %s::%s\n", word[r], t->suite, t->name);
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n",
            tested, passing, failing, crashing);
    return failing || crashing ? 1 : 0;
}

#endif /* BL_TSAN_SHIM_CRITERION_H */
