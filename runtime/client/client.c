/* runtime/client/client.c: dragon_init and the process, group and name API over the LS socket. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <dragon/dragon.h>
#include "core/err.h"
#include "core/fdpass.h"
#include "core/pool_internal.h"
#include "core/shm.h"
#include "client/client.h"
#include "ls/ls.h"

/*
 * Connections to local services: a call takes an idle one (or opens another), so a thread blocked
 * in a wait or a queue get does not hold up the other threads. LS binds every connection of a
 * fabric process to its puid, so what any of them creates belongs to the process.
 *
 * Connections belong to the process that opened them (`pid`). A forked child inherits the
 * parent's sockets: were it to use them, parent and child would send on one stream with the
 * same sequence numbers and each read replies, and descriptors, meant for the other (a pool
 * attach then maps another pool than it asked for, or waits for ever). The child drops them
 * and opens its own.
 */
struct cconn {
	struct cconn *next;
	int fd;
	uint64_t seq;
	int answered; /* the last call got its reply: an error in it is the service's, not the wire's */
	/* The output connection's reader: what one recv brought (many lines at a time). */
	uint8_t *rbuf;
	size_t rpos, rlen, rcap;
};

static struct {
	pthread_mutex_t lock;
	int refs;
	struct cconn *idle;
	struct sockaddr_un sa;
	uint64_t puid;
	unsigned node_index, node_count;
	char fabric_id[64];
	int pid; /* the process whose connections these are */
} cl = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * The output connection (Hello.output): local services write the output of the processes this
 * process started with DRAGON_OUTPUT_TO_ME into it, nothing else but the replies to its flushes.
 * Opened on first use, under cl.lock; one reader at a time (busy) reads it without the lock.
 * A flush sends a Hello on it: LS answers after every Output it queued before, and the reader,
 * seeing that answer, raises `synced` to its seq.
 */
static struct {
	struct cconn *c;
	uint64_t id; /* its connection id, for SpawnArgs.output_conn */
	int busy;
	uint64_t synced;
	pthread_cond_t cond;
} oc = {.cond = PTHREAD_COND_INITIALIZER};

/* Send req; descriptors (nsend > 0) go with its first byte, as local services expect them. */
static int send_req(struct cconn *c, Dragon__Msg *req, const int *send_fds, int nsend)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (nsend <= 0)
		return dg_wire_send(c->fd, req, -1);
	if ((rc = dg_msg_encode(req, &buf, &len)))
		return rc;
	rc = dg_fdpass_send(c->fd, buf, len, send_fds, nsend);
	free(buf);
	return rc;
}

static int call_on(struct cconn *c, Dragon__Msg *req, Dragon__Msg **rep, int *fd,
		   const int *send_fds, int nsend)
{
	Dragon__Msg *m = NULL;
	int rc;

	if (rep)
		*rep = NULL;
	if (fd)
		*fd = -1;
	req->seq = ++c->seq;
	c->answered = 0;
	rc = send_req(c, req, send_fds, nsend);
	if (rc)
		return rc;
	for (;;) {
		rc = dg_wire_recv(c->fd, &m, fd, -1);
		if (rc)
			return rc == DRAGON_EPEER ? dg_err(DRAGON_EPEER, "local services went away")
						  : rc;
		/* Replies come in order; anything else (a stale reply) is skipped. */
		if (m->seq == req->seq) {
			c->answered = 1;
			break;
		}
		dg_msg_free(m);
		if (fd && *fd >= 0) {
			close(*fd);
			*fd = -1;
		}
	}
	if (m->body_case == DRAGON__MSG__BODY_ERROR) {
		rc = dg_err(m->error->rc > 0 && m->error->rc < DRAGON_ERR_MAX ? m->error->rc
									      : DRAGON_EPROTO,
			    "%s", m->error->msg);
		dg_msg_free(m);
		return rc;
	}
	if (rep)
		*rep = m;
	else
		dg_msg_free(m);
	return DRAGON_OK;
}

