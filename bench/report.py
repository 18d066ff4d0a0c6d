#!/usr/bin/python3
"""Write bench/results/README.md and the charts from what the sections left.

    bench/report.py RESULTS_DIR

Reads RESULTS_DIR/raw/sections.tsv (section, status, seconds; written by
bench/run.sh) and, for each section listed, RESULTS_DIR/raw/<section>/:

  figures.tsv  id chart label unit peer agg better rule target   (one row a figure)
  samples.tsv  id side round value          (side: tsunagi | peer; one row a measurement)
  charts.tsv   id title ylabel              (figures name their chart; "-" is none)
  method.md    how the numbers were made (markdown, copied in)

agg is how samples become the figure (median, sum, max); rule is the target:
ge_peer / le_peer (tsunagi against the peer), le:N / ge:N / eq:N (tsunagi
against a number), none. Charts become RESULTS_DIR/<section>-<chart>.png.
"""
import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


def aggregate(values, agg):
    if not values:
        return None
    if agg == "sum":
        return sum(values)
    if agg == "max":
        return max(values)
    return statistics.median(values)


def verdict(rule, t, p):
    if rule == "none" or t is None:
        return None
    if rule == "ge_peer":
        return None if p is None else t >= p
    if rule == "le_peer":
        return None if p is None else t <= p
    kind, _, num = rule.partition(":")
    n = float(num)
    return {"le": t <= n, "ge": t >= n, "eq": t == n}.get(kind)


