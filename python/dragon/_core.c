/* python/dragon/_core.c: the CPython extension dragon._core, a thin layer over libdragon (fabric, channels, processes, groups, names). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <dragon/dragon.h>
#include <dragon/fchannel.h>
#include <dragon/group.h>
#include <dragon/init.h>
#include <dragon/name.h>
#include <dragon/process.h>

#include "_core.h"

/*
 * Every call crosses into C once and releases the GIL around anything that can wait, so other
 * Python threads (a Queue's feeder thread, a Process's waiter thread) run meanwhile. Errors become
 * Python exceptions carrying dragon_errmsg(): the classes below derive from DragonError and from
 * the builtin a Python programmer expects (TimeoutError, FileNotFoundError, ConnectionError...).
 */

static PyObject *DragonError;
static PyObject *err_class[DRAGON_ERR_MAX];

PyObject *raise_with_code(PyObject *cls, PyObject *msg, int rc)
{
	PyObject *exc = PyObject_CallOneArg(cls, msg);
	if (!exc)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	if (code) {
		PyObject_SetAttrString(exc, "code", code);
		Py_DECREF(code);
	}
	PyErr_SetObject(cls, exc);
	Py_DECREF(exc);
	return NULL;
}

PyObject *raise_rc(int rc)
{
	PyObject *cls = (rc > 0 && rc < DRAGON_ERR_MAX && err_class[rc]) ? err_class[rc] : DragonError;
	const char *detail = dragon_errmsg();
	PyObject *msg = PyUnicode_FromFormat("%s%s%s", dragon_strerror(rc), *detail ? ": " : "", detail);
	if (!msg)
		return NULL;
	raise_with_code(cls, msg, rc);
	Py_DECREF(msg);
	return NULL;
}

/* Seconds (float, None = forever) to what libdragon takes. */
int timeout_us(PyObject *t, long *us)
{
	if (t == NULL || t == Py_None) {
		*us = -1;
		return 0;
	}
	double s = PyFloat_AsDouble(t);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (s < 0)
		s = 0;
	*us = s > (double)LONG_MAX / 1e6 ? -1 : (long)(s * 1e6);
	return 0;
}

static int timeout_ms(PyObject *t, int *ms)
{
	long us;
	if (timeout_us(t, &us) < 0)
		return -1;
	*ms = us < 0 ? -1 : (us / 1000 > INT_MAX ? INT_MAX : (int)((us + 999) / 1000));
	return 0;
}

/* ---- fabric ---------------------------------------------------------------------------- */

