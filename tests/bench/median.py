"""tests/bench/median.py: run a command RUNS times (after one warm-up run) and print "MEDIAN_MS FAILED" ("fail N" when none succeeded)."""
import subprocess
import sys
import time

runs = int(sys.argv[1])
cmd = sys.argv[2:]
subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ts = []
failed = 0
for _ in range(runs):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        failed += 1
        continue
    ts.append((time.perf_counter() - t) * 1000)
if not ts:
    print("fail", failed)
    sys.exit(0)
ts.sort()
print("%.2f %d" % (ts[len(ts) // 2], failed))