/* Connect to cl.sa and check that local services run as our user. */
static int conn_open(struct cconn **out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct cconn *c = calloc(1, sizeof(*c));
	int rv;

	if (!c)
		return dg_err(DRAGON_ENOMEM, "connection");
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rv = dg_err_sys("socket");
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&cl.sa, sizeof(cl.sa))) {
		rv = dg_err(DRAGON_EPEER, "cannot reach local services at %s: %s", cl.sa.sun_path,
			    strerror(errno));
		goto fail;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != geteuid()) {
		rv = dg_err(DRAGON_EPERM, "%s is served by another user", cl.sa.sun_path);
		goto fail;
	}
	*out = c;
	return DRAGON_OK;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return rv;
}

static void conn_close(struct cconn *c)
{
	close(c->fd);
	free(c->rbuf);
	free(c);
}

/* In a forked child: close our copies of the parent's connections (cl.lock held). */
static void drop_inherited(void)
{
	if (cl.pid == dg_self_pid())
		return;
	while (cl.idle) {
		struct cconn *c = cl.idle;
		cl.idle = c->next;
		conn_close(c);
	}
	if (oc.c) /* our copy only: no shutdown, the parent's reader still uses it */
		conn_close(oc.c);
	oc.c = NULL;
	oc.busy = 0;
	cl.pid = dg_self_pid();
}

int dg_client_call(Dragon__Msg *req, Dragon__Msg **rep, int *fd)
{
	return dg_client_call_fds(req, rep, fd, NULL, 0);
}

int dg_client_call_fds(Dragon__Msg *req, Dragon__Msg **rep, int *fd, const int *send_fds,
		       int nsend)
{
	struct cconn *c;
	int rc;

	pthread_mutex_lock(&cl.lock);
	if (cl.refs <= 0) {
		pthread_mutex_unlock(&cl.lock);
		return dg_err(DRAGON_ENOTINIT, "call dragon_init() first");
	}
	drop_inherited();
	if ((c = cl.idle))
		cl.idle = c->next;
	pthread_mutex_unlock(&cl.lock);
	if (!c && (rc = conn_open(&c)))
		return rc;
	rc = call_on(c, req, rep, fd, send_fds, nsend);
	pthread_mutex_lock(&cl.lock);
	/* A connection that failed at the wire level is not trusted again. An EPEER that local
	 * services answered (another node is lost) leaves it as it is: closing it would release
	 * what this client owns through it. */
	if (cl.refs > 0 && ((rc != DRAGON_EPEER && rc != DRAGON_ESYS) || c->answered) &&
	    !(rc == DRAGON_EPROTO && !strstr(dragon_errmsg(), "not a request"))) {
		c->next = cl.idle;
		cl.idle = c;
		c = NULL;
	}
	pthread_mutex_unlock(&cl.lock);
	if (c)
		conn_close(c);
	return rc;
}

static int expect(Dragon__Msg *rep, Dragon__Msg__BodyCase want)
{
	if (rep->body_case == want)
		return DRAGON_OK;
	return dg_err(DRAGON_EPROTO, "expected another reply than %s", dg_msg_name(rep));
}

/*
 * Pools kept by local services (the node's pool of channels, pools created through them) are
 * attached with the memfd LS hands over the socket: no need for /proc access to their creator.
 */
static int pool_fd_provider(uint64_t pool_id, int *fd, void *arg)
{
	uint64_t size;

	(void)arg;
	return dg_client_pool_attach(pool_id, fd, &size);
}

