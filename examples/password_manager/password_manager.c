/*
 * password_manager.c - the password manager (see password_manager.h): the
 * validation rules, the server's callbacks, and the client side.
 */
#include <beamline.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "password_manager.h"

/* ---- validation: pure functions ---- */

/* Characters, not bytes, as Elixir's String.length counts them (UTF-8 code points). */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80; /* skip continuation bytes */
    return n;
}

const char *password_validate(const password *p)
{
    if (!p->url[0]) return "URL is empty";
    if (!p->username[0]) return "Username is empty";
    if (utf8_length(p->password) < 3) return "Password must be atleast 3 character long";
    return NULL;
}

/* ---- the server ---- */

/* Requests, as gen_server tags. */
enum { PM_SAVE = 1, PM_GET, PM_DELETE };

/* The state: url -> entry, as an array (a map in Elixir). */
typedef struct vault {
    password *entries;
    size_t n, cap;
} vault;

static password *vault_find(vault *v, const char *url)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->entries[i].url, url) == 0) return &v->entries[i];
    return NULL;
}

static void pm_init(void *arg, void **state, bl_gs_result *r)
{
    vault *v = calloc(1, sizeof *v);
    if (!v) bl_gs_stop(r, &BL_REASON(BL_SHUTDOWN)); /* start returns -ECHILD */
    *state = v;
}

/* Stores a validated entry: NULL, or the reason it could not be stored. */
static const char *vault_put(vault *v, const password *p)
{
    password *slot = vault_find(v, p->url);
    if (!slot) {
        if (v->n == v->cap) {
            size_t cap = v->cap ? 2 * v->cap : 8;
            password *e = realloc(v->entries, cap * sizeof *e);
            if (!e) return "Out of memory";
            v->entries = e;
            v->cap = cap;
        }
        slot = &v->entries[v->n++];
    }
    *slot = *p;
    slot->inserted_at = time(NULL);
    return NULL;
}

/* The url a get or delete request carries, or NULL for a malformed request. */
static const char *url_of(const bl_msg *m)
{
    return m->len == PASSWORD_FIELD && memchr(m->data, 0, PASSWORD_FIELD) ? m->data : NULL;
}

static void pm_call(void **state, const bl_msg *m, bl_gs_result *r)
{
    vault *v = *state;
    const char *url;
    if (m->tag == PM_SAVE && m->len == sizeof(password)) {
        password p;
        memcpy(&p, m->data, sizeof p);
        /* Never trust bytes to be terminated strings. */
        p.url[PASSWORD_FIELD - 1] = p.username[PASSWORD_FIELD - 1] = 0;
        p.password[PASSWORD_FIELD - 1] = 0;
        const char *why = password_validate(&p);
        if (!why) why = vault_put(v, &p);
        /* An empty reply is :saved; anything else is the reason of {:error, reason}. */
        bl_gs_reply(r, why, why ? strlen(why) : 0);
    } else if (m->tag == PM_GET && (url = url_of(m))) {
        /* The entry, or an empty reply for :not_found. */
        password *p = vault_find(v, url);
        bl_gs_reply(r, p, p ? sizeof *p : 0);
    }
}

static void pm_cast(void **state, const bl_msg *m, bl_gs_result *r)
{
    vault *v = *state;
    const char *url;
    password *p;
    if (m->tag == PM_DELETE && (url = url_of(m)) && (p = vault_find(v, url)))
        *p = v->entries[--v->n]; /* the last entry takes its place */
}

static void pm_release(void *state)
{
    vault *v = state;
    free(v->entries);
    free(v);
}

static const bl_gen_server pm_callbacks = {
    .init = pm_init,
    .handle_call = pm_call,
    .handle_cast = pm_cast,
    .release = pm_release,
};

/* ---- the client side ---- */

/* Copies s into a field: 0, -EINVAL for NULL, -ENAMETOOLONG when it does not fit. */
static int set_field(char field[PASSWORD_FIELD], const char *s)
{
    if (!s) return -EINVAL;
    size_t len = strnlen(s, PASSWORD_FIELD);
    if (len == PASSWORD_FIELD) return -ENAMETOOLONG;
    memcpy(field, s, len + 1);
    return 0;
}

int password_manager_start_link(void)
{
    bl_name name = BL_NAME_LOCAL(PASSWORD_MANAGER);
    bl_gen_server_opts opts = {.name = &name};
    bl_pid pid;
    return bl_gen_server_start_link(&pid, &pm_callbacks, NULL, &opts);
}

/* A call to the manager by name (-ESRCH when no process holds the name). */
static int pm_request(uint32_t tag, const void *data, size_t len, bl_msg **reply)
{
    *reply = NULL;
    bl_pid pid = bl_whereis(PASSWORD_MANAGER);
    if (!pid) return -ESRCH;
    return bl_gen_server_call(pid, tag, data, len, reply, BL_GS_DEFAULT_TIMEOUT);
}

int password_manager_save(const char *url, const char *username, const char *pass, char *why,
                          size_t why_len)
{
    password p = {0};
    int rc;
    if ((rc = set_field(p.url, url)) || (rc = set_field(p.username, username)) ||
        (rc = set_field(p.password, pass)))
        return rc;
    bl_msg *reply;
    rc = pm_request(PM_SAVE, &p, sizeof p, &reply);
    if (rc == 0 && reply->len > 0) {
        if (why && why_len) snprintf(why, why_len, "%.*s", (int)reply->len, (char *)reply->data);
        rc = PASSWORD_INVALID;
    }
    bl_msg_free(reply);
    return rc;
}

int password_manager_get(const char *url, password *out)
{
    char key[PASSWORD_FIELD] = {0};
    int rc = set_field(key, url);
    if (rc) return rc;
    bl_msg *reply;
    rc = pm_request(PM_GET, key, sizeof key, &reply);
    if (rc == 0) {
        if (reply->len == sizeof *out)
            memcpy(out, reply->data, sizeof *out);
        else
            rc = PASSWORD_NOT_FOUND;
    }
    bl_msg_free(reply);
    return rc;
}

int password_manager_delete(const char *url)
{
    char key[PASSWORD_FIELD] = {0};
    int rc = set_field(key, url);
    if (rc) return rc;
    /* A cast to a name nobody holds is dropped, as GenServer.cast does: still 0. */
    bl_pid pid = bl_whereis(PASSWORD_MANAGER);
    return pid ? bl_gen_server_cast(pid, PM_DELETE, key, sizeof key) : 0;
}

int password_manager_stop(void)
{
    bl_pid pid = bl_whereis(PASSWORD_MANAGER);
    return pid ? bl_gen_server_stop(pid, NULL, BL_GS_DEFAULT_TIMEOUT) : -ESRCH;
}
