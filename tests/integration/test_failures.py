"""Failure behaviour (README "Failure behaviour"): a database locked by
another program, read-only files, a PostgreSQL lock, a burst of
revocations, children killed under load.  Real apache2, real SQLite, real
PostgreSQL; each test under the event and the prefork MPM.

Run time is kept modest: the SQLite lock is held 12 s with a 3 s bound
(CertAuthDBTimeout 3), which is four bounds long: enough for writers that
start at different times to run into the bound while the pages keep
answering."""
import concurrent.futures
import datetime
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import harness
from conftest import make_csr as _make_csr
from test_lifecycle import crl_number, get_crl, jrequest

MPMS = ["event", "prefork"]
BOUND = 3            # CertAuthDBTimeout of these tests, seconds
SLACK = 3            # TLS handshakes of 40 clients on a loaded 2-core host
READ_MAX = 2.0       # the pages, the CA certificate and the CRL
HOLD = 12            # seconds the sqlite3 shell keeps its lock


def make_csr(kind="p256"):
    return _make_csr(kind)[0]


def serial_of(hd):
    return hd["location"].rsplit("/", 1)[1]


def log_text(h):
    with open(h.error_log, errors="replace") as f:
        return f.read()


def log_times(h, pattern):
    """The times (seconds) of the error log's lines matching pattern."""
    out = []
    for line in log_text(h).splitlines():
        m = re.match(r"\[\w+ (\w+ \d+ [\d:.]+ \d+)\]", line)
        if m and re.search(pattern, line):
            out.append(datetime.datetime.strptime(
                m.group(1), "%b %d %H:%M:%S.%f %Y").timestamp())
    return out


def no_bogus_apr_codes(h):
    text = log_text(h)
    assert "APR does not understand" not in text, text[-3000:]
    assert "(120005)" not in text


