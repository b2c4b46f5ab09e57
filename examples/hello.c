/*
 * hello.c - the smallest complete Beamline program: spawn, send, receive
 * with a timeout.  The README walks through it.
 */
#include <beamline.h>
#include <stdio.h>
#include <string.h>

enum { GREET = 1, REPLY = 2 };

/* A process that answers one greeting and exits. */
static void greeter(void *arg)
{
    (void)arg;
    bl_msg *m = bl_receive(1000); /* wait up to one second */
    if (!m) return;
    char reply[64];
    snprintf(reply, sizeof reply, "hello, %.*s", (int)m->len, (const char *)m->data);
    bl_send(m->from, REPLY, reply, strlen(reply) + 1);
    bl_msg_free(m);
}

/* The main process: runs inside the runtime, which stops when it returns. */
static void main_process(void *arg)
{
    const char *name = arg;
    bl_pid pid;
    if (bl_spawn(&pid, greeter, NULL, NULL) != 0) return;
    bl_send(pid, GREET, name, strlen(name));

    uint32_t want = REPLY;
    bl_msg *m;
    if (bl_recv(&m, bl_match_tag, &want, 1000, 0) == 0) {
        printf("%s\n", (const char *)m->data);
        bl_msg_free(m);
    } else {
        printf("no reply within a second\n");
    }
}

int main(int argc, char **argv)
{
    int rc = bl_main(NULL, main_process, argc > 1 ? argv[1] : "world");
    if (rc) fprintf(stderr, "beamline: %s\n", bl_runtime_error());
    return rc ? 1 : 0;
}
