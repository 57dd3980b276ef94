/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* db.c: the database as the requests see it: bounded waits, the write
 * path, connections that recover.
 *
 * - Every request that uses the database gets a deadline when it first
 *   does (CertAuthDBTimeout): the write path's mutex, SQLite's write lock
 *   and PostgreSQL's row and advisory locks are waited for until then and
 *   no longer; the request is then answered 503 with Retry-After.
 * - The write path: SQLite writers of all children queue on a global
 *   mutex (certauth-write) rather than inside SQLite, where the driver
 *   holds one process-wide mutex while it waits.  At most
 *   CertAuthDBMaxWaiters requests of all processes are in it or waiting
 *   for it (slots in shared memory, each holding the pid of its process so
 *   that the slots of a killed process are taken back) while the write path
 *   is stalled (no writer got through for STALL); the others get 503 at
 *   once.  While it moves, a burst of writers queues for slots as long as
 *   it keeps moving (within their deadlines).  The mutex is taken with try-locks and short pauses up to the
 *   deadline, whatever mechanism the Mutex directive chose.
 * - Connections: one that failed in a way that says the connection itself
 *   is unusable (SQLite: read-only, I/O error, corrupt, cannot open;
 *   PostgreSQL: the connection lost, the server read-only) is discarded
 *   when the request ends, so that mod_dbd opens a new one; a request whose
 *   mod_dbd connection was just discarded gets one of its own
 *   (ap_dbd_open).
 * - The wait for a connection: mod_dbd waits for a free connection of its
 *   pool (DBDMax per process) without a bound (apr_reslist_acquire; it sets
 *   no apr_reslist_timeout), so every connection this module takes passes
 *   a gate of the process first, sized like the pool (DBDMax, read from
 *   mod_dbd's own directive), where a request waits until its deadline
 *   and no longer.  While requests wait there and the write path is
 *   stalled, writers waiting for the stalled path give up their
 *   connections (503) rather than keep them until their deadlines. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_mutex.h>
#include <apr_atomic.h>
#include <apr_global_mutex.h>
#include <apr_optional.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <apr_dbd.h>
#include "mod_dbd.h"
#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;

static const char *const db_mutex_type = "certauth-db";
static apr_global_mutex_t *db_mutex;
/* SQLite writers of all children queue here rather than inside SQLite
 * (see ca_store_set_writer_lock); always taken after db_mutex, never
 * before it. */
static const char *const write_mutex_type = "certauth-write";
static apr_global_mutex_t *write_mutex;
/* Set in a child once the schema is known to be current. */
static apr_uint32_t schema_ready;

/* Shared by the processes of this server (anonymous shared memory made
 * before the children are forked). */
typedef struct {
    volatile apr_uint64_t progress;    /* last time a writer got through  */
    volatile apr_uint64_t broken;      /* last time a connection broke    */
    volatile apr_uint32_t crl_marks;   /* changes of status so far        */
    volatile apr_uint32_t nslots;
    volatile apr_uint32_t slot[1];     /* pid of a writer, 0: free        */
} shared_t;

typedef struct certauth_gate certauth_gate;

static apr_shm_t *shm;
static shared_t *shared;
/* The child is exiting: waits outside requests (the watchdog) end. */
static volatile apr_uint32_t stopping;

int certauth_db_init_hooks(apr_pool_t *pconf)
{
    if (ap_mutex_register(pconf, db_mutex_type, NULL, APR_LOCK_DEFAULT, 0)
        != APR_SUCCESS) {
        return !OK;
    }
    return ap_mutex_register(pconf, write_mutex_type, NULL, APR_LOCK_DEFAULT,
                             0);
}

int certauth_db_check_config(server_rec *s0)
{
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!dbd_acquire || !dbd_open || !dbd_close) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s0, CA_LOGNO(0104)
                     "CertAuth: mod_dbd is not loaded; load it and set "
                     "DBDriver/DBDParams (e.g. a2enmod dbd)");
        return !OK;
    }
    return OK;
}

apr_interval_time_t certauth_db_timeout(server_rec *s)
{
    apr_interval_time_t t = certauth_srv(s)->db_timeout;
    return t > 0 ? t : CERTAUTH_DB_TIMEOUT;
}

