/*
 * main.c - password_manager, the program: the seed's session with the
 * password manager (password_manager.h), each result printed as
 * IO.inspect would.
 *
 * Run: ./password_manager  (exits 1 if the manager does not behave as expected)
 */
#include <beamline.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "password_manager.h"

/* ---- the scenario ---- */

static _Atomic int failed;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "password_manager: expected %s (line %d)\n", #cond, __LINE__);         \
            atomic_store(&failed, 1);                                                              \
        }                                                                                          \
    } while (0)

/* Saves and prints the outcome as IO.inspect(label: ...) would; returns save's result. */
static int save(const char *label, const char *url, const char *user, const char *pass)
{
    char why[128];
    int rc = password_manager_save(url, user, pass, why, sizeof why);
    if (rc == 0)
        printf("%s: :saved\n", label);
    else if (rc == PASSWORD_INVALID)
        printf("%s: {:error, \"%s\"}\n", label, why);
    else
        printf("%s: failed (%s)\n", label, strerror(-rc));
    return rc;
}

static int get(const char *label, const char *url)
{
    password p;
    int rc = password_manager_get(url, &p);
    if (rc == 0) {
        char when[32];
        struct tm utc;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&p.inserted_at, &utc));
        printf("%s: %%Password{url: \"%s\", username: \"%s\", password: \"%s\", inserted_at: %s}\n",
               label, p.url, p.username, p.password, when);
    } else {
        printf("%s: %s\n", label, rc == PASSWORD_NOT_FOUND ? ":not_found" : strerror(-rc));
    }
    return rc;
}

static void scenario(void *arg)
{
    EXPECT(password_manager_start_link() == 0);
    EXPECT(save("Saving Gmail creds", "gmail.com", "john_doe@gmail.com", "12345") == 0);
    EXPECT(save("Saving Spotify creds", "spotify.com", "music4life", "ab") == PASSWORD_INVALID);
    EXPECT(save("Saving Apple creds", "apple.com", "iuser", "ilife") == 0);
    EXPECT(get("Gmail creds", "gmail.com") == 0);
    EXPECT(get("Spotify creds", "spotify.com") == PASSWORD_NOT_FOUND);
    EXPECT(password_manager_delete("gmail.com") == 0);
    printf("Deleting Gmail: :ok\n");
    /* The delete cast came first from this same process: the get sees it done. */
    EXPECT(get("Gmail creds", "gmail.com") == PASSWORD_NOT_FOUND);
    EXPECT(password_manager_stop() == 0);
}

int main(void)
{
    int rc = bl_main(NULL, scenario, NULL);
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc || atomic_load(&failed) ? 1 : 0;
}
