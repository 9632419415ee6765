# python/local.mk: the Python package `dragon` and its extension module dragon._core (included from the top Makefile.am).

dragonpydir = $(pythondir)/dragon
dragonpy_PYTHON = python/dragon/__init__.py python/dragon/__main__.py python/dragon/_fabric.py \
	python/dragon/_child.py python/dragon/_startmethod.py python/dragon/mp.py python/dragon/native.py python/dragon/data.py
nodist_dragonpy_PYTHON = python/dragon/_config.py
# Every interpreter of this site knows the "dragon" start method (a fresh `python3 -c` or `-I`
# run included): the .pth imports a small module at startup that registers it lazily.
python_PYTHON = python/_dragon_startmethod.py
python_DATA = python/dragon_startmethod.pth
EXTRA_DIST += python/dragon_startmethod.pth tests/python/test_concurrent_futures_dragon.py

# The extension links libdragon's objects (the convenience library) into itself: the module
# then needs no LD_LIBRARY_PATH in the build tree and no libdragon.so beside it when installed.
dragonpyexecdir = $(pyexecdir)/dragon
dragonpyexec_LTLIBRARIES = python/dragon/_core.la
python_dragon__core_la_SOURCES = python/dragon/_core.c python/dragon/_core.h python/dragon/_ddict.c
python_dragon__core_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CPPFLAGS)
python_dragon__core_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared
python_dragon__core_la_LIBADD = runtime/libdragon_impl.la

EXTRA_DIST += python/stage.sh python/dragon/_config.py.in contrib/debian/python3-dragon.install
CLEANFILES += python/dragon/_config.py

python/dragon/_config.py: $(srcdir)/python/dragon/_config.py.in Makefile
	$(AM_V_GEN)$(MKDIR_P) python/dragon && sed -e 's|%bindir%|$(bindir)|g' \
		-e 's|%PYTHON%|$(PYTHON)|g' -e 's|%abs_top_builddir%|$(abs_top_builddir)|g' \
		$(srcdir)/python/dragon/_config.py.in > $@

# The build tree holds an importable package: build/python/dragon has the sources (links into
# the source tree when building elsewhere), _config.py and _core.so. Tests use PYTHONPATH=build/python.
all-local: python-stage
.PHONY: python-stage
python-stage: python/dragon/_core.la python/dragon/_config.py
	@$(SHELL) $(srcdir)/python/stage.sh '$(abs_top_srcdir)' '$(abs_top_builddir)' $(dragonpy_PYTHON); \
	ln -sf .libs/_core.so python/dragon/_core.so

clean-local: python-clean
.PHONY: python-clean
python-clean:
	-rm -f python/dragon/_core.so
	-rm -rf tests/python/installed
	-test "$(abs_top_srcdir)" = "$(abs_top_builddir)" || rm -f $(dragonpy_PYTHON)

# make check: the pytest suites against the build tree (tests/python/run.sh fails loudly if the
# built module does not import: no silent skip).
TESTS += tests/python/run.sh
EXTRA_DIST += tests/python/run.sh tests/python/conftest.py tests/python/test_core.py \
	tests/python/test_mp.py tests/python/test_native.py tests/python/test_ddict.py tests/python/cpython-mp.sh \
	tests/python/cpython_mp.py tests/python/test_multiprocessing_dragon.py \
	tests/python/multinode_hosts.py tests/python/multinode_ddict.py tests/integration/python.bats \
	tests/python/bench_b8.py tests/bench/parts/B8.sh examples/python/pool_queue.py docs/python.md

# make check-cpython-mp: CPython's own multiprocessing suite for the "dragon" start method.
.PHONY: check-cpython-mp
check-cpython-mp: python-stage
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' PYTHON='$(PYTHON)' \
		$(SHELL) $(srcdir)/tests/python/cpython-mp.sh
AM_TESTS_ENVIRONMENT += PYTHON='$(PYTHON)'; export PYTHON;

# A Python extension needs no libtool archive beside it.
install-exec-hook: python-install-hook
.PHONY: python-install-hook
python-install-hook:
	rm -f $(DESTDIR)$(dragonpyexecdir)/_core.la

# Without its .la, libtool's uninstall does not know the module: remove it here.
uninstall-hook: python-uninstall-hook
.PHONY: python-uninstall-hook
python-uninstall-hook:
	rm -f $(DESTDIR)$(dragonpyexecdir)/_core.so

