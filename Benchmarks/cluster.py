#!/usr/bin/env python3
"""Single node beside a Redis cluster of 3 demo nodes, with ../shared/bench's generator.

Run through Benchmarks/cluster.sh (it copies the bench, builds ssebench and the demo, and
passes the paths in the environment). Every figure is measured in the same sitting, the two
sides alternating run by run.

  single   one EventStreamDemo in bench mode (in-process log), pinned to SERVER_CPU
  cluster  a fresh redis-server (--save '' --appendonly no) + 3 EventStreamDemo nodes joined
           to it with --redis, all pinned to SERVER_CPU: node a publishes (--bench-rate R),
           nodes b and c relay (--bench-rate 0). Exactly one publisher: the generator checks
           one seq sequence per client, and each publisher counts its own.
  generators one ssebench per node (clients spread evenly), pinned to GEN_CPU, started
           together.

CPU per delivery = utime+stime (/proc/PID/stat) of every server process (nodes + redis-server)
over a sampling interval inside all generators' windows, divided by the deliveries the
generators counted per second (sum over generators). Redis's own CPU % is shown apart.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

E = os.environ
ESK_BIN = E["ESK_BIN"]
SSEBENCH = E["SSEBENCH_BIN"]
REDIS = E.get("REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server")
OUT = E["OUT"]
QUICK = bool(E.get("QUICK"))
ROUNDS = int(E.get("ROUNDS", "1" if QUICK else "3"))
WORKLOADS = E.get("WORKLOADS", "W1 W4").split()
SERVER_CPU = E.get("SERVER_CPU", "0")
GEN_CPU = E.get("GEN_CPU", "1")
NODES = int(E.get("NODES", "3"))
SIZE = int(E.get("SIZE", "100"))
W1_CLIENTS = int(E.get("W1_CLIENTS", "1000"))
W1_RATE = float(E.get("W1_RATE", "10"))
W1_DUR = float(E.get("W1_DUR", "5" if QUICK else "20"))
W4_CLIENTS = int(E.get("W4_CLIENTS", "100"))
W4_RATES = [int(r) for r in E.get("W4_RATES", "250 500 1000 1500 2000 5000").split()]
W4_DUR = float(E.get("W4_DUR", "3" if QUICK else "8"))
W4_RCVBUF = E.get("W4_RCVBUF", "1048576")
# A W4 step that is not sustained is run again up to W4_TRIES times in all before the side stops
# there (other people's builds share the machine: one p99 spike should not end a side's climb).
# Every attempt is recorded; a missed or duplicated event is reported whatever the retry says.
W4_TRIES = int(E.get("W4_TRIES", "2"))
LOG_LENGTH = E.get("LOG_LENGTH", "10000")
# PERF=1: perf record (cpu-clock, call graphs) of the server processes over each run's sampling
# interval; <tag>.perf.txt gets the top entries by process/library and by symbol. Adds overhead.
PERF = bool(E.get("PERF"))
SETTLE = 1.0  # ssebench's -settle default: the window starts this long after the last connect
CLK_TCK = os.sysconf("SC_CLK_TCK")
T0 = time.time()

os.makedirs(OUT, exist_ok=True)
RUNLOG = open(os.path.join(OUT, "run.log"), "a")


def log(msg):
    line = f"[{int(time.time() - T0):4d}s] {msg}"
    print(line, file=sys.stderr, flush=True)
    RUNLOG.write(line + "\n")
    RUNLOG.flush()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def machine_busy():
    """busy % of each CPU over 0.5 s (/proc/stat), like run.sh's guard"""
    def read():
        rows = {}
        with open("/proc/stat") as f:
            for line in f:
                if re.match(r"cpu\d+ ", line):
                    v = [int(x) for x in line.split()[1:]]
                    rows[line.split()[0]] = (sum(v[:8]), v[3] + v[4])
        return rows
    a = read(); time.sleep(0.5); b = read()
    return {k: 100 * ((b[k][0] - a[k][0]) - (b[k][1] - a[k][1])) / max(1, b[k][0] - a[k][0]) for k in b}


