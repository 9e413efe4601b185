/*
 * lazy_libs.c - vsync-mount loads libpq and libgit2 on first use.
 *
 * DESIGN
 * Loading a shared library at exec costs its relocations and the
 * constructors of everything it depends on. libpq brings Kerberos, LDAP,
 * GnuTLS and p11-kit (about 8 ms of CPU per start on the 2-core bench VM),
 * libgit2 mbedTLS, libssh2 and PCRE (about 3 ms): a fifth of a cold
 * mount's start, and a mount with Redis warm may never talk to
 * PostgreSQL, nor merge. So vsync-mount is linked with --as-needed and
 * these definitions of the functions it calls: the first call dlopens
 * the library (by soname) and each function's address is looked up once.
 * The other programs (vsync-relay, vsyncctl) link the libraries as usual.
 *
 * A library that cannot be loaded is an installation error: logged, then
 * abort() (the package depends on both). Threads: the handle is opened
 * under pthread_once; each function pointer is read and published
 * atomically (the lookup may run twice, with the same result).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include <git2.h>
#include <libpq-fe.h>

#include "vsync/log.h"
#include "vsync/banned.h"

#ifndef VSYNC_LIBGIT2_SONAME
#error "VSYNC_LIBGIT2_SONAME must name libgit2's soname (agent/CMakeLists.txt)"
#endif

enum lazy_lib { LAZY_PQ, LAZY_GIT2, LAZY_NLIBS };

static const char *const lazy_files[LAZY_NLIBS] = {"libpq.so.5",
						   VSYNC_LIBGIT2_SONAME};
static void *lazy_handles[LAZY_NLIBS];
static pthread_once_t lazy_once[LAZY_NLIBS] = {PTHREAD_ONCE_INIT,
					       PTHREAD_ONCE_INIT};

static void lazy_open_pq(void)
{
	lazy_handles[LAZY_PQ] = dlopen(lazy_files[LAZY_PQ], RTLD_NOW);
}

static void lazy_open_git2(void)
{
	lazy_handles[LAZY_GIT2] = dlopen(lazy_files[LAZY_GIT2], RTLD_NOW);
}

/* The address of @name in library @lib; never returns NULL. */
static void *lazy_sym(enum lazy_lib lib, const char *name)
{
	void *p = NULL;

	pthread_once(&lazy_once[lib],
		     lib == LAZY_PQ ? lazy_open_pq : lazy_open_git2);
	if (lazy_handles[lib])
		p = dlsym(lazy_handles[lib], name);
	if (!p) {
		vs_error("internal error: cannot load %s from %s: %s", name,
			 lazy_files[lib], dlerror());
		abort();
	}
	return p;
}

