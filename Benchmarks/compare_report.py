#!/usr/bin/env python3
"""Medians over rounds and ratios to a baseline, from Benchmarks/compare.sh's output folder:

    python3 Benchmarks/compare_report.py OUT BASELINE "PEER1 PEER2 ..."

Reads OUT/round<N>/<workload>-<peer>/results.jsonl (one JSON object per generator run, as the
bench's run.sh writes them; fields as ../shared/bench/report.py reads them), prints markdown and
writes OUT/compare.json.
"""
import glob
import json
import os
import re
import statistics
import sys

out, baseline, peers = sys.argv[1], sys.argv[2], sys.argv[3].split()

rows = []  # every generator run, with its round
for path in sorted(glob.glob(os.path.join(out, "round*", "*", "results.jsonl"))):
    m = re.search(r"round(\d+)", path)
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            r["round"] = int(m.group(1))
            rows.append(r)
rounds = sorted({r["round"] for r in rows}) or [1]

# (key, title, workload, lower is better?, unit format)
FIGURES = [
    ("w4_cpu_250", "W4 server CPU % at 250 ev/s", "W4", True, "{:.0f}"),
    ("w4_cpu_500", "W4 server CPU % at 500 ev/s", "W4", True, "{:.0f}"),
    ("w4_max", "W4 highest sustained ev/s", "W4", False, "{:,.0f}"),
    ("w2_p99", "W2 p99 ms", "W2", True, "{:.0f}"),
    ("w3_kib", "W3 KiB per idle stream", "W3", True, "{:.1f}"),
    ("w1_p50", "W1 p50 ms", "W1", True, "{:.2f}"),
    ("w1_p99", "W1 p99 ms", "W1", True, "{:.2f}"),
    ("missed", "W1+W2 events missed", None, True, "{:.0f}"),
]


def figures(peer, rnd):
    """One round's figures for one peer: {key: (value, note)}; a figure its runs lack is absent."""
    sel = [r for r in rows if r["peer"] == peer and r["round"] == rnd]
    got = {}
    w4 = [r for r in sel if r["workload"] == "W4"]
    for rate, key in ((250.0, "w4_cpu_250"), (500.0, "w4_cpu_500")):
        s = [r for r in w4 if r["rate"] == rate]
        if s:
            got[key] = (s[0]["server_cpu_pct"], "" if s[0].get("sustained") else "not sustained")
    if w4:
        ok = [r["rate"] for r in w4 if r.get("sustained")]
        top = max(r["rate"] for r in w4)
        got["w4_max"] = (max(ok) if ok else 0.0, "sustained at the highest step tried" if ok and max(ok) == top else "")
    for wl, field, key in (("W2", "lat_p99_ms", "w2_p99"), ("W3", "rss_per_conn_kib", "w3_kib"),
                           ("W1", "lat_p50_ms", "w1_p50"), ("W1", "lat_p99_ms", "w1_p99")):
        s = [r for r in sel if r["workload"] == wl]
        if s:
            got[key] = (s[0][field], "")
    lossy = [r for r in sel if r["workload"] in ("W1", "W2")]
    if lossy:
        got["missed"] = (float(sum(r["missed"] + r["dup"] for r in lossy)), "")
    return got


per = {p: {rnd: figures(p, rnd) for rnd in rounds} for p in peers}


def values(peer, key):
    return [per[peer][rnd][key][0] for rnd in rounds if key in per[peer][rnd]]


def median(peer, key):
    v = values(peer, key)
    return statistics.median(v) if v else None


summary = {}
lines = []
head = ["figure"] + [f"{p} median (min–max)" for p in peers] + [f"{p} / {baseline}" for p in peers if p != baseline]
for key, title, wl, lower, fmt in FIGURES:
    if not any(values(p, key) for p in peers):
        continue
    cells = [title]
    base = median(baseline, key)
    for p in peers:
        v = values(p, key)
        if not v:
            cells.append("-")
            continue
        med = statistics.median(v)
        notes = {per[p][rnd][key][1] for rnd in rounds if key in per[p][rnd]} - {""}
        cell = fmt.format(med)
        if key == "w4_max" and max(v) == 0:
            lowest = min(r["rate"] for r in rows if r["peer"] == p and r["workload"] == "W4")
            cells.append(f"< {lowest:,.0f} (not sustained at the lowest step in any round)")
            summary.setdefault(p, {})[key] = {"median": 0, "values": v, "notes": ["not sustained at the lowest step"]}
            continue
        if len(v) > 1:
            cell += f" ({fmt.format(min(v))}–{fmt.format(max(v))})"
        if notes:
            cell += " [" + "; ".join(sorted(notes)) + f" in {sum(1 for rnd in rounds if per[p][rnd].get(key, (0, ''))[1])} of {len(v)}]"
        cells.append(cell)
        summary.setdefault(p, {})[key] = {"median": med, "values": v, "notes": sorted(notes)}
    for p in peers:
        if p == baseline:
            continue
        med = median(p, key)
        if med is None or base is None:
            cells.append("-")
        elif base == 0 or (key == "w4_max" and med == 0):
            cells.append("-")
        else:
            cells.append(f"{med / base:.2f}×")
            summary[p][key]["ratio_to_baseline"] = med / base
    lines.append(cells)


def table(head, lines):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in l) + " |" for l in lines]
    return "\n".join(out)


env = os.path.join(out, "env.txt")
print(f"# compare ({os.path.basename(os.path.abspath(out))})\n")
if os.path.exists(env):
    print("```\n" + open(env).read().strip() + "\n```\n")
print(f"Medians over {len(rounds)} round(s); ratio = the peer's median / {baseline}'s median "
      "(for the highest sustained rate higher is better, for every other figure lower is better).\n")
print(table(head, lines))
print()
print("## Every round\n")
rl = []
for rnd in rounds:
    for p in peers:
        f = per[p][rnd]
        rl.append([rnd, p] + [(FIGURES[i][4].format(f[k][0]) + (" *" if f[k][1] == "not sustained" else "")) if k in f else "-"
                              for i, (k, *_rest) in enumerate(FIGURES)])
print(table(["round", "peer"] + [t for _, t, *_ in FIGURES], rl))
print("\n'*' = that step was not sustained. W4's climb stops at a peer's first unsustained step "
      "(run.sh), so 'highest sustained' moves a step between rounds on a busy machine; CPU % at 250 and "
      "500 ev/s is the steadier comparison. Raw runs: round<N>/<workload>-<peer>/.")
json.dump({"baseline": baseline, "peers": peers, "rounds": rounds, "figures": summary,
           "per_round": {p: {str(r): {k: v[0] for k, v in per[p][r].items()} for r in rounds} for p in peers}},
          open(os.path.join(out, "compare.json"), "w"), indent=1)