DRAGON_API int dragon_init(void)
{
	const char *sock = getenv("DRAGON_LS_SOCKET"), *dir = getenv("DRAGON_RUNTIME_DIR");
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	struct cconn *c = NULL;
	int rv = -1;

	pthread_mutex_lock(&cl.lock);
	if (cl.refs > 0 && cl.pid != dg_self_pid()) {
		/* A forked child joins anew: its own connections, and its own identity in the
		 * hello reply (the parent's puid is not the child's). */
		drop_inherited();
		cl.refs = 0;
	}
	if (cl.refs > 0) {
		cl.refs++;
		rv = DRAGON_OK;
		goto out;
	}
	memset(&cl.sa, 0, sizeof(cl.sa));
	cl.sa.sun_family = AF_UNIX;
	if (sock && *sock) {
		if (strlen(sock) >= sizeof(cl.sa.sun_path)) {
			rv = dg_err(DRAGON_EINVAL, "DRAGON_LS_SOCKET is too long");
			goto out;
		}
		strcpy(cl.sa.sun_path, sock);
	} else if (dir && *dir) {
		if ((size_t)snprintf(cl.sa.sun_path, sizeof(cl.sa.sun_path), "%s/%s", dir,
				     LS_SOCK_NAME) >= sizeof(cl.sa.sun_path)) {
			rv = dg_err(DRAGON_EINVAL, "DRAGON_RUNTIME_DIR is too long");
			goto out;
		}
	} else {
		rv = dg_err(DRAGON_ENOTINIT,
			    "no fabric to join: DRAGON_LS_SOCKET is not set (start the program "
			    "with `dragon PROG`)");
		goto out;
	}
	if ((rv = conn_open(&c)))
		goto out;
	h.pid = getpid();
	m.body_case = DRAGON__MSG__BODY_HELLO;
	m.hello = &h;
	rv = call_on(c, &m, &rep, NULL, NULL, 0);
	if (!rv)
		rv = expect(rep, DRAGON__MSG__BODY_HELLO_REPLY);
	if (rv)
		goto out;
	/* Services of another build make pools this library cannot map (the node's pool first of
	 * all): say so here, not at the first channel. 0: services older than this check. */
	if (rep->hello_reply->pool_layout && rep->hello_reply->pool_layout != dg_pool_layout()) {
		rv = dg_err(DRAGON_ENOTSUP,
			    "local services at %s make pools of layout version %u and this library "
			    "reads version %u: the fabric was started by another build of Dragon "
			    "(its launcher or Slurm plugin); run the program with that build, or "
			    "start the fabric with this one",
			    cl.sa.sun_path, rep->hello_reply->pool_layout, dg_pool_layout());
		goto out;
	}
	cl.puid = rep->hello_reply->puid;
	cl.node_index = rep->hello_reply->node_index;
	cl.node_count = rep->hello_reply->node_count;
	/* A process that joined from outside (a Slurm step) learns its node here: the descriptors
	 * of the channels it creates carry it. */
	dg_set_local_node(cl.node_index);
	dg_pool_set_fd_provider(pool_fd_provider, NULL);
	snprintf(cl.fabric_id, sizeof(cl.fabric_id), "%s", rep->hello_reply->fabric_id);
	cl.idle = c;
	c = NULL;
	cl.pid = dg_self_pid();
	cl.refs = 1;
	rv = DRAGON_OK;
out:
	if (c)
		conn_close(c);
	dg_msg_free(rep);
	pthread_mutex_unlock(&cl.lock);
	return rv;
}

DRAGON_API int dragon_finalize(void)
{
	int rv = DRAGON_OK;

	pthread_mutex_lock(&cl.lock);
	if (cl.refs <= 0) {
		rv = dg_err(DRAGON_ENOTINIT, "dragon_finalize without dragon_init");
	} else if (--cl.refs == 0) {
		/* Connections busy in other threads are closed when their calls return. */
		while (cl.idle) {
			struct cconn *c = cl.idle;
			cl.idle = c->next;
			conn_close(c);
		}
		cl.fabric_id[0] = 0;
		dg_pool_set_fd_provider(NULL, NULL);
		if (oc.c) {
			/* A reader blocked on it wakes (EOF) and closes it when it returns. */
			if (oc.busy)
				shutdown(oc.c->fd, SHUT_RDWR);
			else
				conn_close(oc.c);
			oc.c = NULL;
			oc.busy = 0;
			pthread_cond_broadcast(&oc.cond);
		}
	}
	pthread_mutex_unlock(&cl.lock);
	return rv;
}

DRAGON_API uint64_t dragon_puid(void)
{
	return cl.puid;
}

DRAGON_API unsigned dragon_node_index(void)
{
	return cl.node_index;
}

DRAGON_API unsigned dragon_node_count(void)
{
	return cl.node_count;
}

DRAGON_API const char *dragon_fabric_id(void)
{
	return cl.fabric_id;
}

/* ---- output (DRAGON_OUTPUT_TO_ME) --------------------------------------------------------- */