int certauth_db_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_status_t rv;
    int n = certauth_srv(s)->db_max_waiters;
    apr_size_t size;

    rv = ap_global_mutex_create(&db_mutex, NULL, db_mutex_type, NULL, s,
                                pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(0105)
                     "cannot create the %s mutex", db_mutex_type);
        return !OK;
    }
    rv = ap_global_mutex_create(&write_mutex, NULL, write_mutex_type, NULL,
                                s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(0117)
                     "cannot create the %s mutex", write_mutex_type);
        return !OK;
    }
    if (n <= 0) {
        n = CERTAUTH_DB_MAX_WAITERS;
    }
    size = sizeof(shared_t) + (apr_size_t)n * sizeof(apr_uint32_t);
    rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(1301)
                     "cannot create shared memory for CertAuthDBMaxWaiters");
        return !OK;
    }
    shared = apr_shm_baseaddr_get(shm);
    memset(shared, 0, size);
    shared->nslots = (apr_uint32_t)n;
    shared->progress = (apr_uint64_t)apr_time_now();
    return OK;
}

/* A slot on the write path, or -1 when all are taken.  Slots of processes
 * that are gone (killed while waiting) are taken back. */
static int slot_take(void)
{
    apr_uint32_t me = (apr_uint32_t)getpid(), i;
    int pass;

    if (!shared) {
        return 0;
    }
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < shared->nslots; i++) {
            if (apr_atomic_cas32(&shared->slot[i], me, 0) == 0) {
                return (int)i;
            }
        }
        for (i = 0; i < shared->nslots; i++) {
            apr_uint32_t pid = apr_atomic_read32(&shared->slot[i]);
            if (pid && pid != me && kill((pid_t)pid, 0) != 0
                && errno == ESRCH) {
                apr_atomic_cas32(&shared->slot[i], 0, pid);
            }
        }
    }
    return -1;
}

static void slot_give(int i)
{
    if (shared && i >= 0 && (apr_uint32_t)i < shared->nslots) {
        apr_atomic_set32(&shared->slot[i], 0);
    }
}

/* The write path is stalled when no writer got through for this long (a
 * write takes milliseconds; a lock held by another program, seconds). */
#define STALL apr_time_from_msec(300)

static void progress(void)
{
    if (shared) {
        apr_atomic_set64(&shared->progress, (apr_uint64_t)apr_time_now());
    }
}

static int stalled(apr_time_t now)
{
    return !shared
           || now - (apr_time_t)apr_atomic_read64(&shared->progress) > STALL;
}

/* The gate in front of mod_dbd's pool (one per process and pool): `cap`
 * connections may be out through it.  Waiters queue, reads (GET, HEAD)
 * before the others, each kind in its order of arrival; a connection given
 * back while some wait goes to the first of them (newcomers do not
 * overtake).  So a read waits for one connection to come back, not for the
 * writers before it: while the write path is stalled, the writers that
 * hold connections give them up as soon as somebody waits here. */
#define DBD_DEFAULT_MAX 10      /* mod_dbd's DBDMax when unset            */
typedef struct gate_waiter {
    struct gate_waiter *next, *prev;
    int granted;
    int read;                   /* GET or HEAD: queued before the others  */
} gate_waiter;

struct certauth_gate {
#if APR_HAS_THREADS
    apr_thread_mutex_t *m;
    apr_thread_cond_t *c;
#endif
    int cap;
    int out;                    /* taken, handed over included            */
    gate_waiter *head, *tail;   /* waiting, not yet granted               */
    volatile apr_uint32_t want; /* how many, read without m               */
};

