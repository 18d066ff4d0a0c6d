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

Several peers (the ws section): peer is a comma-separated list of side names
("lws,ws,minimal"), samples name the side ("lws", not "peer"), and an optional
sides.tsv (side, label) gives each side its display name. rule may then join
terms with "&", and ge_x:SIDE:F / le_x:SIDE:F compare tsunagi with F times
that side's figure (ge_x:ws:6 = at least six times ws). Such a section gets one
column per side and charts with one panel per figure. A one-peer section may
use ge_x:peer:F / le_x:peer:F too (ge_x:peer:2 = at least twice the peer).
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
    if rule.startswith(("ge_x:", "le_x:")):
        # ge_x:peer:F (a one-peer section): tsunagi at least F times the peer's figure.
        if p is None:
            return None
        factor = float(rule.rsplit(":", 1)[1] or 1)
        return t >= factor * p if rule.startswith("ge_x") else t <= factor * p
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
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        vendor = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                  if ln.startswith("Hypervisor vendor:")]
        if vendor and vendor[0].lower() not in virt.lower():
            virt = f"{virt}, on a {vendor[0]} virtual machine"
    except OSError:
        pass
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
     '' using ($1-0.18):3:(0):($4-$3) with vectors heads size screen 0.006,90 lc rgb "#000000" notitle, \
     '' using ($1+0.18):6:(0):($7-$6) with vectors heads size screen 0.006,90 lc rgb "#000000" notitle, \
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
    if any("," in f["peer"] for f in figs):
        return multi_section_report(results, section, status, raw, figs, samples, charts)
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


# ---- sections with several peers (bench/ws) ------------------------------------

SIDE_COLOURS = ["#d9480f", "#495057", "#868e96", "#ced4da", "#adb5bd", "#343a40"]


def rule_terms(rule):
    return [t for t in rule.split("&") if t]


def multi_verdict(rule, vals, first_peer):
    """vals: side -> figure. All terms must hold; None when one cannot be judged."""
    t = vals.get("tsunagi")
    if rule == "none" or t is None:
        return None
    results = []
    for term in rule_terms(rule):
        kind, _, rest = term.partition(":")
        if kind in ("ge_x", "le_x"):
            side, _, factor = rest.partition(":")
            p = vals.get(side)
            if p is None:
                results.append(None)
                continue
            need = float(factor or 1) * p
            results.append(t >= need if kind == "ge_x" else t <= need)
        else:
            results.append(verdict(term, t, vals.get(first_peer)))
    if any(r is False for r in results):
        return False
    if any(r is None for r in results):
        return None
    return True


def ratio_cells(rule, vals, peers, names):
    """"3.41× lws (≥ 3)" for each side a rule names; else tsunagi ÷ every peer."""
    t = vals.get("tsunagi")
    if t is None:
        return "—"
    cells = []
    for term in rule_terms(rule):
        kind, _, rest = term.partition(":")
        if kind in ("ge_x", "le_x"):
            side, _, factor = rest.partition(":")
            p = vals.get(side)
            sign = "≥" if kind == "ge_x" else "≤"
            cells.append(f"{t / p:.2f}× {side} ({sign} {float(factor or 1):g})" if p else
                         f"— × {side}")
    if cells:
        return ", ".join(cells)
    return " · ".join(f"{side} {t / vals[side]:.2f}" for side in peers if vals.get(side)) or "—"


def gp_str(s):
    return '"' + gp_escape(s) + '"'


