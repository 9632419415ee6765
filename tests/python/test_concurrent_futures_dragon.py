"""tests/python/test_concurrent_futures_dragon.py: CPython's concurrent.futures process-pool tests (Debian's test/test_concurrent_futures.py) with mp_context=get_context("dragon"); run by cpython_mp.py --futures, not by pytest."""
import dragon  # noqa: F401  (before the suite: the method must be known when it builds its classes)
import test.test_concurrent_futures as cf

__test__ = False  # pytest: not a pytest module (cpython-mp.sh runs it)


class ProcessPoolDragonMixin(cf.ExecutorMixin):
    """As the suite's ProcessPoolSpawnMixin, with the dragon start method."""
    executor_type = cf.futures.ProcessPoolExecutor
    ctx = "dragon"

    def get_context(self):
        try:
            cf._check_system_limits()
        except NotImplementedError:
            self.skipTest("ProcessPoolExecutor unavailable on this system")
        return super().get_context()


# Every test class the suite makes for the spawn method, made again for dragon (same names with
# "Dragon" for "Spawn"), in this module so that children find them by reference.
for _mixin in (cf.InitializerMixin, cf.FailingInitializerMixin, cf.ProcessPoolShutdownTest,
               cf.WaitTests, cf.AsCompletedTests, cf.ProcessPoolExecutorTest,
               cf.ExecutorDeadlockTest):
    _base = _mixin.__name__
    for _suffix in ("Mixin", "Tests", "Test"):
        if _base.endswith(_suffix):
            _base = _base[:-len(_suffix)]
            break
    _name = f"ProcessPoolDragon{_base}Test"
    globals()[_name] = type(_name, (_mixin, ProcessPoolDragonMixin, cf.BaseTestCase),
                            {"__module__": __name__})

setUpModule = cf.setUpModule