#if APR_HAS_THREADS
static void gate_unlink(certauth_gate *g, gate_waiter *w)
{
    if (w->prev) {
        w->prev->next = w->next;
    }
    else {
        g->head = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    else {
        g->tail = w->prev;
    }
    w->next = w->prev = NULL;
    apr_atomic_dec32(&g->want);
}
#endif

/* Take one before `deadline` (0: as long as it takes, until the child
 * exits).  `mine`: how many the caller holds already; when they are all
 * there are, nobody else can give one back: APR_EBUSY at once. */
static apr_status_t gate_take(certauth_gate *g, apr_time_t deadline,
                              int mine, int read)
{
    apr_status_t rv = APR_SUCCESS;
#if APR_HAS_THREADS
    gate_waiter w = {NULL, NULL, 0, read}, *after;
#else
    (void)read;
#endif

    if (!g) {
        return APR_SUCCESS;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(g->m);
    if (g->out < g->cap && !g->head) {
        g->out++;
        apr_thread_mutex_unlock(g->m);
        return APR_SUCCESS;
    }
    if (mine >= g->cap) {
        apr_thread_mutex_unlock(g->m);
        return APR_EBUSY;
    }
    /* after the last read (a read), or at the end */
    after = g->tail;
    if (read) {
        for (after = g->head; after && after->read && after->next
                              && after->next->read; after = after->next) {
        }
        if (after && !after->read) {
            after = NULL;       /* before all: no read waits */
        }
    }
    w.prev = after;
    w.next = after ? after->next : g->head;
    if (w.next) {
        w.next->prev = &w;
    }
    else {
        g->tail = &w;
    }
    if (after) {
        after->next = &w;
    }
    else {
        g->head = &w;
    }
    apr_atomic_inc32(&g->want);
    while (!w.granted) {
        apr_time_t now = apr_time_now();
        apr_interval_time_t wait = apr_time_from_sec(1);

        if (g->head == &w && g->out < g->cap) {
            /* one given back when nobody waited */
            gate_unlink(g, &w);
            g->out++;
            break;
        }
        if ((deadline && now >= deadline)
            || (!deadline && apr_atomic_read32(&stopping))) {
            gate_unlink(g, &w);
            rv = APR_TIMEUP;
            break;
        }
        if (deadline && deadline - now < wait) {
            wait = deadline - now;
        }
        apr_thread_cond_timedwait(g->c, g->m, wait);
    }
    apr_thread_mutex_unlock(g->m);
#else
    (void)deadline;
    (void)mine;
#endif
    return rv;
}

static void gate_give(certauth_gate *g)
{
    if (!g) {
        return;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(g->m);
    if (g->head) {
        /* handed over: stays out */
        gate_waiter *w = g->head;
        gate_unlink(g, w);
        w->granted = 1;
        apr_thread_cond_broadcast(g->c);
    }
    else if (g->out > 0) {
        g->out--;
    }
    apr_thread_mutex_unlock(g->m);
#endif
}

/* Requests of this process wait at the gate for a connection. */
static int gate_wanted(certauth_gate *g)
{
    return g && apr_atomic_read32(&g->want) > 0;
}

/* mod_dbd's directives, read here too. */
const char *certauth_db_dbd_param(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *name = cmd->cmd->name;
    (void)d;

    if (!strcasecmp(name, "DBDriver")) {
        sc->dbd_driver = arg;
    }
    else if (!strcasecmp(name, "DBDParams")) {
        sc->dbd_params = arg;
    }
    else if (apr_isdigit(*arg)) {
        /* DBDMax (mod_dbd says what is wrong with a value) */
        sc->dbd_max = atoi(arg);
    }
    return NULL;
}

const char *certauth_db_dbd_persist(cmd_parms *cmd, void *d, int flag)
{
    (void)d;
    certauth_srv(cmd->server)->dbd_persist = flag;
    return NULL;
}

/* One gate per pool of mod_dbd in this child (servers with the same
 * driver, parameters and size share one; mod_dbd may keep two pools
 * where other settings differ: the gate is then stricter than needed). */
static void gates_make(apr_pool_t *pchild, server_rec *s0)
{
#if APR_HAS_THREADS
    apr_hash_t *gates = apr_hash_make(pchild);
    server_rec *s;

    for (s = s0; s; s = s->next) {
        certauth_srv_conf *sc = certauth_srv(s);
        int cap = sc->dbd_max >= 0 ? sc->dbd_max : DBD_DEFAULT_MAX;
        const char *key;
        certauth_gate *g;

        sc->dbd_gate = NULL;
        /* DBDPersist Off: a connection of its own for every use, no pool
         * to wait for; DBDMax 0: mod_dbd has no pool either */
        if (sc->dbd_persist == 0 || cap <= 0) {
            continue;
        }
        key = apr_psprintf(pchild, "%s\n%s\n%d",
                           sc->dbd_driver ? sc->dbd_driver : "",
                           sc->dbd_params ? sc->dbd_params : "", cap);
        if (!(g = apr_hash_get(gates, key, APR_HASH_KEY_STRING))) {
            g = apr_pcalloc(pchild, sizeof(*g));
            g->cap = cap;
            if (apr_thread_mutex_create(&g->m, APR_THREAD_MUTEX_DEFAULT,
                                        pchild) != APR_SUCCESS
                || apr_thread_cond_create(&g->c, pchild) != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(1353)
                             "cannot make the wait for database connections "
                             "bounded: mutex or condition not created");
                continue;
            }
            apr_hash_set(gates, key, APR_HASH_KEY_STRING, g);
        }
        sc->dbd_gate = g;
    }
#else
    (void)pchild;
    (void)s0;
#endif
}

/* Lock a global mutex before `deadline` (0: wait as long as it takes):
 * try-locks with pauses from 1 to 20 ms, so that it works with every
 * mechanism of the Mutex directive.  APR_TIMEUP when the time ran out;
 * APR_EAGAIN when `yield` (may be NULL) says to give up before. */
static apr_status_t lock_until_or(apr_global_mutex_t *m, apr_time_t deadline,
                                  int (*yield)(void *), void *baton)
{
    apr_interval_time_t pause = apr_time_from_msec(1);
    apr_status_t rv;

    for (;;) {
        apr_time_t now;
        rv = apr_global_mutex_trylock(m);
        if (!APR_STATUS_IS_EBUSY(rv)) {
            return rv;
        }
        now = apr_time_now();
        if ((deadline && now >= deadline) || apr_atomic_read32(&stopping)) {
            return APR_TIMEUP;
        }
        if (yield && yield(baton)) {
            return APR_EAGAIN;
        }
        apr_sleep(deadline && deadline - now < pause ? deadline - now
                                                      : pause);
        if (pause < apr_time_from_msec(20)) {
            pause *= 2;
        }
    }
}

static apr_status_t lock_until(apr_global_mutex_t *m, apr_time_t deadline)
{
    return lock_until_or(m, deadline, NULL, NULL);
}

/* What the database code of one request (or of the watchdog) keeps. */
typedef struct certauth_dbctx {
    server_rec *s;
    request_rec *r;              /* NULL outside a request               */
    apr_time_t deadline;         /* 0 until the first use                */
    int slot;                    /* write path slot, -1: none            */
    int admission;               /* counts against CertAuthDBMaxWaiters  */
    ap_dbd_t *dbd;               /* the connection                       */
    int own;                     /* dbd from ap_dbd_open, closed by us    */
    ca_store_t *st;              /* the store over it                    */
    int checked;                 /* ca_store_check passed                */
    apr_pool_t *pool;            /* of the request, or of the caller     */
    int holds_db;                /* certauth_db_lock(r) holds db_mutex   */
    int unbounded;               /* no deadline (certauth_store_bg)      */
    certauth_gate *gate;         /* in front of mod_dbd's pool, or NULL  */
    int acquired;                /* ap_dbd_acquire was asked (once)      */
    int acq_token;               /* a gate token for the request's conn  */
    int own_token;               /* ... for the one of our own (dbd_open) */
    int through;                 /* got SQLite's write lock while holding
                                    the write path                        */
} certauth_dbctx;

/* Writers waiting for a stalled write path give their connections up
 * (503) to requests of this process that wait for one at the gate. */
static int yield_connection(void *baton)
{
    certauth_dbctx *x = baton;

    return gate_wanted(x->gate) && stalled(apr_time_now());
}

/* The request's gate token, given back after mod_dbd's cleanup gave the
 * connection back (cleanups run in the reverse order of registration). */
static apr_status_t acq_token_give(void *data)
{
    certauth_dbctx *x = data;

    if (x->acq_token) {
        x->acq_token = 0;
        gate_give(x->gate);
    }
    return APR_SUCCESS;
}

/* Give back the connection of our own, and its token. */
static void own_close(certauth_dbctx *x)
{
    if (x->own && x->dbd) {
        dbd_close(x->s, x->dbd);
    }
    x->own = 0;
    if (x->own_token) {
        x->own_token = 0;
        gate_give(x->gate);
    }
}

/* A token of the gate within the deadline; logs why not. */
static int gate_enter(certauth_dbctx *x)
{
    apr_status_t rv = gate_take(x->gate, x->unbounded ? 0 : x->deadline,
                                x->acq_token + x->own_token,
                                x->r && (x->r->method_number == M_GET));

    if (rv == APR_SUCCESS) {
        return 1;
    }
    if (rv == APR_EBUSY) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, CA_LOGNO(1351)
                     "database unavailable: a new connection is needed and "
                     "this request holds all %d of mod_dbd's pool (DBDMax)",
                     x->gate->cap);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, CA_LOGNO(1350)
                     "database unavailable: all %d connections of this "
                     "process's mod_dbd pool (DBDMax) stayed in use until "
                     "the %s (CertAuthDBTimeout)", x->gate->cap,
                     x->r ? "request's deadline" : "deadline");
    }
    return 0;
}