/* Open the output connection if it is not (cl.lock held). */
static int output_open(void)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	struct cconn *c;
	int rv;

	if (cl.refs <= 0)
		return dg_err(DRAGON_ENOTINIT, "call dragon_init() first");
	drop_inherited();
	if (oc.c)
		return DRAGON_OK;
	if ((rv = conn_open(&c)))
		return rv;
	h.pid = getpid();
	h.output = 1;
	m.body_case = DRAGON__MSG__BODY_HELLO;
	m.hello = &h;
	rv = call_on(c, &m, &rep, NULL, NULL, 0);
	if (!rv && !(rv = expect(rep, DRAGON__MSG__BODY_HELLO_REPLY)) && !rep->hello_reply->conn)
		rv = dg_err(DRAGON_ENOTSUP, "local services at %s are older than this library: they "
					    "cannot send output to this process",
			    cl.sa.sun_path);
	if (rv) {
		conn_close(c);
	} else {
		oc.c = c;
		oc.id = rep->hello_reply->conn;
		oc.synced = c->seq;
	}
	dg_msg_free(rep);
	return rv;
}

static int output_conn_id(uint64_t *id)
{
	int rv;

	pthread_mutex_lock(&cl.lock);
	rv = output_open();
	*id = oc.id;
	pthread_mutex_unlock(&cl.lock);
	return rv;
}

static long long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The next frame of the output connection, read through c's buffer: a flood of lines costs a
 * recv per buffer, not two reads and a poll per line. Only its one reader calls this. */
static int out_next(struct cconn *c, Dragon__Msg **m, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;

	for (;;) {
		size_t have = c->rlen - c->rpos, need = DG_HDR_LEN;
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		int left, pr;

		if (have >= DG_HDR_LEN) {
			const uint8_t *h = c->rbuf + c->rpos;
			uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
				       (uint32_t)h[3] << 24;
			if (len > DG_MSG_MAX)
				return dg_err(DRAGON_EPROTO, "frame of %u bytes exceeds the limit of %u",
					      len, DG_MSG_MAX);
			if (have >= DG_HDR_LEN + len) {
				c->rpos += DG_HDR_LEN + len;
				return dg_msg_decode(h + DG_HDR_LEN, len, m);
			}
			need = DG_HDR_LEN + len;
		}
		if (c->rpos) {
			memmove(c->rbuf, c->rbuf + c->rpos, have);
			c->rlen = have;
			c->rpos = 0;
		}
		if (c->rcap < need || c->rcap - c->rlen < 4096) {
			size_t cap = c->rlen + 65536 > need ? c->rlen + 65536 : need;
			uint8_t *b = realloc(c->rbuf, cap);
			if (!b)
				return dg_err(DRAGON_ENOMEM, "output buffer");
			c->rbuf = b;
			c->rcap = cap;
		}
		left = deadline < 0 ? -1 : (int)(deadline - mono_ms() > 0 ? deadline - mono_ms() : 0);
		pr = poll(&pf, 1, left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return dg_err_sys("poll on the output connection");
		if (pr == 0)
			return dg_err(DRAGON_ETIMEDOUT, "no output within %d ms", timeout_ms);
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n == 0)
			return DRAGON_EPEER;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? DRAGON_EPEER
						   : dg_err_sys("reading the output connection");
		c->rlen += (size_t)n;
	}
}

DRAGON_API int dragon_output_recv(dragon_output_t *out, int timeout_ms)
{
	Dragon__Msg *m = NULL;
	struct cconn *c;
	int rv;

	if (!out)
		return dg_err(DRAGON_EINVAL, "out is NULL");
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&cl.lock);
	if ((rv = output_open()) || (oc.busy && (rv = dg_err(DRAGON_EINVAL, "another thread "
									    "reads the output")))) {
		pthread_mutex_unlock(&cl.lock);
		return rv;
	}
	c = oc.c;
	oc.busy = 1;
	pthread_mutex_unlock(&cl.lock);
	for (;;) {
		rv = out_next(c, &m, timeout_ms < 0 ? -1 : timeout_ms);
		if (rv) {
			if (rv == DRAGON_EPEER)
				rv = dg_err(DRAGON_EPEER, "the output connection closed "
							  "(dragon_finalize, or local services went away)");
			break;
		}
		if (m->body_case == DRAGON__MSG__BODY_OUTPUT) {
			const Dragon__Output *o = m->output;
			out->data = malloc(o->data.len ? o->data.len : 1);
			if (!out->data) {
				rv = dg_err(DRAGON_ENOMEM, "a line of output");
				break;
			}
			memcpy(out->data, o->data.data, o->data.len);
			out->len = o->data.len;
			out->puid = o->puid;
			out->stream = o->stream;
			out->rank = o->rank;
			snprintf(out->host, sizeof(out->host), "%s", o->host ? o->host : "");
			break;
		}
		if (m->body_case == DRAGON__MSG__BODY_HELLO_REPLY) {
			/* A flush's answer: what came before it is read. */
			pthread_mutex_lock(&cl.lock);
			if (c == oc.c && m->seq > oc.synced)
				oc.synced = m->seq;
			pthread_cond_broadcast(&oc.cond);
			pthread_mutex_unlock(&cl.lock);
		}
		dg_msg_free(m);
		m = NULL;
	}
	dg_msg_free(m);
	pthread_mutex_lock(&cl.lock);
	if (c != oc.c)
		conn_close(c); /* dragon_finalize (or a fork) let go of it while we read */
	else
		oc.busy = 0;
	pthread_mutex_unlock(&cl.lock);
	return rv;
}

