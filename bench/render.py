#!/usr/bin/env python3
"""Renders bench/RESULTS.md and the charts (gnuplot) from hvguest-bench's JSON lines.

Usage: render.py RESULTS.jsonl OUTDIR --machine M --date D --commit C --command CMD
                 --reference R --cpu N --reps N --quick 0|1
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
from collections import OrderedDict

DAEMONS = ("hvguestd", "reference", "null", "floor")


def load(path):
    merged = OrderedDict()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            key = (r["scenario"], r["daemon"], r["param"], r["metric"])
            merged.setdefault(key, {"unit": r["unit"], "values": []})["values"] += [v for v in r["values"] if v is not None]
    return merged


def stats(values):
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


class Results:
    def __init__(self, merged):
        self.m = merged

    def get(self, scenario, daemon, param, metric):
        e = self.m.get((scenario, daemon, param, metric))
        return stats(e["values"]) if e else None

    def p99(self, scenario, daemon, param, metric):
        """Nearest-rank 99th percentile of every sample (VSS: 25 per contender and row)."""
        e = self.m.get((scenario, daemon, param, metric))
        if not e or not e["values"]:
            return None
        v = sorted(e["values"])
        return v[max(0, -(-99 * len(v) // 100) - 1)]

    def params(self, scenario):
        seen = []
        for (s, _, p, _) in self.m:
            if s == scenario and p not in seen:
                seen.append(p)
        return seen


def fmt(v, digits=None):
    if v is None:
        return "—"
    if digits is None:
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    return f"{v:.{digits}f}"


def cell(s, digits=None):
    """median (min–max)"""
    if s is None:
        return "—"
    lo, med, hi = s
    return f"{fmt(med, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def ratio(a, b):
    if a is None or b is None or b[1] == 0:
        return None
    return a[1] / b[1]


def fmt_ratio(r, suffix="×"):
    if r is None:
        return "—"
    if r >= 100:
        return f"{r:,.0f}{suffix}"
    return f"{r:.2f}{suffix}"


def kvp_section(R, out, charts):
    params = R.params("kvp")
    if not params:
        out.append("## KVP\n\nNot measured in this run.\n")
        return
    out.append("## KVP (ops/s, median (min–max) of the runs)\n")
    out.append("| pool | keys | op | hvguestd | reference | null responder | hvguestd / reference | hvguestd / null |")
    out.append("|---|---|---|---|---|---|---|---|")
    ops = [("set_ops", "SET"), ("get_ops", "GET"), ("enumerate_ops", "ENUMERATE"), ("delete_ops", "DELETE")]
    data = {}
    for p in params:
        keys, pool = p.split(" keys, pool ")
        for metric, name in ops:
            h, r, n = (R.get("kvp", d, p, metric) for d in ("hvguestd", "reference", "null"))
            out.append(f"| {pool} | {int(keys):,} | {name} | {cell(h)} | {cell(r)} | {cell(n)} | "
                       f"{fmt_ratio(ratio(h, r))} | {fmt_ratio(ratio(h, n))} |")
            data.setdefault((pool, name), []).append((int(keys), h, r, n))
    out.append("")
    out.append("CPU seconds per 10,000 requests (daemon, all threads; GET+ENUMERATE+DELETE+SET mix):\n")
    out.append("| pool | keys | hvguestd | reference | null responder |")
    out.append("|---|---|---|---|---|")
    for p in params:
        keys, pool = p.split(" keys, pool ")
        cells = [cell(R.get("kvp", d, p, "cpu_s_per_10k"), 3) for d in ("hvguestd", "reference", "null")]
        out.append(f"| {pool} | {int(keys):,} | " + " | ".join(cells) + " |")
    out.append("")
    # Chart: ops/s against pool size, log-log, pool 0.
    for pool in ("0", "1"):
        if (pool, "GET") not in data:
            continue
        charts.append(("kvp-pool%s.png" % pool, kvp_chart(data, pool)))
        out.append(f"![KVP pool {pool}](kvp-pool{pool}.png)\n")


def kvp_chart(data, pool):
    series = []
    for name in ("SET", "GET", "ENUMERATE", "DELETE"):
        rows = data.get((pool, name), [])
        for idx, (d, style) in enumerate((("hvguestd", 1), ("reference", 2), ("null", 3))):
            pts = [(r[0], r[1 + idx][1]) for r in rows if r[1 + idx] is not None]
            if pts:
                series.append((f"{d} {name}", pts, style))
    return {"title": f"KVP pool {pool}: ops/s by pool size (log-log)", "xlabel": "keys in the pool",
            "ylabel": "ops/s", "log": True, "series": series}


def attainable(null_throughput, write_cpu):
    """MB/s of the null responder's job plus the CPU time that writing the bytes alone costs, on
    the same CPU: the fastest any daemon that writes the file could go in this setup."""
    if not null_throughput or not write_cpu:
        return None
    seconds_per_byte = 1 / (null_throughput[1] * 1e6) + write_cpu[1] / (1 << 30)
    return 1 / seconds_per_byte / 1e6


def fcopy_section(R, out, charts):
    params = R.params("fcopy")
    if not params:
        return
    out.append("## File copy (MB/s = 10^6 bytes/s over the whole job; char device relay, and the UIO ring where marked — "
               "there the null responder is the null-sink ceiling of our own ring runner, and no reference daemon exists)\n")
    out.append("| copy | hvguestd | reference | null responder (ceiling) | hvguestd / reference | hvguestd / ceiling | "
               "attainable (ceiling + writing) | hvguestd / attainable | CPU s/GiB hvguestd | CPU s/GiB reference | "
               "CPU s/GiB writing alone |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    bars = []
    for p in params:
        h, r, n = (R.get("fcopy", d, p, "throughput") for d in ("hvguestd", "reference", "null"))
        ch, cr, cw = (R.get("fcopy", d, p, "cpu_s_per_gib") for d in ("hvguestd", "reference", "write"))
        ceil = ratio(h, n)
        att = attainable(n, cw)
        ra = ratio(h, (att, att, att)) if att else None
        out.append(f"| {p} | {cell(h)} | {cell(r)} | {cell(n)} | {fmt_ratio(ratio(h, r))} | "
                   f"{'—' if ceil is None else f'{ceil * 100:.0f} %'} | {fmt(att)} | "
                   f"{'—' if ra is None else f'{ra * 100:.0f} %'} | {cell(ch, 2)} | {cell(cr, 2)} | {cell(cw, 2)} |")
        bars.append((p, [x[1] if x else 0 for x in (h, r, n)]))
    out.append("")
    charts.append(("fcopy.png", {"title": "File copy throughput (MB/s, median)", "bars": bars,
                                 "names": ["hvguestd", "reference", "null responder"], "ylabel": "MB/s"}))
    out.append("![file copy](fcopy.png)\n")


def vss_section(R, out, charts):
    params = R.params("vss")
    if not params:
        return
    out.append("## VSS freeze window (ms: FREEZE sent → THAW answered, no hold; floor = FIFREEZE all + FITHAW all in one process)\n")
    out.append("| filesystems | floor | hvguestd | reference | null responder | hvguestd − floor | hvguestd vs reference | "
               "p99 floor | p99 hvguestd | p99 reference |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    series = {d: [] for d in DAEMONS}
    for p in params:
        f, h, r, n = (R.get("vss", d, p, "freeze_window_ms") for d in ("floor", "hvguestd", "reference", "null"))
        diff = None if h is None or f is None else h[1] - f[1]
        vs = "—" if h is None or r is None else ("≤" if h[1] <= r[1] else ">") + f" ({fmt(h[1] - r[1], 3)} ms)"
        p99s = [R.p99("vss", d, p, "freeze_window_ms") for d in ("floor", "hvguestd", "reference")]
        out.append(f"| {p} | {cell(f, 3)} | {cell(h, 3)} | {cell(r, 3)} | {cell(n, 3)} | "
                   f"{'—' if diff is None else f'{diff:+.3f} ms'} | {vs} | "
                   + " | ".join(fmt(x, 3) for x in p99s) + " |")
        count = int(p.split()[0])
        for d, v in (("floor", f), ("hvguestd", h), ("reference", r), ("null", n)):
            if v is not None:
                series[d].append((count, v[1], p))
    out.append("")
    bars = [(p, [(R.get("vss", d, p, "freeze_window_ms") or (0, 0, 0))[1] for d in ("floor", "hvguestd", "reference")])
            for p in params]
    charts.append(("vss.png", {"title": "VSS freeze window (ms, median)", "bars": bars,
                               "names": ["floor (raw ioctls)", "hvguestd", "reference"], "ylabel": "ms"}))
    out.append("![VSS](vss.png)\n")


def footprint_section(R, out):
    params = R.params("startup")
    if not params:
        return
    out.append("## Footprint and start-up\n")
    out.append("| daemon | services | exec → READY/registered (ms) | idle RSS (MiB) |")
    out.append("|---|---|---|---|")
    for d in ("hvguestd", "reference", "null"):
        for p in params:
            s = R.get("startup", d, p, "startup_ms")
            rss = R.get("startup", d, p, "idle_rss_kib")
            if s is None:
                continue
            rss_mib = tuple(x / 1024 for x in rss) if rss else None
            out.append(f"| {d} | {p} | {cell(s, 2)} | {cell(rss_mib, 2)} |")
    out.append("")
    out.append("Peak RSS (MiB, VmHWM at the end of each scenario run, largest seen):\n")
    out.append("| scenario | hvguestd | reference | null responder |")
    out.append("|---|---|---|---|")
    for scen, metric in (("kvp", "peak_rss_kib"), ("kvp", "loaded_rss_kib"), ("fcopy", "peak_rss_kib")):
        for p in R.params(scen):
            vals = []
            for d in ("hvguestd", "reference", "null"):
                s = R.get(scen, d, p, metric)
                vals.append("—" if s is None else f"{s[2] / 1024:.2f}")
            label = f"{scen} {p}" + (" (RSS after load)" if metric == "loaded_rss_kib" else "")
            out.append(f"| {label} | " + " | ".join(vals) + " |")
    out.append("")


def gnuplot(charts, outdir):
    with tempfile.TemporaryDirectory() as tmp:
        for name, c in charts:
            script = ["set terminal pngcairo size 960,540 font 'sans,10'", f"set output '{os.path.join(outdir, name)}'",
                      f"set title \"{c['title']}\"", "set grid", "set key outside right"]
            if "bars" in c:
                dat = os.path.join(tmp, name + ".dat")
                with open(dat, "w") as f:
                    for label, vals in c["bars"]:
                        f.write('"%s" %s\n' % (label, " ".join(str(v) for v in vals)))
                script += ["set style data histograms", "set style histogram clustered gap 1", "set style fill solid 0.8",
                           f"set ylabel '{c['ylabel']}'", "set xtics rotate by -20", "set yrange [0:*]"]
                plots = [f"'{dat}' using {i + 2}:xtic(1) title '{n}'" for i, n in enumerate(c["names"])]
                script.append("plot " + ", ".join(plots))
            else:
                script += [f"set xlabel '{c['xlabel']}'", f"set ylabel '{c['ylabel']}'"]
                if c.get("log"):
                    script += ["set logscale xy"]
                plots = []
                for i, (title, pts, style) in enumerate(c["series"]):
                    dat = os.path.join(tmp, f"{name}-{i}.dat")
                    with open(dat, "w") as f:
                        for x, y in pts:
                            f.write(f"{x} {y}\n")
                    dash = {1: 1, 2: 2, 3: 3}[style]
                    plots.append(f"'{dat}' using 1:2 with linespoints dt {dash} lw 2 title '{title}'")
                script.append("plot " + ", ".join(plots))
            subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)


def goals_section(R, out):
    """The issue's goals, each checked against this run's medians."""
    rows = []

    def add(goal, measured, ok):
        rows.append(f"| {goal} | {measured} | {'met' if ok else '**missed**' if ok is not None else '—'} |")

    ops = [("set_ops", "SET"), ("get_ops", "GET"), ("enumerate_ops", "ENUMERATE"), ("delete_ops", "DELETE")]
    kvp = R.params("kvp")
    for pool in ("0", "1"):
        small, big = f"10 keys, pool {pool}", f"10000 keys, pool {pool}"
        if small in kvp and big in kvp:
            flat = []
            for m, n in ops:
                a, b = R.get("kvp", "hvguestd", small, m), R.get("kvp", "hvguestd", big, m)
                if a and b:
                    flat.append((n, b[1] / a[1]))
            ca, cb = R.get("kvp", "hvguestd", small, "cpu_s_per_10k"), R.get("kvp", "hvguestd", big, "cpu_s_per_10k")
            if ca and cb:
                # CPU per request is the robust measure on a shared machine; throughput is shown too.
                add(f"KVP per-op cost flat in pool size (pool {pool}: daemon CPU per request at 10,000 keys ÷ at 10 keys ≤ 1.5)",
                    f"{cb[1] / ca[1]:.2f} (ops/s ratios: " + ", ".join(f"{n} {r:.2f}" for n, r in flat) + ")",
                    cb[1] / ca[1] <= 1.5)
        if big in kvp:
            rs = [(n, ratio(R.get("kvp", "hvguestd", big, m), R.get("kvp", "reference", big, m))) for m, n in ops]
            rs = [(n, r) for n, r in rs if r is not None]
            if rs:
                add(f"KVP ≥ 100× the reference at 10,000 keys (pool {pool})", ", ".join(f"{n} {fmt_ratio(r)}" for n, r in rs),
                    min(r for _, r in rs) >= 100)
        worst = None
        for p in kvp:
            if not p.endswith(f"pool {pool}"):
                continue
            for m, n in ops:
                r = ratio(R.get("kvp", "hvguestd", p, m), R.get("kvp", "null", p, m))
                if r is not None and (worst is None or r < worst[0]):
                    worst = (r, f"{n} at {p.split(' keys')[0]} keys")
        if worst:
            add(f"KVP within 2× of the null responder at every size (pool {pool}; worst hvguestd/null)",
                f"{worst[0]:.2f} ({worst[1]})", worst[0] >= 0.5)
    for p in R.params("fcopy"):
        h, n = R.get("fcopy", "hvguestd", p, "throughput"), R.get("fcopy", "null", p, "throughput")
        ch, cr = R.get("fcopy", "hvguestd", p, "cpu_s_per_gib"), R.get("fcopy", "reference", p, "cpu_s_per_gib")
        if h and n:
            transport = "" if p.endswith("UIO") else ", char device"
            att = attainable(n, R.get("fcopy", "write", p, "cpu_s_per_gib"))
            extra = f" (attainable with the write: {h[1] / att * 100:.0f} %)" if att else ""
            add(f"file copy ≥ 95 % of the ceiling ({p}{transport})", f"{h[1] / n[1] * 100:.0f} %{extra}", h[1] / n[1] >= 0.95)
        if ch and cr:
            add(f"file copy CPU per GiB ≤ the reference ({p})", f"{ch[1]:.2f} vs {cr[1]:.2f} s/GiB", ch[1] <= cr[1])
    for p in R.params("vss"):
        f, h, r = (R.get("vss", d, p, "freeze_window_ms") for d in ("floor", "hvguestd", "reference"))
        if f and h:
            add(f"VSS median freeze window ≤ floor + 0.2 ms ({p})", f"{h[1]:.3f} vs {f[1]:.3f} + 0.2 ms", h[1] <= f[1] + 0.2)
        if h and r:
            add(f"VSS median freeze window ≤ the reference's ({p})", f"{h[1]:.3f} vs {r[1]:.3f} ms", h[1] <= r[1])
        q = R.p99("vss", "hvguestd", p, "freeze_window_ms")
        if q is not None:
            qf = R.p99("vss", "floor", p, "freeze_window_ms")
            add(f"VSS p99 freeze window < 10 ms ({p})", f"{q:.3f} ms" + (f" (floor's p99 {qf:.3f} ms)" if qf is not None else ""), q < 10)
    for p in R.params("startup"):
        rss = R.get("startup", "hvguestd", p, "idle_rss_kib")
        if rss:
            add(f"hvguestd idle RSS ≤ 8 MiB ({p})", f"{rss[1] / 1024:.2f} MiB", rss[1] / 1024 <= 8)
    for p in kvp:
        if p.startswith("10000 keys"):
            peak = R.get("kvp", "hvguestd", p, "peak_rss_kib")
            if peak:
                add(f"hvguestd RSS ≤ 12 MiB at 10,000 keys ({p})", f"{peak[2] / 1024:.2f} MiB", peak[2] / 1024 <= 12)
    if rows:
        out.append("## Goals (issue 8), checked against this run\n")
        out.append("| goal | measured (medians) | |")
        out.append("|---|---|---|")
        out += rows
        out.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("outdir")
    for k in ("machine", "date", "commit", "command", "reference", "cpu", "reps", "quick", "load"):
        ap.add_argument("--" + k, default="")
    a = ap.parse_args()
    R = Results(load(a.results))
    out = ["# Benchmarks: hvguestd vs the Debian hyperv-daemons\n",
           "Generated by `bench/run` (do not edit by hand; notes live in the README's Benchmarks section "
           "and at the end of this file).\n",
           f"- Machine: {a.machine}",
           f"- Date: {a.date}",
           f"- Load average (1 min) at start / end: {a.load} — the machine was shared with other jobs; "
           "repetitions are interleaved so that this hits every contender alike, but min–max spreads are wide",
           f"- Commit: {a.commit}",
           f"- Command: `{a.command}`" + ("  (HVBENCH_QUICK=1: reduced sizes)" if a.quick == "1" else ""),
           f"- Reference: {a.reference} (Debian), through `bench/shim/vmbus_shim.c` (LD_PRELOAD)",
           f"- Pinning: the emulator, the driver and the daemon under test all on CPU {a.cpu} (`taskset -c {a.cpu}`)",
           f"- Repetitions: {a.reps} per measurement; cells are median (min–max)\n"]
    charts = []
    goals_section(R, out)
    kvp_section(R, out, charts)
    fcopy_section(R, out, charts)
    vss_section(R, out, charts)
    footprint_section(R, out)
    notes = os.path.join(a.outdir, "NOTES.md")
    if os.path.exists(notes):
        out.append(open(notes).read())
    with open(os.path.join(a.outdir, "RESULTS.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    gnuplot(charts, a.outdir)


if __name__ == "__main__":
    main()