static PyObject *py_init(PyObject *self, PyObject *noargs)
{
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_init();
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *py_finalize(PyObject *self, PyObject *noargs)
{
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_finalize();
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *py_puid(PyObject *self, PyObject *noargs)
{
	return PyLong_FromUnsignedLongLong(dragon_puid());
}

static PyObject *py_node_index(PyObject *self, PyObject *noargs)
{
	return PyLong_FromUnsignedLong(dragon_node_index());
}

static PyObject *py_node_count(PyObject *self, PyObject *noargs)
{
	return PyLong_FromUnsignedLong(dragon_node_count());
}

static PyObject *py_fabric_id(PyObject *self, PyObject *noargs)
{
	return PyUnicode_FromString(dragon_fabric_id());
}

static PyObject *py_group_rank(PyObject *self, PyObject *noargs)
{
	return Py_BuildValue("(ii)", dragon_group_rank(), dragon_group_size());
}

/* ---- channels -------------------------------------------------------------------------- */

/*
 * A handle may be used by several threads at once (a Queue's feeder thread, a Process's waiter
 * thread), each inside a blocking call without the GIL. `busy` counts those calls (changed only
 * with the GIL held); a detach or destroy meanwhile marks the handle `closing`, and the last call
 * to return detaches it, so no call ever runs on a freed handle.
 */
typedef struct {
	PyObject_HEAD
	dragon_channel_t *ch;
	uint32_t block;     /* first guess of a message's size when receiving */
	int busy;
	int closing;
} ChannelObject;

static void ch_enter(ChannelObject *o)
{
	o->busy++;
}

static void ch_leave(ChannelObject *o)
{
	if (--o->busy == 0 && o->closing && o->ch) {
		dragon_channel_detach(o->ch);
		o->ch = NULL;
	}
}

static PyTypeObject ChannelType;

static ChannelObject *channel_wrap(dragon_channel_t *ch)
{
	ChannelObject *o = PyObject_New(ChannelObject, &ChannelType);
	if (!o) {
		dragon_channel_detach(ch);
		return NULL;
	}
	o->ch = ch;
	o->block = 4096;
	o->busy = 0;
	o->closing = 0;
	return o;
}

static int channel_ok(ChannelObject *o)
{
	if (!o->ch || o->closing) {
		PyErr_SetString(PyExc_ValueError, "channel handle is closed");
		return 0;
	}
	return 1;
}

static void channel_dealloc(ChannelObject *o)
{
	/* No call can be in flight: each holds a reference to o through its arguments. */
	if (o->ch)
		dragon_channel_detach(o->ch);
	PyObject_Free(o);
}

/* channel_create(name=None, capacity=0, block_size=0, outlive=False) */
static PyObject *py_channel_create(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"name", "capacity", "block_size", "outlive", NULL};
	const char *name = NULL;
	unsigned capacity = 0, block = 0;
	int outlive = 0, rc;
	dragon_channel_t *ch = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zIIp", kwl, &name, &capacity, &block, &outlive))
		return NULL;
	dragon_channel_attr_t attr = {capacity, block, DRAGON_WAIT_DEFAULT};
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_fchannel_create(name, &attr, outlive ? DRAGON_FCHANNEL_OUTLIVE : 0, &ch);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	return (PyObject *)channel_wrap(ch);
}

/* channel_attach(desc_bytes_or_name, timeout=None) */
static PyObject *py_channel_attach(PyObject *self, PyObject *args)
{
	PyObject *what, *t = Py_None;
	dragon_channel_t *ch = NULL;
	int rc;

	if (!PyArg_ParseTuple(args, "O|O", &what, &t))
		return NULL;
	if (PyUnicode_Check(what)) {
		int ms;
		const char *name = PyUnicode_AsUTF8(what);
		if (!name || timeout_ms(t, &ms) < 0)
			return NULL;
		Py_BEGIN_ALLOW_THREADS
		rc = dragon_fchannel_attach(name, ms, &ch);
		Py_END_ALLOW_THREADS
	} else {
		Py_buffer b;
		dragon_channel_desc_t d;
		if (PyObject_GetBuffer(what, &b, PyBUF_SIMPLE) < 0)
			return NULL;
		if (b.len != (Py_ssize_t)sizeof(d.bytes)) {
			PyErr_Format(PyExc_ValueError, "a channel descriptor is %zu bytes, got %zd",
				     sizeof(d.bytes), b.len);
			PyBuffer_Release(&b);
			return NULL;
		}
		memcpy(d.bytes, b.buf, sizeof(d.bytes));
		PyBuffer_Release(&b);
		Py_BEGIN_ALLOW_THREADS
		rc = dragon_channel_attach(&d, &ch);
		Py_END_ALLOW_THREADS
	}
	if (rc)
		return raise_rc(rc);
	return (PyObject *)channel_wrap(ch);
}

static PyObject *channel_desc(ChannelObject *o, PyObject *noargs)
{
	dragon_channel_desc_t d;
	int rc;
	if (!channel_ok(o))
		return NULL;
	if ((rc = dragon_channel_serialize(o->ch, &d)))
		return raise_rc(rc);
	return PyBytes_FromStringAndSize((const char *)d.bytes, sizeof(d.bytes));
}

/* Monotonic time in microseconds. */
static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/*
 * A long wait runs in slices of at most 100 ms with the GIL released, and between slices the
 * main thread's signal handlers run (Ctrl-C is a KeyboardInterrupt while a get waits, as with
 * CPython's own queues). Returns the call's code, or -1 with a Python exception set.
 */
#define SLICE_US 100000L
typedef int (*slice_fn)(dragon_channel_t *ch, void *arg, const dragon_wait_t *w);

static int sliced(ChannelObject *o, slice_fn fn, void *arg, const dragon_wait_t *whole)
{
	dragon_wait_t w = *whole;
	long total = whole->timeout_us, deadline = total > 0 ? now_us() + total : 0;
	int rc;

	for (;;) {
		long left = total < 0 ? -1 : (total == 0 ? 0 : deadline - now_us());
		if (total > 0 && left < 0)
			left = 0;
		int last = left >= 0 && left <= SLICE_US;
		w.timeout_us = last ? left : SLICE_US;
		if (!channel_ok(o))
			return -1; /* another thread detached or destroyed the handle meanwhile */
		ch_enter(o);
		Py_BEGIN_ALLOW_THREADS
		rc = fn(o->ch, arg, &w);
		Py_END_ALLOW_THREADS
		ch_leave(o);
		if (rc != DRAGON_ETIMEDOUT || last)
			return rc;
		if (PyErr_CheckSignals() < 0)
			return -1;
	}
}

struct send_arg {
	const void *buf;
	size_t len;
};

static int send_fn(dragon_channel_t *ch, void *arg, const dragon_wait_t *w)
{
	struct send_arg *a = arg;
	return dragon_channel_send(ch, a->buf, a->len, w);
}

struct recv_arg {
	void *buf;
	size_t cap, len;
};

static int recv_fn(dragon_channel_t *ch, void *arg, const dragon_wait_t *w)
{
	struct recv_arg *a = arg;
	return dragon_channel_recv(ch, a->buf, a->cap, &a->len, w);
}

struct poll_arg {
	unsigned events, rev;
};

static int poll_fn(dragon_channel_t *ch, void *arg, const dragon_wait_t *w)
{
	struct poll_arg *a = arg;
	return dragon_channel_poll(ch, a->events, &a->rev, w);
}

/*
 * send(data, timeout=None, deposited=False, taken=False): data is any buffer, or a list of
 * buffers sent as one message. taken: return once a receiver took it (DRAGON_WAIT_TAKEN); each
 * 100 ms slice that passes without a receiver withdraws it, and the next slice sends it again.
 */
static PyObject *channel_send(ChannelObject *o, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"data", "timeout", "deposited", "taken", NULL};
	PyObject *data, *t = Py_None;
	int deposited = 0, taken = 0, rc;
	dragon_wait_t w = {-1, DRAGON_WAIT_DEFAULT, 0};

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Opp", kwl, &data, &t, &deposited, &taken))
		return NULL;
	if (!channel_ok(o) || timeout_us(t, &w.timeout_us) < 0)
		return NULL;
	if (deposited)
		w.flags |= DRAGON_WAIT_DEPOSITED;
	if (taken)
		w.flags |= DRAGON_WAIT_TAKEN;
	if (PyList_Check(data) || PyTuple_Check(data)) {
		/* Parts joined once, outside the GIL, into one message (header + out-of-band buffers). */
		PyObject *seq = PySequence_Fast(data, "parts");
		if (!seq)
			return NULL;
		Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
		Py_buffer *bufs = PyMem_Calloc(n ? n : 1, sizeof(Py_buffer));
		Py_ssize_t got = 0;
		size_t total = 0;
		char *msg = NULL;
		if (!bufs) {
			Py_DECREF(seq);
			return PyErr_NoMemory();
		}
		for (; got < n; got++) {
			if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &bufs[got],
					       PyBUF_C_CONTIGUOUS) < 0)
				break;
			total += bufs[got].len;
		}
		rc = 0;
		if (got == n && !(msg = PyMem_RawMalloc(total ? total : 1)))
			PyErr_NoMemory();
		if (msg) {
			Py_BEGIN_ALLOW_THREADS
			size_t off = 0;
			for (Py_ssize_t i = 0; i < n; i++) {
				memcpy(msg + off, bufs[i].buf, bufs[i].len);
				off += bufs[i].len;
			}
			Py_END_ALLOW_THREADS
			struct send_arg a = {msg, total};
			rc = sliced(o, send_fn, &a, &w);
			PyMem_RawFree(msg);
		}
		for (Py_ssize_t i = 0; i < got; i++)
			PyBuffer_Release(&bufs[i]);
		PyMem_Free(bufs);
		Py_DECREF(seq);
		if (!msg)
			return NULL;
	} else {
		Py_buffer b;
		if (PyObject_GetBuffer(data, &b, PyBUF_C_CONTIGUOUS) < 0)
			return NULL;
		struct send_arg a = {b.buf, (size_t)b.len};
		rc = sliced(o, send_fn, &a, &w);
		PyBuffer_Release(&b);
	}
	if (rc < 0)
		return NULL;
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