def quiesce():
    """Wait (at most ~20 s) for sockets of the previous run to drain and both CPUs to calm
    down (at most ~6 s of that for CPU: other people's builds share the machine)."""
    for i in range(20):
        mem = orphan = 0
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    p = line.split()
                    mem = int(p[p.index("mem") + 1]); orphan = int(p[p.index("orphan") + 1])
        busy = machine_busy()
        calm = all(v < 15 for v in busy.values())
        if mem < 2000 and orphan == 0 and (calm or i >= 6):
            break
        time.sleep(0.5)
    if i > 0:
        log(f"  waited ~{i}s for a quieter machine (tcp mem {mem} pages, orphans {orphan}, busy "
            + " ".join(f"{v:.0f}%" for v in busy.values()) + ")")


class Proc:
    def __init__(self, name, argv, logpath):
        self.name = name
        self.logf = open(logpath, "w")
        self.p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid  # taskset execs the command: same PID

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                log(f"  {self.name} ({self.pid}) ignored SIGTERM for 5 s: SIGKILL")
                self.p.kill()
                self.p.wait()
        self.logf.close()


def wait_listening(port, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not proc.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def redis_cmd(port, *args):
    """One command with redis-cli (raw output), for setup and INFO only."""
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args), capture_output=True, text=True, timeout=10)
    return r.stdout


