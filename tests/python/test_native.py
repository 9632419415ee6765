"""tests/python/test_native.py: dragon.native: nodes, named queues, processes and groups of programs and callables."""
import os
import signal
import socket
import sys

import pytest

import dragon
from dragon import native


def test_system_nodes():
    s = native.System()
    assert s.nnodes == dragon.node_count() >= 1
    me = s.nodes[dragon.node_index()]
    assert me.hostname and me.cpus >= 1
    assert native.node_of(me.hostname) == me.index
    with pytest.raises(ValueError):
        native.node_of("no-such-host.invalid")
    with pytest.raises(ValueError):
        native.node_of(10_000)


def test_named_queue_lookup_and_descriptor():
    q = native.Queue(name="pytest-native-q")
    other = native.lookup("pytest-native-q", timeout=5)
    q.put({"a": 1})
    assert other.get(timeout=5) == {"a": 1}
    by_desc = native.Queue.attach(q.serialize())
    by_desc.put_bytes(b"raw")               # what a C program's dragon_channel_recv would see
    assert q.get_bytes(timeout=5) == b"raw"
    with pytest.raises(KeyError):
        native.lookup("pytest-no-such-name", timeout=0)
    q.destroy()


def test_program_process_and_group():
    p = native.Process("/bin/sh", args=("-c", "exit 4"))
    p.start()
    assert p.join(30) == 4
    g = native.ProcessGroup("/bin/sh", 3, args=("-c", 'exit "$DRAGON_GROUP_RANK"'))
    g.start()
    assert g.join(30) == 2                  # the largest status
    seen = set()
    while True:                             # each end is reported once by wait_any
        try:
            seen.add(g.wait_any(30)[1])
        except FileNotFoundError:
            break
    assert seen <= {0, 1, 2} and seen
    g = native.ProcessGroup("/bin/sleep", 2, args=("100",), policy=dragon.node_index())
    g.start()
    assert g.join(0.05) is None
    g.send_signal(signal.SIGKILL)
    assert g.join(30) == 128 + signal.SIGKILL


def _report(q_desc):
    q = native.Queue.attach(q_desc)
    rank, size = native.group_rank()
    q.put((rank, size, socket.gethostname()))


def test_callable_group_and_process():
    q = native.Queue()
    g = native.ProcessGroup(_report, 3, args=(q.serialize(),))
    g.start()
    got = sorted(q.get(timeout=60) for _ in range(3))
    assert [r for r, _, _ in got] == [0, 1, 2] and all(s == 3 for _, s, _ in got)
    assert g.join(60) == 0
    p = native.Process(lambda: sys.exit(6))
    p.start()
    assert p.join(60) == 6


def test_missing_program():
    with pytest.raises(FileNotFoundError):
        native.Process("/nonexistent/program").start()
    with pytest.raises(FileNotFoundError):
        native.ProcessGroup("/nonexistent/program", 2).start()


def test_ctrl_c_of_dragon_prog_leaves_nothing(tmp_path):
    """dragon /usr/bin/python3 -m dragon prog.py, Ctrl-C: the program and its children all end."""
    import subprocess
    import textwrap
    import time
    from conftest import wait_until
    from dragon import _fabric
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, time
        def sleeper():
            time.sleep(3600)
        if __name__ == "__main__":
            ps = [mp.Process(target=sleeper) for _ in range(2)]
            for p in ps:
                p.start()
            print("pids", *[p.pid for p in ps], flush=True)
            time.sleep(3600)
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRAGON_", "PYDRAGON_"))}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(dragon.__file__))
    proc = subprocess.Popen([_fabric.launcher(), sys.executable, "-m", "dragon", str(script)],
                            stdout=subprocess.PIPE, env=env, start_new_session=True)
    try:
        line = proc.stdout.readline().decode().split()
        assert line[0] == "pids", line
        pids = [int(x) for x in line[1:]]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def gone(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    wait_until(lambda: all(gone(p) for p in pids), timeout=30)


@pytest.mark.parametrize("end", ["exit", "sigkill"])
def test_private_fabric_leaves_nothing_in_tmp(tmp_path, end):
    """A program that starts a private fabric (its children's output relayed through FIFOs) and
    exits, or is killed with SIGKILL, leaves nothing in TMPDIR nor in the runtime directory."""
    import subprocess
    import textwrap
    from conftest import wait_until
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, os, sys, time
        import dragon
        def hello():
            print("hello from the child", flush=True)
        if __name__ == "__main__":
            p = mp.get_context("dragon").Process(target=hello)
            p.start()
            p.join()
            print("ready", os.environ["DRAGON_RUNTIME_DIR"], flush=True)
            if sys.argv[1] == "sigkill":
                time.sleep(3600)
    """))
    tmp, run = tmp_path / "tmp", tmp_path / "run"
    tmp.mkdir()
    run.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRAGON_", "PYDRAGON_")) or k == "DRAGON_LAUNCHER"}
    env.update(PYTHONPATH=os.path.dirname(os.path.dirname(dragon.__file__)), TMPDIR=str(tmp),
               XDG_RUNTIME_DIR=str(run))
    proc = subprocess.Popen([sys.executable, str(script), end], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"hello from the child\n"
        line = proc.stdout.readline().decode().split()
        assert line[0] == "ready" and line[1].startswith(str(run)), line
        if end == "sigkill":
            proc.kill()
            assert proc.wait(30) == -signal.SIGKILL
        else:
            assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def left():
        return [os.path.join(d, n) for d in (tmp, run) for n in os.listdir(d)]
    try:
        wait_until(lambda: not left(), timeout=30)
    except AssertionError:
        raise AssertionError(f"left behind: {left()}") from None