# ---- Jupyter (issue 13): dragon.jupyter, the dragon-jupyter command, the "Python 3 (Dragon)" kernel spec.
dragonjupyterdir = $(pythondir)/dragon/jupyter
dragonjupyter_PYTHON = python/dragon/jupyter/__init__.py python/dragon/jupyter/__main__.py \
	python/dragon/jupyter/_output.py python/dragon/jupyter/kernel.py python/dragon/jupyter/server.py
# Installed: python/inst/dragon-jupyter -> $(bindir), python/inst/kernel.json -> the kernel spec
# directory Jupyter searches under $(datadir). The build tree has its own pair pointing at itself.
bin_SCRIPTS = python/inst/dragon-jupyter
jupyterkerneldir = $(datadir)/jupyter/kernels/dragon_python3
jupyterkernel_DATA = python/inst/kernel.json
EXTRA_DIST += python/dragon-jupyter.in python/kernel.json.in
CLEANFILES += python/inst/dragon-jupyter python/inst/kernel.json python/dragon-jupyter \
	python/jupyter/kernels/dragon_python3/kernel.json

jupyter_pypath = $(pythondir):$(pyexecdir)
python/inst/dragon-jupyter: $(srcdir)/python/dragon-jupyter.in Makefile
	$(AM_V_GEN)$(MKDIR_P) python/inst && sed -e 's|%PYTHONPATH%|$(jupyter_pypath)|g' \
		-e 's|%JUPYTER_DATA%|$(datadir)/jupyter|g' -e 's|%SELF%|$(bindir)/dragon-jupyter|g' \
		-e 's|%PYTHON%|$(PYTHON)|g' $(srcdir)/python/dragon-jupyter.in > $@ && chmod +x $@
python/inst/kernel.json: $(srcdir)/python/kernel.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) python/inst && sed -e 's|%SELF%|$(bindir)/dragon-jupyter|g' \
		$(srcdir)/python/kernel.json.in > $@
python/dragon-jupyter: $(srcdir)/python/dragon-jupyter.in Makefile
	$(AM_V_GEN)sed -e 's|%PYTHONPATH%|$(abs_top_builddir)/python|g' \
		-e 's|%JUPYTER_DATA%|$(abs_top_builddir)/python/jupyter|g' \
		-e 's|%SELF%|$(abs_top_builddir)/python/dragon-jupyter|g' \
		-e 's|%PYTHON%|$(PYTHON)|g' $(srcdir)/python/dragon-jupyter.in > $@ && chmod +x $@
python/jupyter/kernels/dragon_python3/kernel.json: $(srcdir)/python/kernel.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) python/jupyter/kernels/dragon_python3 && \
		sed -e 's|%SELF%|$(abs_top_builddir)/python/dragon-jupyter|g' \
		$(srcdir)/python/kernel.json.in > $@

all-local: jupyter-stage
.PHONY: jupyter-stage
jupyter-stage: python-stage python/dragon-jupyter python/jupyter/kernels/dragon_python3/kernel.json
	@$(SHELL) $(srcdir)/python/stage.sh '$(abs_top_srcdir)' '$(abs_top_builddir)' $(dragonjupyter_PYTHON)
clean-local: jupyter-clean
.PHONY: jupyter-clean
jupyter-clean:
	-test "$(abs_top_srcdir)" = "$(abs_top_builddir)" || rm -f $(dragonjupyter_PYTHON)
# make check: the tutorial notebooks through nbclient, interrupt/restart, the server's token and
# address, the kernel spec inside and outside a fabric (tests/jupyter/run.sh; the browser part:
# make check-jupyter-browser).
TESTS += tests/jupyter/run.sh
EXTRA_DIST += tests/jupyter/run.sh tests/jupyter/run_notebooks.py tests/jupyter/interrupt_restart.py \
	tests/jupyter/server_check.py tests/jupyter/browser_check.py tests/jupyter/kernelspec_check.py \
	tests/integration/jupyter.bats \
	examples/notebooks/dragon_tutorial.ipynb docs/jupyter.md docs/images/jupyter-notebook.png
.PHONY: check-jupyter-browser
check-jupyter-browser: all
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' PYTHON='$(PYTHON)' \
		$(SHELL) $(srcdir)/tests/jupyter/run.sh browser