def start_servers(side, rate, tag):
    """Starts the side's server processes; returns (procs, [(port, pid, nodeName)], redis proc or None)."""
    procs, nodes, redis = [], [], None
    try:
        if side == "single":
            port = free_port()
            p = Proc("single", [ESK_BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--bench-rate", fmt_rate(rate),
                                "--bench-size", str(SIZE)], os.path.join(OUT, f"{tag}.server.log"))
            procs.append(p)
            if not wait_listening(port, p):
                raise RuntimeError(f"single node did not start (see {tag}.server.log)")
            nodes.append((port, p.pid, "single"))
        else:
            rport = free_port()
            rdir = tempfile.mkdtemp(prefix="esk-bench-redis-")
            redis = Proc("redis", [REDIS, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", rdir, "--daemonize", "no", "--databases", "1"],
                         os.path.join(OUT, f"{tag}.redis.log"))
            redis.dir = rdir
            procs.append(redis)
            if not wait_listening(rport, redis):
                raise RuntimeError(f"redis-server did not start (see {tag}.redis.log)")
            url = f"redis://127.0.0.1:{rport}"
            # Relays first, publisher last: every node is tailing before the first tick.
            names = [chr(ord("a") + i) for i in range(NODES)]
            order = names[1:] + names[:1]
            started = {}
            for n in order:
                port = free_port()
                r = rate if n == "a" else 0
                p = Proc(f"node-{n}", [ESK_BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--bench-rate", fmt_rate(r),
                                       "--bench-size", str(SIZE), "--redis", url, "--node", n, "--cluster-name", "bench",
                                       "--log-length", LOG_LENGTH], os.path.join(OUT, f"{tag}.node-{n}.log"))
                procs.append(p)
                if not wait_listening(port, p):
                    raise RuntimeError(f"node {n} did not start (see {tag}.node-{n}.log)")
                started[n] = (port, p.pid, n)
            nodes = [started[n] for n in names]
        time.sleep(0.5)
        return procs, nodes, redis
    except Exception:
        stop_all(procs)
        raise


def stop_all(procs):
    for p in reversed(procs):  # nodes before redis
        p.stop()
        if getattr(p, "dir", None):
            shutil.rmtree(p.dir, ignore_errors=True)


def fmt_rate(r):
    return str(int(r)) if float(r).is_integer() else str(r)


def split(n, k):
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def run(side, wl, rate, clients, dur, rnd, extra=()):
    """One measured run; returns a dict of results (None if it could not run)."""
    tag = f"r{rnd}.{side}.{wl}.{fmt_rate(rate)}"
    quiesce()
    la = loadavg()
    try:
        procs, nodes, redis = start_servers(side, rate, tag)
    except RuntimeError as e:
        log(f"  {tag}: {e}")
        return None
    gens = []
    try:
        counts = split(clients, len(nodes))
        for (port, pid, name), n in zip(nodes, counts):
            out = open(os.path.join(OUT, f"{tag}.gen-{name}.txt"), "w")
            err_path = os.path.join(OUT, f"{tag}.gen-{name}.err")
            err = open(err_path, "w")
            g = subprocess.Popen(["timeout", "400", "taskset", "-c", GEN_CPU, SSEBENCH, "-url", f"http://127.0.0.1:{port}/events",
                                  "-clients", str(n), "-duration", f"{dur}s", "-server-pid", str(pid), "-expect-rate", fmt_rate(rate),
                                  "-label", f"{tag}.{name}", "-connect-timeout", "90s"] + list(extra),
                                 stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            gens.append((name, g, out, err, err_path))
        # Sample CPU inside every generator's window: from the last one's start to the first one's end.
        connected_at = {}
        deadline = time.time() + 120
        while len(connected_at) < len(gens) and time.time() < deadline:
            for name, g, _, _, err_path in gens:
                if name in connected_at:
                    continue
                with open(err_path) as f:
                    if re.search(r"^(connected \d+/|connect timeout)", f.read(), re.M):
                        connected_at[name] = time.time()
                if g.poll() is not None:
                    connected_at.setdefault(name, time.time())
            time.sleep(0.02)
        t_start = max(connected_at.values()) + SETTLE + 0.2
        t_end = min(connected_at.values()) + SETTLE + dur - 0.2
        if t_end - t_start < 1:
            t_start, t_end = t_start, t_start + 1
        time.sleep(max(0, t_start - time.time()))
        c0 = {p.name: cpu_ticks(p.pid) for p in procs}
        w0 = time.time()
        stats0 = node_stats(nodes)
        perf = None
        if PERF:
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", os.path.join(OUT, f"{tag}.perf.data"),
                                     "-p", ",".join(str(p.pid) for p in procs), "--", "sleep", f"{max(0.5, t_end - time.time()):.2f}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(max(0, t_end - time.time()))
        c1 = {p.name: cpu_ticks(p.pid) for p in procs}
        w1 = time.time()
        stats = node_stats(nodes)
        redis_info = redis_cmd(redis_port(redis), "INFO", "commandstats") if redis else ""
        if perf:
            perf.wait()
        for name, g, out, err, _ in gens:
            g.wait()
            out.close(); err.close()
    finally:
        for name, g, out, err, _ in gens:
            if g.poll() is None:
                g.kill(); g.wait()
        stop_all(procs)
    if redis:
        with open(os.path.join(OUT, f"{tag}.redis-commandstats.txt"), "w") as f:
            f.write(redis_info)
    if PERF:
        data = os.path.join(OUT, f"{tag}.perf.data")
        with open(os.path.join(OUT, f"{tag}.perf.txt"), "w") as f:
            for sort in ("comm,dso", "comm,sym"):
                r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", sort, "--percent-limit", "0.7"],
                                   capture_output=True, text=True)
                f.write(f"## perf report --sort {sort}\n" + "\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#")) + "\n\n")
    res = {"tag": tag, "round": rnd, "side": side, "workload": wl, "rate": rate, "clients": clients, "loadavg": la, "gens": {}}
    ok = True
    for name, *_ in gens:
        path = os.path.join(OUT, f"{tag}.gen-{name}.txt")
        with open(path) as f:
            lines = f.read().strip().splitlines()
        if not lines or not lines[-1].startswith("{"):
            log(f"  {tag}: generator {name} failed (see {path})")
            ok = False
            continue
        res["gens"][name] = json.loads(lines[-1])
    if not ok or not res["gens"]:
        return None
    g = res["gens"].values()
    wall = w1 - w0
    cpu = {k: (c1[k] - c0[k]) / CLK_TCK / wall * 100 for k in c0 if c0[k] is not None and c1[k] is not None}
    res["cpu_pct"] = cpu
    res["cpu_total_pct"] = sum(cpu.values())
    res["redis_cpu_pct"] = cpu.get("redis")
    res["deliveries_per_s"] = sum(x["deliveries_per_s"] for x in g)
    res["us_per_delivery"] = (res["cpu_total_pct"] / 100) / res["deliveries_per_s"] * 1e6 if res["deliveries_per_s"] else None
    res["connected"] = sum(x["connected"] for x in g)
    res["missed"] = sum(x["missed"] for x in g)
    res["dup"] = sum(x["dup"] for x in g)
    res["disconnected"] = sum(x["disconnected"] for x in g)
    res["p50_ms"] = statistics.median(x["lat_p50_ms"] for x in g)
    res["p99_ms"] = max(x["lat_p99_ms"] for x in g)  # the worst node's p99
    res["p99_by_node"] = {k: v["lat_p99_ms"] for k, v in res["gens"].items()}
    res["ratio_min"] = min(x.get("delivery_ratio", 0) for x in g)
    res["sustained"] = all(x.get("sustained") for x in g) and res["connected"] == clients
    res["gen_cpu_pct"] = sum(x["gen_cpu_pct"] for x in g)
    # Frames the nodes' slow-client policy dropped inside the sampling interval (the counts of
    # /stats at its start and end: drops when the generators close their streams are not in it).
    res["dropped_frames"] = sum(stats[k].get("droppedFrames", 0) - stats0.get(k, {}).get("droppedFrames", 0) for k in stats)
    res["stats"] = stats
    why = []
    for k, x in res["gens"].items():
        if x.get("sustained"):
            continue
        r = []
        if x["connected"] < x["clients"]: r.append(f"connected {x['connected']}/{x['clients']}")
        if x["missed"] or x["dup"]: r.append(f"missed {x['missed']} dup {x['dup']}")
        if x["disconnected"]: r.append(f"disconnected {x['disconnected']}")
        if x.get("delivery_ratio", 1) < 0.97: r.append(f"ratio {x.get('delivery_ratio', 0):.3f}")
        if x["lat_p99_ms"] >= 100: r.append(f"p99 {x['lat_p99_ms']:.0f} ms")
        why.append(f"{k}: " + ", ".join(r or ["?"]))
    res["not_sustained_because"] = "; ".join(why)
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(res) + "\n")
    per = " ".join(f"{k} {v:.0f}%" for k, v in cpu.items())
    log(f"  {tag}: load {la}; connected {res['connected']}/{clients}, {res['deliveries_per_s']:.0f} deliveries/s "
        f"(min ratio {res['ratio_min']:.3f}), p50 {res['p50_ms']:.2f} p99 {res['p99_ms']:.2f} ms "
        f"({' '.join(f'{k} {v:.2f}' for k, v in res['p99_by_node'].items())}), missed {res['missed']} dup {res['dup']} "
        f"disc {res['disconnected']} dropped {res['dropped_frames']}; cpu {res['cpu_total_pct']:.0f}% ({per}), "
        f"{res['us_per_delivery'] or 0:.2f} us/delivery; gen {res['gen_cpu_pct']:.0f}%; sustained {res['sustained']}"
        + (f" ({res['not_sustained_because']})" if res["not_sustained_because"] else ""))
    if res["missed"] or res["dup"] or res["disconnected"]:
        log(f"  {tag}: LOSS: missed {res['missed']}, duplicated {res['dup']}, disconnected {res['disconnected']}: "
            f"see {OUT}/{tag}.*")
    return res


