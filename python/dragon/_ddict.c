/* python/dragon/_ddict.c: the distributed dictionary in dragon._core (type DDictHandle and its constructors), a thin layer over include/dragon/ddict.h used by dragon.data. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <dragon/ddict.h>
#include <dragon/error.h>
#include <dragon/pool.h>

#include "_core.h"

/*
 * Keys and values here are bytes: dragon.data encodes Python objects. A C handle is used by one
 * thread at a time, but Python threads share an object and each call runs without the GIL, so a
 * mutex serializes the calls of one object. It is taken with the GIL released (a thread holding
 * the mutex may need the GIL back), and held with the GIL only by keys(), which never blocks on
 * the GIL while holding it.
 */

static PyObject *DDictFullError; /* DRAGON_ENOSPACE: a DragonFullError that is a MemoryError */

#define DD_CLOSED (-1000) /* not a DRAGON_E* code: the handle was destroyed or detached */

static PyObject *dd_raise(int rc)
{
	if (rc == DD_CLOSED) {
		PyErr_SetString(PyExc_ValueError, "dictionary handle is closed (destroyed or detached)");
		return NULL;
	}
	if (rc != DRAGON_ENOSPACE)
		return raise_rc(rc);
	const char *detail = dragon_errmsg();
	PyObject *msg = PyUnicode_FromString(*detail ? detail : dragon_strerror(rc));
	if (!msg)
		return NULL;
	raise_with_code(DDictFullError, msg, rc);
	Py_DECREF(msg);
	return NULL;
}

/* Seconds (float, None = forever) to milliseconds (-1 = forever), rounded up. */
static int dd_timeout_ms(PyObject *t, int *ms)
{
	long us;

	if (timeout_us(t, &us) < 0)
		return -1;
	*ms = us < 0 || us / 1000 >= INT_MAX ? -1 : (int)((us + 999) / 1000);
	return 0;
}

typedef struct {
	PyObject_HEAD
	dragon_ddict_t *d;
	pthread_mutex_t mu;
	/* Threads waiting for mu: a wait_for_key between two slices gives way to them (a mutex is
	 * not fair: the waiter, relocking at once, kept another thread's serialize() or put() out
	 * for its whole wait). */
	atomic_int queued;
} DDictObject;

static PyTypeObject DDictType;

static DDictObject *dd_wrap(dragon_ddict_t *d)
{
	DDictObject *o = PyObject_New(DDictObject, &DDictType);
	if (!o) {
		dragon_ddict_detach(d);
		return NULL;
	}
	o->d = d;
	pthread_mutex_init(&o->mu, NULL);
	atomic_init(&o->queued, 0);
	return o;
}

static void dd_dealloc(DDictObject *o)
{
	/* No call is in flight: each holds a reference to o. */
	if (o->d)
		dragon_ddict_detach(o->d);
	pthread_mutex_destroy(&o->mu);
	PyObject_Free(o);
}

/*
 * Run the statement with the GIL released and the handle's mutex held. On a closed handle rc is
 * DD_CLOSED instead, which dd_raise turns into a ValueError (after the caller released its buffers).
 */
/* Take the handle's lock, counted in queued while we wait for it. */
static void dd_lock(DDictObject *o)
{
	atomic_fetch_add(&o->queued, 1);
	pthread_mutex_lock(&o->mu);
	atomic_fetch_sub(&o->queued, 1);
}

/* Between two slices of a long wait: let a thread that waits for the lock take it first. */
static void dd_give_way(DDictObject *o)
{
	for (int i = 0; i < 10000 && atomic_load(&o->queued) > 0; i++)
		sched_yield();
}

#define DD_CALL(o, rc, stmt)                                            \
	do {                                                            \
		(rc) = 0;                                               \
		Py_BEGIN_ALLOW_THREADS                                  \
		dd_lock(o);                                             \
		if (!(o)->d)                                            \
			(rc) = DD_CLOSED;                               \
		else                                                    \
			stmt;                                           \
		pthread_mutex_unlock(&(o)->mu);                         \
		Py_END_ALLOW_THREADS                                    \
	} while (0)

