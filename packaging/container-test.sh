#!/usr/bin/env bash
# Container stage of packaging/test-systemd.sh; runs in its own mount namespace
# (unshare -m --propagation private), so its mounts vanish with it.
#
# Boots systemd (systemd-nspawn, private network) on an overlay of this machine's root with a
# tmpfs upper layer: the host's own OS, writable, with every change thrown away. Then installs
# the .deb for real (dpkg -i), points the units at an emulated Hyper-V host served from outside
# the container (drop-ins, /etc/default/hvguest), and checks what issue 7 asks.
#
# Safety: the daemon runs emulated (device root /run/hvguest-emu) with no VSS allow-list, so
# every FREEZE is refused; the "stopping VSS thaws" check only THAWS a tmpfs this script mounts
# inside the container (FITHAW of a filesystem that is not frozen is a harmless EINVAL).
set -euo pipefail
WORK=$1 DEB=$2 EMULATOR=$3
NAME=hvguest-test-$$
OVL=$WORK/ovl
ROOT=$OVL/$NAME
EMU=$WORK/emu
NS_PID="" EMU_PID="" C=""
T0=$(date +%s)
say() { echo "-- [$(( $(date +%s) - T0 )) s] $*"; }
fail() { echo "FAIL: $*"; exit 1; }
inside() { nsenter -t "$C" -a "$@"; }

own_cgroup() { awk -F: -v h="$1" '$2 == h {print $3}' /proc/self/cgroup; }
SYSTEMD_CG=/sys/fs/cgroup/systemd$(own_cgroup name=systemd)
UNIFIED_CG=/sys/fs/cgroup/unified$(own_cgroup "")

cleanup() {
    set +e
    if [ -n "$C" ] && kill -0 "$C" 2>/dev/null; then
        nsenter -t "$C" -a systemctl poweroff --no-block >/dev/null 2>&1
    fi
    if [ -n "$NS_PID" ]; then
        for _ in $(seq 1 100); do kill -0 "$NS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NS_PID" 2>/dev/null
        wait "$NS_PID" 2>/dev/null
    fi
    if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; fi
    umount "$ROOT" 2>/dev/null; umount "$OVL" 2>/dev/null
    # What systemd-nspawn leaves behind on a host whose PID 1 is not systemd: empty cgroups
    # below ours, and its per-machine directories in /run/systemd/nspawn.
    for base in "$SYSTEMD_CG" "$UNIFIED_CG"; do
        for sub in payload supervisor; do
            [ -d "$base/$sub" ] && find "$base/$sub" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    done
    for d in /run/systemd/nspawn/propagate/$NAME /run/systemd/nspawn/unix-export/$NAME; do
        rm -rf "$d" 2>/dev/null
    done
    rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/unix-export /run/systemd/nspawn/locks \
        /run/systemd/nspawn 2>/dev/null
    true
}
trap cleanup EXIT

say "overlay root and emulated host"
mkdir -p "$OVL" "$EMU" "$WORK/pkg"
cp "$DEB" "$WORK/pkg/"
mount -t tmpfs -o size=2g,mode=0755 tmpfs "$OVL"
mkdir "$OVL/up" "$OVL/work" "$ROOT"
mount -t overlay overlay -o "lowerdir=/,upperdir=$OVL/up,workdir=$OVL/work" "$ROOT"
"$EMULATOR" serve --root "$EMU" --request-timeout 10 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 1 100); do [ -S "$EMU/dev/vmbus/hv_vss" ] && break; sleep 0.1; done
[ -S "$EMU/dev/vmbus/hv_vss" ] || fail "emulator did not create its devices"

say "booting systemd (nspawn)"
systemd-nspawn -D "$ROOT" --machine="$NAME" -b --register=no --keep-unit --console=passive -q \
    --private-network \
    --bind="$EMU:/run/hvguest-emu" --bind-ro="$WORK/pkg:/run/hvguest-pkg" \
    systemd.firstboot=off systemd.unit=basic.target >"$WORK/nspawn.log" 2>&1 &
NS_PID=$!
for _ in $(seq 1 300); do
    C=$(pgrep -P "$NS_PID" | head -1 || true)
    [ -n "$C" ] && [ "$(cat "/proc/$C/comm" 2>/dev/null)" = systemd ] && break
    C=""; sleep 0.1