/* The write path (ca_store_set_writer_lock). */
static apr_status_t writer_lock(void *baton, int lock, apr_time_t deadline,
                                const char **why)
{
    certauth_dbctx *x = baton;
    apr_status_t rv;

    if (!write_mutex) {
        return APR_SUCCESS;
    }
    if (lock == CA_STORE_STALLED) {
        return stalled(apr_time_now()) ? CA_EBUSY : APR_SUCCESS;
    }
    if (lock == CA_STORE_THROUGH) {
        /* SQLite's write lock is had: a writer got through */
        x->through = 1;
        progress();
        return APR_SUCCESS;
    }
    if (!lock) {
        /* progress only when SQLite's lock was had (not when a writer
         * gives the mutex back after it waited for a lock held elsewhere
         * in vain: the path would seem to move while it is stalled) */
        if (x->through) {
            progress();
            x->through = 0;
        }
        apr_global_mutex_unlock(write_mutex);
        slot_give(x->slot);
        x->slot = -1;
        return APR_SUCCESS;
    }
    if (lock == CA_STORE_ADMIT_END) {
        slot_give(x->slot);
        x->slot = -1;
        return APR_SUCCESS;
    }
    if (lock == CA_STORE_ADMIT) {
        /* a write waiting for another thread's commit (group commit)
         * counts against CertAuthDBMaxWaiters like one waiting here, and
         * by the same rule: no slot free, refused at once while the path
         * is stalled, else asked again (APR_EAGAIN) */
        if (x->admission && x->slot < 0 && (x->slot = slot_take()) < 0) {
            apr_time_t now = apr_time_now();
            if (!stalled(now)) {
                return APR_EAGAIN;
            }
            *why = apr_psprintf(x->pool, "%u requests are writing or "
                                "waiting to write already and none got "
                                "through for %d ms (CertAuthDBMaxWaiters)",
                                shared ? shared->nslots : 0,
                                (int)apr_time_as_msec(now - (apr_time_t)
                                    apr_atomic_read64(&shared->progress)));
            return CA_EBUSY;
        }
        return APR_SUCCESS;
    }
    while (x->admission && x->slot < 0 && (x->slot = slot_take()) < 0) {
        apr_time_t now = apr_time_now();
        if (stalled(now) || (deadline && now >= deadline)) {
            *why = apr_psprintf(x->pool, "%u requests are writing or "
                                "waiting to write already and none got "
                                "through for %d ms (CertAuthDBMaxWaiters)",
                                shared ? shared->nslots : 0,
                                (int)apr_time_as_msec(now - (apr_time_t)
                                    apr_atomic_read64(&shared->progress)));
            return CA_EBUSY;
        }
        /* the path moves: wait for a slot while it does */
        apr_sleep(apr_time_from_msec(2));
    }
    rv = lock_until_or(write_mutex, deadline, yield_connection, x);
    if (rv != APR_SUCCESS) {
        slot_give(x->slot);
        x->slot = -1;
        if (rv == APR_EAGAIN) {
            *why = "the write path is stalled and other requests wait for "
                   "this process's database connections (DBDMax)";
            return CA_EBUSY;
        }
        if (rv == APR_TIMEUP) {
            *why = "the write path stayed busy until the request's deadline "
                   "(CertAuthDBTimeout)";
            return CA_EBUSY;
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, x->s, CA_LOGNO(0115)
                     "cannot lock the %s mutex", write_mutex_type);
        *why = "cannot lock the write path";
        return CA_EBUSY;
    }
    return APR_SUCCESS;
}

