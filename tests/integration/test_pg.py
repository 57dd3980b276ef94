"""Several front ends on one PostgreSQL database (issue 8, part 1).

A real PostgreSQL 15 (Debian's postgresql-15: initdb and pg_ctl in a
temporary directory, a free loopback port, its socket directory inside the
temporary directory) and two apache2 front ends with `DBDriver pgsql`
sharing it and the same CA: concurrent enrollments and revocations on both,
no duplicate serials, CRL numbers that only grow across both, a revocation on
one front end in the other's CRL within CertAuthCRLRefreshSeconds, and a
database restart (503 + Retry-After while it is down, success after, the
same httpd processes).  initdb and postgres refuse to run as root: as root
they run as the `postgres` system user.
"""
import base64
import json
import os
import pwd
import shutil
import signal
import tempfile
import threading
import time

import pytest
from cryptography import x509

import harness
from harness import ADMIN, run
from conftest import make_csr
from test_lifecycle import (Holder, crl_number, enroll, jrequest, renew,
                            revoke)

PGBIN = "/usr/lib/postgresql/15/bin"
REFRESH = 2          # CertAuthCRLRefreshSeconds of the front ends
MARGIN = 8           # polling margin on top of it (a correctness bound)


class Postgres:
    """A PostgreSQL cluster of the test's own, stopped by pg_ctl or by the
    postmaster's PID when the test is done."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="certauth-pg-")
        self.data = os.path.join(self.root, "data")
        self.sock = self.root
        self.port = harness.free_port()
        self.log = os.path.join(self.root, "postgres.log")
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)
        self.pg(["initdb", "-D", self.data, "-U", "certauth", "-A", "trust",
                 "-E", "UTF8", "--locale=C.UTF-8", "-N"], timeout=120)
        self.params = ("host=127.0.0.1 port=%d dbname=certauth user=certauth "
                       "connect_timeout=5" % self.port)

    def pg(self, cmd, timeout=60, check=True):
        full = [os.path.join(PGBIN, cmd[0])] + cmd[1:]
        if self.user:
            full = ["runuser", "-u", self.user, "--"] + full
        return run(full, timeout=timeout, check=check, cwd=self.root)

    def start(self):
        self.pg(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                 "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 "
                 "-c max_connections=200 -c fsync=off" % (self.port,
                                                          self.sock),
                 "start"], timeout=90)
        return self

    def createdb(self):
        self.pg(["createdb", "-h", self.sock, "-p", str(self.port), "-U",
                 "certauth", "certauth"])

    def psql(self, sql):
        r = self.pg(["psql", "-h", self.sock, "-p", str(self.port), "-U",
                     "certauth", "-d", "certauth", "-At", "-v",
                     "ON_ERROR_STOP=1", "-c", sql])
        return r.stdout.decode().strip()

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.postmaster_pid()
        if not pid:
            return
        self.pg(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                 "stop"], timeout=45, check=False)
        if harness.wait_gone(pid, 5):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def cleanup(self):
        self.stop()
        if not os.environ.get("CERTAUTH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


def pg_missing():
    return not all(os.access(os.path.join(PGBIN, b), os.X_OK)
                   for b in ("initdb", "pg_ctl", "postgres"))


def pgsql_driver_missing():
    import glob
    return not glob.glob("/usr/lib/*/apr-util-1/apr_dbd_pgsql*.so")


pytestmark = [
    pytest.mark.skipif(pg_missing(), reason="PostgreSQL 15 binaries absent "
                       "(%s); install postgresql-15" % PGBIN),
    pytest.mark.skipif(pgsql_driver_missing(),
                       reason="APR-util's pgsql DBD driver absent; install "
                              "libaprutil1-dbd-pgsql"),
]


@pytest.fixture
def pg():
    """Requested before make_httpd by the tests, so that it is stopped after
    the front ends."""
    p = Postgres()
    try:
        p.start()
        p.createdb()
        yield p
    finally:
        p.cleanup()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pgkeys"))


def front_end(make_httpd, pg, mpm="event", **kw):
    return make_httpd(mpm=mpm, db_driver="pgsql", db_params=pg.params,
                      vhost_conf="CertAuthCRLRefreshSeconds %d\n"
                                 "DBDMin 0\nDBDKeep 2\nDBDMax 8\n"
                                 "DBDExptime 60" % REFRESH, **kw)


def get_crl(h):
    st, hd, body = h.get("/ca/crl")
    assert st == 200, (st, body)
    return x509.load_der_x509_crl(body)


def revoked_serials(crl):
    return {r.serial_number for r in crl}


def stored_serials(pg):
    return pg.psql("SELECT serial FROM certauth_certs ORDER BY serial"
                   ).splitlines()


def crl_audit_numbers(pg):
    """The CRL numbers the front ends recorded making, oldest first."""
    rows = pg.psql("SELECT detail FROM certauth_audit WHERE action = 'crl' "
                   "AND outcome = 'ok'").splitlines()
    return [int(r.split()[2].rstrip(",")) for r in rows]


def test_two_front_ends_concurrent(pg, make_httpd, keys):
    h1 = front_end(make_httpd, pg, "event")
    h2 = front_end(make_httpd, pg, "prefork")
    fronts = [h1, h2]
    n = 24
    holders, errors = [None] * n, []

    def do_enroll(i):
        try:
            holders[i] = enroll(fronts[i % 2], keys,
                                ("alice", "bob")[i // 2 % 2])
        except Exception as e:          # reported below, with the others
            errors.append(repr(e))

    threads = [threading.Thread(target=do_enroll, args=(i,))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    serials = [x.serial for x in holders]
    # no duplicate serials, and every certificate stored once
    assert len(set(serials)) == n
    assert stored_serials(pg) == sorted(serials)
    assert h2.rows() == n

    # revocations on both at once, while CRLs are fetched from both
    victims = holders[: n // 2]
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            for h in fronts:
                try:
                    crl = get_crl(h)
                except Exception as e:
                    errors.append("crl: %r" % e)
                    return
                seen.append((crl_number(crl), revoked_serials(crl)))

    def do_revoke(i, x):
        try:
            st, _, doc, body = revoke(fronts[(i + 1) % 2], x.serial,
                                      "keyCompromise", user="admin")
            if st != 200:
                errors.append((st, body))
        except Exception as e:
            errors.append(repr(e))

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=do_revoke, args=(i, x))
               for i, x in enumerate(victims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    watcher.join(60)
    assert not errors, errors

    # the CRLs are made outside the requests, by each front end's watchdog
    # within CertAuthCRLDelay (2 s): both soon serve one listing them all
    want = {x.cert.serial_number for x in victims}
    for h in fronts:
        deadline = time.time() + 2 + REFRESH + MARGIN
        while True:
            crl = get_crl(h)
            if revoked_serials(crl) == want:
                break
            assert time.time() < deadline, (crl_number(crl), len(crl))
            time.sleep(0.2)
    # no CRL still to be made: both watchdogs had their CertAuthCRLDelay
    time.sleep(3)
    # none lost a race for the CRL number to another front end (they
    # queue on the CRL row instead)
    for h in fronts:
        assert "cannot make a new CRL" not in h.log(), h.log_tail()
    # every CRL number was made once, one after the other, across both;
    # a burst of revocations makes few CRLs, not one each
    numbers = crl_audit_numbers(pg)
    assert 1 <= len(numbers) <= len(victims) + 2, numbers
    assert sorted(numbers) == list(range(1, max(numbers) + 1)), numbers
    assert int(pg.psql("SELECT crl_number FROM certauth_crl")) == max(numbers)
    # a CRL's number names its content: a later one lists everything an
    # earlier one did (revocations only add)
    by_number = {}
    for num, revoked in seen:
        assert by_number.setdefault(num, revoked) == revoked, num
    nums = sorted(by_number)
    for a, b in zip(nums, nums[1:]):
        assert by_number[a] <= by_number[b], (a, b)
    # the last CRL made lists every revocation, and both serve it in time
    for h in fronts:
        deadline = time.time() + REFRESH + MARGIN
        while True:
            crl = get_crl(h)
            if crl_number(crl) == max(numbers):
                break
            assert time.time() < deadline, (crl_number(crl), numbers)
            time.sleep(0.2)
        assert revoked_serials(crl) == want
        assert crl.is_signature_valid(
            x509.load_pem_x509_certificate(h.ca.pem).public_key())
    statuses = dict(line.split("|") for line in pg.psql(
        "SELECT serial, status FROM certauth_certs").splitlines())
    assert statuses == {x.serial: "revoked" if x in victims else "valid"
                        for x in holders}


def test_revocation_reaches_other_front_end(pg, make_httpd, keys):
    h1 = front_end(make_httpd, pg)
    h2 = front_end(make_httpd, pg)
    x = enroll(h1, keys, "alice")
    # the other front end has a current CRL cached, without the certificate
    before = get_crl(h2)
    assert before.get_revoked_certificate_by_serial_number(
        x.cert.serial_number) is None
    assert revoke(h1, x.serial, "keyCompromise", user="alice")[0] == 200
    t0 = time.time()
    while True:
        crl = get_crl(h2)
        if crl.get_revoked_certificate_by_serial_number(x.cert.serial_number):
            break
        assert time.time() - t0 < REFRESH + MARGIN, \
            "front end 2 still serves CRL %d without %s" % (crl_number(crl),
                                                            x.serial)
        time.sleep(0.2)
    assert crl_number(crl) > crl_number(before)
    # the other front end sees the revocation in its own answers at once
    st, _, doc, body = jrequest(h2, "GET", "/ca/api/certs?owner=alice",
                                user="admin")
    assert st == 200, body
    assert {c["serial"]: c["status"] for c in doc["certificates"]}[
        x.serial] == "revoked"


def test_database_restart(pg, make_httpd, keys):
    h1 = front_end(make_httpd, pg, "event")
    h2 = front_end(make_httpd, pg, "prefork")
    pids = (h1.pid(), h2.pid())
    for h in (h1, h2):
        enroll(h, keys, "alice")
        get_crl(h)
    crl_before = get_crl(h1)

    pg.stop()
    for h in (h1, h2):
        csr, _ = make_csr()
        st, hd, body = h.enroll(csr, user="alice")
        assert st == 503, (st, body)
        assert hd.get("retry-after", "").isdigit(), hd
        assert json.loads(body)["error"] == "database unavailable"
        st, hd, body = h.request("GET", "/ca/api/certs", user="admin")
        assert st == 503 and hd.get("retry-after"), (st, body)
        st, hd, doc, body = revoke(h, "0A0B", "keyCompromise", user="admin")
        assert st == 503 and hd.get("retry-after"), (st, body)
        st, hd, body = h.request(
            "POST", "/.well-known/est/simpleenroll",
            body=base64.b64encode(make_csr(encoding="der")[0]),
            headers={"Content-Type": "application/pkcs10",
                     "Content-Transfer-Encoding": "base64"}, user="bob")
        assert st == 503 and hd.get("retry-after"), (st, body)
        # the cached CRL is still served while it is valid
        assert crl_number(get_crl(h)) >= crl_number(crl_before)

    pg.start()
    # the first requests after the restart succeed: connections that the
    # restart broke are reopened before use
    for h in (h1, h2):
        for _ in range(6):
            x = enroll(h, keys, "bob")
        assert revoke(h, x.serial, "superseded", user="bob")[0] == 200
    # concurrent requests use the other connections of the pools too
    results = []

    def one(h):
        csr, _ = make_csr()
        results.append(h.enroll(csr, user="alice")[0])
    threads = [threading.Thread(target=one, args=((h1, h2)[i % 2],))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [201] * 16, results
    assert (h1.pid(), h2.pid()) == pids
    for h in (h1, h2):
        harness.assert_no_crash(h)


def admin_sql(pg, sql):
    """One statement in a session of its own that may write whatever the
    database's default (default_transaction_read_only) says."""
    full = [os.path.join(PGBIN, "psql"), "-h", pg.sock, "-p", str(pg.port),
            "-U", "certauth", "-d", "certauth", "-At", "-v",
            "ON_ERROR_STOP=1", "-c", sql]
    if pg.user:
        full = ["runuser", "-u", pg.user, "--"] + full
    return run(full, timeout=60, cwd=pg.root,
               env=dict(os.environ,
                        PGOPTIONS="-c default_transaction_read_only=off"))