/* ---- constructors --------------------------------------------------------------------------- */

/* ddict_create(name=None, managers_per_node=0, nodes=0, budget=0, outlive=False, timeout=None) */
static PyObject *py_ddict_create(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"name", "managers_per_node", "nodes", "budget", "outlive", "timeout", NULL};
	const char *name = NULL;
	unsigned per = 0, nodes = 0;
	unsigned long long budget = 0;
	int outlive = 0, rc, ms;
	PyObject *t = Py_None;
	dragon_ddict_t *d = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zIIKpO", kwl, &name, &per, &nodes, &budget,
					 &outlive, &t))
		return NULL;
	if (dd_timeout_ms(t, &ms) < 0)
		return NULL;
	if (budget > SIZE_MAX) {
		PyErr_SetString(PyExc_OverflowError, "budget does not fit in size_t");
		return NULL;
	}
	dragon_ddict_attr_t a = {per, nodes, (size_t)budget, outlive ? DRAGON_DDICT_OUTLIVE : 0,
				 t == Py_None ? 0 : (ms < 0 ? INT_MAX : (ms ? ms : 1))};
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_ddict_create(name, &a, &d);
	Py_END_ALLOW_THREADS
	if (rc)
		return dd_raise(rc);
	return (PyObject *)dd_wrap(d);
}

/* ddict_attach(name, timeout=None) */
static PyObject *py_ddict_attach(PyObject *self, PyObject *args)
{
	const char *name;
	PyObject *t = Py_None;
	dragon_ddict_t *d = NULL;
	int rc, ms;

	if (!PyArg_ParseTuple(args, "s|O", &name, &t) || dd_timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_ddict_attach(name, ms, &d);
	Py_END_ALLOW_THREADS
	if (rc)
		return dd_raise(rc);
	return (PyObject *)dd_wrap(d);
}

/* ddict_attach_desc(desc_bytes) */
static PyObject *py_ddict_attach_desc(PyObject *self, PyObject *args)
{
	Py_buffer b;
	dragon_ddict_t *d = NULL;
	int rc;

	if (!PyArg_ParseTuple(args, "y*", &b))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_ddict_attach_desc(b.buf, (size_t)b.len, &d);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&b);
	if (rc)
		return dd_raise(rc);
	return (PyObject *)dd_wrap(d);
}

static PyObject *py_ddict_hash(PyObject *self, PyObject *args)
{
	Py_buffer k;
	if (!PyArg_ParseTuple(args, "y*", &k))
		return NULL;
	uint64_t h = dragon_ddict_hash(k.buf, (size_t)k.len);
	PyBuffer_Release(&k);
	return PyLong_FromUnsignedLongLong(h);
}

/* ---- methods -------------------------------------------------------------------------------- */

static PyObject *dd_serialize(DDictObject *o, PyObject *noargs)
{
	void *desc = NULL;
	size_t len = 0;
	int rc;
	DD_CALL(o, rc, rc = dragon_ddict_serialize(o->d, &desc, &len));
	if (rc)
		return dd_raise(rc);
	PyObject *r = PyBytes_FromStringAndSize(desc, (Py_ssize_t)len);
	free(desc);
	return r;
}