/* Discard a connection that said it is broken, give back one we opened. */
static apr_status_t ctx_cleanup(void *data)
{
    certauth_dbctx *x = data;

    if (x->st) {
        /* nothing stays locked after the request (a transaction left
         * open by an early return) */
        ca_store_release(x->st, x->pool);
    }
    if (x->st && ca_store_broken(x->st)
        && ca_store_discard(x->st) == APR_SUCCESS) {
        if (shared) {
            apr_atomic_set64(&shared->broken, (apr_uint64_t)apr_time_now());
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, CA_LOGNO(1302)
                     "database connection dropped after an error (%s); the "
                     "next request opens a new one",
                     ca_store_last_error(x->st));
    }
    if (x->slot >= 0) {
        slot_give(x->slot);
        x->slot = -1;
    }
    own_close(x);
    x->dbd = NULL;
    x->st = NULL;
    return APR_SUCCESS;
}

/* Bring the schema up to date over one connection, serialised between the
 * processes of this server. */
static apr_status_t migrate_with(ca_store_t *st, apr_pool_t *p, server_rec *s,
                                 apr_time_t deadline, int have_lock)
{
    apr_status_t rv, lrv = APR_EINIT;
    const char *err = NULL;
    int version = 0;

    if (apr_atomic_read32(&schema_ready)) {
        return APR_SUCCESS;
    }
    if (db_mutex && !have_lock
        && (lrv = lock_until(db_mutex, deadline)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(1303)
                     "schema check: another process holds the %s mutex "
                     "past the deadline", db_mutex_type);
        return CA_EBUSY;
    }
    rv = ca_store_migrate(st, p, &version, &err);
    if (lrv == APR_SUCCESS) {
        apr_global_mutex_unlock(db_mutex);
    }
    if (rv == APR_SUCCESS) {
        apr_atomic_set32(&schema_ready, 1);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CA_LOGNO(0106)
                     "database schema at version %d", version);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(0107)
                     "cannot create or upgrade the database schema: %s",
                     err ? err : ca_store_last_error(st));
    }
    return rv;
}

