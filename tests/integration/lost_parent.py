"""tests/integration/lost_parent.py: a Python parent whose children run on a node the test then takes away (lostnode.bats): what their exit codes say."""
import multiprocessing as mp
import sys
import time

import dragon
import dragon.native as dn


def sleeper():
    time.sleep(600)


def timed_join(what, join):
    t0 = time.monotonic()
    rc = join()
    print(f"{what} {rc} after {int((time.monotonic() - t0) * 1000)} ms", flush=True)


if __name__ == "__main__":
    victim = int(sys.argv[1])    # the node index the test takes away
    mp.set_start_method("dragon")
    on_victim = dragon.Policy(host=victim)
    child = mp.Process(target=sleeper, policy=on_victim)
    child.start()
    native_callable = dn.Process(sleeper, policy=on_victim)
    native_callable.start()
    native_program = dn.Process("/bin/sleep", args=(6003,), policy=on_victim)
    native_program.start()
    # Both Python children report their pid once they run there.
    print(f"children on nodes {child._popen.node} {native_callable._p._popen.node} "
          f"{native_program.node}; pids {child.pid > 0} {native_callable._p.pid > 0}", flush=True)
    print(f"python parent ready on node {dragon.node_index()}; NODE_LOST {dragon.NODE_LOST}", flush=True)
    timed_join("mp exitcode", lambda: (child.join(120), child.exitcode)[1])
    timed_join("native callable returncode", lambda: native_callable.join(120))
    timed_join("native program returncode", lambda: native_program.join(120))