done
[ -n "$C" ] || { tail -20 "$WORK/nspawn.log"; fail "container init did not start"; }
state=""
for _ in $(seq 1 300); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) break ;; esac
    sleep 0.2
done
say "system state: $state"
case $state in running|degraded) ;; *) fail "container did not finish booting ($state)" ;; esac

say "dpkg -i"
inside dpkg -i /run/hvguest-pkg/"$(basename "$DEB")" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
inside dpkg-query -W -f '${Package} ${Version} ${Status}\n' hvguest
inside test -x /usr/sbin/hvguestd || fail "hvguestd not installed"
inside test -f /lib/udev/rules.d/70-hvguest.rules || fail "udev rules not installed"
inside sh -c 'dpkg-query --showformat "\${Conffiles}\n" --show hvguest | grep -q /etc/hvguest/hvguest.toml' \
    || fail "hvguest.toml is not a conffile"
for u in kvp fcopy vss ics; do
    inside systemctl is-enabled "hvguest-$u.service" >/dev/null || fail "hvguest-$u.service not enabled by the package"
done

say "systemd-analyze verify"
inside systemd-analyze verify hvguest-kvp.service hvguest-fcopy.service hvguest-vss.service hvguest-ics.service \
    || fail "systemd-analyze verify"

say "pointing the units at the emulated host"
for u in kvp fcopy vss ics; do
    inside mkdir -p "/etc/systemd/system/hvguest-$u.service.d"
    # Not on Hyper-V here (a container), and the devices are sockets below the device root.
    printf '[Unit]\nConditionVirtualization=\nConditionPathExists=\nConditionPathIsDirectory=\n' \
        | inside tee "/etc/systemd/system/hvguest-$u.service.d/50-emulated.conf" >/dev/null
done
echo 'HVGUEST_OPTIONS=--device-root /run/hvguest-emu' | inside tee /etc/default/hvguest >/dev/null
inside mkdir -p /etc/hvguest/hvguest.toml.d
printf '[log]\nlevel = "debug"\n\n[fcopy]\nallowed_roots = ["/var/tmp/hvguest-in"]\n' \
    | inside tee /etc/hvguest/hvguest.toml.d/50-test.toml >/dev/null
# A thaw hook that records its calls (the runtime directory is writable in the VSS sandbox).
printf '#!/bin/sh\necho "$1" >> /run/hvguest/hook-calls\n' | inside tee /etc/hvguest/freeze.d/10-record >/dev/null
inside chmod 0755 /etc/hvguest/freeze.d/10-record
inside hvguestctl config check || fail "hvguestctl config check"

say "starting the units"
inside systemctl daemon-reload
inside systemctl restart hvguest-kvp.service hvguest-fcopy.service hvguest-vss.service hvguest-ics.service \
    || { inside journalctl -b --no-pager -n 60; fail "units did not start"; }
for u in kvp fcopy vss ics; do
    st=$(inside systemctl show -p ActiveState --value "hvguest-$u.service")
    text=$(inside systemctl show -p StatusText --value "hvguest-$u.service")
    echo "hvguest-$u.service: $st; status: $text"
    [ "$st" = active ] || fail "hvguest-$u.service is $st"
    # Type=notify: active means READY=1 arrived; the status line came with it.
    case $text in started:*) ;; *) fail "hvguest-$u.service sent no READY status ($text)" ;; esac
done

say "registrations seen by the emulated host"
ok=0
for _ in $(seq 1 100); do
    out=$("$EMULATOR" status --root "$EMU")
    if [ "$(grep -c ': registered' <<<"$out")" -ge 3 ]; then ok=1; break; fi
    sleep 0.1
done
echo "$out"
[ "$ok" = 1 ] || fail "not every channel registered"

say "host operations"
head -c 300000 /dev/urandom >"$WORK/payload.bin"
"$EMULATOR" copy-file --root "$EMU" "$WORK/payload.bin" /var/tmp/hvguest-in/sub/payload.bin --create-full-path \
    || fail "copy-file"