/* A connection for x (mod_dbd's of the request, else one of our own),
 * wrapped and checked; NULL when the database cannot be had. */
static ca_store_t *ctx_store(certauth_dbctx *x, apr_pool_t *p)
{
    int attempt;

    if (x->st && x->checked) {
        return x->st;
    }
    if (!x->deadline && !x->unbounded) {
        x->deadline = apr_time_now() + certauth_db_timeout(x->s);
    }
    if (!x->r && apr_atomic_read32(&stopping)) {
        return NULL;
    }
    /* Connections of mod_dbd's pool that were discarded, or opened while
     * the database was read-only, may come several in a row: each is
     * replaced (mod_dbd's ap_dbd_open returns NULL for one it drops),
     * a few times within the deadline. */
    for (attempt = 0; attempt < 16; attempt++) {
        apr_status_t rv;

        if (attempt && apr_time_now() >= x->deadline) {
            break;
        }
        if (!x->dbd) {
            /* the request's connection; when mod_dbd has none for it
             * (the one it had was just discarded), one of our own; each
             * through the gate, so that no wait for mod_dbd's pool
             * outlasts the deadline */
            x->own = 0;
            if (x->r && !x->acquired && dbd_acquire) {
                x->acquired = 1;
                if (!gate_enter(x)) {
                    return NULL;
                }
                x->acq_token = 1;
                apr_pool_cleanup_register(x->r->pool, x, acq_token_give,
                                          apr_pool_cleanup_null);
                x->dbd = dbd_acquire(x->r);
                if (!x->dbd) {
                    apr_pool_cleanup_kill(x->r->pool, x, acq_token_give);
                    acq_token_give(x);
                }
            }
            if (!x->dbd && dbd_open) {
                if (!gate_enter(x)) {
                    return NULL;
                }
                x->own_token = 1;
                x->dbd = dbd_open(p, x->s);
                x->own = x->dbd != NULL;
                if (!x->dbd) {
                    own_close(x);
                }
            }
            if (!x->dbd) {
                continue;
            }
        }
        rv = ca_store_wrap(&x->st, p, x->dbd->driver, x->dbd->handle,
                           x->dbd->prepared, x->dbd->pool);
        if (x->st) {
            ca_store_set_writer_lock(x->st, writer_lock, x);
            ca_store_set_cancel(x->st, &stopping);
            ca_store_set_yield(x->st, yield_connection, x);
            ca_store_set_deadline(x->st, x->deadline,
                                  (int)apr_time_as_msec(
                                      certauth_db_timeout(x->s)));
        }
        if (rv == APR_SUCCESS) {
            rv = ca_store_check(x->st, p);
        }
        if (rv == APR_SUCCESS && shared
            && ca_store_opened(x->st)
                   <= (apr_time_t)apr_atomic_read64(&shared->broken)
            && ca_store_discard(x->st) == APR_SUCCESS) {
            /* opened before (or while) a connection of this server broke:
             * made under the same fault (read-only files, a lost disk),
             * it is replaced rather than tried */
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, x->s, CA_LOGNO(1304)
                         "database connection opened before the last "
                         "connection failure replaced");
            own_close(x);
            x->dbd = NULL;
            x->st = NULL;
            continue;
        }
        if (rv == APR_SUCCESS) {
            x->checked = 1;
            return x->st;
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, x->s, CA_LOGNO(1401)
                     "database connection unusable: %s",
                     ca_store_last_error(x->st));
        if (!x->st || !ca_store_broken(x->st)
            || ca_store_discard(x->st) != APR_SUCCESS) {
            return NULL;
        }
        /* discarded: the next attempt opens a new connection */
        own_close(x);
        x->dbd = NULL;
        x->st = NULL;
    }
    return NULL;
}