DRAGON_API int dragon_output_flush(int timeout_ms)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Hello h = DRAGON__HELLO__INIT;
	struct timespec until;
	struct cconn *c;
	uint64_t seq;
	int rv;

	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&cl.lock);
	if ((rv = output_open()))
		goto out;
	c = oc.c;
	seq = ++c->seq;
	h.pid = getpid();
	h.output = 1;
	m.seq = seq;
	m.body_case = DRAGON__MSG__BODY_HELLO;
	m.hello = &h;
	/* A small write on a socket only we write to: it does not block for long. */
	if ((rv = dg_wire_send(c->fd, &m, -1)))
		goto out;
	while (oc.c == c && oc.synced < seq) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&oc.cond, &cl.lock);
		} else if (pthread_cond_timedwait(&oc.cond, &cl.lock, &until) == ETIMEDOUT) {
			rv = dg_err(DRAGON_ETIMEDOUT, "the output was not read within %d ms "
						      "(does a thread call dragon_output_recv?)",
				    timeout_ms);
			goto out;
		}
	}
	if (oc.c != c)
		rv = dg_err(DRAGON_EPEER, "the output connection closed (dragon_finalize)");
out:
	pthread_mutex_unlock(&cl.lock);
	return rv;
}

/* ---- processes --------------------------------------------------------------------------- */

/* Descriptors for the new process: open ones of ours, each once, above stdin/stdout/stderr. */
static int check_fds(const dragon_process_opts_t *o)
{
	if (o->nfds == 0)
		return DRAGON_OK;
	if (o->nfds < 0 || o->nfds > DG_FDPASS_MAX || !o->fds)
		return dg_err(DRAGON_EINVAL, "opts.nfds is %d: 0 to %d descriptors (with opts.fds set)",
			      o->nfds, DG_FDPASS_MAX);
	for (int i = 0; i < o->nfds; i++) {
		if (o->fds[i] < 3)
			return dg_err(DRAGON_EINVAL,
				      "opts.fds[%d] is %d: 0-2 are the process's stdin/stdout/stderr",
				      i, o->fds[i]);
		if (fcntl(o->fds[i], F_GETFD) < 0)
			return dg_err(DRAGON_EINVAL, "opts.fds[%d] is %d, which is not open here", i,
				      o->fds[i]);
		for (int j = 0; j < i; j++)
			if (o->fds[j] == o->fds[i])
				return dg_err(DRAGON_EINVAL, "descriptor %d is in opts.fds twice",
					      o->fds[i]);
	}
	return DRAGON_OK;
}

static int fill_args(Dragon__SpawnArgs *a, const char *const argv[], const dragon_process_opts_t *o)
{
	size_t n = 0, ne = 0;
	int rv;

	if (!argv || !argv[0] || !argv[0][0])
		return dg_err(DRAGON_EINVAL, "argv[0] names no program");
	while (argv[n])
		n++;
	a->n_argv = n;
	a->argv = (char **)argv;
	a->cpu = o ? o->cpu : -1;
	if (o) {
		if (o->env)
			while (o->env[ne])
				ne++;
		a->n_env = ne;
		a->env = (char **)o->env;
		a->cwd = (char *)(o->cwd ? o->cwd : "");
		a->outlive = o->outlive;
		if (o->output != DRAGON_OUTPUT_INHERIT && o->output != DRAGON_OUTPUT_DISCARD &&
		    o->output != DRAGON_OUTPUT_TO_ME)
			return dg_err(DRAGON_EINVAL, "output mode %d is not DRAGON_OUTPUT_*", o->output);
		a->output = (Dragon__OutputMode)o->output;
		if (o->output == DRAGON_OUTPUT_TO_ME && (rv = output_conn_id(&a->output_conn)))
			return rv;
		if ((rv = check_fds(o)))
			return rv;
		a->n_fds = (size_t)o->nfds;
		a->fds = (int32_t *)o->fds;
	}
	return DRAGON_OK;
}

