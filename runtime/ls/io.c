/* runtime/ls/io.c: a process's output forwarded by lines to its sink, Input into its stdin. */
#include "config.h"

#define _GNU_SOURCE 1
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ls/ls_internal.h"

static void input_ok(struct proc *p)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Error e = DRAGON__ERROR__INIT;

	if (!p->in_conn)
		return;
	m.seq = p->in_seq;
	m.body_case = DRAGON__MSG__BODY_OK;
	m.ok = &e;
	ls_send_to(p->ls, p->in_conn, &m);
	p->in_conn = 0;
}

static void input_close(struct proc *p)
{
	if (p->in) {
		bufferevent_free(p->in);
		p->in = NULL;
	}
	input_ok(p); /* a reader that went away takes no more: the feeder stops on its own */
}

/* The queue drained below the low mark (or to nothing). */
void ls_in_write(struct bufferevent *bev, void *arg)
{
	struct proc *p = arg;

	input_ok(p);
	if (p->in_eof && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		input_close(p);
}

void ls_in_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what; /* EPIPE: the process closed its stdin or ended */
	input_close(arg);
}

void ls_input(struct conn *c, uint64_t seq, const Dragon__Input *in)
{
	struct proc *p = ls_proc_find(c->ls, in->puid);
	struct evbuffer *out;

	if (!p || !p->in) {
		ls_reply_error(c, seq, p ? DRAGON_ECLOSED : DRAGON_ENOTFOUND,
			       p ? "the process's stdin is closed (or was never a pipe)"
				 : "no such process");
		return;
	}
	out = bufferevent_get_output(p->in);
	if (in->data.len && evbuffer_add(out, in->data.data, in->data.len)) {
		ls_reply_error(c, seq, DRAGON_ENOMEM, "stdin data");
		return;
	}
	if (in->eof) {
		p->in_eof = 1;
		if (evbuffer_get_length(out) == 0) {
			input_close(p);
			ls_reply_ok(c, seq);
			return;
		}
	}
	if (evbuffer_get_length(out) < LS_INPUT_HIGH) {
		ls_reply_ok(c, seq);
		return;
	}
	input_ok(p); /* one waiting feeder at a time */
	p->in_conn = c->id;
	p->in_seq = seq;
}

static void forward(struct proc *p, int stream, const void *data, size_t len)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Output o = DRAGON__OUTPUT__INIT;

	if (!p->sink)
		return;
	o.puid = p->puid;
	o.stream = stream;
	o.data.data = (uint8_t *)data;
	o.data.len = len;
	o.rank = p->gid ? p->rank : -1;
	o.host = p->ls->host;
	m.body_case = DRAGON__MSG__BODY_OUTPUT;
	m.output = &o;
	ls_send_to(p->ls, p->sink, &m);
}

/* Forward every complete line (with its newline); at EOF or beyond LS_LINE_MAX, what is left. */
static void forward_lines(struct proc *p, int i, int eof)
{
	struct evbuffer *in = bufferevent_get_input(p->out[i]);

	for (;;) {
		size_t have = evbuffer_get_length(in), n;
		struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		unsigned char *line;

		if (have == 0)
			return;
		if (e.pos >= 0)
			n = (size_t)e.pos + 1;
		else if (eof || have >= LS_LINE_MAX)
			n = have < LS_LINE_MAX ? have : LS_LINE_MAX;
		else
			return;
		line = evbuffer_pullup(in, (ssize_t)n);
		if (line)
			forward(p, i + 1, line, n);
		evbuffer_drain(in, n);
	}
}

void ls_out_read(struct bufferevent *bev, void *arg)
{
	struct proc *p = arg;

	forward_lines(p, bev == p->out[0] ? 0 : 1, 0);
}

void ls_out_event(struct bufferevent *bev, short what, void *arg)
{
	struct proc *p = arg;
	int i = bev == p->out[0] ? 0 : 1;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	forward_lines(p, i, 1);
	bufferevent_free(p->out[i]);
	p->out[i] = NULL;
	if (p->exited && !p->out[0] && !p->out[1])
		ls_proc_done(p);
}

void ls_flush_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;

	/* A descendant still holds the pipes: forward what arrived and stop waiting. */
	for (int i = 0; i < 2; i++)
		if (p->out[i]) {
			forward_lines(p, i, 1);
			bufferevent_free(p->out[i]);
			p->out[i] = NULL;
		}
	ls_proc_done(p);
}

/* An output connection whose reader fell behind: its line is dropped (and counted). */
int ls_output_full(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) < LS_OUTPUT_QUEUE_MAX)
		return 0;
	if (c->dropped++ == 0)
		ls_log(c->ls, "pid %d reads its output slower than it comes: dropping lines",
		       (int)c->pid);
	return 1;
}

/* Its queue is empty again: say how many lines it missed, where it reads them. */
void ls_output_drained(struct conn *c)
{
	Dragon__Msg m = DRAGON__MSG__INIT;
	Dragon__Output o = DRAGON__OUTPUT__INIT;
	char line[160];

	snprintf(line, sizeof(line),
		 "dragon: %llu lines of output were dropped: this process read them slower than "
		 "they came\n",
		 (unsigned long long)c->dropped);
	c->dropped = 0;
	o.stream = 2;
	o.data.data = (uint8_t *)line;
	o.data.len = strlen(line);
	o.rank = -1;
	o.host = c->ls->host;
	m.body_case = DRAGON__MSG__BODY_OUTPUT;
	m.output = &o;
	ls_conn_send(c, &m);
}
