"""tests/python/conftest.py: shared fixtures of the Python suites (the dragon context, bounded waits)."""
import multiprocessing

import pytest

import dragon  # noqa: F401  (registers the "dragon" start method)


@pytest.fixture
def ctx():
    return multiprocessing.get_context("dragon")


def wait_until(cond, timeout=30.0):
    """Wait for a condition (never a fixed sleep); fails the test after timeout seconds."""
    import time
    end = time.monotonic() + timeout
    delay = 0.001
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)

# CPython's suites for our start method run through cpython-mp.sh, not pytest.
collect_ignore = ["test_multiprocessing_dragon.py", "test_concurrent_futures_dragon.py", "cpython_mp.py",
                  "multinode_hosts.py"]