#define DBCTX_KEY "certauth-dbctx"

static certauth_dbctx *req_ctx(request_rec *r)
{
    request_rec *main = r;
    certauth_dbctx *x;

    while (main->main) {
        main = main->main;
    }
    /* in the request pool's user data: the module's request_config slot
     * is the ACME validation job's */
    apr_pool_userdata_get((void **)&x, DBCTX_KEY, main->pool);
    if (!x) {
        x = apr_pcalloc(main->pool, sizeof(*x));
        x->s = main->server;
        x->r = main;
        x->slot = -1;
        x->admission = 1;
        x->pool = main->pool;
        x->gate = certauth_srv(main->server)->dbd_gate;
        apr_pool_userdata_setn(x, DBCTX_KEY, NULL, main->pool);
        /* a pre-cleanup: before mod_dbd gives the request's connection
         * back to its pool (a plain cleanup of the request pool, made
         * after this one, would run first) */
        apr_pool_pre_cleanup_register(main->pool, x, ctx_cleanup);
    }
    return x;
}

static ca_store_t *request_store(request_rec *r)
{
    certauth_dbctx *x = req_ctx(r);
    ca_store_t *st = ctx_store(x, x->r->pool);

    if (st && migrate_with(st, x->r->pool, x->s, x->deadline, x->holds_db)
                  != APR_SUCCESS) {
        return NULL;
    }
    return st;
}

ca_store_t *certauth_store(request_rec *r, int *status)
{
    ca_store_t *st = request_store(r);

    if (!st) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0110)
                      "no database connection (see the lines above and "
                      "mod_dbd's messages)");
        *status = certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                 "database unavailable",
                                 "the certificate database cannot be "
                                 "reached; try again later");
        return NULL;
    }
    return st;
}

ca_store_t *certauth_store_quiet(request_rec *r)
{
    return request_store(r);
}

void certauth_store_deadline(request_rec *r, apr_time_t deadline)
{
    certauth_dbctx *x = req_ctx(r);

    x->deadline = deadline;
    if (x->st) {
        ca_store_set_deadline(x->st, deadline, (int)apr_time_as_msec(
                                                   certauth_db_timeout(x->s)));
    }
}

apr_time_t certauth_store_get_deadline(request_rec *r)
{
    return req_ctx(r)->deadline;
}

