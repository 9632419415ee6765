/* python/dragon/_core.h: what the source files of the extension dragon._core share (_core.c is the module, _ddict.c the distributed dictionary). */
#ifndef DRAGON_PY_CORE_H
#define DRAGON_PY_CORE_H

#include <Python.h>

/* _core.c: set the Python exception for a DRAGON_E* code (its class, dragon_errmsg()); returns NULL. */
PyObject *raise_rc(int rc);

/* _core.c: raise an instance of cls made from msg, with its DRAGON_E* code as .code; returns NULL. */
PyObject *raise_with_code(PyObject *cls, PyObject *msg, int rc);

/* _core.c: seconds (a float; None or NULL = forever) to microseconds (-1 = forever); -1 with a
 * Python exception if t is not a number. */
int timeout_us(PyObject *t, long *us);

/* _ddict.c: add the dictionary's type, functions and DDictFullError to the module. */
int ddict_module_init(PyObject *m);

#endif