/* recv(timeout=None, writable=False) -> bytes, or a bytearray if writable (out-of-band
 * buffers unpickled from it stay writable, as numpy arrays expect) */
static PyObject *channel_recv(ChannelObject *o, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"timeout", "writable", NULL};
	PyObject *t = Py_None;
	dragon_wait_t w = {-1, DRAGON_WAIT_DEFAULT, 0};
	size_t cap = o->block, len = 0;
	int rc, writable = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op", kwl, &t, &writable))
		return NULL;
	if (!channel_ok(o) || timeout_us(t, &w.timeout_us) < 0)
		return NULL;
	long deadline = w.timeout_us > 0 ? now_us() + w.timeout_us : 0;
	for (;;) {
		PyObject *b = writable ? PyByteArray_FromStringAndSize(NULL, cap)
				       : PyBytes_FromStringAndSize(NULL, cap);
		if (!b)
			return NULL;
		char *p = writable ? PyByteArray_AS_STRING(b) : PyBytes_AS_STRING(b);
		struct recv_arg a = {p, cap, 0};
		rc = sliced(o, recv_fn, &a, &w);
		len = a.len;
		if (rc < 0) {
			Py_DECREF(b);
			return NULL;
		}
		if (rc == 0) {
			if (len != cap) {
				if (writable ? PyByteArray_Resize(b, len) < 0 : _PyBytes_Resize(&b, len) < 0) {
					if (writable)
						Py_DECREF(b);
					return NULL;
				}
			}
			return b;
		}
		Py_DECREF(b);
		if (rc != DRAGON_ETOOBIG)
			return raise_rc(rc);
		/* The message stayed in the channel: retry with room for it (another receiver
		 * may take it first, then we wait again for what is left of the timeout). */
		cap = len;
		if (w.timeout_us > 0) {
			w.timeout_us = deadline - now_us();
			if (w.timeout_us < 0)
				w.timeout_us = 0;
		}
	}
}