def node_stats(nodes):
    """Each node's /stats (counts since it started)."""
    stats = {}
    for port, pid, name in nodes:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=3) as r:
                stats[name] = json.loads(r.read())
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            stats[name] = {"error": str(e)}
    return stats


def redis_port(redis):
    for a, b in zip(redis.p.args, redis.p.args[1:]):
        if a == "--port":
            return int(b)
    return 6379


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs, f="{:.2f}"):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = statistics.median(xs)
    return f.format(m) + (f" ({f.format(min(xs))}–{f.format(max(xs))})" if len(xs) > 1 else "")


def main():
    results = []
    log(f"{ROUNDS} round(s), workloads {' '.join(WORKLOADS)}; servers on CPU {SERVER_CPU}, generators on CPU {GEN_CPU}; "
        f"output in {OUT}")
    for rnd in range(1, ROUNDS + 1):
        sides = ["single", "cluster"] if rnd % 2 else ["cluster", "single"]
        log(f"== round {rnd} (order {' / '.join(sides)}), load {loadavg()}")
        if "W1" in WORKLOADS:
            for side in sides:
                r = run(side, "W1", W1_RATE, W1_CLIENTS, W1_DUR, rnd)
                if r: results.append(r)
        if "W4" in WORKLOADS:
            going = {s: True for s in sides}
            for rate in W4_RATES:
                for side in sides:
                    if not going[side]:
                        continue
                    for attempt in range(1, W4_TRIES + 1):
                        r = run(side, "W4", rate, W4_CLIENTS, W4_DUR, rnd, ["-rcvbuf", W4_RCVBUF])
                        if r:
                            r["attempt"] = attempt
                            results.append(r)
                        if r and r["sustained"]:
                            break
                    if not r or not r["sustained"]:
                        going[side] = False
                if not any(going.values()):
                    break
    report(results)