/* detach() and destroy(): the handle is closed afterwards either way. */
static PyObject *dd_close(DDictObject *o, int destroy)
{
	int rc;
	DD_CALL(o, rc, { rc = destroy ? dragon_ddict_destroy(o->d) : dragon_ddict_detach(o->d); o->d = NULL; });
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

static PyObject *dd_detach(DDictObject *o, PyObject *noargs)
{
	return dd_close(o, 0);
}

static PyObject *dd_destroy(DDictObject *o, PyObject *noargs)
{
	return dd_close(o, 1);
}

static PyObject *dd_closed(DDictObject *o, PyObject *noargs)
{
	return PyBool_FromLong(o->d == NULL);
}

static PyObject *dd_managers(DDictObject *o, PyObject *noargs)
{
	unsigned n = 0;
	int rc = 0;
	DD_CALL(o, rc, n = dragon_ddict_managers(o->d));
	if (rc)
		return dd_raise(rc);
	return PyLong_FromUnsignedLong(n);
}

static PyObject *dd_manager_of(DDictObject *o, PyObject *args)
{
	Py_buffer k;
	unsigned m = 0;
	int rc = 0;
	if (!PyArg_ParseTuple(args, "y*", &k))
		return NULL;
	DD_CALL(o, rc, m = dragon_ddict_manager_of(o->d, k.buf, (size_t)k.len));
	PyBuffer_Release(&k);
	if (rc)
		return dd_raise(rc);
	return PyLong_FromUnsignedLong(m);
}

static PyObject *dd_pin(DDictObject *o, PyObject *args)
{
	int m, rc;
	if (!PyArg_ParseTuple(args, "i", &m))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_pin(o->d, m));
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

static PyObject *dd_set_timeout(DDictObject *o, PyObject *args)
{
	PyObject *t;
	int ms, rc;
	if (!PyArg_ParseTuple(args, "O", &t) || dd_timeout_ms(t, &ms) < 0)
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_set_timeout(o->d, ms));
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

static PyObject *dd_put(DDictObject *o, PyObject *args)
{
	Py_buffer k, v;
	int rc;
	if (!PyArg_ParseTuple(args, "y*y*", &k, &v))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_put(o->d, k.buf, (size_t)k.len, v.buf, (size_t)v.len));
	PyBuffer_Release(&k);
	PyBuffer_Release(&v);
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

/* get(key) and pop(key): the value as bytes, None when the key is absent. */
static PyObject *dd_fetch(DDictObject *o, PyObject *args, int pop)
{
	Py_buffer k;
	dragon_mem_t mem;
	size_t vlen = 0;
	int rc;
	if (!PyArg_ParseTuple(args, "y*", &k))
		return NULL;
	DD_CALL(o, rc,
		rc = pop ? dragon_ddict_pop_mem(o->d, k.buf, (size_t)k.len, &mem, &vlen)
			 : dragon_ddict_get_mem(o->d, k.buf, (size_t)k.len, &mem, &vlen));
	PyBuffer_Release(&k);
	if (rc == DRAGON_ENOTFOUND)
		Py_RETURN_NONE;
	if (rc)
		return dd_raise(rc);
	PyObject *r = PyBytes_FromStringAndSize(mem.ptr, (Py_ssize_t)vlen);
	dragon_pool_free(&mem);
	return r;
}

static PyObject *dd_get(DDictObject *o, PyObject *args)
{
	return dd_fetch(o, args, 0);
}

static PyObject *dd_pop(DDictObject *o, PyObject *args)
{
	return dd_fetch(o, args, 1);
}

/* delete(key) -> False if it was absent */
static PyObject *dd_delete(DDictObject *o, PyObject *args)
{
	Py_buffer k;
	int rc;
	if (!PyArg_ParseTuple(args, "y*", &k))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_del(o->d, k.buf, (size_t)k.len));
	PyBuffer_Release(&k);
	if (rc == DRAGON_ENOTFOUND)
		Py_RETURN_FALSE;
	if (rc)
		return dd_raise(rc);
	Py_RETURN_TRUE;
}

static PyObject *dd_contains(DDictObject *o, PyObject *args)
{
	Py_buffer k;
	int rc, present = 0;
	if (!PyArg_ParseTuple(args, "y*", &k))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_contains(o->d, k.buf, (size_t)k.len, &present));
	PyBuffer_Release(&k);
	if (rc)
		return dd_raise(rc);
	return PyBool_FromLong(present);
}

static PyObject *dd_len(DDictObject *o, PyObject *noargs)
{
	uint64_t n = 0;
	int rc;
	DD_CALL(o, rc, rc = dragon_ddict_len(o->d, &n));
	if (rc)
		return dd_raise(rc);
	return PyLong_FromUnsignedLongLong(n);
}

