/*
 * otp/task/reftab.c - a set of task references (open addressing, linear
 * probing, deletion by backward shift), so that a receive waiting for many
 * tasks (many.c, stream.c) tests each message in constant time.  Owned by
 * one process; no locking.
 */
#include <errno.h>
#include <stdlib.h>

#include "otp/task/task_int.h"

int bl__task_tab_init(reftab *t, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) cap <<= 1;
    t->keys = calloc(cap, sizeof *t->keys);
    t->vals = malloc(cap * sizeof *t->vals);
    if (!t->keys || !t->vals) {
        free(t->keys);
        free(t->vals);
        return -ENOMEM;
    }
    t->mask = (uint32_t)(cap - 1);
    return 0;
}

void bl__task_tab_fini(reftab *t)
{
    free(t->keys);
    free(t->vals);
}

static uint32_t tab_home(const reftab *t, bl_ref r)
{
    return (uint32_t)((r * 0x9E3779B97F4A7C15ull) >> 32) & t->mask;
}

void bl__task_tab_put(reftab *t, bl_ref r, uint32_t v)
{
    uint32_t i = tab_home(t, r);
    while (t->keys[i]) i = (i + 1) & t->mask;
    t->keys[i] = r;
    t->vals[i] = v;
}

uint32_t bl__task_tab_find(const reftab *t, bl_ref r)
{
    for (uint32_t i = tab_home(t, r); t->keys[i]; i = (i + 1) & t->mask)
        if (t->keys[i] == r) return i;
    return TAB_NONE;
}

uint32_t bl__task_tab_get(const reftab *t, bl_ref r)
{
    uint32_t i = bl__task_tab_find(t, r);
    return i == TAB_NONE ? TAB_NONE : t->vals[i];
}

void bl__task_tab_del(reftab *t, bl_ref r)
{
    uint32_t i = bl__task_tab_find(t, r);
    if (i == TAB_NONE) return;
    t->keys[i] = BL_REF_NONE;
    for (uint32_t j = (i + 1) & t->mask; t->keys[j]; j = (j + 1) & t->mask) {
        uint32_t k = tab_home(t, t->keys[j]);
        /* Entry j stays unless the hole at i lies between its home k and j. */
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (stays) continue;
        t->keys[i] = t->keys[j];
        t->vals[i] = t->vals[j];
        t->keys[j] = BL_REF_NONE;
        i = j;
    }
}

bool bl__task_match_tab(const bl_msg *m, void *arg)
{
    return (m->tag == BL_TAG_TASK_REPLY || m->tag == BL_TAG_DOWN) &&
           bl__task_tab_find(arg, m->ref) != TAB_NONE;
}