/* recv_into(buffer, timeout=None) -> length; ValueError-like ETOOBIG leaves the message. */
static PyObject *channel_recv_into(ChannelObject *o, PyObject *args)
{
	Py_buffer b;
	PyObject *t = Py_None;
	dragon_wait_t w = {-1, DRAGON_WAIT_DEFAULT, 0};
	size_t len = 0;
	int rc;

	if (!PyArg_ParseTuple(args, "w*|O", &b, &t))
		return NULL;
	if (!channel_ok(o) || timeout_us(t, &w.timeout_us) < 0) {
		PyBuffer_Release(&b);
		return NULL;
	}
	struct recv_arg a = {b.buf, (size_t)b.len, 0};
	rc = sliced(o, recv_fn, &a, &w);
	len = a.len;
	PyBuffer_Release(&b);
	if (rc < 0)
		return NULL;
	if (rc == DRAGON_ETOOBIG)
		return Py_BuildValue("(On)", Py_False, (Py_ssize_t)len);
	if (rc)
		return raise_rc(rc);
	return Py_BuildValue("(On)", Py_True, (Py_ssize_t)len);
}

/* poll(events, timeout=None) -> revents (0 on timeout) */
static PyObject *channel_poll(ChannelObject *o, PyObject *args)
{
	unsigned events, rev = 0;
	PyObject *t = Py_None;
	dragon_wait_t w = {-1, DRAGON_WAIT_DEFAULT, 0};
	int rc;

	if (!PyArg_ParseTuple(args, "I|O", &events, &t))
		return NULL;
	if (!channel_ok(o) || timeout_us(t, &w.timeout_us) < 0)
		return NULL;
	struct poll_arg a = {events, 0};
	rc = sliced(o, poll_fn, &a, &w);
	rev = a.rev;
	if (rc < 0)
		return NULL;
	if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN)
		return PyLong_FromLong(0);
	if (rc)
		return raise_rc(rc);
	return PyLong_FromUnsignedLong(rev);
}

static PyObject *channel_count(ChannelObject *o, PyObject *noargs)
{
	uint32_t n = 0, cap = 0;
	int rc;
	if (!channel_ok(o))
		return NULL;
	if ((rc = dragon_channel_count(o->ch, &n, &cap)))
		return raise_rc(rc);
	return Py_BuildValue("(II)", n, cap);
}

static PyObject *channel_detach(ChannelObject *o, PyObject *noargs)
{
	if (o->ch && !o->closing) {
		if (o->busy) {
			o->closing = 1; /* the last call in flight detaches it */
		} else {
			dragon_channel_detach(o->ch);
			o->ch = NULL;
		}
	}
	Py_RETURN_NONE;
}

static PyObject *channel_destroy(ChannelObject *o, PyObject *noargs)
{
	int rc;
	dragon_channel_t *ch = o->ch;
	if (!channel_ok(o))
		return NULL;
	if (o->busy) {
		/* Calls of other threads still use this handle: destroy through a handle of our own
		 * (they then fail with DRAGON_ECLOSED and return), and let the last one detach. */
		dragon_channel_desc_t d;
		ch = NULL;
		if ((rc = dragon_channel_serialize(o->ch, &d)) == 0) {
			Py_BEGIN_ALLOW_THREADS
			rc = dragon_channel_attach(&d, &ch);
			Py_END_ALLOW_THREADS
		}
		o->closing = 1;
		if (rc)
			return raise_rc(rc);
	} else {
		o->ch = NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_fchannel_destroy(ch);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyMethodDef channel_methods[] = {
	{"desc", (PyCFunction)channel_desc, METH_NOARGS, "The channel's serialized descriptor (bytes)."},
	{"send", (PyCFunction)(void (*)(void))channel_send, METH_VARARGS | METH_KEYWORDS,
	 "send(data, timeout=None, deposited=False, taken=False): one message (a buffer, or a list of "
	 "buffers joined); taken: return once a receiver took it."},
	{"recv", (PyCFunction)(void (*)(void))channel_recv, METH_VARARGS | METH_KEYWORDS,
	 "recv(timeout=None, writable=False) -> bytes (bytearray if writable)"},
	{"recv_into", (PyCFunction)channel_recv_into, METH_VARARGS,
	 "recv_into(buffer, timeout=None) -> (fitted, length); a message too big stays, length says its size."},
	{"poll", (PyCFunction)channel_poll, METH_VARARGS, "poll(events, timeout=None) -> revents, 0 on timeout"},
	{"count", (PyCFunction)channel_count, METH_NOARGS, "(messages, capacity); local channels only"},
	{"detach", (PyCFunction)channel_detach, METH_NOARGS, "Forget the handle."},
	{"destroy", (PyCFunction)channel_destroy, METH_NOARGS, "Destroy the channel for every process."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject ChannelType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dragon._core.Channel",
	.tp_basicsize = sizeof(ChannelObject),
	.tp_dealloc = (destructor)channel_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A handle on a fabric channel (create with channel_create / channel_attach).",
	.tp_methods = channel_methods,
};

/* ---- processes and groups -------------------------------------------------------------- */

/* O& converter: a path, or None. */
static int opt_path(PyObject *o, void *out)
{
	if (o == Py_None) {
		*(PyObject **)out = NULL;
		return 1;
	}
	return PyUnicode_FSConverter(o, out);
}

/* A list of str/bytes to a NULL-terminated C array (pointers into the objects kept in *keep). */
static const char **str_array(PyObject *seq_in, const char *what, PyObject **keep)
{
	PyObject *seq = PySequence_Fast(seq_in, what);
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	PyObject *enc = PyList_New(n);
	const char **a = PyMem_Calloc(n + 1, sizeof(char *));
	if (!enc || !a)
		goto fail;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *b = NULL;
		if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &b))
			goto fail;
		PyList_SET_ITEM(enc, i, b);
		a[i] = PyBytes_AS_STRING(b);
	}
	Py_DECREF(seq);
	*keep = enc;
	return a;
fail:
	Py_DECREF(seq);
	Py_XDECREF(enc);
	PyMem_Free(a);
	if (!PyErr_Occurred())
		PyErr_NoMemory();
	return NULL;
}

