/* dragon/error.h: the one error convention of libdragon: return codes, their text, and detail. */
#ifndef DRAGON_ERROR_H
#define DRAGON_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every libdragon function that can fail returns an int: DRAGON_OK (0) on success or one of the
 * codes below. dragon_strerror() names the code; dragon_errmsg() gives this thread's detail of its
 * most recent failure (what failed and, where known, how to fix it). Success does not clear it.
 */
enum {
	DRAGON_OK = 0,
	DRAGON_EINVAL,    /* an argument is invalid */
	DRAGON_ENOMEM,    /* the process is out of memory */
	DRAGON_ENOSPACE,  /* the pool or channel is full */
	DRAGON_EAGAIN,    /* a try-operation would have blocked */
	DRAGON_ETIMEDOUT, /* a blocking operation ran out of time */
	DRAGON_EBADDESC,  /* a descriptor is malformed or truncated */
	DRAGON_ESTALE,    /* the object a descriptor names is gone */
	DRAGON_EPERM,     /* the object belongs to another user, or access is denied */
	DRAGON_ETOOBIG,   /* a size is beyond what the object supports */
	DRAGON_ENOTFOUND, /* no object of that name or id */
	DRAGON_EEXIST,    /* an object of that name already exists */
	DRAGON_EPROTO,    /* a malformed or unexpected protocol message */
	DRAGON_EPEER,     /* a peer (service, agent, node) is dead or unreachable */
	DRAGON_ECLOSED,   /* the object was closed or destroyed */
	DRAGON_ENOTSUP,   /* the operation is not supported here */
	DRAGON_ENOTINIT,  /* the process has not joined a fabric (dragon_init) */
	DRAGON_ESYS,      /* a system call failed; dragon_errmsg() names it and errno */
	DRAGON_ERR_MAX    /* not an error: one past the last code */
};

/* Name of a return code ("DRAGON_ETIMEDOUT: operation timed out"); never NULL. */
const char *dragon_strerror(int rc);

/* This thread's detail of its most recent failure; "" if none. Valid until the next failure. */
const char *dragon_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
