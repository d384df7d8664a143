#!/usr/bin/env bash
# Ships hvguest and checks the shipment (issue 7), on a fresh machine, as root:
#   1. builds the .deb with dpkg-buildpackage from a copy of the tree (artifacts stay in a temp dir);
#   2. lintian --fail-on warning;
#   3. systemd-analyze security --offline=yes: each unit's exposure <= 2.0 (VSS <= 5.0);
#   4. boots systemd in a container over an overlay of this machine's own root
#      (packaging/container-test.sh): installs the package, points the units at an emulated
#      host, and checks units, READY, registrations, journal fields, hvguestctl status,
#      systemd-analyze verify, and that stopping VSS runs thaw-all.
# Nothing is ever frozen: the daemon runs emulated with no VSS allow-list, so FREEZE is refused.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/opt/swift/usr/bin:$PATH
export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)
step() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }

step "installing packaging tools"
[ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    debhelper dpkg-dev fakeroot lintian man-db systemd systemd-container libsystemd-dev pkg-config \
    util-linux python3 >/dev/null

WORK=$(mktemp -d /tmp/hvguest-ship.XXXXXX)
cleanup() {
    # The container stage cleans up after itself; here only files remain.
    rm -rf "$WORK"
}
trap cleanup EXIT

step "building the .deb (dpkg-buildpackage -us -uc -b)"
mkdir -p "$WORK/src"
# Tracked and untracked-but-not-ignored files: what a fresh clone plus local edits would hold.
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion) \
    | tar -xf - -C "$WORK/src"
# SwiftPM's scratch directory lives in the repository (ignored by git) so rebuilds are incremental.
(cd "$WORK/src" && SWIFT_SCRATCH="$REPO/.build-deb" dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1) || {
    tail -60 "$WORK/build.log"; echo "dpkg-buildpackage failed"; exit 1; }
DEB=$(ls "$WORK"/hvguest_*.deb)
ls -l "$WORK"/*.deb
dpkg-deb -f "$DEB" Package Version Depends Conflicts Replaces Provides
dpkg-deb -c "$DEB" | awk '{print $1, $6}'
# The static Swift stdlib: only libc, libm, libstdc++, libgcc and libsystemd may be needed.
dpkg-deb -x "$DEB" "$WORK/root"
for b in usr/sbin/hvguestd usr/bin/hvguestctl; do
    bad=$(objdump -p "$WORK/root/$b" | awk '/NEEDED/ {print $2}' | grep -vE '^(libc|libm|libstdc\+\+|libgcc_s|libsystemd|ld-linux-x86-64)\.so' || true)
    if [ -n "$bad" ]; then echo "$b needs unexpected libraries: $bad"; exit 1; fi
done

step "lintian --fail-on warning"
lintian --fail-on warning --display-info "$DEB" 2>&1 | grep -v 'running with root privileges' | tee "$WORK/lintian.txt" || {
    echo "lintian failed"; exit 1; }
if grep -qE '^[EW]: ' "$WORK/lintian.txt"; then echo "lintian reported errors or warnings"; exit 1; fi
echo "lintian: 0 errors, 0 warnings"

step "systemd-analyze security --offline=yes (<= 2.0; VSS <= 5.0)"
fail=0
for unit in hvguest-kvp hvguest-fcopy hvguest-ics hvguest-vss; do
    limit=2.0
    [ "$unit" = hvguest-vss ] && limit=5.0
    score=$(cd "$WORK/root/lib/systemd/system" && systemd-analyze security --offline=yes --no-pager "$unit.service" 2>&1 \
        | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    ok=$(python3 -c "import sys; print(1 if float('${score:-99}') <= $limit else 0)")
    echo "$unit.service: exposure $score (limit $limit)"
    [ "$ok" = 1 ] || fail=1
done
[ "$fail" = 0 ] || { echo "a unit exceeds its exposure limit"; exit 1; }

step "container test (systemd-nspawn over an overlay of /)"
EMULATOR="$REPO/.build/debug/hvguest-emulator"
[ -x "$EMULATOR" ] || (cd "$REPO" && swift build --product hvguest-emulator >/dev/null)
unshare -m --propagation private bash "$REPO/packaging/container-test.sh" "$WORK" "$DEB" "$EMULATOR"

step "shipping checks passed"
