"""dragon.jupyter.server: run Debian's Jupyter Notebook server as a process of a Dragon fabric, with a token, on loopback unless told otherwise."""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

from . import KERNEL_NAME

USAGE = """usage: dragon-jupyter [JUPYTER-NOTEBOOK ARGS...]
       dragon-jupyter kernelspec [--user | --prefix DIR]   install the "Python 3 (Dragon)" kernel spec
       dragon-jupyter kernel -f CONNECTION_FILE           the kernel (what the kernel spec runs)

Starts Jupyter Notebook in a Dragon fabric: inside a `salloc --dragon` / `sbatch --dragon` job the
job's fabric, in a plain allocation a fabric over its nodes, elsewhere a one-node fabric. Cells of
notebooks using the "Python 3 (Dragon)" kernel run multiprocessing over every node. The server
listens on 127.0.0.1 unless --ip says otherwise, always with a token; stopping it (Ctrl-C, the Quit
button) ends the fabric it started.
"""

# How long the server may take to write its runtime file (it imports a lot on a busy machine).
_START_TIMEOUT = float(os.environ.get("DRAGON_JUPYTER_START_TIMEOUT", "120"))


def _opt(args, names):
    """The value of --name=V / --name V among args (last wins), or None."""
    val = None
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                val = args[i + 1]
            elif a.startswith(n + "="):
                val = a[len(n) + 1:]
    return val


def _check_args(args):
    token = _opt(args, ("--NotebookApp.token", "--ServerApp.token"))
    if token is not None and token.strip("'\"") == "":
        raise SystemExit("dragon-jupyter: refusing to run without a token (--NotebookApp.token is "
                         "empty): anyone who can reach the port could run code as you on every node")


def _runtime_file(pid, env):
    from jupyter_core.paths import jupyter_runtime_dir
    old = dict(os.environ)
    try:
        os.environ.update(env)
        d = jupyter_runtime_dir()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return os.path.join(d, f"nbserver-{pid}.json")


def _wait_info(proc, path):
    """The server's runtime file (url, port, token) once it is listening; None if it died."""
    deadline = time.monotonic() + _START_TIMEOUT
    delay = 0.01
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise TimeoutError(f"dragon-jupyter: the server wrote no {path} in {_START_TIMEOUT:.0f} s")


def _fabric_summary():
    try:
        from dragon import native
        nodes = native.System().nodes
        return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: " + \
            " ".join(n.hostname for n in nodes)
    except Exception as e:  # the server runs anyway; kernels join on their own
        return f"fabric not queried: {e}"


def run(args):
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    _check_args(args)
    env = dict(os.environ)
    # The kernel spec of this installation (or build tree) comes first.
    data = env.get("DRAGON_JUPYTER_DATA")
    if data:
        env["JUPYTER_PATH"] = data + (os.pathsep + env["JUPYTER_PATH"] if env.get("JUPYTER_PATH") else "")
    # A fresh random token unless the user chose one (through the environment: not on a command
    # line that `ps` shows to everyone on the node).
    if not env.get("JUPYTER_TOKEN") and _opt(args, ("--NotebookApp.token", "--ServerApp.token")) is None:
        env["JUPYTER_TOKEN"] = secrets.token_hex(24)
    cmd = [sys.executable, "-m", "notebook"]
    if _opt(args, ("--ip", "--NotebookApp.ip", "--ServerApp.ip")) is None:
        cmd.append("--ip=127.0.0.1")   # loopback: reach it through ssh -L
    if not any(re.search(r"browser", a) for a in args):
        cmd.append("--no-browser")
    cmd.append(f"--MultiKernelManager.default_kernel_name={KERNEL_NAME}")
    cmd += args
    # Its own process group: a terminal's Ctrl-C comes to us, and we stop it with SIGTERM (no
    # "Shutdown this notebook server (y/[n])?" question that would wait for ever in a batch job).
    proc = subprocess.Popen(cmd, env=env, process_group=0)

    def forward(signo, frame):
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)

    try:
        info = _wait_info(proc, _runtime_file(proc.pid, env))
    except TimeoutError as e:
        print(e, file=sys.stderr)
        proc.terminate()
        proc.wait()
        return 1
    if info is None:
        print(f"dragon-jupyter: the server exited with {proc.returncode} before it listened",
              file=sys.stderr)
        return proc.returncode or 1
    if not info.get("token"):
        print("dragon-jupyter: the server came up without a token (a jupyter_notebook_config sets "
              "an empty one?): stopping it", file=sys.stderr)
        proc.terminate()
        proc.wait()
        return 1
    port = info.get("port")
    url = f"{info['url'].rstrip('/')}/?token={info['token']}"
    host = socket.gethostname()
    print(f"\ndragon-jupyter: Jupyter Notebook in the Dragon fabric ({_fabric_summary()})", flush=True)
    print(f"    {url}", flush=True)
    ip = _opt(args, ("--ip", "--NotebookApp.ip", "--ServerApp.ip")) or "127.0.0.1"
    if ip in ("0.0.0.0", "*", "", "::"):
        ip = host   # every address: the tunnel goes to this node's name
    fwd = f"{port}:{'127.0.0.1' if ip in ('127.0.0.1', 'localhost') else ip}:{port}"
    login = os.environ.get("SLURM_SUBMIT_HOST")
    if login and login != host:
        print(f"  from {login}:    ssh -N -L {fwd} {host}", flush=True)
        print(f"  from your laptop: ssh -N -L {fwd} -J {login} {host}", flush=True)
    else:
        print(f"  from another machine: ssh -N -L {fwd} {host}", flush=True)
    print(f"  then open http://127.0.0.1:{port}/?token={info['token']}", flush=True)
    print("  Ctrl-C (or the Quit button) stops the server and the fabric it started.\n", flush=True)
    while True:
        try:
            return proc.wait()
        except InterruptedError:
            continue
