"""tests/python/remote_output.py: run as a srun --dragon task: Process and Pool children on the other nodes, and a dragon.native ProcessGroup on every node, print to stdout and stderr; every line must reach this task's own, whole, once."""
import multiprocessing as mp
import socket
import sys

import dragon
from dragon.native import ProcessGroup, System

LINES = 200
PAD = "x" * 100


def talk(tag):
    h = socket.gethostname()
    for k in range(LINES):
        print(f"rout {h} {tag} {k} {PAD}")
        print(f"rerr {h} {tag} {k} {PAD}", file=sys.stderr)
    sys.stdout.flush()


def pool_talk(k):
    print(f"pout {socket.gethostname()} {k} {PAD}", flush=True)
    print(f"perr {socket.gethostname()} {k} {PAD}", file=sys.stderr, flush=True)
    return k


if __name__ == "__main__":
    mp.set_start_method("dragon")
    here = socket.gethostname()
    others = [n for n in System().nodes if n.hostname != here]
    print(f"parent {here} others {' '.join(n.hostname for n in others)}", flush=True)
    ps = []
    for n in others:
        with dragon.Policy(host=n.index):
            ps.append(mp.Process(target=talk, args=(f"p{n.index}",)))
            ps[-1].start()
    for p in ps:
        p.join(120)
    with dragon.Policy(host=others[0].index):
        with mp.Pool(2) as pool:
            assert pool.map(pool_talk, range(10)) == list(range(10))
    # A program on every node (this one too: a group gets no descriptors of ours)
    g = ProcessGroup("/bin/sh", 3, args=("-c", 'echo "nout $(hostname) $DRAGON_GROUP_RANK"; '
                                               'echo "nerr $(hostname) $DRAGON_GROUP_RANK" >&2'))
    g.start()
    print("group worst", g.join(120), flush=True)
    print("exitcodes", [p.exitcode for p in ps], flush=True)
    print("REMOTE OUTPUT DONE", flush=True)
