/*
 * Pids and exit reasons as text (bl_pid_format, bl_reason_format).
 */
#include <errno.h>

#include "bl_test.h"

Test(format, pid_as_erlang_prints_it)
{
    char buf[32];
    /* Index 4 (stored as 5), generation 7, node 0. */
    bl_pid pid = ((bl_pid)7 << 32) | 5;
    cr_assert_eq(bl_pid_format(pid, buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "<0.4.7>");
    cr_assert_eq(bl_pid_format(BL_PID_NONE, buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "<0.0.0>");
    /* Node bits: a remote process. */
    cr_assert_gt(bl_pid_format(pid | ((bl_pid)3 << 56), buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "<3.4.7>");
}

Test(format, pid_cut_to_the_buffer)
{
    char buf[4] = "xxx";
    bl_pid pid = ((bl_pid)7 << 32) | 5;
    cr_assert_eq(bl_pid_format(pid, buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "<0.");
    cr_assert_eq(bl_pid_format(pid, NULL, 0), 7);
    cr_assert_eq(bl_pid_format(pid, NULL, 8), -EINVAL);
}

Test(format, reasons)
{
    char buf[64];
    bl_reason r = BL_REASON(BL_NORMAL);
    cr_assert_eq(bl_reason_format(&r, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "normal");
    r = BL_REASON(BL_KILLED);
    bl_reason_format(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, "killed");
    r = (bl_reason){.kind = BL_CUSTOM, .code = 42};
    bl_reason_format(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, "custom 42");
    r = (bl_reason){.kind = BL_SHUTDOWN, .detail = "why", .detail_len = 3};
    int n = bl_reason_format(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, "shutdown (3 bytes of detail)");
    cr_assert_eq(n, (int)strlen(buf));
    /* Cut short: the whole length still comes back. */
    char small[5];
    cr_assert_eq(bl_reason_format(&r, small, sizeof small), n);
    cr_assert_str_eq(small, "shut");
}

Test(format, bad_input)
{
    char buf[16];
    bl_reason bad = {.kind = (bl_reason_kind)99};
    cr_assert_eq(bl_reason_format(NULL, buf, sizeof buf), -EINVAL);
    cr_assert_eq(bl_reason_format(&bad, buf, sizeof buf), -EINVAL);
    bl_reason r = BL_REASON(BL_NORMAL);
    cr_assert_eq(bl_reason_format(&r, NULL, 4), -EINVAL);
}
