// File-system calls for the file copy service that Swift cannot import from Glibc
// without _GNU_SOURCE (renameat2).
#ifndef CHVFILEOPS_H
#define CHVFILEOPS_H

/// renameat2(2) with RENAME_NOREPLACE: fails with EEXIST instead of replacing `newpath`.
/// Returns 0, or -1 with errno set (EINVAL/ENOSYS when the file system or kernel lacks it).
int chv_renameat_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

#endif