/* stats(m) -> (keys, bytes used, budget) of manager m */
static PyObject *dd_stats(DDictObject *o, PyObject *args)
{
	unsigned m;
	uint64_t keys = 0, used = 0, budget = 0;
	int rc;
	if (!PyArg_ParseTuple(args, "I", &m))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_manager_stats(o->d, m, &keys, &used, &budget));
	if (rc)
		return dd_raise(rc);
	return Py_BuildValue("(KKK)", (unsigned long long)keys, (unsigned long long)used,
			     (unsigned long long)budget);
}

/* One whole-dictionary operation without arguments. */
static PyObject *dd_simple(DDictObject *o, int (*fn)(dragon_ddict_t *))
{
	int rc;
	DD_CALL(o, rc, rc = fn(o->d));
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

static PyObject *dd_clear(DDictObject *o, PyObject *noargs)
{
	return dd_simple(o, dragon_ddict_clear);
}

static PyObject *dd_freeze(DDictObject *o, PyObject *noargs)
{
	return dd_simple(o, dragon_ddict_freeze);
}

static PyObject *dd_unfreeze(DDictObject *o, PyObject *noargs)
{
	return dd_simple(o, dragon_ddict_unfreeze);
}

static PyObject *dd_batch_begin(DDictObject *o, PyObject *noargs)
{
	return dd_simple(o, dragon_ddict_batch_begin);
}

static PyObject *dd_batch_end(DDictObject *o, PyObject *noargs)
{
	return dd_simple(o, dragon_ddict_batch_end);
}

static PyObject *dd_dir_op(DDictObject *o, PyObject *args, int restore)
{
	PyObject *path;
	int rc;
	if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path))
		return NULL;
	const char *dir = PyBytes_AS_STRING(path);
	DD_CALL(o, rc, rc = restore ? dragon_ddict_restore(o->d, dir) : dragon_ddict_persist(o->d, dir));
	Py_DECREF(path);
	if (rc)
		return dd_raise(rc);
	Py_RETURN_NONE;
}

static PyObject *dd_persist(DDictObject *o, PyObject *args)
{
	return dd_dir_op(o, args, 0);
}

static PyObject *dd_restore(DDictObject *o, PyObject *args)
{
	return dd_dir_op(o, args, 1);
}

/* fetch_add(key, delta) -> the value before */
static PyObject *dd_fetch_add(DDictObject *o, PyObject *args)
{
	Py_buffer k;
	long long delta;
	int64_t old = 0;
	int rc;
	if (!PyArg_ParseTuple(args, "y*L", &k, &delta))
		return NULL;
	DD_CALL(o, rc, rc = dragon_ddict_fetch_add(o->d, k.buf, (size_t)k.len, (int64_t)delta, &old));
	PyBuffer_Release(&k);
	if (rc)
		return dd_raise(rc);
	return PyLong_FromLongLong((long long)old);
}

static long dd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * wait_for_key(key, timeout=None) -> True when the key exists, False at the timeout. The wait
 * runs in slices of at most a second, and between slices the main thread's signal handlers run
 * (Ctrl-C interrupts it) and other threads waiting for the handle go first (so they wait at most
 * a slice; a thread that must not, gives itself a handle of its own).
 */
