"""tests/python/test_multiprocessing_dragon.py: CPython's multiprocessing suite installed for the "dragon" start method (importable, so children find its classes by reference); run by cpython_mp.py, not by pytest."""
import dragon  # noqa: F401  (before the suite: its mixins bind multiprocessing.Queue & co at import)
import test._test_multiprocessing

__test__ = False  # pytest: not a pytest module (cpython-mp.sh runs it)

test._test_multiprocessing.install_tests_in_module_dict(globals(), "dragon")
