"""tests/jupyter/server_check.py: dragon-jupyter's server: a token is required (403 without; an empty one is refused), loopback only unless --ip, and stopping it (Ctrl-C, the Quit button) ends it and its fabric."""
import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from interrupt_restart import MARK, procs_with_mark, wait_until


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def other_address():
    """An IPv4 address of this machine that is not loopback (the test needs one: loud if none)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    raise SystemExit("FAIL: this machine has no non-loopback IPv4 address to test reachability on")


class Server:
    def __init__(self, cmd, args, env, timeout=180):
        if os.geteuid() == 0:   # Jupyter refuses root without it (CI runs as root)
            args = [*args, "--allow-root"]
        self.p = subprocess.Popen([cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)
        self.log = b""
        self.url = None
        end = time.monotonic() + timeout
        while self.url is None:
            if time.monotonic() > end or self.p.poll() is not None:
                self.stop()
                raise AssertionError(f"dragon-jupyter printed no URL (rc {self.p.returncode}):\n"
                                     + self.log.decode(errors="replace"))
            r, _, _ = select.select([self.p.stdout], [], [], 0.5)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                self.log += chunk
                text = self.log.decode(errors="replace")
                if "stops the server and the fabric" not in text:   # dragon-jupyter's last line
                    continue
                for line in text.splitlines():
                    if line.startswith("    http") and "?token=" in line:
                        self.url = line.strip()
        base, _, self.token = self.url.partition("/?token=")
        self.port = int(base.rsplit(":", 1)[1])

    def drain(self):
        while True:
            r, _, _ = select.select([self.p.stdout], [], [], 0)
            if not r:
                return
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return
            self.log += chunk

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.p.poll() is None:
            if time.monotonic() > end:
                raise AssertionError("dragon-jupyter did not exit:\n" + self.log.decode(errors="replace"))
            self.drain()
            time.sleep(0.05)
        self.drain()
        return self.p.returncode

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def status(url, token=None, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def refused(addr, port):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((addr, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def no_token_refused(cmd, env, mark, args, says, what):
    """dragon-jupyter ARGS exits non-zero saying SAYS, serves nothing, leaves nothing behind."""
    if os.geteuid() == 0:
        args = [*args, "--allow-root"]
    p = subprocess.Popen([cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        print(f"FAIL: {what}: dragon-jupyter ran on (it must refuse):\n{out.decode(errors='replace')}",
              flush=True)
        return False
    text = out.decode(errors="replace")
    ok = p.returncode != 0 and says in text and "?token=" not in text
    print(f"{what}: exit {p.returncode}, {'refused' if ok else 'NOT refused'}", flush=True)
    if not ok:
        print(f"FAIL: {what}: expected a non-zero exit saying {says!r}:\n{text}", flush=True)
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "everything dragon-jupyter started to end")
    except AssertionError:
        print(f"FAIL: {what}: left behind:", procs_with_mark(mark), flush=True)
        ok = False
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", required=True, help="the dragon-jupyter to test")
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    mark = uuid.uuid4().hex
    env = dict(os.environ, **{MARK: mark})
    env.pop("JUPYTER_TOKEN", None)
    nbdir = os.path.join(a.workdir, "notebooks")
    os.makedirs(nbdir, exist_ok=True)
    other = other_address()
    ok = True

    # 1. Default: loopback, a token.
    port = free_port()
    srv = Server(a.cmd, [f"--port={port}", "--port-retries=0", f"--notebook-dir={nbdir}"], env)
    try:
        print("server 1:", srv.url, flush=True)
        out = srv.log.decode(errors="replace")
        assert "ssh -N -L" in out, out
        assert srv.url.startswith(f"http://127.0.0.1:{port}/"), srv.url
        assert len(srv.token) >= 32, srv.token
        api = f"http://127.0.0.1:{port}/api/kernels"
        s1, s2, s3 = status(api), status(api, "wrong" + srv.token), status(api, srv.token)
        print(f"/api/kernels: no token {s1}, wrong token {s2}, token {s3}", flush=True)
        assert (s1, s2, s3) == (403, 403, 200), (s1, s2, s3)
        assert refused(other, port), f"the server answers on {other}:{port} without --ip"
        print(f"{other}:{port}: refused (loopback only)", flush=True)
        # Ctrl-C in the terminal: the process group gets SIGINT.
        os.killpg(srv.p.pid, signal.SIGINT)
        rc = srv.wait(60)
        print("after Ctrl-C: exit", rc, flush=True)
    finally:
        srv.stop()
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "the server and its fabric to end")
    except AssertionError:
        print("FAIL: left behind after Ctrl-C:", procs_with_mark(mark), flush=True)
        ok = False

    # 2. --ip: reachable there (still with a token); the Quit button's request ends everything.
    port = free_port()
    srv = Server(a.cmd, [f"--ip={other}", f"--port={port}", "--port-retries=0",
                         f"--notebook-dir={nbdir}"], env)
    try:
        print("server 2:", srv.url, flush=True)
        api = f"http://{other}:{port}/api/kernels"
        s1, s3 = status(api), status(api, srv.token)
        print(f"{other}:{port}/api/kernels: no token {s1}, token {s3}", flush=True)
        assert (s1, s3) == (403, 200), (s1, s3)
        assert status(f"http://{other}:{port}/api/shutdown", None, "POST") == 403
        s = status(f"http://{other}:{port}/api/shutdown", srv.token, "POST")
        rc = srv.wait(60)
        print(f"after /api/shutdown ({s}): exit {rc}", flush=True)
    finally:
        srv.stop()
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "the server and its fabric to end")
    except AssertionError:
        print("FAIL: left behind after Quit:", procs_with_mark(mark), flush=True)
        ok = False

    # 3. Never without a token: an empty one on the command line is refused before anything
    # starts; one emptied by a Jupyter config file makes dragon-jupyter stop the server it started.
    ok = no_token_refused(a.cmd, env, mark, ["--NotebookApp.token="], "refusing to run without a token",
                          "an empty --NotebookApp.token") and ok
    cfgdir = os.path.join(a.workdir, "empty-token-config")
    os.makedirs(cfgdir, exist_ok=True)
    with open(os.path.join(cfgdir, "jupyter_notebook_config.py"), "w") as f:
        f.write("c.NotebookApp.token = ''\n")
    ok = no_token_refused(a.cmd, dict(env, JUPYTER_CONFIG_DIR=cfgdir),
                          mark, [f"--port={free_port()}", f"--notebook-dir={nbdir}"],
                          "came up without a token", "a config file's empty token") and ok
    print("SERVER OK" if ok else "SERVER FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
