#!/usr/bin/python3
# tests/scale/job_measure.py: inside one `salloc --dragon -NN` job: its bring-up, joining steps, and what the head node's local services spend (CPU, memory) per join, status and relayed request; one JSON line.
# Usage: job_measure.py BUILD_DIR NODES JOIN_RUNS LOOKUPS; the job's submit time in SCALE_T0
# (seconds since the epoch). Reads the fabric's daemons through /proc (the test cluster's nodes
# share this machine's pid namespace).
import glob, json, os, re, statistics, subprocess, sys, time

B, N, RUNS, LOOKUPS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
JOB = os.environ["SLURM_JOB_ID"]
JOIN = B + "/tests/integration/join_check"
DRAGON = B + "/runtime/launcher/dragon"
TOOL = B + "/tests/scale/scaletool"
HELLO = B + "/examples/hello"
NETNS = {int(x) for x in os.environ.get("SCALE_NETNS", "").split()}
out = {"nodes": N, "job": int(JOB), "load_start": os.getloadavg()[0]}


def run(cmd):
    t = time.perf_counter()
    r = subprocess.run(["timeout", "120"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ms = (time.perf_counter() - t) * 1000
    if r.returncode:
        sys.exit("step failed (rc %d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-2000:]))
    return ms, r.stdout


def cpu_ns(pid):
    """CPU time of every thread of pid, in ns (schedstat: exact, unlike the 10 ms ticks of stat)."""
    total = 0
    for t in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            total += int(open(t).read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def rss_kb(pid):
    m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read())
    return int(m.group(1)) if m else 0


def start_s(pid):
    """When pid started, in seconds since the epoch (10 ms resolution: clock ticks since boot)."""
    st = open("/proc/%d/stat" % pid).read()
    ticks = int(st[st.rindex(")") + 2:].split()[19])
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + ticks / os.sysconf("SC_CLK_TCK")


def fabric():
    """{node index: (pid, {file: mtime})} of this job's local services: the runtime directory's
    job.key (after the first fence), ta.peers (after the second) and ls.ready (joined)."""
    pat = re.compile(r"^%s/runtime/ls/dragon-ls --dir \S+/%s --fabric-id job%s " % (re.escape(B), JOB, JOB))
    nodes = {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            cmd = open(d + "/cmdline").read().replace("\0", " ")
        except OSError:
            continue
        if not pat.match(cmd):
            continue
        pid = int(d[6:])
        # this cluster's nodes only (another instance may run the same job id from this build)
        try:
            if NETNS and os.stat(d + "/ns/net").st_ino not in NETNS:
                continue
        except OSError:
            continue
        for f in glob.glob("%s/root/tmp/dragon-run/*/%s/ls.ready" % (d, JOB)):
            try:
                fid, idx, n, p = open(f).read().split()
                if fid == "job" + JOB and int(p) == pid:
                    d2 = os.path.dirname(f)
                    nodes[int(idx)] = (pid, {k: os.stat(d2 + "/" + k).st_mtime for k in ("job.key", "ta.peers", "ls.ready")
                                             if os.path.exists(d2 + "/" + k)})
            except (OSError, ValueError):
                pass
    return nodes


# 1. Bring-up: the first --dragon step starts the fabric (its tasks wait for their node's ls.ready).
first, _ = run(["srun", "--dragon", "-N%d" % N, "true"])
out["ready_ms"] = (time.time() - float(os.environ["SCALE_T0"])) * 1000
plain, _ = run(["srun", "-N%d" % N, "true"])
out["first_step_ms"], out["plain_after_ms"] = first, plain
out["bringup_ms"] = first - plain
fab = fabric()
if sorted(fab) != list(range(N)):
    sys.exit("found the local services of nodes %s, expected 0..%d" % (sorted(fab), N - 1))
head = fab[0][0]
others = [fab[i][0] for i in range(1, N)]
# The local services' start-up on each node, from the files they write: start (the process) to
# job.key (first fence, the agent started), to ta.peers (the agent's address, second fence), to
# ls.ready (joined the head node); and the head's ls.ready after the last node's.
def med(f):
    return statistics.median(f(i) for i in fab)


st = {i: start_s(fab[i][0]) for i in fab}
out["ls_start_spread_ms"] = (max(st.values()) - min(st.values())) * 1000
out["ls_to_ready_ms"] = med(lambda i: fab[i][1]["ls.ready"] - st[i]) * 1000
if N > 1:
    out["ls_to_key_ms"] = med(lambda i: fab[i][1]["job.key"] - st[i]) * 1000
    out["key_to_peers_ms"] = med(lambda i: fab[i][1]["ta.peers"] - fab[i][1]["job.key"]) * 1000
    out["peers_to_ready_ms"] = statistics.median(fab[i][1]["ls.ready"] - fab[i][1]["ta.peers"] for i in fab if i) * 1000
    out["head_ready_after_last_ms"] = (fab[0][1]["ls.ready"] - max(fab[i][1]["ls.ready"] for i in fab if i)) * 1000
out["head_cpu_bringup_ms"] = cpu_ns(head) / 1e6
out["other_cpu_bringup_ms"] = statistics.median(cpu_ns(p) for p in others) / 1e6 if others else 0
out["head_rss_kb"] = rss_kb(head)
out["other_rss_kb"] = statistics.median(rss_kb(p) for p in others) if others else 0

# 2. Joining steps against plain ones, alternating; the head's CPU over the joining ones.
joins, trues, plains, head_join, other_join = [], [], [], 0, 0
for _ in range(RUNS):
    c0, o0 = cpu_ns(head), [cpu_ns(p) for p in others]
    joins.append(run(["srun", "--dragon", "-N%d" % N, JOIN])[0])
    head_join += cpu_ns(head) - c0
    other_join += statistics.median(cpu_ns(p) - o for p, o in zip(others, o0)) if others else 0
    trues.append(run(["srun", "--dragon", "-N%d" % N, "true"])[0])
    plains.append(run(["srun", "-N%d" % N, "true"])[0])
out["join_ms"] = statistics.median(joins)
out["join_true_ms"] = statistics.median(trues)
out["plain_ms"] = statistics.median(plains)
out["head_cpu_per_join_step_ms"] = head_join / RUNS / 1e6
out["other_cpu_per_join_step_ms"] = other_join / RUNS / 1e6

# 3. dragon status on the head node (every node in its reply): the head's CPU per status.
c0 = cpu_ns(head)
first_node = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                            stdout=subprocess.PIPE, text=True).stdout.split()[0]
ms, txt = run(["srun", "--dragon", "-N1", "-w", first_node, DRAGON, "status", "--json"])
out["head_cpu_status_step_ms"] = (cpu_ns(head) - c0) / 1e6
out["status_nodes"] = len(json.loads(txt)[0]["nodes"])
out["status_ms"] = ms
out["status_bytes"] = len(txt)

# 4. A group of 4 processes per node started from the head node (examples/hello): GS places them,
#    each node starts its own, their output and exits come back through the head node.
c0 = cpu_ns(head)
ms, txt = run(["srun", "--dragon", "-N1", "-w", first_node, DRAGON, HELLO, str(4 * N)])
if txt.count("hello from rank") != 4 * N:
    sys.exit("hello %d: %d members said hello\n%s" % (4 * N, txt.count("hello from rank"), txt[-2000:]))
out["group_ms"] = ms
out["head_cpu_per_member_us"] = (cpu_ns(head) - c0) / (4 * N) / 1e3

# 5. Relayed requests: every node looks a name up (GS serves them on the head node); a step of 1
#    lookup per node and one of 1+LOOKUPS, so the difference is the lookups' own cost.
def names(count):
    c0, o0 = cpu_ns(head), [cpu_ns(p) for p in others]
    ms, txt = run(["srun", "--dragon", "-N%d" % N, "--ntasks-per-node=1", TOOL, "names",
                   "m%d" % time.time_ns(), str(count)])
    us = [float(m.group(1)) for m in re.finditer(r"^names \d+ of \d+: \d+ lookups, ([0-9.]+) us each", txt, re.M)]
    if len(us) != N:
        sys.exit("names: %d of %d tasks reported\n%s" % (len(us), N, txt))
    return cpu_ns(head) - c0, statistics.median(cpu_ns(p) - o for p, o in zip(others, o0)), statistics.median(us)


if N > 1:
    h1, o1, _ = names(1)
    h2, o2, us = names(1 + LOOKUPS)
    out["lookup_us_median"] = us
    # per lookup relayed from another node: the head's CPU and a requesting node's
    out["head_cpu_per_relayed_us"] = (h2 - h1) / ((N - 1) * LOOKUPS) / 1e3
    out["other_cpu_per_lookup_us"] = (o2 - o1) / LOOKUPS / 1e3
out["load_end"] = os.getloadavg()[0]
print("MEASURE " + json.dumps(out), flush=True)
