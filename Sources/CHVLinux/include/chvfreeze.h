// C shims for the VSS service: pipe2 (needs _GNU_SOURCE) and the dev_t major/minor macros.
#ifndef CHVFREEZE_H
#define CHVFREEZE_H

#include <sys/types.h>

/// pipe2(2) with O_CLOEXEC. Returns 0 or -1 (errno set).
int chv_pipe_cloexec(int fds[2]);

/// major(3) / minor(3) of a device number.
unsigned int chv_dev_major(dev_t dev);
unsigned int chv_dev_minor(dev_t dev);

#endif
