"""No certificate is answered before its row is committed (issue 15).

Enrollments run from many client threads at once, so that the module's
group commit puts several in one commit; the server (parent and children)
is then killed with SIGKILL while requests are in flight.  Every serial a
client received in a 201 answer must be in the database afterwards, with
its audit record (the certificate and its record are one commit)."""
import os
import signal
import threading
import time

from cryptography import x509

from conftest import make_csr
from harness import run

THREADS = 16


def kill_server(h):
    """SIGKILL the parent first (so it starts no new child), then every
    child."""
    pid = h.pid()
    kids = h.children()
    for p in [pid] + kids:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.time() + 20
    for p in [pid] + kids:
        while time.time() < deadline:
            try:
                os.kill(p, 0)
            except (ProcessLookupError, TypeError):
                break
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)


def db_rows(h, sql):
    r = run(["sqlite3", "-batch", h.db, sql], user=h.user, timeout=60)
    return set(r.stdout.decode().split())


def test_answered_serials_survive_kill(make_httpd):
    h = make_httpd(server_conf="CertAuthDBMaxWaiters 32\n")
    csrs = [make_csr("p256", cn="durable-%d" % i)[0] for i in range(THREADS)]
    answered = []
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def client(i):
        while not stop.is_set():
            try:
                status, _, body = h.enroll(csrs[i], timeout=30)
            except Exception:  # the server was killed: no answer
                if not stop.is_set():
                    errors.append(i)
                return
            if status == 201:
                cert = x509.load_pem_x509_certificate(body)
                s = "%X" % cert.serial_number
                with lock:
                    answered.append("0" + s if len(s) % 2 else s)

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    # load until a good number were answered, then kill mid-flight
    deadline = time.time() + 120
    while time.time() < deadline:
        with lock:
            if len(answered) >= 150:
                break
        time.sleep(0.05)
    with lock:
        before_kill = list(answered)
    stop.set()
    kill_server(h)
    for t in threads:
        t.join(60)
    assert len(before_kill) >= 150, "too few enrollments answered"
    assert not errors, "requests failed before the kill"
    with lock:
        got = list(answered)  # answers that arrived just before the kill
    stored = db_rows(h, "SELECT serial FROM certauth_certs")
    audited = db_rows(h, "SELECT serial FROM certauth_audit "
                         "WHERE action = 'enroll' AND outcome = 'ok'")
    missing = [s for s in got if s not in stored]
    assert not missing, "answered but not stored: %s" % missing[:5]
    unaudited = [s for s in got if s not in audited]
    assert not unaudited, "answered without audit record: %s" % unaudited[:5]
    # nothing stored without its record either (one commit for both)
    assert stored == audited


def test_group_commit_shares_commits(make_httpd):
    """Concurrent enrollments of one child share commits: the debug log
    reports commits holding several write units, and every answer is
    stored once with one audit record."""
    # every one of the 16 may wait to write (CertAuthDBMaxWaiters): a unit
    # queued for another's commit counts as waiting
    h = make_httpd(server_conf="StartServers 1\nServerLimit 1\n"
                   "ThreadsPerChild 16\nMinSpareThreads 1\n"
                   "MaxSpareThreads 16\nMaxRequestWorkers 16\n"
                   "CertAuthDBMaxWaiters 32\n")
    csrs = [make_csr("p256", cn="group-%d" % i)[0] for i in range(THREADS)]
    answered = []
    lock = threading.Lock()

    def client(i):
        for _ in range(12):
            status, _, body = h.enroll(csrs[i], timeout=60)
            assert status == 201, body
            with lock:
                answered.append(x509.load_pem_x509_certificate(body))

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(answered) == THREADS * 12
    with open(h.error_log) as f:
        log = f.read()
    assert "group commit:" in log, "no commit held more than one unit"
    stored = db_rows(h, "SELECT serial FROM certauth_certs")
    assert len(stored) == THREADS * 12
    r = run(["sqlite3", "-batch", h.db, "SELECT COUNT(*) FROM certauth_audit "
             "WHERE action = 'enroll' AND outcome = 'ok'"], user=h.user)
    assert int(r.stdout.strip()) == THREADS * 12