def multi_chart(results, raw, section, chart_row, figs, sides, names):
    """One panel per figure; in each, one bar per side (median, min-max bars),
    and a dashed line for every target the figure's rule sets."""
    cid = chart_row["id"]
    png = f"{section}-{cid}.png"
    n = len(figs)
    width = max(520, 340 * n)
    gp = [f"set terminal pngcairo size {width},500 noenhanced font \",10\"",
          f"set output {gp_str(os.path.join(results, png))}",
          "set style fill solid 0.85 border -1", "set boxwidth 0.62",
          "set grid ytics lc rgb \"#dddddd\"", "set border 3", "set xtics nomirror",
          "set ytics nomirror", "unset key",
          f"set multiplot layout 1,{n} title {gp_str(chart_row['title'])}"]
    for i, f in enumerate(figs):
        dat = os.path.join(raw, f"chart-{cid}-{i}.dat")
        lines, ymax = [], 0.0
        for j, side in enumerate(sides):
            v = f["vals"].get(side)
            got = f["raw"].get(side) or [0]
            colour = int(SIDE_COLOURS[j % len(SIDE_COLOURS)][1:], 16)
            lines.append(f"{j} {v or 0} {min(got)} {max(got)} "
                         f"\"{fmt(v) if v is not None else 'n/a'}\" {colour}")
            ymax = max(ymax, max(got))
        targets = []
        t_rule = f["rule"]
        for term in rule_terms(t_rule):
            kind, _, rest = term.partition(":")
            if kind in ("ge_x", "le_x"):
                side, _, factor = rest.partition(":")
                p = f["vals"].get(side)
                if p:
                    fac = float(factor or 1)
                    targets.append((fac * p, f"{fac:g}× {side}" if fac != 1 else side))
            elif kind in ("le", "ge"):
                targets.append((float(rest), f"target {f['target']}"))
        for y, _ in targets:
            ymax = max(ymax, y)
        ymax = ymax * 1.2 if ymax > 0 else 1
        with open(dat, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        title = f["label"].split(", ", 1)[1] if ", " in f["label"] else f["label"]
        if n == 1:
            title = ""  # the chart's title says it
        xt = ", ".join(f"{gp_str(side)} {j}" for j, side in enumerate(sides))
        gp += ["unset arrow", "unset label", f"set title {gp_str(title)}",
               f"set ylabel {gp_str(chart_row['ylabel'] if i == 0 else '')}",
               f"set xrange [-0.6:{len(sides) - 0.4}]", f"set yrange [0:{ymax}]",
               "set format y \"%.0s%c\"" if ymax >= 10000 else "set format y \"%g\"",
               f"set xtics ({xt})"]
        for k, (y, text) in enumerate(targets):
            gp += [f"set arrow from -0.6,{y} to {len(sides) - 0.4},{y} nohead dt 2 lw 2 "
                   f"lc rgb \"#1971c2\" front",
                   f"set label {gp_str(text)} at {len(sides) - 0.45},{y} right "
                   f"offset 0,{0.7 if k % 2 == 0 else -0.9} tc rgb \"#1971c2\" front"]
        pad = ymax * 0.03
        gp.append(f"plot {gp_str(dat)} using 1:2:6 with boxes lc rgb variable, "
                  f"'' using 1:2:3:4 with yerrorbars lc rgb \"#000000\" pt -1, "
                  f"'' using 1:($4+{pad}):5 with labels")
    gp.append("unset multiplot")
    script = os.path.join(raw, f"chart-{cid}.gp")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        print(f"report: gnuplot failed for {png}: {r.stderr.strip()}", file=sys.stderr)
        return None
    return png


def multi_section_report(results, section, status, raw, figs, samples, charts):
    names = {r["side"]: r["label"] for r in read_tsv(os.path.join(raw, "sides.tsv"))}
    peers = [p for p in figs[0]["peer"].split(",") if p]
    sides = ["tsunagi"] + peers
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
        f["raw"] = {side: [v for _, v in rounds.get((f["id"], side), [])] for side in sides}
        f["vals"] = {side: aggregate(f["raw"][side], f["agg"]) for side in sides}
        f["t"] = f["vals"]["tsunagi"]
        f["tvals"] = f["raw"]["tsunagi"]
        f["p"] = f["vals"].get(peers[0]) if peers else None
        f["pvals"] = f["raw"].get(peers[0], []) if peers else []
        f["ok"] = multi_verdict(f["rule"], f["vals"], peers[0] if peers else None)
        f["ratio_cell"] = ratio_cells(f["rule"], f["vals"], peers, names)
        f["peer_cell"] = " · ".join(f"{side} {fmt(f['vals'][side])}" for side in peers)
        rows.append(f)

    def cell(f, side):
        v, vals = f["vals"][side], f["raw"][side]
        if v is None:
            return "—"
        if len(vals) > 1 and f["agg"] == "median":
            return f"{fmt(v)} <sub>({fmt(min(vals))}–{fmt(max(vals))})</sub>"
        return fmt(v)

    if rows:
        out += ["| figure | " + " | ".join(names.get(s, s) for s in sides) +
                " | tsunagi ÷ | target | result |",
                "| --- |" + " ---: |" * len(sides) + " --- | --- | --- |"]
        for f in rows:
            unit = f" ({f['unit']})" if f["unit"] else ""
            out.append(f"| {f['label']}{unit} | " + " | ".join(cell(f, s) for s in sides) +
                       f" | {f['ratio_cell']} | {f['target']} | {verdict_text(f['ok'])} |")
        out += ["", "Medians, with the range over rounds in small print; \"tsunagi ÷\" is "
                "tsunagi's figure over each peer's (for a target, with the factor it asks "
                "for in brackets). Peers: " +
                ", ".join(f"{s} = {names.get(s, s)}" for s in peers) + ".", ""]
    for c in charts:
        members = [f for f in rows if f["chart"] == c["id"] and any(f["raw"].values())]
        if not members:
            continue
        png = multi_chart(results, raw, section, c, members, sides, names)
        if png:
            out += [f"![{c['title']}]({png})", ""]
    if samples:
        nr = sorted({s["round"] for s in samples}, key=int)
        out += ["<details><summary>Every round</summary>", "",
                "| figure | side | " + " | ".join(f"round {r}" for r in nr) + " |",
                "| --- | --- |" + " ---: |" * len(nr)]
        for f in figs:
            for side in sides:
                got = dict(rounds.get((f["id"], side), []))
                if got:
                    out.append(f"| {f['id']} | {side} | " +
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
            peer_cell = f.get("peer_cell", f"{f['peer']} {fmt(f['p'])}")
            ratio = f.get("ratio_cell", ratio)
            out.append(f"| {sec} | {f['label']}{unit} | {fmt(f['t'])} | {peer_cell} "
                       f"| {ratio} | {f['target']} | {verdict_text(f['ok'])} |")
        out.append("")
    out += ["| section | status | time | run at |", "| --- | --- | ---: | --- |"]
    out += [f"| {s['section']} | {s['status']} | {s['seconds']} s | {s.get('date') or '—'} |"
            for s in sections]
    out += [""] + body
    out += ["## Running it", "",
            "`make bench` (installs wrk, nginx-light, gnuplot-nox, python3, libwebsockets-dev, "
            "coturn when "
            "missing, builds tsunagi, runs every section). `BENCH_SECTIONS=http bench/run.sh` "
            "(or `=ws`, `=turn`, `=signaling`) runs one section; "
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
