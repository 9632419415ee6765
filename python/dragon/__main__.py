"""python3 -m dragon PROG.py [ARGS]: run a Python program in a fabric (the job's, or a new one through the dragon launcher)."""
import os
import runpy
import sys


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print("usage: python3 -m dragon PROG.py [ARGS...] | python3 -m dragon -m MODULE [ARGS...]\n"
              "Runs the program in the fabric this process belongs to; outside one, through the\n"
              "dragon launcher (a fresh fabric: one node, or every node of a Slurm allocation).",
              file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    if not os.environ.get("DRAGON_LS_SOCKET"):
        # Not in a fabric: the launcher starts one and runs this same interpreter inside it.
        from . import _fabric
        launcher = _fabric.launcher()
        os.execv(launcher, [launcher, sys.executable, "-m", "dragon", *args])
    import dragon  # noqa: F401  (registers the start method)
    import multiprocessing.context as ctx
    from dragon import mp
    # "dragon" becomes the default start method, the way "fork" is CPython's: a program written
    # for standard multiprocessing runs unchanged, and may still call set_start_method().
    ctx._default_context._default_context = mp._context
    if args[0] == "-m":
        if len(args) < 2:
            print("python3 -m dragon: -m needs a module", file=sys.stderr)
            return 2
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
