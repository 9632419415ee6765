"""tests/jupyter/interrupt_restart.py: on the Dragon kernel, interrupt a long Pool.map (no worker left, the next cell works), then restart the kernel with a process running (nothing left)."""
import argparse
import os
import queue
import re
import sys
import time
import uuid

from jupyter_client.manager import KernelManager

MARK = "DRAGON_JUPYTER_TEST_MARK"


def procs_with_mark(value):
    """Processes (of any node: the test cluster's nodes share this machine's pid namespace) whose
    environment carries our mark: the kernel, its fabric and every worker inherit it."""
    found = []
    needle = f"{MARK}={value}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    with open(f"/proc/{pid}/cmdline", "rb") as c:
                        found.append((int(pid), c.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            pass
    return found


def workers_with_mark(value):
    """The multiprocessing workers among them (on every node): what the kernel started."""
    return [(pid, cmd) for pid, cmd in procs_with_mark(value) if "dragon._child" in cmd]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    delay = 0.01
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(2 * delay, 0.2)


class Cells:
    def __init__(self, kc):
        self.kc = kc

    def run(self, code, timeout=300, on_output=None):
        """Execute code; returns (reply content, stdout text). on_output(text_so_far) may return
        True to stop collecting early (the cell keeps running); then returns (None, text)."""
        msg_id = self.kc.execute(code)
        text = ""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"cell did not finish in {timeout} s: {code!r}; output {text!r}")
            try:
                m = self.kc.get_iopub_msg(timeout=min(left, 1))
            except queue.Empty:
                continue
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            t = m["msg_type"]
            if t == "stream":
                text += m["content"]["text"]
                if on_output and on_output(text):
                    return None, text, msg_id
            elif t == "error":
                text += f"[{m['content']['ename']}]"
            elif t == "status" and m["content"]["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=max(1, end - time.monotonic()))
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=max(1, end - time.monotonic()))
        return reply["content"], text, msg_id

    def finish(self, msg_id, timeout=120):
        """Wait for the reply of a cell started by run(on_output=...)."""
        end = time.monotonic() + timeout
        text = ""
        while True:
            try:
                m = self.kc.get_iopub_msg(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the interrupted cell did not end in {timeout} s")
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "error":
                text += f"[{m['content']['ename']}]"
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1)
    a = ap.parse_args()
    mark = uuid.uuid4().hex
    os.environ[MARK] = mark
    km = KernelManager(kernel_name="dragon_python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    ok = False
    try:
        kc.wait_for_ready(timeout=120)
        cells = Cells(kc)
        _, out, _ = cells.run("import multiprocessing as mp, os, socket, time\n"
                              "from dragon import native\n"
                              "print('nodes', len(native.System().nodes))")
        assert f"nodes {a.nodes}" in out, out
        nworkers = 2 * a.nodes
        cells.run(f"pool = mp.Pool({nworkers})")
        # 1. Interrupt in the middle of a long map: every worker has started a task.
        code = ("def slow(i):\n"
                "    print(f'started {socket.gethostname()} {os.getpid()}', flush=True)\n"
                "    time.sleep(3600)\n"
                "    return i\n"
                f"pool.map(slow, range({nworkers * 20}), chunksize=1)\n")
        pids = set()

        def enough(text):
            pids.update(re.findall(r"^started (\S+) (\d+)$", text, re.M))
            return len(pids) >= nworkers
        reply, text, msg_id = cells.run(code, on_output=enough)
        hosts = sorted({h for h, _ in pids})
        print(f"map running on {len(pids)} workers, hosts {hosts}", flush=True)
        if len(hosts) != a.nodes:
            raise AssertionError(f"the pool's workers are on {hosts}, expected {a.nodes} nodes")
        t0 = time.monotonic()
        km.interrupt_kernel()
        err = cells.finish(msg_id)
        print(f"interrupted cell ended in {time.monotonic() - t0:.2f} s: {err}", flush=True)
        assert "KeyboardInterrupt" in err, err
        # The cell's reply comes after the kernel waited for its workers: none may be left, on
        # any node (those that printed, and those that had not started a task yet).
        left = [p for _, p in pids if alive(int(p))]
        if left:
            raise AssertionError(f"workers of the interrupted map still run: {left}")
        try:
            wait_until(lambda: not workers_with_mark(mark), 30, "no worker left after the interrupt")
        except AssertionError:
            raise AssertionError(f"workers left after the interrupt: {workers_with_mark(mark)}")
        print("after the interrupt: no worker left on any node", flush=True)
        # 2. The next cell works (a new pool over every node).
        code = ("with mp.Pool(%d) as p2:\n"
                "    print('after', sum(p2.map(abs, range(-10, 10))),"
                " sorted(set(p2.map(lambda _: (time.sleep(0.2), socket.gethostname())[1], range(%d), chunksize=1))))"
                % (nworkers, 8 * a.nodes))
        reply, out, _ = cells.run(code)
        if reply["status"] == "aborted":
            # ipykernel aborts the requests that reached it while it handled the error (a
            # front end sends the next cell later): send it again.
            print("next cell: aborted by ipykernel after the error; sending it again", flush=True)
            reply, out, _ = cells.run(code)
        assert reply["status"] == "ok" and "after 100" in out, (reply, out)
        assert all(h in out for h in hosts), out
        print("next cell:", out.strip(), flush=True)
        # 3. Restart with processes running on every node (not joined, not daemonic).
        _, out, _ = cells.run("import dragon\n"
                              "ps = [mp.Process(target=time.sleep, args=(3600,), policy=dragon.Policy(host=n))"
                              f" for n in range({a.nodes})]\n"
                              "for p in ps: p.start()\n"
                              "print('sleepers', [p.pid for p in ps])")
        sleepers = [int(x) for x in re.findall(r"\d+", out.split("sleepers", 1)[1])]
        assert len(sleepers) == a.nodes and all(alive(p) for p in sleepers), out
        km.restart_kernel(now=False)
        wait_until(lambda: not any(alive(p) for p in sleepers), 60,
                   f"the sleepers {sleepers} to end after the restart")
        kc.wait_for_ready(timeout=120)
        reply, out, _ = cells.run("print('restarted', 6 * 7)")
        assert "restarted 42" in out, out
        # Nothing the old kernel started is left on any node (its pool of the second cell too).
        try:
            wait_until(lambda: not workers_with_mark(mark), 30, "no worker left after the restart")
        except AssertionError:
            raise AssertionError(f"workers left after the restart: {workers_with_mark(mark)}")
        print("restart: the sleepers are gone, the new kernel runs", flush=True)
        ok = True
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    # Nothing of ours remains on any node: kernel, private fabric, workers.
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "every process of the test to end")
    except AssertionError:
        print("FAIL: left behind:", procs_with_mark(mark), flush=True)
        return 1
    print("INTERRUPT RESTART OK" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