#define WAIT_SLICE_MS 1000
static PyObject *dd_wait_for_key(DDictObject *o, PyObject *args)
{
	Py_buffer k;
	PyObject *t = Py_None;
	int ms, rc;
	if (!PyArg_ParseTuple(args, "y*|O", &k, &t))
		return NULL;
	if (dd_timeout_ms(t, &ms) < 0) {
		PyBuffer_Release(&k);
		return NULL;
	}
	long deadline = ms < 0 ? 0 : dd_now_ms() + ms;
	for (;;) {
		long left = ms < 0 ? -1 : deadline - dd_now_ms();
		if (left < 0 && ms >= 0)
			left = 0;
		int last = left >= 0 && left <= WAIT_SLICE_MS;
		int slice = last ? (int)left : WAIT_SLICE_MS;
		int closed = 0;
		Py_BEGIN_ALLOW_THREADS
		dd_give_way(o);
		dd_lock(o);
		if (!o->d)
			closed = 1;
		else
			rc = dragon_ddict_wait_for_key(o->d, k.buf, (size_t)k.len, slice);
		pthread_mutex_unlock(&o->mu);
		Py_END_ALLOW_THREADS
		if (closed) {
			PyBuffer_Release(&k);
			return dd_raise(DD_CLOSED);
		}
		if (rc != DRAGON_ETIMEDOUT || last)
			break;
		if (PyErr_CheckSignals() < 0) {
			PyBuffer_Release(&k);
			return NULL;
		}
	}
	PyBuffer_Release(&k);
	if (rc == DRAGON_ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc)
		return dd_raise(rc);
	Py_RETURN_TRUE;
}

/* keys(m=-1) -> list of bytes: the keys of manager m, or of every manager */
static PyObject *dd_keys(DDictObject *o, PyObject *args)
{
	int m = -1, rc = DRAGON_OK, closed = 0;
	dragon_ddict_iter_t *it = NULL;
	size_t cap = 4096, klen = 0;
	char *buf;
	if (!PyArg_ParseTuple(args, "|i", &m))
		return NULL;
	PyObject *list = PyList_New(0);
	if (!list || !(buf = PyMem_RawMalloc(cap))) {
		Py_XDECREF(list);
		return PyErr_NoMemory();
	}
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&o->mu);
	if (!o->d)
		closed = 1;
	else
		rc = dragon_ddict_iter_start(o->d, m, &it);
	Py_END_ALLOW_THREADS
	/* From here to the end this thread holds the mutex. */
	if (closed || rc)
		goto out;
	for (;;) {
		Py_BEGIN_ALLOW_THREADS
		rc = dragon_ddict_iter_next(it, buf, cap, &klen);
		Py_END_ALLOW_THREADS
		if (rc == DRAGON_ETOOBIG) {
			char *bigger = PyMem_RawRealloc(buf, klen);
			if (!bigger) {
				rc = DRAGON_ENOMEM;
				break;
			}
			buf = bigger;
			cap = klen;
			continue;
		}
		if (rc)
			break;
		PyObject *key = PyBytes_FromStringAndSize(buf, (Py_ssize_t)klen);
		if (!key || PyList_Append(list, key) < 0) {
			Py_XDECREF(key);
			rc = -1;
			break;
		}
		Py_DECREF(key);
	}
out:
	if (it)
		dragon_ddict_iter_end(it);
	pthread_mutex_unlock(&o->mu);
	PyMem_RawFree(buf);
	if (rc == DRAGON_ENOTFOUND && !closed)
		return list;
	Py_DECREF(list);
	if (closed) {
		return dd_raise(DD_CLOSED);
	}
	if (rc == DRAGON_ENOMEM)
		return PyErr_NoMemory();
	return rc < 0 ? NULL : dd_raise(rc);
}