DRAGON_API int dragon_process_create(const char *const argv[], const dragon_process_opts_t *opts,
				     dragon_puid_t *puid)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__Spawn s = DRAGON__SPAWN__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	int rv;

	if (!puid)
		return dg_err(DRAGON_EINVAL, "puid is NULL");
	if ((rv = fill_args(&a, argv, opts)))
		return rv;
	if (!opts)
		a.cpu = -1;
	s.args = &a;
	m.body_case = DRAGON__MSG__BODY_SPAWN;
	m.spawn = &s;
	rv = dg_client_call_fds(&m, &rep, NULL, opts ? opts->fds : NULL, opts ? opts->nfds : 0);
	if (!rv && !(rv = expect(rep, DRAGON__MSG__BODY_SPAWN_REPLY)))
		*puid = rep->spawn_reply->puid;
	dg_msg_free(rep);
	return rv;
}

DRAGON_API int dragon_process_wait(dragon_puid_t puid, int timeout_ms, int *status)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__Wait w = DRAGON__WAIT__INIT;
	int rv;

	w.puid = puid;
	w.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	m.body_case = DRAGON__MSG__BODY_WAIT;
	m.wait = &w;
	rv = dg_client_call(&m, &rep, NULL);
	if (!rv && !(rv = expect(rep, DRAGON__MSG__BODY_WAIT_REPLY)) && status)
		*status = rep->wait_reply->status;
	dg_msg_free(rep);
	return rv;
}

static int send_signal(uint64_t puid, uint64_t gid, int signo)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Signal s = DRAGON__SIGNAL__INIT;

	s.puid = puid;
	s.gid = gid;
	s.signo = signo;
	m.body_case = DRAGON__MSG__BODY_SIGNAL;
	m.signal = &s;
	return dg_client_call(&m, NULL, NULL);
}

DRAGON_API int dragon_process_signal(dragon_puid_t puid, int signo)
{
	if (!puid)
		return dg_err(DRAGON_EINVAL, "puid 0 names no process");
	return send_signal(puid, 0, signo);
}

DRAGON_API int dragon_process_list(dragon_process_info_t **list, size_t *n)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__List l = DRAGON__LIST__INIT;
	dragon_process_info_t *v;
	int rv;

	if (!list || !n)
		return dg_err(DRAGON_EINVAL, "list or n is NULL");
	m.body_case = DRAGON__MSG__BODY_LIST;
	m.list = &l;
	rv = dg_client_call(&m, &rep, NULL);
	if (rv || (rv = expect(rep, DRAGON__MSG__BODY_LIST_REPLY)))
		goto out;
	v = calloc(rep->list_reply->n_procs + 1, sizeof(*v));
	if (!v) {
		rv = dg_err(DRAGON_ENOMEM, "process list");
		goto out;
	}
	for (size_t i = 0; i < rep->list_reply->n_procs; i++) {
		const Dragon__ProcInfo *p = rep->list_reply->procs[i];
		v[i].puid = p->puid;
		v[i].pid = p->pid;
		v[i].node = p->node;
		v[i].running = p->running;
		v[i].status = p->status;
		v[i].gid = p->gid;
		v[i].rank = p->rank;
		snprintf(v[i].program, sizeof(v[i].program), "%s", p->argv0);
	}
	*list = v;
	*n = rep->list_reply->n_procs;
out:
	dg_msg_free(rep);
	return rv;
}

/* ---- groups ------------------------------------------------------------------------------ */

