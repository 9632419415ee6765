"""tests/jupyter/run_notebooks.py: execute every notebook of examples/notebooks with nbclient on the "Python 3 (Dragon)" kernel and check the tutorial's outputs."""
import argparse
import glob
import os
import re
import socket
import sys

import nbclient
import nbformat


def text_of(cell, name="stdout"):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def errors_of(cell):
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def by_tag(nb):
    return {t: c for c in nb.cells for t in c.get("metadata", {}).get("tags", [])}


def check_tutorial(nb, nodes, hosts_re):
    """The tutorial's cells: every node named, hello lines in the hello cell, the map, the queue,
    the barrier's order. Returns a list of failures."""
    bad = []
    cells = by_tag(nb)
    for c in nb.cells:
        if c.cell_type == "code" and errors_of(c):
            bad.append(f"cell {c.get('metadata', {}).get('tags')} raised {errors_of(c)}")
    out = text_of(cells["nodes"])
    m = re.search(r"^(\d+) nodes: (.*)$", out, re.M)
    if not m or int(m.group(1)) != nodes:
        return bad + [f"nodes cell: expected {nodes} nodes, got {out!r}"]
    hosts = sorted(m.group(2).split())
    if hosts_re and not all(re.fullmatch(hosts_re, h) for h in hosts):
        bad.append(f"node names {hosts} do not match {hosts_re}")
    hello = text_of(cells["hello"])
    said = sorted(re.findall(r"^hello from worker \d+ on (\S+) ", hello, re.M))
    if said != hosts:
        bad.append(f"hello cell: expected one hello from each of {hosts}, got {said} in {hello!r}")
    if "exit codes: [" + ", ".join(["0"] * nodes) + "]" not in hello:
        bad.append(f"hello cell: exit codes missing in {hello!r}")
    for t in ("nodes", "pool", "queue", "barrier"):
        if "hello from worker" in text_of(cells[t]):
            bad.append(f"a hello line landed in the {t} cell")
    pool = text_of(cells["pool"])
    if f"sum of squares: {sum(x * x for x in range(48))}" not in pool:
        bad.append(f"pool cell: wrong sum in {pool!r}")
    if f"worker hosts: {' '.join(hosts)}\n" not in pool:
        bad.append(f"pool cell: the map did not use every node ({hosts}): {pool!r}")
    if "lambda: [1, 2, 3, 4, 5]" not in pool:
        bad.append(f"pool cell: lambda map missing in {pool!r}")
    queue = text_of(cells["queue"])
    if f"total: {sum(range(1000))} expected: {sum(range(1000))}" not in queue:
        bad.append(f"queue cell: wrong total in {queue!r}")
    got = sorted(re.findall(r"^consumer on (\S+): \d+ items", queue, re.M))
    if got != hosts:
        bad.append(f"queue cell: expected a consumer on each of {hosts}, got {got}")
    barrier = text_of(cells["barrier"])
    lines = [ln for ln in barrier.splitlines() if "the barrier" in ln]
    befores = [i for i, ln in enumerate(lines) if "before" in ln]
    afters = [i for i, ln in enumerate(lines) if "after" in ln]
    if len(befores) != 2 * nodes or len(afters) != 2 * nodes or max(befores) > min(afters):
        bad.append(f"barrier cell: expected {2 * nodes} before lines, then {2 * nodes} after "
                   f"lines: {barrier!r}")
    bhosts = sorted(set(re.findall(r" on (\S+): ", barrier)))
    if bhosts != hosts:
        bad.append(f"barrier cell: workers ran on {bhosts}, not on every node {hosts}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--hosts-re", default=None, help="regex every node's host name matches")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--save", default=None, help="directory for the executed notebooks")
    ap.add_argument("notebooks", nargs="*")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    nbs = a.notebooks or sorted(glob.glob(os.path.join(here, "..", "..", "examples", "notebooks", "*.ipynb")))
    if not nbs:
        print("FAIL: no notebook in examples/notebooks", flush=True)
        return 1
    failed = 0
    for path in nbs:
        nb = nbformat.read(path, as_version=4)
        name = os.path.basename(path)
        client = nbclient.NotebookClient(nb, timeout=a.timeout, kernel_name="dragon_python3",
                                         resources={"metadata": {"path": os.path.dirname(path)}})
        try:
            client.execute()
        except Exception as e:
            print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
            failed += 1
            continue
        if a.save:
            nbformat.write(nb, os.path.join(a.save, name))
        bad = check_tutorial(nb, a.nodes, a.hosts_re) if name == "dragon_tutorial.ipynb" else \
            [f"cell raised {errors_of(c)}" for c in nb.cells if c.cell_type == "code" and errors_of(c)]
        for b in bad:
            print(f"FAIL: {name}: {b}", flush=True)
        if bad:
            failed += 1
            for c in nb.cells:
                if c.cell_type == "code":
                    print(f"--- {c.get('metadata', {}).get('tags')}\n{text_of(c)}{text_of(c, 'stderr')}")
        else:
            print(f"ok: {name} on {a.nodes} node(s) ({socket.gethostname()})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
