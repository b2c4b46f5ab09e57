/*
 * password_manager.h - a named gen_server with a client API in front of it.
 *
 * Callers never touch bl_gen_server_call directly: they use
 * password_manager_save / _get / _delete, which find the server by its
 * local name.  The validation rules live in a pure function,
 * password_validate, which can be tested without starting anything.
 *
 *   save    call: validates the entry; answers saved, or an error with a reason
 *   get     call: answers the entry, or not_found
 *   delete  cast: forgets the entry (returns at once)
 *
 * In C the entry is a struct of fixed-size strings, so it travels as plain
 * bytes; strings that do not fit are refused by the client (-ENAMETOOLONG).
 */
#ifndef PASSWORD_MANAGER_H
#define PASSWORD_MANAGER_H

#include <beamline.h>
#include <stddef.h>
#include <time.h>

#define PASSWORD_MANAGER "password_manager" /* the server's local name */
#define PASSWORD_FIELD   128                /* room for each string, NUL included */

/* One saved password (the seed's %Password{}). */
typedef struct password {
    char url[PASSWORD_FIELD];
    char username[PASSWORD_FIELD];
    char password[PASSWORD_FIELD];
    time_t inserted_at; /* set by the server when the entry is saved */
} password;

/* Results besides 0 and negative errnos. */
enum {
    PASSWORD_INVALID = 1,   /* save: the entry was refused; the reason is in why */
    PASSWORD_NOT_FOUND = 1, /* get: no entry for that url */
};

/* The validation rules: NULL when the entry is valid, else the reason. */
const char *password_validate(const password *p);

/*
 * Starts the manager linked to the caller, under the name PASSWORD_MANAGER.
 * 0, -EEXIST when it already runs, or the errors of bl_gen_server_start.
 */
int password_manager_start_link(void);
/*
 * Saves (or replaces) the entry for url.  0 when saved; PASSWORD_INVALID
 * with the reason copied into why (may be NULL); -EINVAL for a NULL string,
 * -ENAMETOOLONG for one of PASSWORD_FIELD bytes or more; -ESRCH when the
 * manager is not running, or the other errors of bl_gen_server_call.
 */
int password_manager_save(const char *url, const char *username, const char *pass, char *why,
                          size_t why_len);
/* Copies the entry for url into *out: 0, PASSWORD_NOT_FOUND, or errors as save. */
int password_manager_get(const char *url, password *out);
/* Forgets the entry for url; a cast, so it returns 0 at once (or -EINVAL, -ENAMETOOLONG). */
int password_manager_delete(const char *url);
/* Stops the manager: 0, -ESRCH when it is not running. */
int password_manager_stop(void);

#endif
