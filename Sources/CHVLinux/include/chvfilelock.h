// C shims for the KVP pool files: POSIX record locks (struct flock collides with the flock()
// function name in Swift) and futimens with UTIME_OMIT (a macro Swift does not import).
#ifndef CHVFILELOCK_H
#define CHVFILELOCK_H

#include <stdint.h>

/// fcntl(F_SETLKW / F_SETLK) on the whole file. `type`: 0 = unlock, 1 = read lock, 2 = write lock.
/// Returns 0 or -1 (errno set; EINTR is returned to the caller, which retries).
int chv_posix_lock_whole_file(int fd, int type, int wait);

/// flock(2) (the name is also a struct in Swift). `op`: LOCK_SH, LOCK_EX or LOCK_UN.
int chv_flock(int fd, int op);

/// Sets only the modification time (access time untouched). Returns 0 or -1 (errno set).
int chv_set_mtime(int fd, int64_t seconds, int64_t nanoseconds);

#endif
