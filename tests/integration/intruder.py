#!/usr/bin/python3
"""tests/integration/intruder.py: another user's task on a node of a --dragon job: what it can reach of that job, and the bytes it throws at the job's ports (users.bats)."""
import os
import socket
import sys

# Usage: intruder.py RUNDIR PIDS LINK TAS
#   RUNDIR  the job's runtime directory (the same path on every node)
#   PIDS    comma-separated pids of the job's processes (local services, agents, a task)
#   LINK    the head node's link port, ip:port ("-": only the checks)
#   TAS     comma-separated ip:port of the transport agents ("-": none)
# Prints "refused WHAT" for each thing it could not do and "REACHED WHAT" for each it could;
# then "sent WHAT" for each attack. Exit status 0 unless an attack could not even connect.
rundir, pids, link, tas = sys.argv[1:5]
rng = open("/dev/urandom", "rb")


def refused(what, fn):
    try:
        fn()
    except PermissionError:
        print("refused", what)
        return
    except FileNotFoundError:
        print("REACHED", what, "(absent: wrong path?)")
        return
    print("REACHED", what)


def connect_sock():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.path.join(rundir, "ls.sock"))
    finally:
        s.close()


refused("runtime directory listing", lambda: os.listdir(rundir))
refused("runtime directory's job.key", lambda: open(os.path.join(rundir, "job.key"), "rb").read())
refused("local services' socket", connect_sock)
for pid in pids.split(","):
    refused("/proc/%s/environ" % pid, lambda: open("/proc/%s/environ" % pid, "rb").read())
    refused("/proc/%s/maps" % pid, lambda: open("/proc/%s/maps" % pid, "rb").read())
    refused("/proc/%s/mem" % pid, lambda: open("/proc/%s/mem" % pid, "rb").read(1))
    refused("/proc/%s/fd" % pid, lambda: os.listdir("/proc/%s/fd" % pid))


def addr(s):
    host, port = s.rsplit(":", 1)
    return (host, int(port))


def conn(a):
    s = socket.create_connection(a, timeout=5)
    s.settimeout(2)
    return s


def recv_some(s, n):
    data = b""
    try:
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def send_close(a, *parts, read=0):
    s = conn(a)
    got = recv_some(s, read) if read else b""
    try:
        for p in parts:
            s.sendall(p(got) if callable(p) else p)
    except OSError:
        pass  # the other side closed on us: that is its right
    s.close()
    return got


garbage = rng.read(65536)
if link != "-":
    a = addr(link)
    send_close(a, garbage)
    print("sent link garbage")
    send_close(a, b"DGLINK1\0" + rng.read(10))
    print("sent link truncated preamble")
    # A good magic, a made-up stream header, then a frame whose length promises more than comes.
    send_close(a, b"DGLINK1\0" + rng.read(24) + (1000).to_bytes(4, "little") + rng.read(10))
    print("sent link truncated frame")
    # A length past any limit.
    send_close(a, b"DGLINK1\0" + rng.read(24) + (0xFFFFFFF0).to_bytes(4, "little"))
    print("sent link oversized frame")
    # Replays: the head node's own preamble (magic, stream header, nonce) reflected back, then
    # one forged frame; and the same forged bytes on two connections.
    send_close(a, lambda got: got[:32] + (100).to_bytes(4, "little") + rng.read(100), read=64)
    print("sent link reflected preamble")
    forged = b"DGLINK1\0" + rng.read(24) + (64).to_bytes(4, "little") + rng.read(64)
    send_close(a, forged)
    send_close(a, forged)
    print("sent link replayed frame")
if tas != "-":
    for t in tas.split(","):
        a = addr(t)
        send_close(a, garbage)
        send_close(a, garbage[:7])
        send_close(a, garbage[:4096])
        send_close(a, garbage[:4096])
        print("sent agent garbage, truncated and replayed", t)
