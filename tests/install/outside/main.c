/*
 * tests/install/outside/main.c - a program outside the Beamline tree, built
 * against an installed (or add_subdirectory'd) Beamline by
 * tests/install/check_install.sh.  The main process spawns an echo process,
 * sends it "ping", waits for the "pong" reply, and then the program prints
 * the library's version.  Exits 0 only when all of that worked.
 */
#include <beamline.h>
#include <stdio.h>
#include <string.h>

enum { PING = 1, PONG = 2 };

/* Answers one message with "pong" and exits. */
static void echo(void *arg)
{
    bl_msg *m = bl_receive(10000);
    if (!m) return;
    bl_send(m->from, PONG, "pong", sizeof "pong");
    bl_msg_free(m);
}

/* Sets *ok when the round trip completed. */
static void main_process(void *arg)
{
    int *ok = arg;
    bl_pid pid;
    if (bl_spawn(&pid, echo, NULL, NULL) != 0) return;
    if (bl_send(pid, PING, "ping", sizeof "ping") != 0) return;
    uint32_t want = PONG;
    bl_msg *m;
    if (bl_recv(&m, bl_match_tag, &want, 10000, 0) != 0) return;
    printf("reply: %s\n", (const char *)m->data);
    bl_msg_free(m);
    *ok = 1;
}

int main(void)
{
    int ok = 0;
    if (bl_main(NULL, main_process, &ok) != 0) {
        fprintf(stderr, "beamline: %s\n", bl_runtime_error());
        return 1;
    }
    printf("beamline %s\n", bl_version());
    if (strcmp(bl_version(), BL_VERSION_STRING) != 0) {
        fprintf(stderr, "compiled against %s\n", BL_VERSION_STRING);
        return 1;
    }
    return ok ? 0 : 1;
}