/* argv, env and cwd of a new process (group or single), converted and kept alive while used. */
struct spawn_args {
	const char **argv, **env;
	PyObject *keep_a, *keep_e, *cwd_o;
	dragon_process_opts_t opts;
};

/* Fill sa from Python's argv (a non-empty sequence) and env (None or NAME=VALUE strings); cwd_o
 * (from opt_path) is taken over. -1 with an exception set; spawn_args_free in every case. */
static int spawn_args_load(struct spawn_args *sa, PyObject *argv_o, PyObject *env_o)
{
	dragon_process_opts_t init = DRAGON_PROCESS_OPTS_INIT;

	sa->opts = init;
	if (!(sa->argv = str_array(argv_o, "argv must be a sequence", &sa->keep_a)))
		return -1;
	if (!sa->argv[0]) {
		PyErr_SetString(PyExc_ValueError, "argv is empty");
		return -1;
	}
	if (env_o != Py_None &&
	    !(sa->env = str_array(env_o, "env must be a sequence of NAME=VALUE", &sa->keep_e)))
		return -1;
	sa->opts.cwd = sa->cwd_o ? PyBytes_AS_STRING(sa->cwd_o) : NULL;
	sa->opts.env = sa->env;
	return 0;
}

static void spawn_args_free(struct spawn_args *sa)
{
	PyMem_Free(sa->argv);
	PyMem_Free(sa->env);
	Py_XDECREF(sa->keep_a);
	Py_XDECREF(sa->keep_e);
	Py_XDECREF(sa->cwd_o);
}

/*
 * group_create(argv, n=1, policy=ROUND_ROBIN, node=0, env=None, cwd=None, name=None,
 *              outlive=False, discard_output=False, output_to_me=False) -> gid
 * output_to_me: the members' output comes to this process (output_recv).
 * One process on a chosen node is a group of one with POLICY_NODE: its status stays in the
 * group, so it can be waited for any number of times (a bare process is waited for once).
 */
static PyObject *py_group_create(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"argv", "n", "policy", "node", "env", "cwd", "name", "outlive",
			      "discard_output", "output_to_me", NULL};
	struct spawn_args sa = {0};
	PyObject *argv_o, *env_o = Py_None;
	unsigned n = 1, node = 0;
	int policy = DRAGON_POLICY_ROUND_ROBIN, outlive = 0, discard = 0, to_me = 0, rc;
	const char *name = NULL;
	dragon_gid_t gid = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|IiIOO&zppp", kwl, &argv_o, &n, &policy,
					 &node, &env_o, opt_path, &sa.cwd_o, &name, &outlive,
					 &discard, &to_me))
		return NULL;
	if (spawn_args_load(&sa, argv_o, env_o) == 0) {
		sa.opts.outlive = outlive;
		sa.opts.output = discard ? DRAGON_OUTPUT_DISCARD
				 : to_me ? DRAGON_OUTPUT_TO_ME : DRAGON_OUTPUT_INHERIT;
		Py_BEGIN_ALLOW_THREADS
		rc = dragon_group_create(sa.argv, n, (enum dragon_policy)policy, node, &sa.opts,
					 name, &gid);
		Py_END_ALLOW_THREADS
		if (rc)
			raise_rc(rc);
	}
	spawn_args_free(&sa);
	if (PyErr_Occurred())
		return NULL;
	return PyLong_FromUnsignedLongLong(gid);
}