inside cat /var/tmp/hvguest-in/sub/payload.bin | cmp - "$WORK/payload.bin" || fail "copied file differs"
"$EMULATOR" kvp-set --root "$EMU" --pool 0 HvguestShipTest "written by the host" || fail "kvp-set"
inside hvguestctl kvp list --pool 0 --json | grep -F '"HvguestShipTest"' || fail "the KVP item is not in pool 0"
# No allow-list while emulated: the daemon must refuse to freeze (E_FAIL), touching nothing.
if out=$("$EMULATOR" vss-freeze --root "$EMU"); then fail "FREEZE succeeded without an allow-list: $out"; fi
echo "FREEZE refused as expected: $out"

say "journal fields"
inside journalctl -o json --no-pager SYSLOG_IDENTIFIER=hvguestd >"$WORK/journal.json"
python3 - "$WORK/journal.json" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ops = {(e.get("HV_SERVICE"), e.get("HV_OP")) for e in entries if "HV_OP" in e}
print(f"{len(entries)} entries; (HV_SERVICE, HV_OP): {sorted(ops)}")
assert ("fcopy", "COMPLETE_FCOPY") in ops, "no fcopy COMPLETE_FCOPY entry"
assert ("vss", "FREEZE") in ops, "no vss FREEZE entry"
assert any(s == "kvp" for s, _ in ops), "no kvp entry"
units = {e.get("_SYSTEMD_UNIT") for e in entries}
assert {"hvguest-kvp.service", "hvguest-fcopy.service", "hvguest-vss.service"} <= units, f"entries from units {units}"
PY

say "hvguestctl status"
inside hvguestctl status || fail "hvguestctl status exit $?"
inside hvguestctl status --json >"$WORK/status.json" || fail "hvguestctl status --json"
python3 - "$WORK/status.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
services = {s["service"]: s for s in doc["services"]}
for name in ("kvp", "fcopy", "vss"):
    assert services[name]["state"] == "registered", services[name]
assert services["fcopy"]["last_request"]["operation"] == "COMPLETE_FCOPY"
assert services["fcopy"]["details"]["last_copy_result"] == "ok"
assert services["vss"]["last_request"]["operation"] == "FREEZE"
assert doc["healthy"] is True and len(doc["daemons"]) == 4, doc["daemons"]
print("status: " + ", ".join(f"{n} {s['state']}" for n, s in services.items()))
PY

say "systemctl reload (SIGHUP through ExecReload=)"
pid_before=$(inside systemctl show -p MainPID --value hvguest-kvp.service)
inside systemctl reload hvguest-kvp.service || fail "systemctl reload hvguest-kvp"
ok=0
for _ in $(seq 1 50); do
    if inside journalctl --no-pager -u hvguest-kvp.service -o cat | grep -qF "SIGHUP: configuration re-read"; then ok=1; break; fi
    sleep 0.1
done
[ $ok = 1 ] || { inside journalctl --no-pager -u hvguest-kvp.service -n 20; fail "the reload did not reach the daemon"; }
[ "$(inside systemctl show -p MainPID --value hvguest-kvp.service)" = "$pid_before" ] || fail "reload restarted the daemon"
[ "$(inside systemctl show -p ActiveState --value hvguest-kvp.service)" = active ] || fail "hvguest-kvp not active after reload"
echo "reloaded in place (PID $pid_before)"

say "stopping VSS runs thaw-all"
inside mkdir -p /run/hvguest-thawtest
inside mount -t tmpfs -o size=1m tmpfs /run/hvguest-thawtest
printf '# hvguest: filesystems that may still be frozen; `hvguestd thaw-all` thaws them\n/run/hvguest-thawtest\n' \
    | inside tee /run/hvguest/vss-frozen >/dev/null
inside systemctl stop hvguest-vss.service
inside test ! -e /run/hvguest/vss-frozen || fail "the frozen record is still there after stop"
inside grep -qx thaw /run/hvguest/hook-calls || fail "thaw hooks did not run"
result=$(inside systemctl show -p Result --value hvguest-vss.service)
[ "$result" = success ] || fail "hvguest-vss.service stopped with result $result"
inside journalctl --no-pager -u hvguest-vss.service -o cat | grep -F "not frozen: /run/hvguest-thawtest" \
    || fail "thaw-all did not report the recorded mountpoint"
inside umount /run/hvguest-thawtest

say "status after VSS stopped"
inside hvguestctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(s["service"] for s in d["services"]))'

say "container test passed"