def enroll_status(h, user="alice"):
    csr, _ = make_csr()
    t0 = time.time()
    st, hd, body = h.enroll(csr, user=user)
    return st, hd, body, time.time() - t0


def until_201(h, within=15):
    t0 = time.time()
    while True:
        st, hd, body, _ = enroll_status(h)
        if st == 201 or time.time() - t0 > within:
            return st, body
        time.sleep(0.3)


def test_read_only_server(pg, make_httpd, keys):
    """The server turns read-only under the front ends, then writable
    again, without a restart of httpd: (1) for every session at once
    (ALTER SYSTEM default_transaction_read_only, reloaded); (2) for new
    sessions only (ALTER DATABASE ... SET default_transaction_read_only,
    as a standby that a failover left the front ends connected to): the
    sessions opened while it was so stay read-only after the database is
    writable again, until the module ends them.  While read-only: writes
    503 + Retry-After within the bound, reads answer; afterwards: 201 in
    the same processes."""
    h1 = front_end(make_httpd, pg, "event")
    h2 = front_end(make_httpd, pg, "prefork")
    pids = [(h.pid(), h.children()) for h in (h1, h2)]
    certs = {}
    for h in (h1, h2):
        certs[h] = enroll(h, keys, "alice")
        get_crl(h)

    def read_only_phase():
        for h in (h1, h2):
            for _ in range(4):
                st, hd, body, dt = enroll_status(h)
                assert st == 503, (st, body)
                assert hd.get("retry-after", "").isdigit(), hd
                assert json.loads(body)["error"] == "database unavailable"
                assert dt < 3 + 5, dt
            st, _, body = h.get("/ca/certs/" + certs[h].serial)
            assert st == 200, (st, body)

    def writable_phase():
        # every pooled connection of every child, as they come: each one
        # still read-only costs one 503 at most (a reload reaches the
        # sessions a moment later), none stays so
        for h in (h1, h2):
            for _ in range(12):
                st, body = until_201(h)
                assert st == 201, (body, h.log_tail(40))

    # (1) every session
    admin_sql(pg, "ALTER SYSTEM SET default_transaction_read_only = on")
    admin_sql(pg, "SELECT pg_reload_conf()")
    time.sleep(1)
    read_only_phase()
    admin_sql(pg, "ALTER SYSTEM RESET default_transaction_read_only")
    admin_sql(pg, "SELECT pg_reload_conf()")
    writable_phase()

    # (2) new sessions: the front ends' sessions end (a failover), the new
    # ones are read-only, and stay so when the database is writable again
    admin_sql(pg, "ALTER DATABASE certauth SET default_transaction_read_only"
                  " = on")
    admin_sql(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = 'certauth' AND pid <> pg_backend_pid()")
    read_only_phase()
    admin_sql(pg, "ALTER DATABASE certauth RESET default_transaction_read_only")
    writable_phase()

    for h, (parent, children) in zip((h1, h2), pids):
        # the same processes (prefork may have started more meanwhile)
        assert h.pid() == parent
        assert set(children) <= set(h.children()), "recovered by a restart?"
    for h in (h1, h2):
        text = open(h.error_log, errors="replace").read()
        assert "read-only transaction" in text, text[-3000:]
        assert "CA1302" in text, text[-3000:]
        harness.assert_no_crash(h)


def test_front_end_starts_before_database(pg, make_httpd, keys):
    """httpd starts while PostgreSQL is down (DBDMin 1: mod_dbd cannot fill
    its pool at child start): 503 until the database is up, then the schema
    is created by the first request and enrollment works, same processes."""
    pg.stop()
    h = make_httpd(db_driver="pgsql", db_params=pg.params,
                   vhost_conf="DBDMin 1\nDBDKeep 2\nDBDMax 8")
    pid = h.pid()
    csr, _ = make_csr()
    st, hd, body = h.enroll(csr, user="alice")
    assert st == 503 and hd.get("retry-after"), (st, body)
    assert "CA0108" in h.log()
    pg.start()
    x = enroll(h, keys, "alice")
    assert stored_serials(pg) == [x.serial]
    assert get_crl(h) is not None
    assert h.pid() == pid


def test_lifecycle_on_pgsql(pg, make_httpd, keys):
    """Existing behaviour on PostgreSQL: enroll, list, renew with the
    client certificate, revoke, audit, certauth-admin on the database,
    EST enrollment, per-owner limit."""
    h = front_end(make_httpd, pg, location_conf="CertAuthValidityDays 20\n"
                  "CertAuthMaxValidPerOwner 3")
    a1 = enroll(h, keys, "alice")
    st, _, body = renew(h, a1)
    assert st == 201, body
    a2 = Holder(body, a1.key, keys)
    st, _, doc, body = jrequest(h, "GET", "/ca/api/certs?owner=alice",
                                user="admin")
    assert st == 200, body
    got = {c["serial"]: c for c in doc["certificates"]}
    assert got[a1.serial]["status"] == "superseded"
    assert got[a1.serial]["replaced_by"] == a2.serial
    assert got[a2.serial]["status"] == "valid"
    # the renewed certificate cannot be renewed twice
    st, _, body = renew(h, a1)
    assert st == 403 and b"superseded" in body, body
    # a limit of 3 valid certificates, checked under a lock: 2 of 4
    # concurrent requests get in
    results = []

    def one():
        csr, _ = make_csr()
        results.append(h.enroll(csr, user="alice")[0])
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201, 201, 409, 409], results
    st, _, doc, body = revoke(h, a2.serial, "keyCompromise", user="alice")
    assert st == 200, body
    st, _, doc, body = revoke(h, a2.serial, "keyCompromise", user="alice")
    assert st == 409, body
    # search by subject text (LIKE with escapes) and by status
    st, _, doc, body = jrequest(h, "GET", "/ca/api/certs?status=revoked",
                                user="admin")
    assert st == 200 and [c["serial"] for c in doc["certificates"]] == [
        a2.serial], body
    st, _, doc, body = jrequest(h, "GET", "/ca/api/audit?serial=" + a2.serial,
                                user="admin")
    assert st == 200, body
    assert {e["action"] for e in doc["events"]} >= {"renew", "revoke"}
    # certauth-admin works on the same database
    r = run([ADMIN, "show", "--db", "pgsql:" + pg.params, a2.serial])
    assert b"revoked" in r.stdout
    b1 = enroll(h, keys, "bob")
    r = run([ADMIN, "revoke", "--db", "pgsql:" + pg.params, b1.serial,
             "--reason", "keyCompromise"])
    deadline = time.time() + REFRESH + MARGIN
    while not get_crl(h).get_revoked_certificate_by_serial_number(
            b1.cert.serial_number):
        assert time.time() < deadline
        time.sleep(0.2)
    # EST simpleenroll stores its certificate in the same database
    csr, _ = make_csr(encoding="der")
    st, hd, body = h.request(
        "POST", "/.well-known/est/simpleenroll",
        body=base64.b64encode(csr),
        headers={"Content-Type": "application/pkcs10",
                 "Content-Transfer-Encoding": "base64"}, user="bob")
    assert st == 200, body
    assert len(stored_serials(pg)) == h.rows()


def test_store_unit_tests_on_pgsql(pg):
    """The core store's own tests against this PostgreSQL
    (tests/unit/test_store_pg.c; `make unit` runs only its SQL part)."""
    binary = os.path.join(harness.BUILD, "tests", "test_store_pg")
    if not os.path.exists(binary):
        run(["make", "-C", harness.REPO, "build/tests/test_store_pg"],
            timeout=120)
    r = run([binary], timeout=120, check=False,
            env=dict(os.environ, CERTAUTH_TEST_PGSQL=pg.params))
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "test_pg_crl_lock" in out and "0 failed" in out, out
    assert "ok   test_pg_read_only" in out, out