def report(results):
    lines = []
    p = lines.append
    p(f"# Single node vs cluster (Redis + {NODES} nodes, 1 publisher), {ROUNDS} round(s), medians (min–max)\n")
    p(f"servers + redis-server on CPU {SERVER_CPU}, generators on CPU {GEN_CPU}; load averages of every run are in results.jsonl / run.log")
    if results:
        la = [float(r["loadavg"].split()[0]) for r in results]
        p(f"1-minute load average at the start of the runs: {min(la):.2f} to {max(la):.2f} (median {statistics.median(la):.2f}); "
          f"start {results[0]['loadavg']}, end {results[-1]['loadavg']} (1/5/15 min)\n")
    if "W1" in WORKLOADS:
        p(f"## W1: {W1_CLIENTS} clients × {fmt_rate(W1_RATE)} ev/s, {SIZE} B, {fmt_rate(W1_DUR)} s window\n")
        p("| | p50 ms | p99 ms (worst node) | missed | duplicated | disconnected | frames dropped | deliveries/s | server CPU % (all processes) | µs CPU / delivery | Redis CPU % | load avg (1 min) |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        w1 = {}
        for side in ("single", "cluster"):
            rs = [r for r in results if r["workload"] == "W1" and r["side"] == side]
            w1[side] = rs
            if not rs:
                continue
            p(f"| {side} | {rng([r['p50_ms'] for r in rs])} | {rng([r['p99_ms'] for r in rs])} | "
              f"{sum(r['missed'] for r in rs)} | {sum(r['dup'] for r in rs)} | {sum(r['disconnected'] for r in rs)} | "
              f"{sum(r['dropped_frames'] for r in rs)} | "
              f"{rng([r['deliveries_per_s'] for r in rs], '{:.0f}')} | {rng([r['cpu_total_pct'] for r in rs], '{:.1f}')} | "
              f"{rng([r['us_per_delivery'] for r in rs])} | {rng([r['redis_cpu_pct'] for r in rs], '{:.1f}')} | "
              f"{', '.join(r['loadavg'].split()[0] for r in rs)} |")
        if w1.get("single") and w1.get("cluster"):
            d = med([r["p99_ms"] for r in w1["cluster"]]) - med([r["p99_ms"] for r in w1["single"]])
            lost = sum(r["missed"] + r["dup"] for r in w1["cluster"])
            paired = [c["p99_ms"] - s["p99_ms"] for s in w1["single"] for c in w1["cluster"] if c["round"] == s["round"]]
            p(f"\ncluster p99 − single p99 in the same round: {', '.join(f'{x:+.2f}' for x in paired)} ms")
            p(f"cluster p99 − single p99 (medians): {d:+.2f} ms (target ≤ +5 ms: {'met' if d <= 5 else 'MISSED'}); "
              f"cluster lost/duplicated: {lost} (target 0: {'met' if lost == 0 else 'MISSED'})")
            p("per-node p99 of the cluster runs (a publishes, b and c relay): "
              + "; ".join(" ".join(f"{k} {v:.2f}" for k, v in r["p99_by_node"].items()) for r in w1["cluster"]))
        p("")
    if "W4" in WORKLOADS:
        p(f"## W4: {W4_CLIENTS} clients (cluster: spread over {NODES} nodes), {fmt_rate(W4_DUR)} s per step, "
      f"a step not sustained is tried up to {W4_TRIES} times\n")
        p("| | highest sustained ev/s, per round | median |")
        p("|---|---|---|")
        best = {}
        for side in ("single", "cluster"):
            per_round = []
            for rnd in range(1, ROUNDS + 1):
                ok = [r["rate"] for r in results if r["workload"] == "W4" and r["side"] == side and r["round"] == rnd and r["sustained"]]
                per_round.append(max(ok) if ok else 0)
            best[side] = med(per_round)
            p(f"| {side} | {', '.join(f'{x:.0f}' for x in per_round)} | **{best[side]:.0f}** |")
        if best.get("cluster") is not None:
            p(f"\ncluster ≥ 5,000 ev/s × {W4_CLIENTS} clients: {'met' if best['cluster'] >= 5000 else 'MISSED'}")
        p("\nPer step (medians over the rounds that ran it):\n")
        p("| side | ev/s | runs sustained (attempts) | deliveries/s | p99 ms (worst node) | missed | dup | server CPU % (all) | µs CPU / delivery | Redis CPU % | gen CPU % | load avg (1 min) |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for rate in W4_RATES:
            for side in ("single", "cluster"):
                rs = [r for r in results if r["workload"] == "W4" and r["side"] == side and r["rate"] == rate]
                if not rs:
                    continue
                p(f"| {side} | {rate} | {sum(r['sustained'] for r in rs)}/{len(rs)} | {rng([r['deliveries_per_s'] for r in rs], '{:.0f}')} | "
                  f"{rng([r['p99_ms'] for r in rs])} | {sum(r['missed'] for r in rs)} | {sum(r['dup'] for r in rs)} | "
                  f"{rng([r['cpu_total_pct'] for r in rs], '{:.0f}')} | {rng([r['us_per_delivery'] for r in rs])} | "
                  f"{rng([r['redis_cpu_pct'] for r in rs], '{:.1f}')} | {rng([r['gen_cpu_pct'] for r in rs], '{:.0f}')} | "
                  f"{', '.join(r['loadavg'].split()[0] for r in rs)} |")
        fails = [r for r in results if r["workload"] == "W4" and not r["sustained"]]
        if fails:
            p("\nW4 runs not sustained: " + "; ".join(f"{r['tag']} (attempt {r.get('attempt', 1)}): {r.get('not_sustained_because', '?')}" for r in fails))
        p("")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write(text + "\n")
    log(f"done in {int(time.time() - T0)}s; raw results: {OUT}/results.jsonl")


if __name__ == "__main__":
    main()
