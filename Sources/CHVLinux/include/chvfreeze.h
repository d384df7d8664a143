// C shims for the VSS service: pipe2 (needs _GNU_SOURCE) and the dev_t major/minor macros.
#ifndef CHVFREEZE_H
#define CHVFREEZE_H

#include <spawn.h>
#include <sys/types.h>

/// pipe2(2) with O_CLOEXEC. Returns 0 or -1 (errno set).
int chv_pipe_cloexec(int fds[2]);

/// major(3) / minor(3) of a device number.
unsigned int chv_dev_major(dev_t dev);
unsigned int chv_dev_minor(dev_t dev);

/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34, _GNU_SOURCE): the child closes
/// every descriptor >= `from`, so hooks inherit nothing but stdin/stdout/stderr.
int chv_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from);

#endif