DRAGON_API int dragon_group_create(const char *const argv[], unsigned n, enum dragon_policy policy,
				   unsigned node, const dragon_process_opts_t *opts,
				   const char *name, dragon_gid_t *gid)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__GroupCreate g = DRAGON__GROUP_CREATE__INIT;
	Dragon__SpawnArgs a = DRAGON__SPAWN_ARGS__INIT;
	int rv;

	if (!gid)
		return dg_err(DRAGON_EINVAL, "gid is NULL");
	if (opts && opts->nfds)
		return dg_err(DRAGON_EINVAL, "descriptors (opts.fds) go only to a process started on "
					     "this node (dragon_process_create), not to a group, "
					     "whose members may be placed on other nodes");
	if ((rv = fill_args(&a, argv, opts)))
		return rv;
	if (!opts)
		a.cpu = -1;
	if ((unsigned)policy > DRAGON_POLICY_NODE)
		return dg_err(DRAGON_EINVAL, "policy %d is not a DRAGON_POLICY_*", (int)policy);
	g.args = &a;
	g.nprocs = n;
	g.policy = (Dragon__Policy)policy;
	g.node = node;
	g.name = (char *)(name ? name : "");
	m.body_case = DRAGON__MSG__BODY_GROUP_CREATE;
	m.group_create = &g;
	rv = dg_client_call(&m, &rep, NULL);
	if (!rv && !(rv = expect(rep, DRAGON__MSG__BODY_GROUP_REPLY)))
		*gid = rep->group_reply->gid;
	dg_msg_free(rep);
	return rv;
}

static int group_wait(dragon_gid_t gid, int any, int timeout_ms, Dragon__Msg **rep)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__GroupWait w = DRAGON__GROUP_WAIT__INIT;
	int rv;

	w.gid = gid;
	w.any = any;
	w.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	m.body_case = DRAGON__MSG__BODY_GROUP_WAIT;
	m.group_wait = &w;
	rv = dg_client_call(&m, rep, NULL);
	if (!rv && (rv = expect(*rep, DRAGON__MSG__BODY_GROUP_WAIT_REPLY))) {
		dg_msg_free(*rep);
		*rep = NULL;
	}
	return rv;
}

DRAGON_API int dragon_group_wait_all(dragon_gid_t gid, int timeout_ms, int *worst)
{
	Dragon__Msg *rep = NULL;
	int rv = group_wait(gid, 0, timeout_ms, &rep), w = 0;

	if (rv)
		return rv;
	for (size_t i = 0; i < rep->group_wait_reply->n_members; i++)
		if (rep->group_wait_reply->members[i]->status > w)
			w = rep->group_wait_reply->members[i]->status;
	if (worst)
		*worst = w;
	dg_msg_free(rep);
	return DRAGON_OK;
}

DRAGON_API int dragon_group_wait_any(dragon_gid_t gid, int timeout_ms, dragon_puid_t *puid,
				     int *status)
{
	Dragon__Msg *rep = NULL;
	int rv = group_wait(gid, 1, timeout_ms, &rep);

	if (rv)
		return rv;
	if (rep->group_wait_reply->n_members == 0) {
		dg_msg_free(rep);
		return dg_err(DRAGON_EPROTO, "empty wait-any reply");
	}
	/* GS returns (and marks as reported) exactly one member per wait-any. */
	if (puid)
		*puid = rep->group_wait_reply->members[0]->puid;
	if (status)
		*status = rep->group_wait_reply->members[0]->status;
	dg_msg_free(rep);
	return DRAGON_OK;
}

DRAGON_API int dragon_group_signal(dragon_gid_t gid, int signo)
{
	if (!gid)
		return dg_err(DRAGON_EINVAL, "gid 0 names no group");
	return send_signal(0, gid, signo);
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return dflt;
	x = strtol(v, &end, 10);
	return *end || x < 0 || x > 1 << 30 ? dflt : (int)x;
}

DRAGON_API int dragon_group_rank(void)
{
	return env_int("DRAGON_GROUP_RANK", -1);
}

DRAGON_API int dragon_group_size(void)
{
	return env_int("DRAGON_GROUP_SIZE", 0);
}

/* ---- names ------------------------------------------------------------------------------- */

DRAGON_API int dragon_name_register(const char *name, enum dragon_name_kind kind, const void *desc,
				    size_t len, int flags)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__NameRegister r = DRAGON__NAME_REGISTER__INIT;

	if (!name || (!desc && len))
		return dg_err(DRAGON_EINVAL, "name or desc is NULL");
	r.name = (char *)name;
	r.kind = (Dragon__Kind)kind;
	r.desc.data = (uint8_t *)desc;
	r.desc.len = len;
	r.outlive = !!(flags & DRAGON_NAME_OUTLIVE);
	m.body_case = DRAGON__MSG__BODY_NAME_REGISTER;
	m.name_register = &r;
	return dg_client_call(&m, NULL, NULL);
}

