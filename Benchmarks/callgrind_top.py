#!/usr/bin/env python3
"""Top functions of a callgrind dump, for Benchmarks/profile.sh:

    python3 Benchmarks/callgrind_top.py DUMP DELIVERIES TOP OUT_PREFIX

Runs callgrind_annotate (self, then inclusive) on a copy of DUMP whose `calls=0` lines read
`calls=1`: after `callgrind_control -z`, a call that began before the zeroing is written with a
count of 0, and callgrind_annotate 3.19 then adds that call's whole inclusive cost to the
caller's self cost (thread roots such as `clone` show 100% self). Swift names are demangled
(`swift demangle --simplified`). A function appears once, under its name (callgrind may list it
twice, under its own file and under the file it was inlined into; the larger figure is kept).
The inclusive list leaves out the thread and executor plumbing every path shares (thread start,
libdispatch's worker loop, the concurrency runtime's job loop), which is ~100% everywhere, and
entries above 100%: async frames that resume one another form cycles whose sums mean nothing.
A run of frames within 0.5% of one another's inclusive cost (one call chain: thunks, witnesses,
the async frames of one await) is shown as its first frame and a count.
Writes OUT_PREFIX.top-self.txt, OUT_PREFIX.top-inclusive.txt, OUT_PREFIX.by-library.txt (self
cost summed per shared object) and OUT_PREFIX.annotate.txt (the whole inclusive annotation).
"""
import re
import subprocess
import sys

dump, deliveries, top, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fixed = dump + ".fixed"
with open(dump) as src, open(fixed, "w") as dst:
    for line in src:
        dst.write("calls=1 " + line[8:] if line.startswith("calls=0 ") else line)

PLUMBING = re.compile(
    r"^(clone|start_thread|_dispatch_\w+|__swift_run_job|jobInvoke|swift_job_run|"
    r"swift::runJobInEstablishedExecutorContext|swift_task_switch|NSThreadStart|@objc NSThreadStart|"
    r"Thread\.main|partial apply for thunk for @escaping @callee_guaranteed \(\) -> \(\)|"
    r"thunk for @escaping @callee_guaranteed \(\) -> \(\)|"
    r"reabstraction thunk helper|swift::threading_impl::|"
    r"\(below main\)|main|_CFThreadCreate|__libc_start\w*)"
)
LINE = re.compile(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*?)(?: \[(.*)\])?$")


def annotate(inclusive):
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
                          "--auto=no", fixed], capture_output=True, text=True).stdout
    return subprocess.run(["swift", "demangle", "--simplified"], input=out, capture_output=True, text=True).stdout


def top_functions(text, inclusive):
    seen, rows = set(), []
    started = False
    for line in text.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = LINE.match(line) if started else None
        if not m:
            continue
        ir, pct, where, obj = int(m.group(1).replace(",", "")), m.group(2), m.group(3), m.group(4) or ""
        fn = where.split(":", 1)[1] if ":" in where else where
        fn = re.sub(r"'\d+$", "", fn)  # callgrind's recursion suffix
        if fn in seen or (inclusive and (PLUMBING.match(fn) or float(pct) > 100)):
            continue
        seen.add(fn)
        lib = obj.rsplit("/", 1)[-1]
        if inclusive and rows and abs(ir - rows[-1][0]) <= 0.005 * rows[-1][0]:
            rows[-1][2] += 1  # one more frame of the same call chain, within 0.5% of its cost
            continue
        if len(rows) == top:
            break
        rows.append([ir, f"{ir:>13,} {pct:>6}% {ir / deliveries:>9,.1f}/delivery  {fn[:200]}  [{lib}]", 0])
    return [text + (f"  (+{more} frames of the same chain, within 0.5%)" if more else "") for _, text, more in rows]


def by_library(text):
    """Self cost summed per shared object (the program itself, libswiftCore, libc, ...)."""
    totals, started = {}, False
    for line in text.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = LINE.match(line) if started else None
        if m:
            lib = (m.group(4) or "").rsplit("/", 1)[-1] or "(no object named: the program's inlined and compiler-generated code)"
            totals[lib] = totals.get(lib, 0) + int(m.group(1).replace(",", ""))
    whole = sum(totals.values()) or 1
    return [f"{ir:>13,} {100 * ir / whole:>5.1f}% {ir / deliveries:>9,.1f}/delivery  {lib}"
            for lib, ir in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]


full = annotate(True)
open(prefix + ".annotate.txt", "w").write(full)
self_text = annotate(False)
for inclusive, name, text in ((False, "self", self_text), (True, "inclusive", full)):
    open(f"{prefix}.top-{name}.txt", "w").write("\n".join(top_functions(text, inclusive)) + "\n")
open(f"{prefix}.by-library.txt", "w").write("\n".join(by_library(self_text)) + "\n")