class SqliteShell:
    """The sqlite3 shell holding an exclusive transaction on the database
    until release() (stdin kept open)."""

    def __init__(self, db):
        self.p = subprocess.Popen(["sqlite3", "-batch", db],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write(".timeout 10000\nBEGIN EXCLUSIVE;\n"
                           "INSERT INTO certauth_schema SELECT version "
                           "FROM certauth_schema WHERE 0;\n"
                           "SELECT 'locked';\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        assert line == "locked", line

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("COMMIT;\n.quit\n")
            self.p.stdin.flush()
            self.p.stdin.close()
            self.p.wait(timeout=20)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# prefork serves one connection per process: enough of them from the
# start for 45 concurrent clients (the time a client spends in the listen
# queue is the MPM's capacity, not a database wait)
PREFORK = ("StartServers 50\nMinSpareServers 50\nMaxSpareServers 64\n"
           "ServerLimit 64\nMaxRequestWorkers 64\n")


def server(make_httpd, mpm, extra="", main=""):
    """`main`: directives of the main server (CertAuthDBMaxWaiters)."""
    h = make_httpd(start=False, mpm=mpm,
                   vhost_conf="CertAuthDBTimeout %d\n%s" % (BOUND, extra))
    h.server_conf = (PREFORK if mpm == "prefork" else "") + main
    h.write_conf()
    with open(os.path.join(h.root, "htdocs", "index.html"), "w") as f:
        f.write("<html><body>the host site</body></html>\n")
    h.start()
    return h


def timed(fn, *a, **kw):
    t0 = time.time()
    r = fn(*a, **kw)
    return time.time() - t0, r


@pytest.mark.parametrize("mpm", MPMS)
def test_sqlite_locked_by_another_program(make_httpd, mpm):
    """A 12 s exclusive lock by the sqlite3 shell and 45 concurrent
    writers: the site's page, the CRL, the CA certificate and a certificate
    by serial answer within 2 s throughout; every writer is answered within the bound (201, or 503
    with Retry-After); a refusal is answered at once and its audit record
    goes to the error log in full; enrollment works right after."""
    h = server(make_httpd, mpm, main="CertAuthDBMaxWaiters 6\n")
    st, hd, body = h.enroll(make_csr())
    assert st == 201, body
    cert_path = "/ca/certs/" + serial_of(hd)
    assert get_crl(h)[0] is not None
    csrs = [make_csr() for _ in range(45)]
    bad_csr = make_csr("secp256k1")          # refused: key type

    shell = SqliteShell(h.db)
    reads, writes, stop = [], [], threading.Event()
    try:
        t_locked = time.time()

        def reader():
            while not stop.is_set():
                for path in ("/", "/ca/crl", "/ca/cacert.crt", cert_path):
                    dt, (st, _, _) = timed(h.get, path, timeout=30)
                    reads.append((path, st, dt))
                time.sleep(0.05)

        def writer(csr):
            dt, (st, hd, body) = timed(h.enroll, csr, timeout=60)
            writes.append((st, hd.get("retry-after"), dt, body))

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in readers:
            t.start()
        time.sleep(1)
        with concurrent.futures.ThreadPoolExecutor(len(csrs)) as ex:
            list(ex.map(writer, csrs))
        # a refusal while the database is locked: answered at once
        dt, (st, _, body) = timed(h.enroll, bad_csr)
        assert st == 422, body
        assert dt < READ_MAX, dt
        # the pages go on answering until the lock is gone
        while time.time() - t_locked < HOLD:
            time.sleep(0.2)
        stop.set()
        for t in readers:
            t.join()
    finally:
        stop.set()
        shell.release()
        shell.kill()

    assert len(writes) == len(csrs)
    for st, retry, dt, body in writes:
        assert st in (201, 503), (st, body)
        if st == 503:
            assert retry and int(retry) > 0, body
            assert b"busy" in body or b"unavailable" in body, body
        assert dt <= BOUND + SLACK, (st, dt, body)
    assert any(w[0] == 503 for w in writes)
    assert len(reads) > 30, reads
    slow = [r for r in reads if r[2] > READ_MAX or r[1] not in (200, 304)]
    assert not slow, slow

    # right after: enrollment succeeds
    t0 = time.time()
    while True:
        st, hd, body = h.enroll(make_csr())
        if st == 201 or time.time() - t0 > 5:
            break
        time.sleep(0.2)
    assert st == 201, body
    text = log_text(h)
    # the refusal's record was not written in time: in the log, in full
    assert re.search(r"CA1320: audit record not stored \(.*\): at \d+ enroll "
                     r"refused serial=- by alice \(login\) from 127\.0\.0\.1: "
                     r".*secp256k1", text), text[-3000:]
    assert "CertAuthDBMaxWaiters" in text or "CertAuthDBTimeout" in text
    no_bogus_apr_codes(h)


@pytest.mark.parametrize("mpm", MPMS)
def test_admission_while_stalled(make_httpd, mpm):
    """The admission rule while another program holds the lock (README
    "Failure behaviour"): at most CertAuthDBMaxWaiters (4, set in the main
    server) writers wait, each until its deadline at the most; the others
    are answered 503 at once, within the bound all of them; enrollment
    works right after."""
    h = server(make_httpd, mpm, main="CertAuthDBMaxWaiters 4\n")
    st, _, body = h.enroll(make_csr())
    assert st == 201, body
    csrs = [make_csr() for _ in range(16)]
    run_for = HOLD - BOUND - 1
    shell = SqliteShell(h.db)
    writes = []
    try:
        t_locked = time.time()
        time.sleep(0.5)                 # the path is stalled from now on

        def writer(csr):
            while time.time() - t_locked < run_for:
                t0 = time.time()
                st, hd, body = h.enroll(csr, timeout=60)
                writes.append((st, hd.get("retry-after"), time.time() - t0,
                               body, t0))
        with concurrent.futures.ThreadPoolExecutor(len(csrs)) as ex:
            list(ex.map(writer, csrs))
    finally:
        shell.release()
        shell.kill()
    assert all(w[0] == 503 and w[1] for w in writes), writes[:3]
    assert all(w[2] <= BOUND + SLACK for w in writes)
    # the writers that waited (more than READ_MAX): those holding the 4
    # slots, each until its deadline.  In the server's log, those that
    # waited until their deadline: about 4 per BOUND; at most 4 per BOUND
    # and 4 more (a slot taken by a write that had been queued for a group
    # commit ends sooner).  Before, writes queued behind a group commit's
    # leader that waited for the lock waited with it, uncounted.
    waited = [w[2] for w in writes if w[2] > READ_MAX]
    ends = log_times(h, r"CA0402: issuing .*(the write path stayed busy "
                        r"until the request's deadline|the database is "
                        r"locked by another program)")
    print("writes %d, waited %d, %d waited until the deadline"
          % (len(writes), len(waited), len(ends)))
    assert ends and len(ends) <= 4 * ((run_for + BOUND) / BOUND + 1), ends
    assert len(writes) > len(waited) * 2, (len(writes), len(waited))
    text = log_text(h)
    assert "(CertAuthDBMaxWaiters)" in text, text[-3000:]
    st, _, body = h.enroll(make_csr())
    assert st == 201, body


@pytest.mark.parametrize("mpm", MPMS)
def test_admission_while_moving(make_httpd, mpm):
    """A burst of writers on a path that moves (another program's short
    writes), far more than CertAuthDBMaxWaiters (1): they wait for the slot
    in turn, each within its bound; a write is refused only while the path
    looks stalled (a write queued for a group commit was refused at once
    when the slot was taken, moving or not)."""
    import sqlite3
    h = server(make_httpd, mpm, main="CertAuthDBMaxWaiters 1\n")
    st, _, body = h.enroll(make_csr())
    assert st == 201, body
    csrs = [make_csr() for _ in range(48)]
    stop = threading.Event()

    def other_program():
        # short writes of another program: the lock held 110 ms at a time
        # (a commit queued behind it waits more than 100 ms), free 200 ms in
        # between (the path moves: each gap lets writes in, well within the
        # 300 ms that make it "stalled", even on a loaded machine)
        con = sqlite3.connect(h.db, timeout=10, isolation_level=None)
        while not stop.is_set():
            con.execute("BEGIN EXCLUSIVE")
            time.sleep(0.11)
            con.execute("COMMIT")
            time.sleep(0.2)
        con.close()

    def one(csr):
        return timed(h.enroll, csr, timeout=60)
    t = threading.Thread(target=other_program)
    t.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(one, csrs))
    finally:
        stop.set()
        t.join()
    bad = [(st, body) for _, (st, _, body) in res if st not in (201, 503)]
    assert not bad, bad[:3]
    refused = [dt for dt, (st, _, _) in res if st == 503]
    assert len(refused) < len(res), "none issued"
    assert all(dt <= BOUND + SLACK for dt, _ in res)
    # refused only where the path looked stalled (on a loaded machine 300
    # ms may pass now and then without a write getting in), never because
    # the slot was taken while writes got through
    text = log_text(h)
    why = re.findall(r"CA0402: issuing for alice: database unavailable: "
                     r"(.*)", text)
    assert len(why) == len(refused), why
    assert all("none got through" in w for w in why), why
    no_bogus_apr_codes(h)


def test_max_waiters_only_in_the_main_server(make_httpd):
    """CertAuthDBMaxWaiters is one limit for all processes and hosts: in a
    <VirtualHost> it is refused (it used to be ignored there silently)."""
    h = make_httpd(start=False, vhost_conf="CertAuthDBMaxWaiters 4\n")
    rc, out = h.configtest()
    assert rc != 0 and "set it in the main server" in out, out
    h.vhost_conf = ""
    h.server_conf = "CertAuthDBMaxWaiters 4\n"
    h.write_conf()
    rc, out = h.configtest()
    assert rc == 0, out


def test_pool_smaller_than_workers_while_stalled(make_httpd):
    """mod_dbd's pool smaller than the workers (DBDMax 2, ThreadsPerChild
    8, event MPM) and the database locked by another program for 12 s while
    writers keep coming (24 at a time) and certificates are read: every CA
    answer arrives within the bound (mod_dbd itself waits for a free
    connection without one; the module's gate in front of the pool ends
    the wait at the request's deadline, 503 + Retry-After), reads of a
    certificate and the site's page answer within 2 s throughout (writers
    waiting on the stalled write path give their connections up to
    requests that wait for one), and enrollment works right after, in the
    same processes."""
    h = server(make_httpd, "event", "DBDMin 0\nDBDKeep 2\nDBDMax 2\n",
               main="CertAuthDBMaxWaiters 32\n")
    st, hd, body = h.enroll(make_csr())
    assert st == 201, body
    cert_path = "/ca/certs/" + serial_of(hd)
    assert get_crl(h)[0] is not None
    parent, before = h.pid(), set(h.children())
    csrs = [make_csr() for _ in range(24)]

    shell = SqliteShell(h.db)
    reads, writes, stop = [], [], threading.Event()
    try:
        t_locked = time.time()

        def reader():
            while not stop.is_set():
                for path in ("/", cert_path, "/ca/crl"):
                    dt, (st, _, body) = timed(h.get, path, timeout=60)
                    reads.append((path, st, dt, body[:200]))
                time.sleep(0.05)

        def writer(csr):
            while time.time() - t_locked < HOLD - BOUND - 1:
                dt, (st, hd, body) = timed(h.enroll, csr, timeout=60)
                writes.append((st, hd.get("retry-after"), dt, body))

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in readers:
            t.start()
        with concurrent.futures.ThreadPoolExecutor(len(csrs)) as ex:
            list(ex.map(writer, csrs))
        stop.set()
        for t in readers:
            t.join()
    finally:
        stop.set()
        shell.release()
        shell.kill()

    assert len(writes) >= len(csrs)
    for st, retry, dt, body in writes:
        assert st in (201, 503), (st, body)
        if st == 503:
            assert retry and int(retry) > 0, body
            assert b'"error"' in body and b"unavailable" in body, body
    slow_writes = [w[2] for w in writes if w[2] > BOUND + SLACK]
    assert not slow_writes, (len(writes), sorted(slow_writes))
    assert len(reads) > 30, reads
    slow = [r for r in reads if r[2] > READ_MAX or r[1] not in (200, 304)]
    assert not slow, (len(reads), slow)

    t0 = time.time()
    while True:
        st, hd, body = h.enroll(make_csr())
        if st == 201 or time.time() - t0 > 5:
            break
        time.sleep(0.2)
    assert st == 201, body
    assert h.pid() == parent
    assert before <= set(h.children()), "children replaced?"
    text = log_text(h)
    assert ("CA1350" in text or "wait for this process's database "
            "connections" in text), text[-3000:]
    no_bogus_apr_codes(h)


def db_files(h):
    return [f for f in (h.db, h.db + "-wal", h.db + "-shm")
            if os.path.exists(f)]


def test_schema_changed_by_another_process(make_httpd):
    """Another process changes the schema (an operator's index, a newer
    certauth-admin): each pooled connection fails at most once and is
    replaced; no restart.  Before, every later statement of a connection
    failed ("not an error") until httpd was restarted."""
    h = server(make_httpd, "event")
    st, _, body = h.enroll(make_csr())
    assert st == 201, body
    parent, kids = h.pid(), set(h.children())
    harness.run(["sqlite3", h.db, "CREATE TABLE test_operator_change "
                 "(a INTEGER);"])
    answers = []
    for _ in range(30):
        st, _, body = h.enroll(make_csr())
        answers.append(st)
    assert set(answers) <= {201, 503}, answers
    # the last answers all succeed: every stale connection was replaced
    assert answers[-10:] == [201] * 10, answers
    assert h.pid() == parent and kids <= set(h.children())


@pytest.mark.parametrize("mpm", MPMS)
def test_sqlite_read_only_then_writable(make_httpd, mpm):
    """Connections opened while the files were read-only: 503 (at once);
    the files writable again: enrollment works within seconds, the same
    processes (no restart)."""
    h = server(make_httpd, mpm)
    st, _, body = h.enroll(make_csr())
    assert st == 201, body
    assert h.get("/ca/crl")[0] == 200       # the first CRL is made
    modes = {f: os.stat(f).st_mode & 0o777 for f in db_files(h)}
    dmode = os.stat(h.dbdir).st_mode & 0o777
    try:
        for f in modes:
            os.chmod(f, 0o444)
        os.chmod(h.dbdir, 0o555)
        # new children open new connections: read-only ones
        parent = h.pid()
        old = set(h.children())
        harness.run([harness.APACHE, "-f", h.conf, "-k", "graceful"])
        t0 = time.time()
        while set(h.children()) & old and time.time() - t0 < 15:
            time.sleep(0.2)
        st, hd, body = h.get("/ca/cacert.crt")
        assert st == 200
        for _ in range(3):
            dt, (st, hd, body) = timed(h.enroll, make_csr())
            assert st == 503, body
            assert hd.get("retry-after")
            assert dt < BOUND + SLACK, dt
        # reads still answer
        assert h.get("/ca/crl")[0] == 200
        children = h.children()
    finally:
        for f, m in modes.items():
            os.chmod(f, m)
        os.chmod(h.dbdir, dmode)
    t0 = time.time()
    while True:
        st, hd, body = h.enroll(make_csr())
        if st == 201 or time.time() - t0 > 10:
            break
        time.sleep(0.3)
    assert st == 201, body
    took = time.time() - t0
    assert took < 10, took
    # more, whichever child and pooled connection they reach (each stale
    # connection is replaced as it comes)
    for _ in range(12):
        st, _, body = h.enroll(make_csr())
        assert st == 201, (body, h.log_tail(40))
    assert h.pid() == parent
    # prefork may start spare children meanwhile; a restart would have
    # replaced those that served the read-only phase
    gone = set(children) - set(h.children())
    assert not gone, ("recovered by a restart?", gone)
    text = log_text(h)
    assert "readonly" in text or "read-only" in text, text[-2000:]
    assert "CA1302" in text or "CA1401" in text
    no_bogus_apr_codes(h)


@pytest.mark.parametrize("mpm", MPMS)
def test_revocation_burst(make_httpd, tmp_path, mpm):
    """200 revocations in a burst: one CRL lists them all within
    CertAuthCRLDelay of the last one, made by a bounded number of
    rebuilds (not one per revocation)."""
    h = server(make_httpd, mpm, "CertAuthCRLDelay 2")
    n0 = crl_number(get_crl(h)[0])
    csrs = [make_csr() for _ in range(200)]

    def one(csr):
        st, hd, body = h.enroll(csr, user="alice")
        assert st == 201, body
        return serial_of(hd)

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        serials = list(ex.map(one, csrs))

    def rebuilds():
        return len(re.findall(r"CA1310: CRL made", log_text(h)))
    before = rebuilds()

    def rev(serial):
        st, _, doc, body = jrequest(
            h, "POST", "/ca/revoke", user="admin",
            body=('{"serial": "%s", "reason": "keyCompromise"}'
                  % serial).encode(),
            headers={"Content-Type": "application/json"})
        assert st == 200, body
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        list(ex.map(rev, serials))
    t_last = time.time()
    burst = t_last - t0
    want = {int(s, 16) for s in serials}
    while True:
        crl = get_crl(h)[0]
        if want <= {r.serial_number for r in crl}:
            break
        assert time.time() - t_last < 2 + 5, "not all listed in time"
        time.sleep(0.1)
    listed_after = time.time() - t_last
    assert crl_number(crl) > n0
    time.sleep(2.5)          # a rebuild still under way is counted too
    made = rebuilds() - before
    # at most one per half delay while the burst lasts, and the last
    assert 1 <= made <= burst / 1.0 + 3, (made, burst)
    assert made < 50
    print("burst %.1f s, %d rebuilds, listed %.1f s after the last"
          % (burst, made, listed_after))
    no_bogus_apr_codes(h)


@pytest.mark.parametrize("mpm", MPMS)
def test_kill9_under_enrollment_load(make_httpd, mpm):
    """Children killed with SIGKILL while enrolling: every certificate a
    client received is in the database, and the database is intact."""
    h = server(make_httpd, mpm)
    got, stop = [], threading.Event()
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            try:
                st, hd, body = h.enroll(make_csr(), timeout=30)
            except Exception:        # a connection cut by the kill
                continue
            if st == 201:
                with lock:
                    got.append(serial_of(hd))
    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(1.5)
            for pid in h.children():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    st, _, body = h.enroll(make_csr())
    assert st == 201, body
    assert len(got) > 5, got
    r = harness.run(["sqlite3", h.db, "SELECT serial FROM certauth_certs"])
    stored = set(r.stdout.decode().split())
    missing = [s for s in got if s not in stored]
    assert not missing, missing
    r = harness.run(["sqlite3", h.db, "PRAGMA integrity_check"])
    assert r.stdout.decode().strip() == "ok"
    # the children killed here are no crash of the module: their lines go
    # (the fixture checks the log for children that died of a signal)
    h.stop()
    with open(h.error_log) as f:
        lines = f.readlines()
    with open(h.error_log, "w") as f:
        f.writelines(l for l in lines if "exit signal Killed (9)" not in l)


pg_skip = pytest.mark.skipif(
    not os.access("/usr/lib/postgresql/15/bin/postgres", os.X_OK),
    reason="postgresql-15 absent")


@pg_skip
@pytest.mark.parametrize("mpm", MPMS)
def test_pg_lock_timeout(make_httpd, mpm):
    """PostgreSQL: a table lock held by another session: enrollment gets
    503 with Retry-After within the bound, reads answer; the lock gone,
    enrollment works."""
    from test_pg import Postgres, PGBIN
    pg = Postgres()
    try:
        pg.start()
        pg.createdb()
        h = make_httpd(mpm=mpm, db_driver="pgsql", db_params=pg.params,
                       vhost_conf="CertAuthDBTimeout %d\nDBDMin 0\n"
                                  "DBDKeep 2\nDBDMax 8" % BOUND,
                       server_conf=PREFORK if mpm == "prefork" else "")
        st, _, body = h.enroll(make_csr())
        assert st == 201, body
        assert h.get("/ca/crl")[0] == 200
        cmd = [os.path.join(PGBIN, "psql"), "-h", pg.sock, "-p",
               str(pg.port), "-U", "certauth", "-d", "certauth", "-At"]
        if pg.user:
            cmd = ["runuser", "-u", pg.user, "--"] + cmd
        psql = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                cwd=pg.root)
        try:
            psql.stdin.write("BEGIN;\nLOCK TABLE certauth_certs IN ACCESS "
                             "EXCLUSIVE MODE;\nSELECT 'locked';\n")
            psql.stdin.flush()
            lines = []
            while True:
                line = psql.stdout.readline()
                lines.append(line)
                if line.strip() == "locked" or not line:
                    break
            assert lines[-1].strip() == "locked", lines

            def w(csr):
                return timed(h.enroll, csr, timeout=60)
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                res = list(ex.map(w, [make_csr() for _ in range(8)]))
            for dt, (st, hd, body) in res:
                assert st == 503, body
                assert hd.get("retry-after")
                assert dt <= BOUND + SLACK, dt
            for path in ("/", "/ca/crl", "/ca/cacert.crt"):
                dt, (st, _, _) = timed(h.get, path)
                assert st in (200, 403, 404) and dt < READ_MAX, (path, st, dt)
        finally:
            if psql.poll() is None:
                psql.stdin.write("ROLLBACK;\n\\q\n")
                psql.stdin.flush()
                psql.stdin.close()
                try:
                    psql.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    psql.kill()
        st, _, body = h.enroll(make_csr())
        assert st == 201, body
        text = log_text(h)
        assert ("lock timeout" in text or "statement timeout" in text
                or "CertAuthDBTimeout" in text), text[-2000:]
        no_bogus_apr_codes(h)
        h.stop()
    finally:
        pg.cleanup()


