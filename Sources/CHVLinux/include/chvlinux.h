// C shims for Linux facilities Swift cannot import directly: function-like ioctl macros,
// _GNU_SOURCE-only functions and the CMSG_* macros for SCM_RIGHTS.
#ifndef CHVLINUX_H
#define CHVLINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chvfilelock.h"
#include "chvfreeze.h"

/// FIFREEZE / FITHAW from <linux/fs.h> (function-like _IOWR macros).
extern const unsigned long chv_FIFREEZE;
extern const unsigned long chv_FITHAW;

/// memfd_create(2) with MFD_CLOEXEC (needs _GNU_SOURCE). Returns -1 and sets errno on failure.
int chv_memfd_create(const char *name);

/// Sends `len` bytes as one message with one file descriptor attached (SCM_RIGHTS).
/// Returns bytes sent or -1 (errno set).
ssize_t chv_send_with_fd(int sock, const void *buf, size_t len, int fd);

/// Receives one message into `buf`; if a descriptor came with it, stores it in *fd_out
/// (close-on-exec), else *fd_out = -1. Sets *truncated when the message was larger than `cap`.
/// Returns bytes received (0 = orderly shutdown) or -1 (errno set).
ssize_t chv_recv_with_fd(int sock, void *buf, size_t cap, int *fd_out, int *truncated);

/// eventfd(2) with EFD_CLOEXEC|EFD_NONBLOCK.
int chv_eventfd(void);

/// timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC|TFD_NONBLOCK).
int chv_timerfd(void);
/// One-shot timerfd_settime relative to now; 0 disarms. Returns 0 or -1 with errno.
int chv_timerfd_set(int fd, uint64_t nanoseconds);

/// accept4(2) with SOCK_CLOEXEC.
int chv_accept_cloexec(int sock);

/// Names the calling thread (pthread_setname_np; at most 15 bytes are kept).
void chv_set_thread_name(const char *name);

/// Reads the calling thread's errno (Swift's errno is a macro on glibc).
int chv_errno(void);

#endif