/* In the body of @name: its address in @lib, looked up once, as f. */
#define LAZY_RESOLVE(lib, name, fn_t)                                          \
	static fn_t fn;                                                        \
	fn_t f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                       \
                                                                               \
	if (!f) {                                                              \
		f = (fn_t)lazy_sym(lib, #name);                                \
		__atomic_store_n(&fn, f, __ATOMIC_RELEASE);                    \
	}

#define LAZY_FN(lib, ret, name, params, args)                                  \
	ret name params                                                        \
	{                                                                      \
		typedef ret(*fn_t) params;                                     \
		LAZY_RESOLVE(lib, name, fn_t)                                  \
		return f args;                                                 \
	}

#define LAZY_VOID(lib, name, params, args)                                     \
	void name params                                                       \
	{                                                                      \
		typedef void(*fn_t) params;                                    \
		LAZY_RESOLVE(lib, name, fn_t)                                  \
		f args;                                                        \
	}

/* ---- libpq (every function vsync-mount calls) ---------------------------- */

LAZY_FN(LAZY_PQ, int, PQcancel, (PGcancel * c, char *buf, int size),
	(c, buf, size))
LAZY_VOID(LAZY_PQ, PQclear, (PGresult * res), (res))
LAZY_FN(LAZY_PQ, PostgresPollingStatusType, PQconnectPoll, (PGconn * conn),
	(conn))
LAZY_FN(LAZY_PQ, PGconn *, PQconnectStartParams,
	(const char *const *keywords, const char *const *values, int expand),
	(keywords, values, expand))
LAZY_FN(LAZY_PQ, int, PQconnectionNeedsPassword, (const PGconn *conn), (conn))
LAZY_FN(LAZY_PQ, PQconninfoOption *, PQconninfo, (PGconn * conn), (conn))
LAZY_VOID(LAZY_PQ, PQconninfoFree, (PQconninfoOption * o), (o))
LAZY_FN(LAZY_PQ, int, PQconsumeInput, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, char *, PQerrorMessage, (const PGconn *conn), (conn))
LAZY_VOID(LAZY_PQ, PQfinish, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, int, PQflush, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, char *, PQfname, (const PGresult *res, int field),
	(res, field))
LAZY_VOID(LAZY_PQ, PQfreeCancel, (PGcancel * c), (c))
LAZY_VOID(LAZY_PQ, PQfreemem, (void *p), (p))
LAZY_FN(LAZY_PQ, PGcancel *, PQgetCancel, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, PGresult *, PQgetResult, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, int, PQgetisnull, (const PGresult *res, int tup, int field),
	(res, tup, field))
LAZY_FN(LAZY_PQ, int, PQgetlength, (const PGresult *res, int tup, int field),
	(res, tup, field))
LAZY_FN(LAZY_PQ, char *, PQgetvalue, (const PGresult *res, int tup, int field),
	(res, tup, field))
LAZY_FN(LAZY_PQ, int, PQisBusy, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, int, PQnfields, (const PGresult *res), (res))
LAZY_FN(LAZY_PQ, PGnotify *, PQnotifies, (PGconn * conn), (conn))
LAZY_FN(LAZY_PQ, int, PQntuples, (const PGresult *res), (res))
LAZY_FN(LAZY_PQ, char *, PQresultErrorField, (const PGresult *res, int code),
	(res, code))
LAZY_FN(LAZY_PQ, char *, PQresultErrorMessage, (const PGresult *res), (res))
LAZY_FN(LAZY_PQ, ExecStatusType, PQresultStatus, (const PGresult *res), (res))
LAZY_FN(LAZY_PQ, int, PQsendQuery, (PGconn * conn, const char *query),
	(conn, query))
LAZY_FN(LAZY_PQ, int, PQsendQueryParams,
	(PGconn * conn, const char *command, int n, const Oid *types,
	 const char *const *values, const int *lengths, const int *formats,
	 int result_format),
	(conn, command, n, types, values, lengths, formats, result_format))
LAZY_FN(LAZY_PQ, PQnoticeProcessor, PQsetNoticeProcessor,
	(PGconn * conn, PQnoticeProcessor proc, void *arg), (conn, proc, arg))
LAZY_FN(LAZY_PQ, int, PQsetnonblocking, (PGconn * conn, int arg), (conn, arg))
LAZY_FN(LAZY_PQ, int, PQsocket, (const PGconn *conn), (conn))
LAZY_FN(LAZY_PQ, ConnStatusType, PQstatus, (const PGconn *conn), (conn))
LAZY_FN(LAZY_PQ, PGTransactionStatusType, PQtransactionStatus,
	(const PGconn *conn), (conn))

/* ---- libgit2 (sync/merge.c) ---------------------------------------------- */

LAZY_FN(LAZY_GIT2, const git_error *, git_error_last, (void), ())
LAZY_FN(LAZY_GIT2, int, git_libgit2_init, (void), ())
LAZY_FN(LAZY_GIT2, int, git_merge_file,
	(git_merge_file_result * out, const git_merge_file_input *ancestor,
	 const git_merge_file_input *ours, const git_merge_file_input *theirs,
	 const git_merge_file_options *opts),
	(out, ancestor, ours, theirs, opts))
LAZY_FN(LAZY_GIT2, int, git_merge_file_input_init,
	(git_merge_file_input * opts, unsigned int version), (opts, version))
LAZY_VOID(LAZY_GIT2, git_merge_file_result_free,
	  (git_merge_file_result * result), (result))