/* group_wait_all(gid, timeout=None) -> largest status (exit code, or 128+N for signal N) */
static PyObject *py_group_wait_all(PyObject *self, PyObject *args)
{
	unsigned long long gid;
	PyObject *t = Py_None;
	int ms, worst = 0, rc;
	if (!PyArg_ParseTuple(args, "K|O", &gid, &t) || timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_group_wait_all(gid, ms, &worst);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	return PyLong_FromLong(worst);
}

/* group_wait_any(gid, timeout=None) -> (puid, status) */
static PyObject *py_group_wait_any(PyObject *self, PyObject *args)
{
	unsigned long long gid;
	PyObject *t = Py_None;
	int ms, status = 0, rc;
	dragon_puid_t puid = 0;
	if (!PyArg_ParseTuple(args, "K|O", &gid, &t) || timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_group_wait_any(gid, ms, &puid, &status);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	return Py_BuildValue("(Ki)", (unsigned long long)puid, status);
}

static PyObject *py_group_signal(PyObject *self, PyObject *args)
{
	unsigned long long gid;
	int signo, rc;
	if (!PyArg_ParseTuple(args, "Ki", &gid, &signo))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_group_signal(gid, signo);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

/* process_create(argv, env=None, cwd=None, outlive=False, fds=(), output_to_me=False) -> puid
 * (this node); the process gets the descriptors fds (ints) at the same numbers. */
static PyObject *py_process_create(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"argv", "env", "cwd", "outlive", "fds", "output_to_me", NULL};
	struct spawn_args sa = {0};
	PyObject *argv_o, *env_o = Py_None, *fds_o = NULL, *seq = NULL;
	int outlive = 0, to_me = 0, rc, *fds = NULL;
	Py_ssize_t nfds = 0;
	dragon_puid_t puid = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO&pOp", kwl, &argv_o, &env_o, opt_path,
					 &sa.cwd_o, &outlive, &fds_o, &to_me))
		return NULL;
	if (fds_o && fds_o != Py_None) {
		if (!(seq = PySequence_Fast(fds_o, "fds must be a sequence of descriptors")))
			goto out;
		nfds = PySequence_Fast_GET_SIZE(seq);
		if (nfds > 0 && !(fds = PyMem_Calloc((size_t)nfds, sizeof(int)))) {
			PyErr_NoMemory();
			goto out;
		}
		for (Py_ssize_t i = 0; i < nfds; i++) {
			long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
			if (v == -1 && PyErr_Occurred())
				goto out;
			if (v < 0 || v > INT_MAX) {
				PyErr_Format(PyExc_ValueError, "fds[%zd] is %ld: not a descriptor", i, v);
				goto out;
			}
			fds[i] = (int)v;
		}
	}
	if (spawn_args_load(&sa, argv_o, env_o) == 0) {
		sa.opts.outlive = outlive;
		sa.opts.fds = fds;
		sa.opts.nfds = (int)nfds;
		if (to_me)
			sa.opts.output = DRAGON_OUTPUT_TO_ME;
		Py_BEGIN_ALLOW_THREADS
		rc = dragon_process_create(sa.argv, &sa.opts, &puid);
		Py_END_ALLOW_THREADS
		if (rc)
			raise_rc(rc);
	}
out:
	spawn_args_free(&sa);
	Py_XDECREF(seq);
	PyMem_Free(fds);
	if (PyErr_Occurred())
		return NULL;
	return PyLong_FromUnsignedLongLong(puid);
}

static PyObject *py_process_wait(PyObject *self, PyObject *args)
{
	unsigned long long puid;
	PyObject *t = Py_None;
	int ms, status = 0, rc;
	if (!PyArg_ParseTuple(args, "K|O", &puid, &t) || timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_process_wait(puid, ms, &status);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	return PyLong_FromLong(status);
}

static PyObject *py_process_signal(PyObject *self, PyObject *args)
{
	unsigned long long puid;
	int signo, rc;
	if (!PyArg_ParseTuple(args, "Ki", &puid, &signo))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_process_signal(puid, signo);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

/* process_list() -> [(puid, pid, node, running, status, gid, rank, program)] of this node */
static PyObject *py_process_list(PyObject *self, PyObject *noargs)
{
	dragon_process_info_t *l = NULL;
	size_t n = 0;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_process_list(&l, &n);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	PyObject *out = PyList_New(0);
	for (size_t i = 0; out && i < n; i++) {
		PyObject *e = Py_BuildValue("(KiIiiKis)", (unsigned long long)l[i].puid, l[i].pid,
					    l[i].node, l[i].running, l[i].status,
					    (unsigned long long)l[i].gid, l[i].rank, l[i].program);
		if (!e || PyList_Append(out, e) < 0)
			Py_CLEAR(out);
		Py_XDECREF(e);
	}
	free(l);
	return out;
}

/* ---- names ----------------------------------------------------------------------------- */

static PyObject *py_name_register(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwl[] = {"name", "kind", "desc", "outlive", NULL};
	const char *name;
	int kind, outlive = 0, rc;
	Py_buffer b;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "siy*|p", kwl, &name, &kind, &b, &outlive))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_name_register(name, (enum dragon_name_kind)kind, b.buf, b.len,
				  outlive ? DRAGON_NAME_OUTLIVE : 0);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&b);
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

