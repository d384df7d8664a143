/*
 * vmbus_shim.c — LD_PRELOAD shim for benchmarking the Debian hyperv-daemons against the
 * hvguest emulator. An open of /dev/vmbus/hv_* becomes a SOCK_SEQPACKET connection to
 * $HVBENCH_ROOT/dev/vmbus/hv_* (DESIGN.md, fake device layer 1): one write = one message,
 * one read = one message, poll works unchanged. hv_fcopy_daemon uses pread/pwrite on the
 * device, which a socket refuses (ESPIPE), so those become read/write on shimmed fds.
 * Written for hvguest; no code from the daemons.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEVICE_PREFIX "/dev/vmbus/hv_"
#define MAX_TRACKED 4096

/* Which fds are emulator sockets (only ever touched on the daemon's own thread). */
static unsigned char shimmed[MAX_TRACKED];

static int is_device(const char *path) {
    return path && strncmp(path, DEVICE_PREFIX, sizeof(DEVICE_PREFIX) - 1) == 0;
}

static int connect_device(const char *path) {
    const char *root = getenv("HVBENCH_ROOT");
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (!root || snprintf(addr.sun_path, sizeof addr.sun_path, "%s%s", root, path) >= (int)sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int e = errno;
        close(fd);
        errno = e == ECONNREFUSED ? ENOENT : e;
        return -1;
    }
    if (fd < MAX_TRACKED) shimmed[fd] = 1;
    return fd;
}

#define FORWARD(ret, name, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (!real) real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if (is_device(path)) return connect_device(path);
    FORWARD(int, "open", const char *, int, ...);
    return real(path, flags, m);
}

int open64(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if (is_device(path)) return connect_device(path);
    FORWARD(int, "open64", const char *, int, ...);
    return real(path, flags, m);
}

int openat(int dir, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if (is_device(path)) return connect_device(path);
    FORWARD(int, "openat", int, const char *, int, ...);
    return real(dir, path, flags, m);
}

int openat64(int dir, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if (is_device(path)) return connect_device(path);
    FORWARD(int, "openat64", int, const char *, int, ...);
    return real(dir, path, flags, m);
}

int close(int fd) {
    if (fd >= 0 && fd < MAX_TRACKED) shimmed[fd] = 0;
    FORWARD(int, "close", int);
    return real(fd);
}

static int is_shimmed(int fd) { return fd >= 0 && fd < MAX_TRACKED && shimmed[fd]; }

ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    if (is_shimmed(fd)) return read(fd, buf, n);
    FORWARD(ssize_t, "pread", int, void *, size_t, off_t);
    return real(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
    if (is_shimmed(fd)) return read(fd, buf, n);
    FORWARD(ssize_t, "pread64", int, void *, size_t, off_t);
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (is_shimmed(fd)) return write(fd, buf, n);
    FORWARD(ssize_t, "pwrite", int, const void *, size_t, off_t);
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    if (is_shimmed(fd)) return write(fd, buf, n);
    FORWARD(ssize_t, "pwrite64", int, const void *, size_t, off_t);
    return real(fd, buf, n, off);
}
