/*
 * vss_jail.c — the last step before hv_vss_daemon runs in the benchmark. hv_vss_daemon freezes
 * every filesystem whose source is under /dev in /proc/mounts (skipping only loop devices), so it must never see
 * this machine's real mounts. Run inside a fresh mount namespace (unshare -m) whose NEWROOT
 * (a tmpfs) holds only the daemon, libc, the shim, /proc, the emulator's socket directory and
 * our zram filesystems under /mnt:
 *
 *   vss_jail NEWROOT DAEMON [ARG...]
 *
 * It pivots into NEWROOT, detaches the old root, then refuses (exit 97) unless every mount it
 * can see is either not a block device or a /dev/zram* mounted under /mnt/, and only then execs
 * DAEMON (a path inside NEWROOT) with LD_PRELOAD=/shim.so and HVBENCH_ROOT=/emu.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int refuse(const char *why, const char *what) {
    fprintf(stderr, "vss_jail: refusing to start the daemon: %s %s\n", why, what ? what : "");
    return 97;
}

int main(int argc, char **argv) {
    if (argc < 3) return refuse("usage: vss_jail NEWROOT DAEMON [ARG...]", NULL);
    if (chdir(argv[1]) != 0) return refuse("cannot enter", argv[1]);
    if (syscall(SYS_pivot_root, ".", "old") != 0) return refuse("pivot_root failed in", argv[1]);
    if (chdir("/") != 0) return refuse("chdir / failed", NULL);
    if (umount2("/old", MNT_DETACH) != 0) return refuse("cannot detach the old root", NULL);
    rmdir("/old");

    FILE *mounts = fopen("/proc/mounts", "re");
    if (!mounts) return refuse("no /proc/mounts in the new root", NULL);
    char line[4096];
    int zram = 0;
    while (fgets(line, sizeof line, mounts)) {
        char source[1024], target[1024];
        if (sscanf(line, "%1023s %1023s", source, target) != 2) return refuse("unreadable mount line", line);
        if (strncmp(source, "/dev/", 5) != 0) continue;
        if (strncmp(source, "/dev/zram", 9) != 0 || strncmp(target, "/mnt/", 5) != 0) return refuse("foreign block device", line);
        zram++;
    }
    fclose(mounts);
    if (zram == 0) return refuse("no zram filesystem to freeze", NULL);

    setenv("LD_PRELOAD", "/shim.so", 1);
    setenv("HVBENCH_ROOT", "/emu", 1);
    execv(argv[2], argv + 2);
    perror("vss_jail: exec");
    return 127;
}
