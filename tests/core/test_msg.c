/*
 * Envelopes: the payload copy (bl__msg_copy) copies exactly the bytes it is
 * given, whatever their length, never reading or writing a byte outside
 * them.  Each source sits against a page that cannot be read, on one side
 * and then the other, so a read past either end faults.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/msg.h"

enum { MAXLEN = 80, GUARD = 16 };

/* Three pages: the middle one readable, the outer two not. */
static char *fenced_page(size_t *page)
{
    *page = (size_t)sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, 3 * *page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(base, MAP_FAILED);
    cr_assert_eq(mprotect(base + *page, *page, PROT_READ | PROT_WRITE), 0);
    return base + *page;
}

static void check_copy(const char *src, size_t len)
{
    char dst[GUARD + MAXLEN + GUARD];
    memset(dst, 0x5a, sizeof dst);
    bl__msg_copy(dst + GUARD, src, len);
    cr_assert_eq(memcmp(dst + GUARD, src, len), 0, "len %zu: the bytes differ", len);
    for (size_t i = 0; i < GUARD; i++) {
        cr_assert_eq(dst[i], 0x5a, "len %zu: wrote %zu bytes before the copy", len, GUARD - i);
        cr_assert_eq(dst[GUARD + len + i], 0x5a, "len %zu: wrote past the copy", len);
    }
}

Test(msg, the_copy_reads_and_writes_only_the_payload)
{
    size_t page;
    char *p = fenced_page(&page);
    for (size_t i = 0; i < page; i++) p[i] = (char)(i * 131 + 7);
    for (size_t len = 0; len <= MAXLEN; len++) {
        check_copy(p + page - len, len); /* ends at the page's end */
        check_copy(p, len);              /* starts at its start */
        check_copy(p + 1, len);          /* unaligned */
    }
    munmap(p - page, 3 * page);
}

Test(msg, an_envelope_carries_its_payload_whole)
{
    for (size_t len = 0; len <= MAXLEN; len++) {
        char src[MAXLEN];
        for (size_t i = 0; i < len; i++) src[i] = (char)(len + i);
        bl_msg *m = bl__msg_alloc(NULL, len);
        cr_assert_not_null(m);
        bl__msg_copy(m->data, src, len);
        cr_assert_eq(m->len, len);
        cr_assert_eq(memcmp(m->data, src, len), 0);
        bl__msg_free(NULL, m);
    }
}
