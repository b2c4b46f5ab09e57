/*
 * examples/password_manager/password_manager.c: the seed's ExUnit cases, plus the pure
 * validation rules and the client's errors.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "examples/password_manager/password_manager.h"

#include "bl_test.h"

/* describe "save_password/3": saves password if password entry is valid */
static void saves_valid(void *arg)
{
    BL_CHECK_EQ(password_manager_start_link(), 0);
    time_t before = time(NULL);
    BL_CHECK_EQ(password_manager_save("gmail.com", "john_doe@gmail.com", "12345", NULL, 0), 0);
    password p;
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), 0);
    BL_CHECK(strcmp(p.url, "gmail.com") == 0);
    BL_CHECK(strcmp(p.username, "john_doe@gmail.com") == 0);
    BL_CHECK(strcmp(p.password, "12345") == 0);
    BL_CHECK(p.inserted_at >= before && p.inserted_at <= time(NULL));

    /* Saving the same url again replaces the entry. */
    BL_CHECK_EQ(password_manager_save("gmail.com", "jane", "secret", NULL, 0), 0);
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), 0);
    BL_CHECK(strcmp(p.username, "jane") == 0 && strcmp(p.password, "secret") == 0);
}

Test(password_manager, saves_valid_entry)
{
    bl_test_run(NULL, saves_valid, NULL);
}

/* describe "save_password/3": does not save password if password entry is invalid */
static void refuses_invalid(void *arg)
{
    BL_CHECK_EQ(password_manager_start_link(), 0);
    char why[128] = "";
    BL_CHECK_EQ(password_manager_save("gmail.com", "john_doe@gmail.com", "12", why, sizeof why),
                PASSWORD_INVALID);
    BL_CHECK(strcmp(why, "Password must be atleast 3 character long") == 0);
    password p;
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), PASSWORD_NOT_FOUND);

    BL_CHECK_EQ(password_manager_save("gmail.com", "", "12345", why, sizeof why), PASSWORD_INVALID);
    BL_CHECK(strcmp(why, "Username is empty") == 0);
    BL_CHECK_EQ(password_manager_save("", "john", "12345", why, sizeof why), PASSWORD_INVALID);
    BL_CHECK(strcmp(why, "URL is empty") == 0);
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), PASSWORD_NOT_FOUND);
}

Test(password_manager, refuses_invalid_entry)
{
    bl_test_run(NULL, refuses_invalid, NULL);
}

/* describe "delete_password/3": deletes password if password found */
static void deletes(void *arg)
{
    BL_CHECK_EQ(password_manager_start_link(), 0);
    BL_CHECK_EQ(password_manager_save("gmail.com", "john_doe@gmail.com", "12345", NULL, 0), 0);
    BL_CHECK_EQ(password_manager_save("apple.com", "iuser", "ilife", NULL, 0), 0);
    BL_CHECK_EQ(password_manager_delete("gmail.com"), 0);
    /* The cast and the call come from this process, in order: the get sees the delete. */
    password p;
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), PASSWORD_NOT_FOUND);
    BL_CHECK_EQ(password_manager_get("apple.com", &p), 0);
    /* Deleting what is not there is fine too. */
    BL_CHECK_EQ(password_manager_delete("gmail.com"), 0);
    BL_CHECK_EQ(password_manager_get("apple.com", &p), 0);
}

Test(password_manager, deletes_entry)
{
    bl_test_run(NULL, deletes, NULL);
}

/* The name: one manager at a time; the API fails cleanly when none runs. */
static void named(void *arg)
{
    password p;
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), -ESRCH);
    BL_CHECK_EQ(password_manager_save("gmail.com", "john", "12345", NULL, 0), -ESRCH);
    BL_CHECK_EQ(password_manager_delete("gmail.com"), 0);
    BL_CHECK_EQ(password_manager_stop(), -ESRCH);

    BL_CHECK_EQ(password_manager_start_link(), 0);
    BL_CHECK(bl_whereis(PASSWORD_MANAGER) != BL_PID_NONE);
    BL_CHECK_EQ(password_manager_start_link(), -EEXIST);

    /* Bad input never reaches the server. */
    char big[PASSWORD_FIELD + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    BL_CHECK_EQ(password_manager_save(NULL, "john", "12345", NULL, 0), -EINVAL);
    BL_CHECK_EQ(password_manager_save("gmail.com", big, "12345", NULL, 0), -ENAMETOOLONG);
    BL_CHECK_EQ(password_manager_get(big, &p), -ENAMETOOLONG);
    BL_CHECK_EQ(password_manager_delete(NULL), -EINVAL);

    BL_CHECK_EQ(password_manager_stop(), 0);
    BL_CHECK(bl_whereis(PASSWORD_MANAGER) == BL_PID_NONE);
    BL_CHECK_EQ(password_manager_get("gmail.com", &p), -ESRCH);
}

Test(password_manager, named_and_bad_input)
{
    bl_test_run(NULL, named, NULL);
}

/* The rules on their own, without a server (the point of the seed's Password module). */
Test(password_manager, validate)
{
    password p = {.url = "gmail.com", .username = "john", .password = "123"};
    cr_assert_null(password_validate(&p));
    strcpy(p.password, "12");
    cr_assert_str_eq(password_validate(&p), "Password must be atleast 3 character long");
    /* Characters, not bytes: two UTF-8 characters are too short, three are enough. */
    strcpy(p.password, "\xc3\xa9\xc3\xa9");
    cr_assert_not_null(password_validate(&p));
    strcpy(p.password, "\xc3\xa9\xc3\xa9\xc3\xa9");
    cr_assert_null(password_validate(&p));
    p.username[0] = 0;
    cr_assert_str_eq(password_validate(&p), "Username is empty");
    p.url[0] = 0;
    cr_assert_str_eq(password_validate(&p), "URL is empty");
}
