"""tests/jupyter/kernelspec_check.py: the "Python 3 (Dragon)" kernel spec joins the fabric it runs in (a job's, or one a launcher started) and otherwise starts a private one-node fabric that ends with the kernel."""
import argparse
import os
import queue
import sys
import time
import uuid

from jupyter_client.manager import KernelManager

from interrupt_restart import MARK, procs_with_mark, wait_until

PROBE = ("import os\n"
         "from dragon import _core, _fabric, native\n"
         "print('fabric', _fabric.private(), _core.fabric_id(), len(native.System().nodes),"
         " os.environ.get('DRAGON_LS_SOCKET'))\n")
# A child on another node that writes to its descriptors 1 and 2 (not through sys.stdout, which
# the kernel sends to the cell by a channel of its own): its lines reach the kernel as those of
# any remote child of a process that joined from outside, and land in the cell that ran it.
REMOTE_FD = ("import multiprocessing as mp, os, socket, dragon\n"
             "from dragon import native\n"
             "here = socket.gethostname()\n"
             "other = next(n for n in native.System().nodes if n.hostname != here)\n"
             "def fd_lines(tag):\n"
             "    h = socket.gethostname()\n"
             "    os.write(1, f'fd-out {tag} {h}\\n'.encode())\n"
             "    os.write(2, f'fd-err {tag} {h}\\n'.encode())\n"
             "with dragon.Policy(host=other.index):\n"
             "    p = mp.Process(target=fd_lines, args=('{TAG}',))\n"
             "    p.start()\n"
             "    p.join(120)\n"
             "print('remote', other.hostname, 'exitcode', p.exitcode)\n")


def run_cell(kc, code, timeout=300):
    msg_id = kc.execute(code)
    text = ""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the cell did not finish in {timeout} s; output {text!r}")
        try:
            m = kc.get_iopub_msg(timeout=min(left, 1))
        except queue.Empty:
            continue
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            text += m["content"]["text"]
        elif m["msg_type"] == "error":
            text += f"[{m['content']['ename']}: {m['content']['evalue']}]"
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inside", action="store_true",
                    help="this script runs in a fabric (a launcher's or a --dragon job's): the "
                         "kernel must join it")
    ap.add_argument("--nodes", type=int, default=1)
    a = ap.parse_args()
    mark = uuid.uuid4().hex
    os.environ[MARK] = mark
    ours = os.environ.get("DRAGON_FABRIC_ID")
    if a.inside and not (ours and os.environ.get("DRAGON_LS_SOCKET")):
        print("FAIL: --inside, but this script runs in no fabric (DRAGON_LS_SOCKET unset)", flush=True)
        return 1
    if not a.inside and os.environ.get("DRAGON_LS_SOCKET"):
        print("FAIL: outside a fabric expected, but DRAGON_LS_SOCKET is set", flush=True)
        return 1
    km = KernelManager(kernel_name="dragon_python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    ok = False
    try:
        kc.wait_for_ready(timeout=120)
        out = run_cell(kc, PROBE)
        line = next((ln for ln in out.splitlines() if ln.startswith("fabric ")), None)
        if line is None:
            raise AssertionError(f"the probe cell printed no fabric line: {out!r}")
        _, private, fid, nodes, sock = line.split(" ", 4)
        print(f"{'inside' if a.inside else 'outside'}: kernel fabric {fid} (private {private}, "
              f"{nodes} node(s)); this script's fabric {ours}", flush=True)
        if a.inside:
            assert private == "False", f"the kernel started a fabric of its own inside one: {line}"
            assert fid == ours, f"the kernel joined fabric {fid}, not the one it runs in ({ours})"
            assert sock == os.environ["DRAGON_LS_SOCKET"], (sock, os.environ["DRAGON_LS_SOCKET"])
        else:
            assert private == "True", f"outside a fabric the kernel must start its own: {line}"
        assert int(nodes) == a.nodes, f"expected {a.nodes} node(s): {line}"
        if a.inside and a.nodes > 1:
            # Two cells in turn: each one's remote child's lines in that cell, once, whole.
            for tag in ("cellA", "cellB"):
                out = run_cell(kc, REMOTE_FD.replace("{TAG}", tag))
                rem = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("remote ")),
                           None)
                assert rem and f"remote {rem} exitcode 0" in out, f"cell {tag}: {out!r}"
                for stream in ("out", "err"):
                    want = f"fd-{stream} {tag} {rem}"
                    got = [ln for ln in out.splitlines() if ln.startswith("fd-")]
                    assert got.count(want) == 1, f"cell {tag}: {want!r} not once in {out!r}"
                assert not [ln for ln in out.splitlines() if ln.startswith("fd-") and
                            tag not in ln], f"cell {tag} got another cell's lines: {out!r}"
                print(f"inside: cell {tag}: its child on {rem} wrote into the cell", flush=True)
        ok = True
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    # Outside, the kernel's private fabric ends with it; inside, the fabric is not the kernel's
    # and stays, but nothing of the kernel's is left (marked processes are the kernel's own).
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "the kernel and what it started to end")
    except AssertionError:
        print("FAIL: left behind:", procs_with_mark(mark), flush=True)
        return 1
    print("KERNELSPEC OK" if ok else "KERNELSPEC FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
