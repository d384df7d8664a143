#define _GNU_SOURCE
#include "chvfreeze.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int chv_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

unsigned int chv_dev_major(dev_t dev) { return major(dev); }
unsigned int chv_dev_minor(dev_t dev) { return minor(dev); }

int chv_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
