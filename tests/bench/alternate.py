"""tests/bench/alternate.py: run two commands alternately RUNS times each (after one warm-up of each) and print "MEDIAN_A MEDIAN_B FAILED_A FAILED_B" in ms ("fail" for a command that never succeeded): a load that changes during the run weighs on both alike."""
import statistics
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 4 or "--" not in argv[2:]:
        print("usage: alternate.py RUNS CMD_A... -- CMD_B...", file=sys.stderr)
        return 2
    runs = int(argv[1])
    sep = argv.index("--", 2)
    cmds = (argv[2:sep], argv[sep + 1:])
    times = ([], [])
    failed = [0, 0]
    for i in range(runs + 1):
        for k, cmd in enumerate(cmds):
            t = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = (time.perf_counter() - t) * 1000
            if i == 0:
                continue   # the warm-up: page cache, .pyc files
            if r.returncode != 0:
                failed[k] += 1
            else:
                times[k].append(dt)
    med = ["%.2f" % statistics.median(t) if t else "fail" for t in times]
    print(med[0], med[1], failed[0], failed[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
