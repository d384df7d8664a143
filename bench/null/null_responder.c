/*
 * null_responder.c — the ceiling the emulator allows: registers on one relay device of the
 * hvguest emulator and answers every request with success at once, doing nothing else.
 * Usage: null_responder kvp|vss|fcopy   (device under $HVBENCH_ROOT/dev/vmbus/hv_<kind>)
 * Readiness is the emulator seeing its registration (no sd_notify).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { KVP_MESSAGE = 7432, VSS_MESSAGE = 12, FCOPY_REPLY = 4 };

int main(int argc, char **argv) {
    const char *root = getenv("HVBENCH_ROOT");
    if (argc != 2 || !root) { fprintf(stderr, "usage: HVBENCH_ROOT=DIR null_responder kvp|vss|fcopy\n"); return 2; }
    const char *kind = argv[1];
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/dev/vmbus/hv_%s", root, kind);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror(addr.sun_path); return 1; }

    static unsigned char buf[65536];
    size_t reply = 0;
    memset(buf, 0, sizeof buf);
    /* Registration, as the current daemons send it. */
    if (!strcmp(kind, "kvp")) { buf[0] = 100; reply = KVP_MESSAGE; }          /* KVP_OP_REGISTER1 */
    else if (!strcmp(kind, "vss")) { buf[0] = 129; reply = VSS_MESSAGE; }     /* VSS_OP_REGISTER1 */
    else if (!strcmp(kind, "fcopy")) { buf[0] = 1; reply = FCOPY_REPLY; }     /* FCOPY_CURRENT_VERSION */
    else { fprintf(stderr, "unknown kind %s\n", kind); return 2; }
    size_t registration = !strcmp(kind, "fcopy") ? 4 : reply;
    if (write(fd, buf, registration) != (ssize_t)registration) { perror("register"); return 1; }
    if (read(fd, buf, sizeof buf) <= 0) { perror("registration reply"); return 1; }

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return 0;
        /* Success is 0 in the first four bytes for all three; KVP echoes the whole message. */
        if (reply == KVP_MESSAGE && (size_t)n < KVP_MESSAGE) memset(buf + n, 0, KVP_MESSAGE - n);
        memset(buf, 0, 4);
        if (write(fd, buf, reply) != (ssize_t)reply) return 1;
    }
}
