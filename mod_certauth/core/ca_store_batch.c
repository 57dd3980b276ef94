/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_batch: group commit.  Concurrent write units of one process on
 * one SQLite database share one durable commit: the first thread to find no
 * commit under way becomes the leader, takes every unit queued so far, runs
 * each in a savepoint of one transaction on its own connection and commits
 * it (synchronous=FULL: one fsync of the WAL for all of them); the others
 * wait until the commit that holds their unit has returned, so none answers
 * before its rows are on disk.  A unit that fails is rolled back to its
 * savepoint alone.  While a leader commits, the next units queue, and one
 * of their threads leads the next commit.
 *
 * PostgreSQL (and other drivers): each unit runs in its own transaction;
 * the server groups concurrent commits itself (commit_delay,
 * commit_siblings; see README "Performance"). */

#include <pthread.h>
#include <time.h>
#include <string.h>

#include <apr_strings.h>

#include <sqlite3.h>

#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_util.h"

/* At most this many units in one commit. */
#define CA_BATCH_MAX 64
/* Units queued while the leader has waited longer than this for the
 * database's locks count against the caller's admission limit. */
#define CA_BATCH_ADMIT_AFTER apr_time_from_msec(100)

typedef struct batch_job {
    ca_store_unit_fn fn;
    void *baton;
    apr_pool_t *pool;          /* the caller's: it waits meanwhile          */
    apr_status_t rv;
    const char *err;           /* the database's message when rv failed    */
    int err_kind;              /* and what it means (CA_ERR_*)             */
    int done;
    int taken;                 /* a leader runs it: it cannot be withdrawn */
    apr_time_t deadline;       /* its caller's (0: none)                   */
    struct batch_job *next;
} batch_job;

typedef struct batch {
    char *file;                /* the database file (sqlite3_db_filename)  */
    pthread_cond_t cv;
    batch_job *head, *tail;
    int leading;               /* a leader is committing                   */
    int locking;               /* ... and waits for the database's locks   */
    apr_time_t locking_since;
    struct batch *next;
} batch;

/* One queue per database file of this process; never freed (a handful). */
static pthread_mutex_t batch_mu = PTHREAD_MUTEX_INITIALIZER;
static batch *batches;

static batch *batch_of(const char *file)
{
    batch *b;

    for (b = batches; b; b = b->next) {
        if (!strcmp(b->file, file)) {
            return b;
        }
    }
    b = calloc(1, sizeof(*b));
    if (!b || !(b->file = strdup(file))) {
        free(b);
        return NULL;
    }
    pthread_cond_init(&b->cv, NULL);
    b->next = batches;
    batches = b;
    return b;
}

/* The file behind an SQLite connection, "" for an in-memory one. */
static const char *db_file(ca_store_t *s)
{
    sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
    const char *f = db ? sqlite3_db_filename(db, "main") : NULL;
    return f ? f : "";
}