static PyMethodDef dd_methods[] = {
	{"serialize", (PyCFunction)dd_serialize, METH_NOARGS, "The serialized descriptor (bytes)."},
	{"detach", (PyCFunction)dd_detach, METH_NOARGS, "Forget the handle (the dictionary lives on)."},
	{"destroy", (PyCFunction)dd_destroy, METH_NOARGS, "Stop every manager and forget the handle."},
	{"closed", (PyCFunction)dd_closed, METH_NOARGS, "True after detach or destroy."},
	{"managers", (PyCFunction)dd_managers, METH_NOARGS, "Number of managers."},
	{"manager_of", (PyCFunction)dd_manager_of, METH_VARARGS, "manager_of(key) -> index"},
	{"pin", (PyCFunction)dd_pin, METH_VARARGS, "pin(m): every operation to manager m (-1: hashing)"},
	{"set_timeout", (PyCFunction)dd_set_timeout, METH_VARARGS, "set_timeout(seconds or None)"},
	{"put", (PyCFunction)dd_put, METH_VARARGS, "put(key, value)"},
	{"get", (PyCFunction)dd_get, METH_VARARGS, "get(key) -> bytes, None if absent"},
	{"pop", (PyCFunction)dd_pop, METH_VARARGS, "pop(key) -> bytes, None if absent"},
	{"delete", (PyCFunction)dd_delete, METH_VARARGS, "delete(key) -> False if absent"},
	{"contains", (PyCFunction)dd_contains, METH_VARARGS, "contains(key) -> bool"},
	{"len", (PyCFunction)dd_len, METH_NOARGS, "Keys in the dictionary (or the pinned manager)."},
	{"stats", (PyCFunction)dd_stats, METH_VARARGS, "stats(m) -> (keys, bytes used, budget)"},
	{"clear", (PyCFunction)dd_clear, METH_NOARGS, "Remove every key."},
	{"freeze", (PyCFunction)dd_freeze, METH_NOARGS, "Make the dictionary read-only."},
	{"unfreeze", (PyCFunction)dd_unfreeze, METH_NOARGS, "Make it writable again."},
	{"batch_begin", (PyCFunction)dd_batch_begin, METH_NOARGS, "Queue puts until batch_end."},
	{"batch_end", (PyCFunction)dd_batch_end, METH_NOARGS, "Send the queued puts, wait for them."},
	{"persist", (PyCFunction)dd_persist, METH_VARARGS, "persist(dir)"},
	{"restore", (PyCFunction)dd_restore, METH_VARARGS, "restore(dir)"},
	{"fetch_add", (PyCFunction)dd_fetch_add, METH_VARARGS, "fetch_add(key, delta) -> old value"},
	{"wait_for_key", (PyCFunction)dd_wait_for_key, METH_VARARGS,
	 "wait_for_key(key, timeout=None) -> False at the timeout"},
	{"keys", (PyCFunction)dd_keys, METH_VARARGS, "keys(m=-1) -> list of bytes"},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject DDictType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dragon._core.DDictHandle",
	.tp_basicsize = sizeof(DDictObject),
	.tp_dealloc = (destructor)dd_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A handle of a distributed dictionary (dragon.data.DDict wraps it).",
	.tp_methods = dd_methods,
};

static PyMethodDef ddict_functions[] = {
	{"ddict_create", (PyCFunction)(void (*)(void))py_ddict_create, METH_VARARGS | METH_KEYWORDS,
	 "ddict_create(name=None, managers_per_node=0, nodes=0, budget=0, outlive=False, timeout=None)"},
	{"ddict_attach", py_ddict_attach, METH_VARARGS, "ddict_attach(name, timeout=None)"},
	{"ddict_attach_desc", py_ddict_attach_desc, METH_VARARGS, "ddict_attach_desc(descriptor)"},
	{"ddict_hash", py_ddict_hash, METH_VARARGS, "ddict_hash(key) -> the 64-bit hash of the key bytes"},
	{NULL, NULL, 0, NULL},
};

int ddict_module_init(PyObject *m)
{
	if (PyType_Ready(&DDictType) < 0 || PyModule_AddFunctions(m, ddict_functions) < 0)
		return -1;
	Py_INCREF(&DDictType);
	if (PyModule_AddObject(m, "DDictHandle", (PyObject *)&DDictType) < 0)
		return -1;
	PyObject *full = PyObject_GetAttrString(m, "DragonFullError");
	if (!full)
		return -1;
	PyObject *bases = PyTuple_Pack(2, full, PyExc_MemoryError);
	Py_DECREF(full);
	if (!bases)
		return -1;
	DDictFullError = PyErr_NewExceptionWithDoc(
		"dragon.DDictFullError",
		"A put past a dictionary manager's budget (DRAGON_ENOSPACE); the message names the manager.",
		bases, NULL);
	Py_DECREF(bases);
	if (!DDictFullError)
		return -1;
	Py_INCREF(DDictFullError);
	return PyModule_AddObject(m, "DDictFullError", DDictFullError);
}
