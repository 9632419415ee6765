"""tests/python/cpython_mp.py: CPython's own multiprocessing suite (Debian's test/_test_multiprocessing.py) for the "dragon" start method: processes-type and type-less classes (or, with --futures, concurrent.futures' process-pool tests); prints ran/passed/skipped/failed."""
import os
import re
import sys
import time
import unittest

from test import support

# A test that hangs waits LONG_TIMEOUT (300 s) before it fails: a minute is plenty on one machine.
support.LONG_TIMEOUT = min(support.LONG_TIMEOUT, 60)


def main(argv):
    futures = len(argv) > 1 and argv[1] == "--futures"
    if futures:
        del argv[1]
        import test_concurrent_futures_dragon as mod
        what = "CPython concurrent.futures process-pool tests, mp_context dragon"
    else:
        import test_multiprocessing_dragon as mod
        what = "CPython multiprocessing suite, start method dragon"
    pattern = re.compile(argv[1]) if len(argv) > 1 else None
    # CPYTHON_MP_EXCLUDE=REGEX (not DRAGON_*: the fabric strips those) leaves tests out (the 3-node run: tests that only work on
    # loopback and wait without a timeout, see docs/python.md)
    exclude = os.environ.get("CPYTHON_MP_EXCLUDE")
    exclude = re.compile(exclude) if exclude else None
    globs = vars(mod)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    excluded = []
    for name, obj in sorted(globs.items()):
        if not (isinstance(obj, type) and issubclass(obj, unittest.TestCase)):
            continue
        if name.startswith(("WithThreads", "WithManager")):
            continue           # the scope: processes-type and type-less classes
        if futures and not name.startswith("ProcessPoolDragon"):
            continue           # the suite's own classes (thread pools, fork, spawn...) are not ours
        for t in loader.loadTestsFromTestCase(obj):
            if exclude is not None and exclude.search(t.id()):
                excluded.append(t.id())
                continue
            if pattern is None or pattern.search(t.id()):
                suite.addTest(t)
    globs["setUpModule"]()
    t0 = time.monotonic()
    try:
        res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        if "tearDownModule" in globs:
            globs["tearDownModule"]()
        unittest.case.doModuleCleanups()
    ran = res.testsRun
    skipped = len(res.skipped)
    # a test can fail and also error in its tearDown: count tests, not reports
    bad = {t.id() for t, _ in res.failures + res.errors} | {t.id() for t in res.unexpectedSuccesses}
    failed = len(bad)
    print(f"\n== {what}: ran {ran}, "
          f"passed {ran - skipped - failed}, skipped {skipped}, failed {failed} "
          f"in {time.monotonic() - t0:.0f} s")
    for t in excluded:
        print(f"EXCLUDED {t}")
    for t, why in res.skipped:
        print(f"SKIP {t.id()}: {why}")
    for t in sorted(bad):
        print(f"FAIL {t}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
