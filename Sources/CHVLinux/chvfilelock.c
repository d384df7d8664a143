#define _GNU_SOURCE
#include "chvfilelock.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

int chv_posix_lock_whole_file(int fd, int type, int wait) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type == 2 ? F_WRLCK : (type == 1 ? F_RDLCK : F_UNLCK);
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0; /* to the end of the file, however it grows */
    return fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl);
}

int chv_set_mtime(int fd, int64_t seconds, int64_t nanoseconds) {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = (time_t)seconds;
    times[1].tv_nsec = (long)nanoseconds;
    return futimens(fd, times);
}

int chv_flock(int fd, int op) { return flock(fd, op); }
