#!/bin/sh
# vss-ns.sh WORKDIR NEWROOT EMUROOT DAEMON ZRAM-ID... — run under `unshare -m`: builds a tmpfs
# root holding only hv_vss_daemon, libc, the shim, /proc, the emulator's sockets (a bind of a
# tmpfs directory) and the given zram filesystems, then vss_jail pivots into it, checks the
# mount table and execs the daemon. Nothing here touches the parent namespace's mounts.
set -eu
work=$1 new=$2 emu=$3 daemon=$4
shift 4
mount --make-rprivate /
mkdir -p "$new"
mount -t tmpfs -o size=64m,mode=0755 hvbench-vssroot "$new"
mkdir -p "$new/proc" "$new/old" "$new/emu" "$new/dev" "$new/sbin" "$new/lib64" "$new/lib/x86_64-linux-gnu" "$new/mnt"
cp "$daemon" "$new/sbin/hv_vss_daemon"
cp /lib/x86_64-linux-gnu/libc.so.6 "$new/lib/x86_64-linux-gnu/"
cp /lib64/ld-linux-x86-64.so.2 "$new/lib64/"
cp "$work/vmbus_shim.so" "$new/shim.so"
mount --bind "$emu" "$new/emu"
for z in "$@"; do
    mknod "$new/dev/zram$z" b "$(cut -d: -f1 "/sys/block/zram$z/dev")" "$(cut -d: -f2 "/sys/block/zram$z/dev")"
    mkdir -p "$new/mnt/z$z"
    mount -t ext4 "/dev/zram$z" "$new/mnt/z$z"
done
mount -t proc proc "$new/proc"
unset LD_PRELOAD
exec "$work/vss_jail" "$new" /sbin/hv_vss_daemon -n
