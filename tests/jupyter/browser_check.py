"""tests/jupyter/browser_check.py: headless Chromium opens the tutorial notebook served by dragon-jupyter, runs all cells, checks the outputs and saves a screenshot."""
import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from interrupt_restart import MARK, procs_with_mark, wait_until
from server_check import Server, free_port, status

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
                  "--remote-debugging-port=0", "--window-size=1280,1000"]


class CDP:
    """A minimal Chrome DevTools Protocol client over tornado's websocket (Debian's python3-tornado)."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0

    async def call(self, method, **params):
        self.n += 1
        mid = self.n
        await self.ws.write_message(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self.ws.read_message(), 120)
            if msg is None:
                raise ConnectionError("Chromium closed the DevTools connection")
            m = json.loads(msg)
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def until(self, expr, timeout, what):
        end = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                if await self.eval(expr):
                    return
            except RuntimeError:
                pass
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(delay)
            delay = min(2 * delay, 0.5)


def devtools_port(proc, profile, timeout=60):
    """Chromium writes its DevTools port into the profile directory once it listens."""
    path = os.path.join(profile, "DevToolsActivePort")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        try:
            with open(path) as f:
                return int(f.readline())
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError("chromium opened no DevTools port")


ALL_DONE = """(() => {
  const nb = Jupyter.notebook;
  const code = nb.get_cells().filter(c => c.cell_type === 'code');
  const icon = document.getElementById('kernel_indicator_icon');
  return code.every(c => typeof c.input_prompt_number === 'number') &&
         icon && icon.classList.contains('kernel_idle_icon');
})()"""


STATE = """(() => JSON.stringify({
  prompts: Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code').map(c => c.input_prompt_number),
  kernel: (document.getElementById('kernel_indicator_icon') || {}).className,
  outputs: Array.from(document.querySelectorAll('.output_area')).map(e => e.innerText)}))()"""


async def drive(port, url, screenshot, nodes):
    from tornado.websocket import websocket_connect
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
        pages = [t for t in json.load(r) if t.get("type") == "page"]
    ws = await websocket_connect(pages[0]["webSocketDebuggerUrl"], max_message_size=1 << 28)
    cdp = CDP(ws)
    await cdp.call("Page.enable")
    await cdp.call("Page.navigate", url=url)
    await cdp.until("typeof Jupyter !== 'undefined' && !!Jupyter.notebook && !!Jupyter.notebook.kernel"
                    " && Jupyter.notebook.kernel.is_connected()", 120, "the notebook's kernel")
    name = await cdp.eval("Jupyter.notebook.kernel.name")
    assert name == "dragon_python3", f"the notebook runs kernel {name!r}"
    print("notebook open, kernel connected: running all cells", flush=True)
    await cdp.eval("Jupyter.notebook.execute_all_cells(), true")
    try:
        await cdp.until(ALL_DONE, 300, "every cell to run")
    except AssertionError:
        state = await cdp.eval(STATE)
        raise AssertionError(f"the cells did not all run in 300 s: {state}")
    text = await cdp.eval("Array.from(document.querySelectorAll('.output_area')).map(e => e.innerText).join('\\n')")
    errors = await cdp.eval("document.querySelectorAll('.output_error').length")
    # The whole notebook in one picture: the page as tall as its content.
    height = await cdp.eval("document.getElementById('notebook-container').scrollHeight + "
                            "document.getElementById('header').offsetHeight + 40")
    await cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=int(height),
                   deviceScaleFactor=1, mobile=False)
    await cdp.until(ALL_DONE, 30, "the page to settle")
    await cdp.eval("document.getElementById('site').scrollTop = 0, true")
    shot = await cdp.call("Page.captureScreenshot", format="png")
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    ws.close()
    bad = []
    if errors:
        bad.append(f"{errors} cells show an error")
    m = re.search(r"(\d+) nodes: (.*)", text)
    if not m or int(m.group(1)) != nodes:
        bad.append(f"expected {nodes} nodes in the first cell's output")
    else:
        for h in m.group(2).split():
            if f"hello from worker" not in text or not re.search(rf"hello from worker \d+ on {re.escape(h)} ", text):
                bad.append(f"no hello from {h}")
    for want in (f"sum of squares: {sum(x * x for x in range(48))}", "lambda: [1, 2, 3, 4, 5]", "total: 499500 expected: 499500",
                 "barrier done:"):
        if want not in text:
            bad.append(f"{want!r} missing from the outputs")
    return bad, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--nodes", type=int, default=1)
    a = ap.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        print("FAIL: chromium is not installed (Debian package chromium; contrib/install-deps)")
        return 1
    mark = uuid.uuid4().hex
    env = dict(os.environ, **{MARK: mark})
    env.pop("JUPYTER_TOKEN", None)
    nbdir = os.path.join(a.workdir, "browser-notebooks")
    os.makedirs(nbdir, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "..", "..", "examples", "notebooks", "dragon_tutorial.ipynb"), nbdir)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=a.workdir)
    srv = Server(a.cmd, [f"--port={free_port()}", "--port-retries=0", f"--notebook-dir={nbdir}"], env)
    browser = None
    bad = ["not run"]
    try:
        browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
        port = devtools_port(browser, profile)
        url = f"http://127.0.0.1:{srv.port}/notebooks/dragon_tutorial.ipynb?token={srv.token}"
        bad, text = asyncio.run(drive(port, url, a.screenshot, a.nodes))
        print(text, flush=True)
        print(f"screenshot: {a.screenshot} ({os.path.getsize(a.screenshot)} bytes)")
    finally:
        if browser is not None and browser.poll() is None:
            os.killpg(browser.pid, signal.SIGTERM)
            try:
                browser.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
        if srv.p.poll() is None:
            status(f"http://127.0.0.1:{srv.port}/api/shutdown", srv.token, "POST")
            srv.wait(60)
        srv.stop()
        shutil.rmtree(profile, ignore_errors=True)
    try:
        wait_until(lambda: not procs_with_mark(mark), 30, "the server, kernel, fabric and browser to end")
    except AssertionError:
        bad.append(f"left behind: {procs_with_mark(mark)}")
    for b in bad:
        print("FAIL:", b)
    print("BROWSER OK" if not bad else "BROWSER FAILED", flush=True)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