def verdict_text(v):
    return "—" if v is None else ("**pass**" if v else "**FAIL**")


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    virt = ""
    try:
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        pass
    if not virt:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                virt = "yes (hypervisor flag)" if " hypervisor" in f.read() else "none seen"
        except OSError:
            virt = "unknown"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False).stdout.strip()
    if not commit:
        commit = "no commit yet"
    if dirty:
        commit += " + uncommitted changes in src/"
    return [
        ("CPU", model),
        ("cores", f"{os.cpu_count()} online"),
        ("memory", mem),
        ("virtualised", virt),
        ("kernel", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("tsunagi", commit),
    ]


GNUPLOT = r"""
set terminal pngcairo size 900,480 enhanced font ",10"
set output '{png}'
set title "{title}"
set ylabel "{ylabel}"
set style fill solid 0.85 border -1
set boxwidth 0.34
set xrange [-0.6:{xmax}]
set yrange [0:{ymax}]
set grid ytics lc rgb "#dddddd"
set key top right
set xtics ({xtics}) nomirror
set ytics nomirror
set border 3
{target}
plot '{dat}' using ($1-0.18):2 with boxes lc rgb "#d9480f" title "tsunagi", \
     '' using ($1+0.18):5 with boxes lc rgb "#868e96" title "{peer}", \
     '' using ($1-0.18):2:3:4 with yerrorbars lc rgb "#000000" pt -1 notitle, \
     '' using ($1+0.18):5:6:7 with yerrorbars lc rgb "#000000" pt -1 notitle, \
     '' using ($1-0.18):($4+{pad}):(sprintf("%s", strcol(8))) with labels notitle, \
     '' using ($1+0.18):($7+{pad}):(sprintf("%s", strcol(9))) with labels notitle
"""


def gp_escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def chart(results, raw, section, chart_row, figs):
    """One bar pair per figure: tsunagi and the peer, median with min-max bars."""
    cid = chart_row["id"]
    png = f"{section}-{cid}.png"
    dat = os.path.join(raw, f"chart-{cid}.dat")
    ymax = 0.0
    lines = []
    for i, f in enumerate(figs):
        t, p = f["t"], f["p"]
        tv, pv = f["tvals"] or [0], f["pvals"] or [0]
        lines.append(f"{i} {t or 0} {min(tv)} {max(tv)} {p or 0} {min(pv)} {max(pv)} "
                     f"\"{fmt(t)}\" \"{fmt(p)}\"")
        ymax = max(ymax, max(tv), max(pv))
    target = ""
    rule = figs[0]["rule"]
    if rule[:3] in ("le:", "ge:"):
        n = float(rule[3:])
        ymax = max(ymax, n)
        target = (f"set arrow from -0.6,{n} to {len(figs) - 0.4},{n} nohead dt 2 lw 2 "
                  f"lc rgb \"#1971c2\" front\n"
                  f"set label \"target {figs[0]['target']}\" at {len(figs) - 0.45},{n} right "
                  f"offset 0,0.7 tc rgb \"#1971c2\" front")
    ymax = ymax * 1.18 if ymax > 0 else 1
    with open(dat, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    xtics = ", ".join(f"\"{gp_escape(f['label'])}\" {i}" for i, f in enumerate(figs))
    script = GNUPLOT.format(png=os.path.join(results, png), title=gp_escape(chart_row["title"]),
                            ylabel=gp_escape(chart_row["ylabel"]), xmax=len(figs) - 0.4,
                            ymax=ymax, xtics=xtics, target=target, dat=dat,
                            peer=gp_escape(figs[0]["peer"]), pad=ymax * 0.035)
    gp = os.path.join(raw, f"chart-{cid}.gp")
    with open(gp, "w", encoding="utf-8") as fh:
        fh.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        print(f"report: gnuplot failed for {png}: {r.stderr.strip()}", file=sys.stderr)
        return None
    return png


def section_report(results, section, status):
    raw = os.path.join(results, "raw", section)
    figs = read_tsv(os.path.join(raw, "figures.tsv"))
    samples = read_tsv(os.path.join(raw, "samples.tsv"))
    charts = read_tsv(os.path.join(raw, "charts.tsv"))
    out = [f"## {section.upper() if len(section) <= 4 else section.capitalize()}", ""]
    if status != "ok":
        out += [f"**This section did not finish ({status}); the figures below are "
                f"incomplete. See `raw/{section}/` and the log of the run.**", ""]
    method = os.path.join(raw, "method.md")
    if os.path.exists(method):
        with open(method, encoding="utf-8") as fh:
            out += [fh.read().rstrip(), ""]
    rounds = {}
    for s in samples:
        try:
            v = float(s["value"])
        except ValueError:
            continue
        rounds.setdefault((s["id"], s["side"]), []).append((s["round"], v))
    rows = []
    for f in figs:
        tv = [v for _, v in rounds.get((f["id"], "tsunagi"), [])]
        pv = [v for _, v in rounds.get((f["id"], "peer"), [])]
        f["tvals"], f["pvals"] = tv, pv
        f["t"], f["p"] = aggregate(tv, f["agg"]), aggregate(pv, f["agg"])
        f["ok"] = verdict(f["rule"], f["t"], f["p"])
        rows.append(f)
    if rows:
        peer = rows[0]["peer"]
        out += ["| figure | tsunagi | " + peer + " | ratio | target | result |",
                "| --- | ---: | ---: | ---: | --- | --- |"]
        for f in rows:
            def cell(v, vals):
                if v is None:
                    return "—"
                if len(vals) > 1 and f["agg"] == "median":
                    return f"{fmt(v)} <sub>({fmt(min(vals))}–{fmt(max(vals))})</sub>"
                return fmt(v)
            ratio = "—"
            if f["t"] is not None and f["p"]:
                ratio = f"{f['t'] / f['p']:.2f}"
            unit = f" ({f['unit']})" if f["unit"] else ""
            out.append(f"| {f['label']}{unit} | {cell(f['t'], f['tvals'])} | "
                       f"{cell(f['p'], f['pvals'])} | {ratio} | {f['target']} | "
                       f"{verdict_text(f['ok'])} |")
        out += ["", f"Medians, with the range over rounds in small print; ratio = tsunagi ÷ "
                f"{peer} (above 1 is better for requests/s, below 1 for latency and memory).", ""]
    for c in charts:
        members = [f for f in rows if f["chart"] == c["id"] and (f["tvals"] or f["pvals"])]
        if not members:
            continue
        png = chart(results, raw, section, c, members)
        if png:
            out += [f"![{c['title']}]({png})", ""]
    # Every measurement, for whoever wants to check the medians.
    if samples:
        ids = [f["id"] for f in figs]
        nr = sorted({s["round"] for s in samples}, key=int)
        out += ["<details><summary>Every round</summary>", "",
                "| figure | side | " + " | ".join(f"round {r}" for r in nr) + " |",
                "| --- | --- |" + " ---: |" * len(nr)]
        for fid in ids:
            for side in ("tsunagi", "peer"):
                got = dict(rounds.get((fid, side), []))
                if got:
                    name = side if side == "tsunagi" else rows[0]["peer"]
                    out.append(f"| {fid} | {name} | " +
                               " | ".join(fmt(got[r]) if r in got else "" for r in nr) + " |")
        out += ["", "</details>", ""]
    return out, rows


def main():
    results = sys.argv[1]
    sections = read_tsv(os.path.join(results, "raw", "sections.tsv"))
    body, summary = [], []
    for s in sections:
        part, rows = section_report(results, s["section"], s["status"])
        body += part
        for f in rows:
            if f["rule"] != "none":
                summary.append((s["section"], f))
    out = ["# tsunagi benchmarks", "",
           "Written by `make bench` (`bench/run.sh`); do not edit by hand, run it again. "
           "Raw logs of the run are in `raw/` (not committed).", "",
           "## Machine", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine()]
    out += ["", "A shared virtual machine: absolute numbers move from run to run; the "
            "ratio between tsunagi and its peer, measured in the same run with the servers "
            "alternating, is the figure to read.", ""]
    if summary:
        out += ["## Targets", "", "| section | figure | tsunagi | peer | ratio | target | result |",
                "| --- | --- | ---: | ---: | ---: | --- | --- |"]
        for sec, f in summary:
            ratio = f"{f['t'] / f['p']:.2f}" if f["t"] is not None and f["p"] else "—"
            unit = f" ({f['unit']})" if f["unit"] else ""
            out.append(f"| {sec} | {f['label']}{unit} | {fmt(f['t'])} | {f['peer']} "
                       f"{fmt(f['p'])} | {ratio} | {f['target']} | {verdict_text(f['ok'])} |")
        out.append("")
    out += ["| section | status | time |", "| --- | --- | ---: |"]
    out += [f"| {s['section']} | {s['status']} | {s['seconds']} s |" for s in sections]
    out += [""] + body
    out += ["## Running it", "",
            "`make bench` (installs wrk, nginx-light, gnuplot-nox, python3 when missing, builds "
            "tsunagi, runs every section). `BENCH_SECTIONS=http bench/run.sh` runs one section; "
            "`BENCH_QUICK=1` makes a short smoke run whose numbers are not to be quoted. "
            "Each section's parameters can be changed through the environment; see the head "
            "of its `bench/<section>/run.sh`.", ""]
    with open(os.path.join(results, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(out))
    failed = [f"{sec}: {f['label']}" for sec, f in summary if f["ok"] is False]
    for line in failed:
        print(f"report: target missed: {line}", file=sys.stderr)
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