/* Outside requests (the watchdog): a context in pool p, released with it. */
ca_store_t *certauth_store_worker(apr_pool_t *p, server_rec *s,
                              apr_interval_time_t bound)
{
    certauth_dbctx *x = apr_pcalloc(p, sizeof(*x));
    ca_store_t *st;

    x->s = s;
    x->slot = -1;
    x->deadline = apr_time_now() + bound;
    x->pool = p;
    x->gate = certauth_srv(s)->dbd_gate;
    apr_pool_pre_cleanup_register(p, x, ctx_cleanup);
    st = ctx_store(x, p);
    if (st && migrate_with(st, p, s, x->deadline, 0) != APR_SUCCESS) {
        return NULL;
    }
    return st;
}

ca_store_t *certauth_store_bg(apr_pool_t *p, server_rec *s, void **handle)
{
    certauth_dbctx *x = apr_pcalloc(p, sizeof(*x));
    ca_store_t *st;

    x->s = s;
    x->slot = -1;
    x->unbounded = 1;
    x->pool = p;
    x->gate = certauth_srv(s)->dbd_gate;
    apr_pool_pre_cleanup_register(p, x, ctx_cleanup);
    st = ctx_store(x, p);
    if (st && migrate_with(st, p, s, 0, 0) != APR_SUCCESS) {
        st = NULL;
    }
    *handle = x;
    return st;
}

void certauth_store_release(server_rec *s, void *handle)
{
    (void)s;
    if (handle) {
        ctx_cleanup(handle);
    }
}

apr_status_t certauth_db_lock_until(apr_time_t deadline)
{
    return db_mutex ? lock_until(db_mutex, deadline) : APR_SUCCESS;
}

void certauth_db_release(void)
{
    if (db_mutex) {
        apr_global_mutex_unlock(db_mutex);
    }
}

int certauth_db_lock(request_rec *r)
{
    certauth_dbctx *x = req_ctx(r);
    apr_status_t rv;

    if (!db_mutex) {
        return 0;
    }
    if (!x->deadline) {
        x->deadline = apr_time_now() + certauth_db_timeout(x->s);
    }
    if ((rv = lock_until(db_mutex, x->deadline)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING,
                      rv == APR_TIMEUP ? 0 : rv, r, CA_LOGNO(0116)
                      "the %s mutex was not had before the request's "
                      "deadline (CertAuthDBTimeout); going on without it",
                      db_mutex_type);
        return 0;
    }
    x->holds_db = 1;
    return 1;
}

void certauth_db_unlock(request_rec *r, int locked)
{
    if (locked) {
        req_ctx(r)->holds_db = 0;
        apr_global_mutex_unlock(db_mutex);
    }
}

void certauth_crl_mark(void)
{
    if (shared) {
        apr_atomic_inc32(&shared->crl_marks);
    }
}

apr_uint32_t certauth_crl_marks(void)
{
    return shared ? apr_atomic_read32(&shared->crl_marks) : 0;
}

/* Before the child's pools go (mod_dbd's connection pool is one of them,
 * destroyed before the plain cleanups of pchild run, and it must not have a
 * connection out): the watchdog's work ends first. */
static apr_status_t child_exit(void *data)
{
    (void)data;
    apr_atomic_set32(&stopping, 1);
    certauth_crl_child_exit();
    return APR_SUCCESS;
}

void certauth_db_child_init(apr_pool_t *pchild, server_rec *s0)
{
    server_rec *s;

    apr_pool_pre_cleanup_register(pchild, NULL, child_exit);
    gates_make(pchild, s0);

    if (db_mutex) {
        apr_global_mutex_child_init(&db_mutex,
                                    apr_global_mutex_lockfile(db_mutex),
                                    pchild);
    }
    if (write_mutex) {
        apr_global_mutex_child_init(&write_mutex,
                                    apr_global_mutex_lockfile(write_mutex),
                                    pchild);
    }
    if (!dbd_open) {
        return;
    }
    for (s = s0; s && !apr_atomic_read32(&schema_ready); s = s->next) {
        apr_pool_t *p;

        if (!certauth_srv(s)->has_endpoints) {
            continue;
        }
        apr_pool_create(&p, pchild);
        /* the schema: waited for as long as it takes at start-up */
        if (!certauth_store_worker(p, s, apr_time_from_sec(3600))) {
            /* The database may come later; requests retry. */
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(0108)
                         "database not reachable at child start; the schema "
                         "is checked again on the first request");
        }
        apr_pool_destroy(p);
    }
}