DRAGON_API int dragon_name_lookup(const char *name, int timeout_ms, enum dragon_name_kind *kind,
				  void *desc, size_t *len)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__NameLookup l = DRAGON__NAME_LOOKUP__INIT;
	int rv;

	if (!name || !len || (!desc && *len))
		return dg_err(DRAGON_EINVAL, "name, desc or len is NULL");
	l.name = (char *)name;
	l.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	m.body_case = DRAGON__MSG__BODY_NAME_LOOKUP;
	m.name_lookup = &l;
	rv = dg_client_call(&m, &rep, NULL);
	if (rv || (rv = expect(rep, DRAGON__MSG__BODY_NAME_REPLY)))
		goto out;
	if (kind)
		*kind = (enum dragon_name_kind)rep->name_reply->kind;
	if (rep->name_reply->desc.len > *len) {
		rv = dg_err(DRAGON_ETOOBIG, "descriptor of %zu bytes, buffer of %zu",
			    rep->name_reply->desc.len, *len);
		*len = rep->name_reply->desc.len;
		goto out;
	}
	memcpy(desc, rep->name_reply->desc.data, rep->name_reply->desc.len);
	*len = rep->name_reply->desc.len;
out:
	dg_msg_free(rep);
	return rv;
}

DRAGON_API int dragon_name_remove(const char *name)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__NameRemove r = DRAGON__NAME_REMOVE__INIT;

	if (!name)
		return dg_err(DRAGON_EINVAL, "name is NULL");
	r.name = (char *)name;
	m.body_case = DRAGON__MSG__BODY_NAME_REMOVE;
	m.name_remove = &r;
	return dg_client_call(&m, NULL, NULL);
}

/* ---- pools (the fd provider of the pool library) ------------------------------------------- */

static int pool_reply(Dragon__Msg *rep, int fd, uint64_t *id, uint64_t *size)
{
	if (rep->body_case != DRAGON__MSG__BODY_POOL_REPLY)
		return dg_err(DRAGON_EPROTO, "expected a pool reply, got %s", dg_msg_name(rep));
	if (fd < 0)
		return dg_err(DRAGON_EPROTO, "the pool reply came without a descriptor");
	if (id)
		*id = rep->pool_reply->pool_id;
	if (size)
		*size = rep->pool_reply->size;
	return DRAGON_OK;
}

int dg_client_pool_create(const char *name, uint64_t size, int outlive, uint64_t *id, int *fd)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__PoolCreate c = DRAGON__POOL_CREATE__INIT;
	int rv, got = -1;

	c.name = (char *)(name ? name : "");
	c.size = size;
	c.outlive = outlive;
	m.body_case = DRAGON__MSG__BODY_POOL_CREATE;
	m.pool_create = &c;
	rv = dg_client_call(&m, &rep, &got);
	if (!rv)
		rv = pool_reply(rep, got, id, NULL);
	if (rv && got >= 0)
		close(got);
	else if (!rv)
		*fd = got;
	dg_msg_free(rep);
	return rv;
}

int dg_client_pool_attach(uint64_t id, int *fd, uint64_t *size)
{
	Dragon__Msg m = DRAGON__MSG__INIT, *rep = NULL;
	Dragon__PoolAttach a = DRAGON__POOL_ATTACH__INIT;
	int rv, got = -1;

	a.pool_id = id;
	m.body_case = DRAGON__MSG__BODY_POOL_ATTACH;
	m.pool_attach = &a;
	rv = dg_client_call(&m, &rep, &got);
	if (!rv)
		rv = pool_reply(rep, got, NULL, size);
	if (rv && got >= 0)
		close(got);
	else if (!rv)
		*fd = got;
	dg_msg_free(rep);
	return rv;
}

int dg_client_pool_destroy(uint64_t id)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__PoolDestroy d = DRAGON__POOL_DESTROY__INIT;

	d.pool_id = id;
	m.body_case = DRAGON__MSG__BODY_POOL_DESTROY;
	m.pool_destroy = &d;
	return dg_client_call(&m, NULL, NULL);
}
