#!/usr/bin/env python3
"""flow's own rows of a bench/run.sh run: startup and validate of each shipped playbook,
the per-step cost against the physical floors, and the peak memory of a 10 000-step apply.
Stdlib only. Usage: report.py [RESULTS_DIR]"""
import glob
import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/flow-bench-results"


def result(name):
    path = os.path.join(d, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["results"][0]


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


print("\n# flow: startup and validate (median, min-max)")
for path in sorted(glob.glob(os.path.join(d, "flow-version.json")) + glob.glob(os.path.join(d, "flow-validate-*.json"))):
    r = result(os.path.basename(path)[:-5])
    print(f"{os.path.basename(path)[5:-5]:<48} {ms(r['median'])}  ({r['min'] * 1000:.1f}-{r['max'] * 1000:.1f})")

print("\n# flow against the floors (median of the whole process)")
spawn = result("limits-spawn-100")
version = result("flow-version")
for workload in ["debug-100", "local-100", "redis-100"]:
    r = result(f"flow-{workload}")
    if not r:
        continue
    line = f"{workload:<12} {ms(r['median'])}"
    if workload == "local-100" and spawn:
        line += f"   bare spawn of `true` x100: {ms(spawn['median'])}  ratio {r['median'] / spawn['median']:.2f}"
    if workload == "redis-100" and version:
        line += f"   flow startup: {ms(version['median'])}"
    print(line)

memory = os.path.join(d, "flow-memory-debug-10000.txt")
if os.path.exists(memory):
    kib = int(open(memory).read().split()[-1])
    print(f"\n# peak memory of a 10 000-step apply: {kib / 1024:.1f} MiB")