/* One unit in a transaction of its own. */
static apr_status_t run_alone(ca_store_t *s, apr_pool_t *p,
                              ca_store_unit_fn fn, void *baton)
{
    apr_status_t rv;

    if ((rv = ca_store_txn_begin(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = fn(s, p, baton);
    if (rv == APR_SUCCESS) {
        return ca_store_txn_end(s, p, 1);
    }
    ca_store_txn_end(s, p, 0);
    return rv;
}

/* The leader: jobs (a list) in one transaction on s, one savepoint each.
 * BEGIN is the store's own (the writer lock and SQLite's lock, waited for
 * within s's deadline); COMMIT syncs (synchronous=FULL). */
static void run_batch(ca_store_t *s, apr_pool_t *p, batch *b,
                      batch_job *jobs)
{
    batch_job *j = NULL;
    apr_status_t rv;
    const char *err;
    int ok = 0, busy;

    pthread_mutex_lock(&batch_mu);
    b->locking = 1;
    b->locking_since = apr_time_now();
    pthread_mutex_unlock(&batch_mu);
    rv = ca_st_txn_open(s, p);
    pthread_mutex_lock(&batch_mu);
    b->locking = 0;
    pthread_mutex_unlock(&batch_mu);
    if (rv == APR_SUCCESS) {
        for (j = jobs; j; j = j->next) {
            s->txn_failed = 0;
            if (ca_st_query(s, "SAVEPOINT certauth_unit") != APR_SUCCESS) {
                break;
            }
            s->txn_failed = 0;
            j->rv = j->fn(s, j->pool, j->baton);
            if (j->rv == APR_SUCCESS && s->txn_failed) {
                j->rv = CA_EDB;
            }
            if (j->rv != APR_SUCCESS) {
                j->err = apr_pstrdup(j->pool, ca_store_last_error(s));
                j->err_kind = s->err_kind;
                s->txn_failed = 0;
                if (ca_st_query(s, "ROLLBACK TO certauth_unit")
                    != APR_SUCCESS) {
                    break; /* the transaction is lost: nothing commits */
                }
            }
            s->txn_failed = 0;
            if (ca_st_query(s, "RELEASE certauth_unit") != APR_SUCCESS) {
                break;
            }
            ok++;
        }
        if (j) {
            /* a savepoint failed: roll everything back */
            s->txn_failed = 1;
            ok = 0;
        }
        rv = ca_st_txn_close(s, p, 1);
        if (j && rv == APR_SUCCESS) {
            rv = CA_EDB;
        }
    }
    if (rv != APR_SUCCESS) {
        /* nothing of this transaction is stored */
        busy = rv == CA_EBUSY;
        err = ca_store_last_error(s);
        for (j = jobs; j; j = j->next) {
            if (j->rv == APR_SUCCESS || !j->err) {
                j->rv = busy ? CA_EBUSY : CA_EDB;
                j->err = apr_pstrdup(j->pool, err);
                j->err_kind = s->err_kind;
            }
        }
    }
    if (ok > 1) {
        ca_log(CA_LOG_MARK, CA_LOG_DEBUG, 0, NULL,
               "group commit: %d write units in one commit", ok);
    }
}

/* Take a job that no leader has taken out of the queue. */
static void withdraw(batch *b, batch_job *job)
{
    batch_job **pp;

    for (pp = &b->head; *pp && *pp != job; pp = &(*pp)->next) {
    }
    if (*pp) {
        *pp = job->next;
        if (b->tail == job) {
            batch_job *t = b->head;
            while (t && t->next) {
                t = t->next;
            }
            b->tail = t;
        }
    }
}

static void admit_end(ca_store_t *s, int admitted)
{
    if (admitted && s->wlock) {
        s->wlock(s->wlock_baton, CA_STORE_ADMIT_END, 0, NULL);
    }
}

apr_status_t ca_store_run_unit(ca_store_t *s, apr_pool_t *p,
                               ca_store_unit_fn fn, void *baton)
{
    batch_job job, *take, *j, *next;
    batch *b;
    int n, max, admitted = 0;

    /* nested in a transaction of the caller, or not SQLite: alone */
    if (!s->d->sqlite || s->txn || s->in_txn) {
        if (s->txn || s->in_txn) {
            return fn(s, p, baton);
        }
        return run_alone(s, p, fn, baton);
    }
    memset(&job, 0, sizeof(job));
    job.fn = fn;
    job.baton = baton;
    job.pool = p;
    job.deadline = s->deadline;
    pthread_mutex_lock(&batch_mu);
    if (!(b = batch_of(db_file(s)))) {
        pthread_mutex_unlock(&batch_mu);
        return run_alone(s, p, fn, baton);
    }
    if (b->tail) {
        b->tail->next = &job;
    }
    else {
        b->head = &job;
    }
    b->tail = &job;
    while (!job.done) {
        if (b->leading) {
            if (!admitted && !job.taken && s->wlock && b->locking
                && apr_time_now() - b->locking_since > CA_BATCH_ADMIT_AFTER) {
                /* the leader waits for the database (locked by another
                 * program, or by another process's writer): waiting for
                 * it counts as waiting to write (the caller's admission
                 * limit), refused at once when too many wait already.  A
                 * unit queued while a commit is merely under way is
                 * answered with the next one and does not count, nor
                 * while the leader waits briefly (another process's
                 * commit). */
                const char *why = NULL;
                apr_status_t arv = s->wlock(s->wlock_baton, CA_STORE_ADMIT,
                                            s->deadline, &why);
                if (arv == APR_SUCCESS) {
                    admitted = 1;
                }
                else if (arv != APR_EAGAIN) {
                    withdraw(b, &job);
                    pthread_mutex_unlock(&batch_mu);
                    s->last_error = why ? why : "the write path is busy";
                    s->err_kind = CA_ERR_BUSY;
                    return CA_EBUSY;
                }
                /* APR_EAGAIN: no slot yet, the path moves: asked again */
            }
            if (s->deadline && !job.taken
                && apr_time_now() >= s->deadline) {
                /* not run yet, and no more time: withdraw it */
                withdraw(b, &job);
                pthread_mutex_unlock(&batch_mu);
                admit_end(s, admitted);
                s->last_error = "the write path is busy (group commit)";
                s->err_kind = CA_ERR_BUSY;
                return CA_EBUSY;
            }
            {
                struct timespec ts;
                /* short slices: the deadline and the admission are
                 * looked at again */
                apr_time_t until = apr_time_now() + apr_time_from_msec(50);
                if (s->deadline && !job.taken && s->deadline < until) {
                    until = s->deadline;
                }
                ts.tv_sec = (time_t)apr_time_sec(until);
                ts.tv_nsec = (long)apr_time_usec(until) * 1000;
                pthread_cond_timedwait(&b->cv, &batch_mu, &ts);
            }
            continue;
        }
        if (admitted) {
            /* leading: the writer lock counts it from here */
            admit_end(s, admitted);
            admitted = 0;
        }
        /* lead: take up to CA_BATCH_MAX queued units (ours among them,
         * unless an earlier leader has run it already); only the first
         * while the write path is stalled (the others then wait within
         * the admission limit, or are refused at once) */
        b->leading = 1;
        take = b->head;
        take->taken = 1;
        max = s->wlock && s->wlock(s->wlock_baton, CA_STORE_STALLED, 0, NULL)
                              != APR_SUCCESS ? 1 : CA_BATCH_MAX;
        for (j = take, n = 1; j->next && n < max; j = j->next) {
            n++;
            j->next->taken = 1;
        }
        b->head = j->next;
        if (!b->head) {
            b->tail = NULL;
        }
        j->next = NULL;
        pthread_mutex_unlock(&batch_mu);
        {
            /* the leader waits for the locks no longer than the earliest
             * deadline among the units it runs: nobody waits beyond his
             * own bound for another's */
            apr_time_t saved = s->deadline, d = s->deadline;
            for (j = take; j; j = j->next) {
                if (j->deadline && (!d || j->deadline < d)) {
                    d = j->deadline;
                }
            }
            s->deadline = d;
            run_batch(s, p, b, take);
            s->deadline = saved;
        }
        pthread_mutex_lock(&batch_mu);
        for (j = take; j; j = next) {
            next = j->next;
            j->next = NULL;
            j->done = 1;
        }
        b->leading = 0;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&batch_mu);
    admit_end(s, admitted);
    if (job.rv != APR_SUCCESS && job.err) {
        s->last_error = job.err;
        /* what the leader's connection was told (busy; broken: then
         * this one, opened alike, is discarded and reopened too) */
        s->err_kind = job.rv == CA_EBUSY ? CA_ERR_BUSY : job.err_kind;
    }
    return job.rv;
}

apr_status_t ca_store_audit_add_lazy(ca_store_t *s, apr_pool_t *p,
                                     const ca_audit_t *a)
{
    apr_status_t rv, rv2;

    if (s->txn || s->in_txn) {
        return ca_store_audit_add(s, p, a);
    }
    if (s->d->sqlite) {
        /* WAL: a commit with synchronous=NORMAL is written, not synced;
         * the next synced commit (or checkpoint) syncs it with its own */
        if ((rv = ca_st_wl_enter(s)) != APR_SUCCESS) {
            return rv;
        }
        if ((rv = ca_st_query(s, "PRAGMA synchronous=NORMAL"))
            == APR_SUCCESS) {
            rv = ca_store_audit_add(s, p, a);
            if ((rv2 = ca_st_query(s, "PRAGMA synchronous=FULL"))
                != APR_SUCCESS) {
                rv = rv2;
            }
        }
        ca_st_wl_leave(s);
        return rv;
    }
    if (s->d->begin) {
        if ((rv = ca_store_txn_begin(s, p)) != APR_SUCCESS) {
            return rv;
        }
        rv = ca_st_query(s, "SET LOCAL synchronous_commit TO OFF");
        if (rv == APR_SUCCESS) {
            rv = ca_store_audit_add(s, p, a);
        }
        rv2 = ca_store_txn_end(s, p, rv == APR_SUCCESS);
        return rv == APR_SUCCESS ? rv2 : rv;
    }
    return ca_store_audit_add(s, p, a);
}
