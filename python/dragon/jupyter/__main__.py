"""python3 -m dragon.jupyter (dragon-jupyter): the Jupyter server in a fabric, the Dragon kernel, or the kernel spec's installation."""
import json
import os
import sys

from . import DISPLAY_NAME, KERNEL_NAME


def kernelspec(cmd, dest):
    """Write the "Python 3 (Dragon)" kernel spec into dest/kernels/dragon_python3."""
    d = os.path.join(dest, "kernels", KERNEL_NAME)
    os.makedirs(d, exist_ok=True)
    spec = {"argv": [cmd, "kernel", "-f", "{connection_file}"], "display_name": DISPLAY_NAME,
            "language": "python", "interrupt_mode": "signal",
            "metadata": {"debugger": False}}
    with open(os.path.join(d, "kernel.json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    return d


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "kernel":
        os.environ.pop("JUPYTER_TOKEN", None)   # the server's secret stays out of workers' environments
        # ipykernel loads debugpy, which warns about frozen modules on every start (the Dragon
        # kernel spec turns the debugger off).
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        from . import kernel
        return kernel.main(args[1:])
    if args and args[0] == "kernelspec":
        cmd = os.environ.get("DRAGON_JUPYTER_CMD")
        if not cmd:
            print("dragon-jupyter kernelspec: run it as dragon-jupyter (DRAGON_JUPYTER_CMD unset)",
                  file=sys.stderr)
            return 2
        rest = args[1:]
        if rest[:1] == ["--prefix"] and len(rest) == 2:
            dest = os.path.join(rest[1], "share", "jupyter")
        elif rest in ([], ["--user"]):
            from jupyter_core.paths import jupyter_data_dir
            dest = jupyter_data_dir()
        else:
            print("usage: dragon-jupyter kernelspec [--user | --prefix DIR]", file=sys.stderr)
            return 2
        print(kernelspec(cmd, dest))
        return 0
    if args[:1] in (["-h"], ["--help"]):
        from .server import USAGE
        print(USAGE)
        return 0
    if not os.environ.get("DRAGON_LS_SOCKET"):
        # Not in a fabric: the launcher starts one (one node, or every node of a Slurm
        # allocation; a --dragon job's fabric is joined) and runs the server as its process.
        from dragon import _fabric
        launcher = _fabric.launcher()
        if not os.access(launcher, os.X_OK):
            print(f"dragon-jupyter: the dragon launcher {launcher} is missing (DRAGON_LAUNCHER)",
                  file=sys.stderr)
            return 1
        os.execv(launcher, [launcher, sys.executable, "-m", "dragon.jupyter", *args])
    from . import server
    return server.run(args)


if __name__ == "__main__":
    sys.exit(main())