@pytest.mark.parametrize("mpm", MPMS)
def test_stop_while_the_crl_waits(make_httpd, mpm):
    """httpd stopped while the watchdog waits for a database that another
    program locked (a revocation to put on the CRL): the children end that
    wait and exit cleanly (mod_dbd's pool had a connection out: an abort
    at exit before), and promptly.  The fixture checks the log for
    children that died of a signal."""
    h = server(make_httpd, mpm, "CertAuthCRLDelay 4")
    serials = []
    for _ in range(2):
        st, hd, body = h.enroll(make_csr())
        assert st == 201, body
        serials.append(serial_of(hd))

    def rev(serial):
        st, _, doc, body = jrequest(
            h, "POST", "/ca/revoke", user="admin",
            body=('{"serial": "%s", "reason": "keyCompromise"}'
                  % serial).encode(),
            headers={"Content-Type": "application/json"})
        assert st == 200, body
    rev(serials[0])
    t0 = time.time()
    while int(serials[0], 16) not in {r.serial_number
                                      for r in get_crl(h)[0]}:
        assert time.time() - t0 < 10
        time.sleep(0.1)
    # the next CRL is made no sooner than 2 s after that one: lock first
    rev(serials[1])
    shell = SqliteShell(h.db)
    try:
        time.sleep(3)
        t0 = time.time()
        h.stop()
        took = time.time() - t0
    finally:
        shell.release()
        shell.kill()
    assert took < 8, took
    text = log_text(h)
    assert re.search(r"CA0701: cannot make a new CRL \(a change of status\)",
                     text), text[-3000:]
