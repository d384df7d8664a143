// File-system calls for the file copy service that Swift cannot import from Glibc
// without _GNU_SOURCE (renameat2, sync_file_range).
#ifndef CHVFILEOPS_H
#define CHVFILEOPS_H

/// renameat2(2) with RENAME_NOREPLACE: fails with EEXIST instead of replacing `newpath`.
/// Returns 0, or -1 with errno set (EINVAL/ENOSYS when the file system or kernel lacks it).
int chv_renameat_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of the range without
/// waiting for it. Returns 0, or -1 with errno set.
int chv_start_writeback(int fd, long long offset, long long count);

#endif