/* name_lookup(name, timeout=0) -> (kind, desc bytes) */
static PyObject *py_name_lookup(PyObject *self, PyObject *args)
{
	const char *name;
	PyObject *t = NULL;
	int ms = 0, rc;
	enum dragon_name_kind kind = 0;
	char buf[4096];
	size_t len = sizeof(buf);
	if (!PyArg_ParseTuple(args, "s|O", &name, &t))
		return NULL;
	if (t && timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_name_lookup(name, ms, &kind, buf, &len);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	return Py_BuildValue("(iy#)", (int)kind, buf, (Py_ssize_t)len);
}

static PyObject *py_name_remove(PyObject *self, PyObject *args)
{
	const char *name;
	int rc;
	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_name_remove(name);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *py_strerror(PyObject *self, PyObject *args)
{
	int rc;
	if (!PyArg_ParseTuple(args, "i", &rc))
		return NULL;
	return PyUnicode_FromString(dragon_strerror(rc));
}

/* output_recv(timeout=None, max=256) -> [(stream, data, host, puid, rank), ...]: the lines of
 * processes started with output_to_me, waiting up to timeout for the first and taking with it
 * those already there (at most max); [] when the time is up. */
static PyObject *py_output_recv(PyObject *self, PyObject *args)
{
	PyObject *t = Py_None, *list = NULL;
	dragon_output_t *v;
	int ms, rc = 0, n = 0, max = 256;
	if (!PyArg_ParseTuple(args, "|Oi", &t, &max) || timeout_ms(t, &ms) < 0)
		return NULL;
	if (max < 1 || max > 65536) {
		PyErr_SetString(PyExc_ValueError, "max must be 1 to 65536");
		return NULL;
	}
	if (!(v = PyMem_RawCalloc((size_t)max, sizeof(*v))))
		return PyErr_NoMemory();
	Py_BEGIN_ALLOW_THREADS
	while (n < max && (rc = dragon_output_recv(&v[n], n ? 0 : ms)) == DRAGON_OK)
		n++;
	Py_END_ALLOW_THREADS
	if (n == 0 && rc != DRAGON_ETIMEDOUT) {
		PyMem_RawFree(v);
		return raise_rc(rc);
	}
	/* An error after some lines: those first; the next call reports it. */
	list = PyList_New(n);
	for (int i = 0; i < n; i++) {
		PyObject *e = list ? Py_BuildValue("(iy#sKi)", v[i].stream, v[i].data,
						   (Py_ssize_t)v[i].len, v[i].host,
						   (unsigned long long)v[i].puid, v[i].rank)
				   : NULL;
		free(v[i].data);
		if (list && !e)
			Py_CLEAR(list);
		else if (list)
			PyList_SET_ITEM(list, i, e);
	}
	PyMem_RawFree(v);
	return list;
}

/* output_flush(timeout=None): every line held for us when called has been read */
static PyObject *py_output_flush(PyObject *self, PyObject *args)
{
	PyObject *t = Py_None;
	int ms, rc;
	if (!PyArg_ParseTuple(args, "|O", &t) || timeout_ms(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = dragon_output_flush(ms);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
	{"output_recv", py_output_recv, METH_VARARGS,
	 "output_recv(timeout=None, max=256) -> [(stream, data, host, puid, rank), ...]: lines of "
	 "processes started with output_to_me (the first waited for up to timeout, then those "
	 "already there); [] when the time is up."},
	{"output_flush", py_output_flush, METH_VARARGS,
	 "output_flush(timeout=None): return once output_recv (in another thread) read every line "
	 "held for this process when it was called."},
	{"init", py_init, METH_NOARGS, "Join the fabric named by DRAGON_LS_SOCKET."},
	{"finalize", py_finalize, METH_NOARGS, "Leave the fabric."},
	{"puid", py_puid, METH_NOARGS, "This process's id in the fabric."},
	{"node_index", py_node_index, METH_NOARGS, "This node's index."},
	{"node_count", py_node_count, METH_NOARGS, "Nodes in the fabric."},
	{"fabric_id", py_fabric_id, METH_NOARGS, "The fabric's id."},
	{"group_rank", py_group_rank, METH_NOARGS, "(rank, size) in this process's group, (-1, 0) if none."},
	{"channel_create", (PyCFunction)(void (*)(void))py_channel_create, METH_VARARGS | METH_KEYWORDS,
	 "channel_create(name=None, capacity=0, block_size=0, outlive=False) -> Channel"},
	{"channel_attach", py_channel_attach, METH_VARARGS,
	 "channel_attach(descriptor bytes | name, timeout=None) -> Channel"},
	{"group_create", (PyCFunction)(void (*)(void))py_group_create, METH_VARARGS | METH_KEYWORDS,
	 "group_create(argv, n=1, policy=0, node=0, env=None, cwd=None, name=None, outlive=False, discard_output=False, output_to_me=False) -> gid"},
	{"group_wait_all", py_group_wait_all, METH_VARARGS, "group_wait_all(gid, timeout=None) -> worst status"},
	{"group_wait_any", py_group_wait_any, METH_VARARGS, "group_wait_any(gid, timeout=None) -> (puid, status)"},
	{"group_signal", py_group_signal, METH_VARARGS, "group_signal(gid, signo)"},
	{"process_create", (PyCFunction)(void (*)(void))py_process_create, METH_VARARGS | METH_KEYWORDS,
	 "process_create(argv, env=None, cwd=None, outlive=False, fds=(), output_to_me=False) -> puid"},
	{"process_wait", py_process_wait, METH_VARARGS, "process_wait(puid, timeout=None) -> status"},
	{"process_signal", py_process_signal, METH_VARARGS, "process_signal(puid, signo)"},
	{"process_list", py_process_list, METH_NOARGS, "This node's processes."},
	{"name_register", (PyCFunction)(void (*)(void))py_name_register, METH_VARARGS | METH_KEYWORDS,
	 "name_register(name, kind, desc, outlive=False)"},
	{"name_lookup", py_name_lookup, METH_VARARGS, "name_lookup(name, timeout=0) -> (kind, desc)"},
	{"name_remove", py_name_remove, METH_VARARGS, "name_remove(name)"},
	{"strerror", py_strerror, METH_VARARGS, "strerror(code) -> str"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
	PyModuleDef_HEAD_INIT, "dragon._core",
	"libdragon for Python: fabric, channels, processes, groups, names.", -1, core_methods,
	NULL, NULL, NULL, NULL,
};

/* One error class per code, deriving from DragonError and the builtin that fits. */
static int add_error(PyObject *m, int code, const char *name, PyObject *builtin)
{
	char full[96];
	snprintf(full, sizeof(full), "dragon.%s", name);
	PyObject *bases = builtin ? PyTuple_Pack(2, DragonError, builtin) : PyTuple_Pack(1, DragonError);
	if (!bases)
		return -1;
	PyObject *cls = PyErr_NewException(full, bases, NULL);
	Py_DECREF(bases);
	if (!cls)
		return -1;
	err_class[code] = cls;
	Py_INCREF(cls);
	return PyModule_AddObject(m, name, cls);
}

PyMODINIT_FUNC PyInit__core(void);
PyMODINIT_FUNC PyInit__core(void)
{
	PyObject *m;
	if (PyType_Ready(&ChannelType) < 0)
		return NULL;
	if (!(m = PyModule_Create(&core_module)))
		return NULL;
	Py_INCREF(&ChannelType);
	PyModule_AddObject(m, "Channel", (PyObject *)&ChannelType);
	DragonError = PyErr_NewException("dragon.DragonError", NULL, NULL);
	Py_INCREF(DragonError);
	PyModule_AddObject(m, "DragonError", DragonError);
	if (add_error(m, DRAGON_EINVAL, "DragonValueError", PyExc_ValueError) ||
	    add_error(m, DRAGON_ENOMEM, "DragonMemoryError", PyExc_MemoryError) ||
	    add_error(m, DRAGON_ENOSPACE, "DragonFullError", NULL) ||
	    add_error(m, DRAGON_EAGAIN, "DragonWouldBlock", PyExc_BlockingIOError) ||
	    add_error(m, DRAGON_ETIMEDOUT, "DragonTimeoutError", PyExc_TimeoutError) ||
	    add_error(m, DRAGON_EBADDESC, "DragonBadDescriptor", PyExc_ValueError) ||
	    add_error(m, DRAGON_ESTALE, "DragonStaleError", PyExc_ConnectionResetError) ||
	    add_error(m, DRAGON_EPERM, "DragonPermissionError", PyExc_PermissionError) ||
	    add_error(m, DRAGON_ETOOBIG, "DragonTooBigError", PyExc_ValueError) ||
	    add_error(m, DRAGON_ENOTFOUND, "DragonNotFoundError", PyExc_FileNotFoundError) ||
	    add_error(m, DRAGON_EEXIST, "DragonExistsError", PyExc_FileExistsError) ||
	    add_error(m, DRAGON_EPROTO, "DragonProtocolError", NULL) ||
	    add_error(m, DRAGON_EPEER, "DragonPeerError", PyExc_ConnectionError) ||
	    add_error(m, DRAGON_ECLOSED, "DragonClosedError", PyExc_ConnectionAbortedError) ||
	    add_error(m, DRAGON_ENOTSUP, "DragonNotSupported", PyExc_NotImplementedError) ||
	    add_error(m, DRAGON_ENOTINIT, "DragonNotInitialized", NULL) ||
	    add_error(m, DRAGON_ESYS, "DragonSystemError", PyExc_OSError))
		return NULL;
	PyModule_AddIntConstant(m, "STATUS_NODE_LOST", DRAGON_STATUS_NODE_LOST);
	PyModule_AddIntConstant(m, "POLLIN", DRAGON_POLLIN);
	PyModule_AddIntConstant(m, "POLLOUT", DRAGON_POLLOUT);
	PyModule_AddIntConstant(m, "POLICY_ROUND_ROBIN", DRAGON_POLICY_ROUND_ROBIN);
	PyModule_AddIntConstant(m, "POLICY_BLOCK", DRAGON_POLICY_BLOCK);
	PyModule_AddIntConstant(m, "POLICY_NODE", DRAGON_POLICY_NODE);
	PyModule_AddIntConstant(m, "NAME_CHANNEL", DRAGON_NAME_CHANNEL);
	PyModule_AddIntConstant(m, "NAME_USER", DRAGON_NAME_USER);
	PyModule_AddIntConstant(m, "DESC_SIZE", DRAGON_DESC_SIZE);
	if (ddict_module_init(m) < 0)
		return NULL;
	return m;
}
