"""certauth-admin import (issue 18): an `openssl ca` directory made with the
how-to's own commands (seed 004: its openssl.cnf, `openssl req -x509`,
`openssl ca`, `-revoke` with `-crl_reason` and friends, `-gencrl`) goes
into the store; the imported store, the next CRL (same revoked serials and
reasons, a higher number) and the certificates served by serial by a real
httpd are checked."""
import calendar
import hashlib
import os
import pwd
import shutil
import sqlite3
import subprocess
import time

import pytest
from cryptography import x509

from harness import ADMIN, Httpd, run, assert_no_crash
import test_pg
from test_pg import pg  # noqa: F401  (test_pg.py's fixture, reused)
from test_lifecycle import revoke

# The how-to's configuration file, verbatim (its "Configuration File"
# section: MD5, 1024-bit RSA, no crlnumber), and one line the tests add
# for numbered CRLs (`crlnumber`, as `openssl ca -gencrl` needs for them).
HOWTO_CNF = """#
# OpenSSL configuration file.
#
# Establish working directory.

dir                = .

[ ca ]
default_ca         = CA_default

[ CA_default ]
serial             = $dir/serial
database           = $dir/index.txt
new_certs_dir      = $dir/newcerts
certificate         = $dir/cacert.pem
private_key        = $dir/private/cakey.pem
default_days       = 365
default_md         = md5
preserve          = no
email_in_dn        = no
nameopt            = default_ca
certopt            = default_ca
policy             = policy_match

[ policy_match ]
countryName        = match
stateOrProvinceName = match
organizationName   = match
organizationalUnitName = optional
commonName         = supplied
emailAddress        = optional

[ req ]
default_bits       = 1024                # Size of keys
default_keyfile    = key.pem             # name of generated keys
default_md         = md5                 # message digest algorithm
string_mask        = nombstr             # permitted characters
distinguished_name = req_distinguished_name
req_extensions     = v3_req

[ req_distinguished_name ]
# Variable name          Prompt string
#-----
0.organizationName      = Organization Name (company)
organizationalUnitName  = Organizational Unit Name (department, division)
emailAddress             = Email Address
emailAddress_max         = 40
localityName             = Locality Name (city, district)
stateOrProvinceName     = State or Province Name (full name)
countryName              = Country Name (2 letter code)
countryName_min         = 2
countryName_max         = 2
commonName               = Common Name (hostname, IP, or your name)
commonName_max          = 64

# Default values for the above, for consistency and less typing.
# Variable name          Value
#-----
0.organizationName_default = The Sample Company
localityName_default      = Metropolis
stateOrProvinceName_default = New York
countryName_default       = US

[ v3_ca ]
basicConstraints          = CA:TRUE
subjectKeyIdentifier      = hash
authorityKeyIdentifier    = keyid:always,issuer:always

[ v3_req ]
basicConstraints          = CA:FALSE
subjectKeyIdentifier      = hash
"""

PASS = "demo"
DN = "/O=The Sample Company/ST=New York/C=US"

# what each certificate of the directory gets: (CN, revoke arguments or
# None).  CRLReason codes as the CRL carries them.
PLAN = [
    ("mail.sample.com", None, None),
    ("www.sample.com", ["-crl_reason", "keyCompromise"], 1),
    ("old.sample.com", ["-crl_reason", "superseded"], 4),
    ("hold.sample.com", ["-crl_hold", "holdInstructionReject"], 6),
    ("lost.sample.com", ["-crl_compromise", "20260101000000Z"], 1),
    ("cac.sample.com", ["-crl_CA_compromise", "20260102000000Z"], 2),
    ("plain.sample.com", [], None),
    ("gone.sample.com", ["-crl_reason", "cessationOfOperation"], 5),
]


def ts(naive_utc):
    return calendar.timegm(naive_utc.utctimetuple())


def ossl(d, *args, inp=None):
    return run(["openssl"] + list(args), cwd=d, input=inp, timeout=60)


def make_howto_ca(d, crlnumber=True):
    """The how-to's directory: one-time setup, a root, the plan's
    certificates signed, revoked and a CRL; plus one expired certificate
    marked E by -updatedb.  Returns the openssl CRL (cryptography)."""
    os.makedirs(os.path.join(d, "newcerts"))
    os.makedirs(os.path.join(d, "private"))
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("01\n")
    open(os.path.join(d, "index.txt"), "w").close()
    cnf = HOWTO_CNF
    if crlnumber:
        cnf = cnf.replace("policy             = policy_match\n",
                          "policy             = policy_match\n"
                          "crlnumber          = $dir/crlnumber\n")
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("01\n")
    with open(os.path.join(d, "openssl.cnf"), "w") as f:
        f.write(cnf)
    ossl(d, "req", "-new", "-x509", "-extensions", "v3_ca", "-keyout",
         "private/cakey.pem", "-out", "cacert.pem", "-days", "365",
         "-config", "./openssl.cnf", "-passout", "pass:" + PASS,
         "-subj", "/O=The Sample Company/L=Metropolis/ST=New York/C=US"
                  "/CN=Sample Root CA")
    os.chmod(os.path.join(d, "private", "cakey.pem"), 0o600)
    for cn, _, _ in PLAN + [("expired.sample.com", None, None)]:
        ossl(d, "req", "-new", "-nodes", "-out", "req.pem", "-keyout",
             "key.pem", "-config", "./openssl.cnf",
             "-subj", "/O=The Sample Company/OU=Mail Server/ST=New York/C=US"
                      "/CN=" + cn)
        extra = []
        if cn == "expired.sample.com":
            extra = ["-startdate", "20200101000000Z", "-enddate",
                     "20200201000000Z"]
        ossl(d, "ca", "-batch", "-passin", "pass:" + PASS, "-out",
             "cert.pem", "-config", "./openssl.cnf", *extra,
             "-infiles", "req.pem")
    for i, (cn, rev, _) in enumerate(PLAN):
        if rev is not None:
            ossl(d, "ca", "-revoke", "newcerts/%02X.pem" % (i + 1),
                 "-config", "./openssl.cnf", "-passin", "pass:" + PASS, *rev)
    ossl(d, "ca", "-updatedb", "-config", "./openssl.cnf", "-passin",
         "pass:" + PASS)
    ossl(d, "ca", "-gencrl", "-crldays", "31", "-config", "./openssl.cnf",
         "-out", "rootca.crl", "-passin", "pass:" + PASS)
    if crlnumber:
        # a second CRL, as a site that has run for a while has
        ossl(d, "ca", "-gencrl", "-crldays", "31", "-config",
             "./openssl.cnf", "-out", "rootca.crl", "-passin",
             "pass:" + PASS)
    with open(os.path.join(d, "rootca.crl"), "rb") as f:
        return x509.load_pem_x509_crl(f.read())


def admin(*args, user=None, check=False):
    r = run([ADMIN] + list(args), check=check, user=user)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def rows(db):
    con = sqlite3.connect(db)
    try:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT serial, status, revoked_at, reason, invalidity_at, "
            "subject, owner, profile, not_after FROM certauth_certs")}
    finally:
        con.close()


def dump(db):
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@pytest.fixture(scope="module")
def howto(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("howto") / "CA")
    os.makedirs(d)
    crl = make_howto_ca(d)
    return d, crl


@pytest.fixture
def copy(howto, tmp_path):
    """A copy of the directory a test may spoil."""
    d = str(tmp_path / "CA")
    shutil.copytree(howto[0], d)
    return d


def index_lines(d):
    with open(os.path.join(d, "index.txt")) as f:
        return f.read().split("\n")


def test_index_has_every_kind(howto):
    """The directory really holds V, R (with each revocation form) and E
    lines, as openssl ca wrote them."""
    lines = [l for l in index_lines(howto[0]) if l]
    kinds = [l.split("\t")[0] for l in lines]
    assert kinds.count("V") == 1 and kinds.count("E") == 1
    assert kinds.count("R") == 7
    revs = [l.split("\t")[2] for l in lines]
    assert any(r.endswith(",keyCompromise") for r in revs)
    assert any(",holdInstruction," in r for r in revs)
    assert any(",keyTime,20260101000000Z" in r for r in revs)
    assert any(",CAkeyTime,20260102000000Z" in r for r in revs)
    assert any(r and "," not in r for r in revs)      # -revoke, no reason


def test_dry_run_stores_nothing(howto, tmp_path):
    d = howto[0]
    db = str(tmp_path / "ca.db")
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt", "--dry-run")
    assert rc == 0, err
    assert "9 certificates (1 V, 7 R, 1 E)" in out
    assert "dry run, nothing stored: would add 9, revoke 0" in out
    # crlnumber holds 03 after two CRLs: the next one is number 3
    assert "next CRL would be number 3" in out
    assert rows(db) == {}


def test_import_store_and_idempotent(howto, tmp_path):
    d, oldcrl = howto
    db = str(tmp_path / "ca.db")
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt", "--certs", d + "/newcerts",
                         "--crlnumber", d + "/crlnumber", "--ca-cert",
                         d + "/cacert.pem")
    assert rc == 0, err
    assert "imported: 9 added, 0 revoked, 0 unchanged" in out
    assert "next CRL will be number 3" in out
    got = rows(db)
    assert len(got) == 9
    for i, (cn, rev, reason) in enumerate(PLAN):
        serial = "%02X" % (i + 1)
        status, revoked_at, r, inval, subject, owner, profile, _ = got[serial]
        assert owner == cn and profile == "default"
        assert subject.startswith("CN=%s,OU=Mail Server," % cn)
        if rev is None:
            assert status == "valid" and r == -1
        else:
            assert status == "revoked" and revoked_at > 0
            assert r == (reason if reason is not None else -1)
    assert got["04"][3] == 0 and got["05"][3] == 1767225600
    assert got["06"][3] == 1767312000
    # E: stored valid, its notAfter in the past (2020-02-01)
    assert got["09"][0] == "valid" and got["09"][7] == 1580515200
    # the revocation dates are those of index.txt
    for l in index_lines(d):
        f = l.split("\t")
        if f[0] == "R":
            e = oldcrl.get_revoked_certificate_by_serial_number(int(f[3], 16))
            assert ts(e.revocation_date) == got[f[3]][1]
    con = sqlite3.connect(db)
    assert con.execute("SELECT crl_number FROM certauth_crl").fetchone()[0] \
        == 2
    assert con.execute("SELECT count(*) FROM certauth_audit WHERE "
                       "action = 'import'").fetchone()[0] == 1
    con.close()

    before = dump(db)
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt")
    assert rc == 0, err
    assert "already imported: all 9 certificates are stored and unchanged" \
        in out
    assert dump(db) == before


def test_import_revocation_since(copy, tmp_path):
    """Imported once, revoked later with openssl ca, imported again: the
    new revocation is applied, the rest unchanged."""
    d = copy
    db = str(tmp_path / "ca.db")
    assert admin("import", "--db", "sqlite3:" + db, "--index",
                 d + "/index.txt")[0] == 0
    ossl(d, "ca", "-revoke", "newcerts/01.pem", "-config", "./openssl.cnf",
         "-passin", "pass:" + PASS, "-crl_reason", "affiliationChanged")
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt")
    assert rc == 0, err
    assert "imported: 0 added, 1 revoked, 8 unchanged" in out
    assert rows(db)["01"][:1] == ("revoked",) and rows(db)["01"][2] == 3


def fails(d, db, expect, *extra):
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt", *extra)
    assert rc == 1, (out, err)
    assert expect in err, err
    assert "nothing imported" in err
    assert not os.path.exists(db) or rows(db) == {}
    return err


def rewrite_line(d, n, fn):
    lines = index_lines(d)
    lines[n - 1] = fn(lines[n - 1])
    with open(os.path.join(d, "index.txt"), "w") as f:
        f.write("\n".join(lines))


@pytest.mark.parametrize("line,change,expect", [
    (3, lambda l: "X" + l[1:], "index.txt:3: status 'X' is not V, R or E"),
    (2, lambda l: l.replace("\t", " ", 1), "index.txt:2: 5 tab-separated"),
    (4, lambda l: l + "\textra", "index.txt:4: 7 tab-separated"),
    (5, lambda l: "\t".join(l.split("\t")[:2] + ["2601011200Z"]
                            + l.split("\t")[3:]),
     "index.txt:5: revocation date '2601011200Z'"),
    (2, lambda l: l.replace(",keyCompromise", ",badReason"),
     "index.txt:2: unknown revocation reason 'badReason'"),
    (1, lambda l: "\t".join(l.split("\t")[:2] + ["261206000000Z"]
                            + l.split("\t")[3:]),
     "index.txt:1: a V line has a revocation field"),
    (7, lambda l: "\t".join(l.split("\t")[:3] + ["ZZ"]
                            + l.split("\t")[4:]),
     "index.txt:7: serial 'ZZ' is not a serial number"),
    (8, lambda l: "\t".join(l.split("\t")[:3] + ["01"]
                            + l.split("\t")[4:]),
     "index.txt:8: serial 01 is already on line 1"),
    (6, lambda l: "", "index.txt:6: empty line"),
    (1, lambda l: l.replace("CN=mail", "CN=mall"),
     "has subject /C=US/ST=New York/O=The Sample Company/OU=Mail Server"
     "/CN=mail.sample.com, the line says"),
    (1, lambda l: l.replace("\t" + l.split("\t")[1] + "\t",
                            "\t301231000000Z\t"),
     "expires"),
])
def test_malformed_line(copy, tmp_path, line, change, expect):
    rewrite_line(copy, line, change)
    fails(copy, str(tmp_path / "ca.db"), expect)


def test_missing_and_foreign_files(copy, tmp_path):
    d = copy
    db = str(tmp_path / "ca.db")
    os.rename(d + "/newcerts/03.pem", d + "/03.pem")
    err = fails(d, db, "newcerts/03.pem: cannot be read")
    assert "(%s/index.txt:3)" % d in err
    # another certificate in its place: the serial does not match
    shutil.copy(d + "/newcerts/02.pem", d + "/newcerts/03.pem")
    fails(d, db, "newcerts/03.pem: holds serial 02, the line says 03")
    os.rename(d + "/03.pem", d + "/newcerts/03.pem")
    # a certificate of another CA with the same subject and serial
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_howto_ca(other, crlnumber=False)
    shutil.copy(other + "/newcerts/01.pem", d + "/newcerts/01.pem")
    err = fails(d, db, "newcerts/01.pem:")
    assert "index.txt:1)" in err
    assert ("expires" in err or "not issued by the CA" in err
            or "signature" in err), err


def test_foreign_ca_certificate(copy, tmp_path):
    """The right certificates, checked against another CA certificate."""
    d = copy
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_howto_ca(other, crlnumber=False)
    # the same subject (both made by the how-to): the names match, the
    # signature does not
    fails(d, str(tmp_path / "ca.db"), "newcerts/01.pem: has a signature the "
          "CA certificate's key does not verify", "--ca-cert",
          other + "/cacert.pem")


def test_bad_crlnumber(copy, tmp_path):
    with open(copy + "/crlnumber", "w") as f:
        f.write("nope\n")
    fails(copy, str(tmp_path / "ca.db"), "crlnumber:1: 'nope' is not a CRL "
          "number")


def test_conflicting_store(howto, tmp_path):
    """A store where a serial holds another certificate: nothing of the
    directory is imported (all or nothing), the store is unchanged."""
    d = howto[0]
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_howto_ca(other, crlnumber=False)
    db = str(tmp_path / "ca.db")
    assert admin("import", "--db", "sqlite3:" + db, "--index",
                 other + "/index.txt")[0] == 0
    before = dump(db)
    rc, out, err = admin("import", "--db", "sqlite3:" + db, "--index",
                         d + "/index.txt")
    assert rc == 1
    assert "index.txt:1: serial 01 is stored with another certificate" in err
    assert dump(db) == before


def test_owner_from(howto, tmp_path):
    d = howto[0]
    db = str(tmp_path / "ca.db")
    # email_in_dn = no: the how-to's certificates carry no e-mail address
    rc, _, err = admin("import", "--db", "sqlite3:" + db, "--index",
                       d + "/index.txt", "--owner-from", "email")
    assert rc == 1 and "has no e-mail address to take the owner from" in err
    assert admin("import", "--db", "sqlite3:" + db, "--index",
                 d + "/index.txt", "--owner-from", "mailadmin", "--profile",
                 "legacy")[0] == 0
    assert {r[5:7] for r in rows(db).values()} == {("mailadmin", "legacy")}


def test_served_after_import(howto, ca, tmp_path):
    """A real httpd on the imported store, with the how-to's CA (its key
    encrypted with the pass phrase): the certificates by serial, and the
    next CRL: the same serials and reasons as openssl's, a higher number."""
    d, oldcrl = howto
    passfile = str(tmp_path / "pass")
    with open(passfile, "w") as f:
        f.write(PASS + "\n")
    os.chmod(passfile, 0o600)
    h = Httpd(ca, ca_directives=(
        "CertAuthCACertificateFile %s/cacert.pem\n"
        "CertAuthCAKeyFile %s/private/cakey.pem\n"
        "CertAuthCAPassPhrase file:%s\n"
        "CertAuthBaseURL https://127.0.0.1/ca\n" % (d, d, passfile)))
    try:
        rc, out, err = admin("import", "--db", "sqlite3:" + h.db, "--index",
                             d + "/index.txt")
        assert rc == 0, err
        # made by root here: handed to the httpd user, as an operator would
        pw = pwd.getpwnam(h.user) if h.user else None
        for f in os.listdir(h.dbdir):
            if pw:
                os.chown(os.path.join(h.dbdir, f), pw.pw_uid, pw.pw_gid)
        h.start()
        for i in range(1, 10):
            serial = "%02X" % i
            with open("%s/newcerts/%s.pem" % (d, serial), "rb") as f:
                want = x509.load_pem_x509_certificate(f.read())
            st, hd, body = h.get("/ca/certs/%s.pem" % serial.lower())
            assert st == 200, body
            assert x509.load_pem_x509_certificate(body) == want
        st, _, body = h.get("/ca/crl")
        assert st == 200
        crl = x509.load_der_x509_crl(body)
        num = crl.extensions.get_extension_for_class(x509.CRLNumber)
        oldnum = oldcrl.extensions.get_extension_for_class(x509.CRLNumber)
        assert oldnum.value.crl_number == 2
        assert num.value.crl_number == 3

        def listing(c):
            out = {}
            for e in c:
                try:
                    r = e.extensions.get_extension_for_class(
                        x509.CRLReason).value.reason.name
                except x509.ExtensionNotFound:
                    r = None
                out[e.serial_number] = (r, ts(e.revocation_date))
            return out
        assert listing(crl) == listing(oldcrl)
        assert len(listing(crl)) == 7
        with open(d + "/cacert.pem", "rb") as f:
            cacert = x509.load_pem_x509_certificate(f.read())
        assert crl.is_signature_valid(cacert.public_key())
        h.stop()
        assert_no_crash(h)
    finally:
        h.cleanup()


# ---------------------------------------------------------------------------
# The same import into PostgreSQL: a cluster of the test's own (test_pg.py's
# Postgres and `pg` fixture), the directory above; the rows compared with
# the SQLite import of the same directory, idempotency down to the row
# versions, all or nothing on a bad line and on a failure inside the
# transaction, the next CRL and a front end on that database.

CERT_COLS = ("serial, subject, owner, profile, not_before, not_after, "
             "issued_at, status, revoked_at, reason, invalidity_at, "
             "replaced_by")


def on_pg(fn):
    """Skipped, with test_pg.py's reasons, without PostgreSQL 15 or
    APR-util's pgsql driver."""
    for mark in test_pg.pytestmark:
        fn = mark(fn)
    return fn


def pg_db(pg):
    return "pgsql:" + pg.params


def pg_rows(pg):
    """serial -> the columns of CERT_COLS after it and the MD5 of the PEM
    (psql's -A output would split the PEM's lines)."""
    if pg.psql("SELECT to_regclass('certauth_certs') IS NULL") == "t":
        return {}
    out = {}
    for line in pg.psql("SELECT %s, md5(cert_pem) FROM certauth_certs "
                        "ORDER BY serial" % CERT_COLS).splitlines():
        f = line.split("|")
        out[f[0]] = tuple(f[1:])
    return out


def sqlite_rows(db):
    con = sqlite3.connect(db)
    try:
        return {r[0]: tuple(str(x) for x in r[1:-1])
                + (hashlib.md5(r[-1].encode()).hexdigest(),)
                for r in con.execute("SELECT %s, cert_pem FROM "
                                     "certauth_certs" % CERT_COLS)}
    finally:
        con.close()


def pg_snapshot(pg):
    """Every row of the store with its row version (xmin): an UPDATE that
    writes the same values still shows as a change."""
    out = {}
    for t in ("certauth_certs", "certauth_crl", "certauth_audit"):
        out[t] = pg.psql("SELECT xmin, md5(t::text) FROM %s t ORDER BY 2"
                         % t)
    return out


@on_pg
def test_pg_import_store_and_idempotent(howto, pg, tmp_path):
    d, oldcrl = howto
    args = ["--index", d + "/index.txt", "--certs", d + "/newcerts",
            "--crlnumber", d + "/crlnumber", "--ca-cert", d + "/cacert.pem"]
    rc, out, err = admin("import", "--db", pg_db(pg), *args, "--dry-run")
    assert rc == 0, err
    assert "dry run, nothing stored: would add 9, revoke 0" in out
    assert pg_rows(pg) == {}

    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 0, err
    assert "imported: 9 added, 0 revoked, 0 unchanged" in out
    assert "next CRL will be number 3" in out
    got = pg_rows(pg)
    # column by column what the SQLite import of the same directory stores
    db = str(tmp_path / "ca.db")
    assert admin("import", "--db", "sqlite3:" + db, *args)[0] == 0
    assert got == sqlite_rows(db)
    # and what the plan says (subject, owner, status, reason, dates)
    for i, (cn, rev, reason) in enumerate(PLAN):
        (subject, owner, profile, nb, na, issued, status, revoked_at, r,
         inval, replaced, _) = got["%02X" % (i + 1)]
        assert owner == cn and profile == "default" and replaced == ""
        assert subject.startswith("CN=%s,OU=Mail Server," % cn)
        if rev is None:
            assert (status, revoked_at, r) == ("valid", "0", "-1")
        else:
            assert status == "revoked" and int(revoked_at) > 0
            assert int(r) == (reason if reason is not None else -1)
    assert got["05"][9] == "1767225600" and got["06"][9] == "1767312000"
    assert got["09"][6] == "valid" and got["09"][4] == "1580515200"
    for l in index_lines(d):
        f = l.split("\t")
        if f[0] == "R":
            e = oldcrl.get_revoked_certificate_by_serial_number(int(f[3], 16))
            assert ts(e.revocation_date) == int(got[f[3]][7])
    assert pg.psql("SELECT crl_number FROM certauth_crl") == "2"
    assert pg.psql("SELECT count(*) FROM certauth_audit WHERE action = "
                   "'import'") == "1"

    # a second run changes nothing: not a row rewritten
    before = pg_snapshot(pg)
    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 0, err
    assert "already imported: all 9 certificates are stored and unchanged" \
        in out
    assert pg_snapshot(pg) == before
    # nor a dry run of it
    rc, out, err = admin("import", "--db", pg_db(pg), *args, "--dry-run")
    assert rc == 0 and "would add 0, revoke 0, leave 9 unchanged" in out
    assert pg_snapshot(pg) == before


@on_pg
def test_pg_import_revocation_since(copy, pg):
    d = copy
    assert admin("import", "--db", pg_db(pg), "--index",
                 d + "/index.txt")[0] == 0
    before = pg_rows(pg)
    ossl(d, "ca", "-revoke", "newcerts/01.pem", "-config", "./openssl.cnf",
         "-passin", "pass:" + PASS, "-crl_reason", "affiliationChanged")
    rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                         d + "/index.txt")
    assert rc == 0, err
    assert "imported: 0 added, 1 revoked, 8 unchanged" in out
    after = pg_rows(pg)
    assert after["01"][6:9] == ("revoked", after["01"][7], "3")
    assert int(after["01"][7]) > 0
    assert {k: v for k, v in after.items() if k != "01"} == \
        {k: v for k, v in before.items() if k != "01"}


@on_pg
def test_pg_import_bad_line_imports_nothing(copy, pg, tmp_path):
    """A malformed line in the middle: nothing of the directory, neither
    into an empty store nor into one that holds certificates already."""
    d = copy
    rewrite_line(d, 5, lambda l: l.replace(",keyTime,", ",keyTim,"))
    rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                         d + "/index.txt")
    assert rc == 1, (out, err)
    assert "index.txt:5: reason keyTim takes no argument" in err
    assert "nothing imported" in err
    assert pg_rows(pg) == {}
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_howto_ca(other, crlnumber=False)
    assert admin("import", "--db", pg_db(pg), "--index",
                 other + "/index.txt")[0] == 0
    before = pg_snapshot(pg)
    rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                         d + "/index.txt")
    assert rc == 1 and "nothing imported" in err
    assert pg_snapshot(pg) == before


@on_pg
def test_pg_import_rolls_back_inside_the_transaction(howto, pg, tmp_path):
    """Failures after some rows went in: the transaction is rolled back,
    the store is as before (rows, CRL number, audit)."""
    d = howto[0]
    args = ["--index", d + "/index.txt", "--crlnumber", d + "/crlnumber"]
    # the schema first (an import of nothing but comments)
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    with open(empty + "/index.txt", "w") as f:
        f.write("# nothing\n")
    assert admin("import", "--db", pg_db(pg), "--index", empty +
                 "/index.txt", "--ca-cert", d + "/cacert.pem")[0] == 0
    # 1. the database refuses the fifth row
    pg.psql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.serial = '05' THEN RAISE EXCEPTION "
            "'refused by the test'; END IF; RETURN NEW; END $$")
    pg.psql("CREATE TRIGGER refuse BEFORE INSERT ON certauth_certs FOR EACH "
            "ROW EXECUTE FUNCTION refuse()")
    before = pg_snapshot(pg)
    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 1, (out, err)
    assert "refused by the test" in err and "nothing imported" in err
    assert pg_snapshot(pg) == before and pg_rows(pg) == {}
    assert pg.psql("SELECT crl_number FROM certauth_crl") == "0"
    pg.psql("DROP TRIGGER refuse ON certauth_certs")

    # 2. the last line's serial is stored with another certificate: the
    # eight rows before it are not kept
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_howto_ca(other, crlnumber=False)
    assert admin("import", "--db", pg_db(pg), "--index",
                 other + "/index.txt")[0] == 0
    pg.psql("DELETE FROM certauth_certs WHERE serial <> '09'")
    before = pg_snapshot(pg)
    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 1, (out, err)
    assert "index.txt:9: serial 09 is stored with another certificate" in err
    assert pg_snapshot(pg) == before and list(pg_rows(pg)) == ["09"]
    pg.psql("DELETE FROM certauth_certs")

    # 3. the audit record is refused: it belongs to the same transaction,
    # so the rows do not stay without it
    pg.psql("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN IF NEW.action = 'import' THEN RAISE EXCEPTION "
            "'audit refused by the test'; END IF; RETURN NEW; END $$")
    pg.psql("CREATE TRIGGER refuse_audit BEFORE INSERT ON certauth_audit "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
    before = pg_snapshot(pg)
    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 1, (out, err)
    assert "audit refused by the test" in err and "nothing imported" in err
    assert pg_snapshot(pg) == before and pg_rows(pg) == {}
    pg.psql("DROP TRIGGER refuse_audit ON certauth_audit")

    # the store is usable: the directory goes in, with its audit record
    rc, out, err = admin("import", "--db", pg_db(pg), *args)
    assert rc == 0, err
    assert "imported: 9 added, 0 revoked, 0 unchanged" in out
    assert len(pg_rows(pg)) == 9
    assert pg.psql("SELECT count(*) FROM certauth_audit WHERE action = "
                   "'import' AND detail = '%s/index.txt: 9 added, 0 revoked, "
                   "0 unchanged'" % d) == "1"


@on_pg
def test_pg_served_after_import(howto, copy, ca, pg, tmp_path):
    """A front end on the imported PostgreSQL store, with the how-to's CA:
    the certificates by serial, the next CRL (same serials, reasons and
    dates as openssl's, the number continued); a revocation made with
    `openssl ca` and imported while the front end runs reaches its CRL; a
    revocation on the front end, and an import after it that changes
    nothing and lowers no number."""
    d, oldcrl = copy, howto[1]
    # one more certificate, signed after the CRL: valid at the import
    ossl(d, "req", "-new", "-nodes", "-out", "req.pem", "-keyout", "key.pem",
         "-config", "./openssl.cnf", "-subj", "/O=The Sample Company"
         "/OU=Mail Server/ST=New York/C=US/CN=late.sample.com")
    ossl(d, "ca", "-batch", "-passin", "pass:" + PASS, "-out", "cert.pem",
         "-config", "./openssl.cnf", "-infiles", "req.pem")
    passfile = str(tmp_path / "pass")
    with open(passfile, "w") as f:
        f.write(PASS + "\n")
    os.chmod(passfile, 0o600)
    rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                         d + "/index.txt")
    assert rc == 0, err
    h = Httpd(ca, db_driver="pgsql", db_params=pg.params, ca_directives=(
        "CertAuthCACertificateFile %s/cacert.pem\n"
        "CertAuthCAKeyFile %s/private/cakey.pem\n"
        "CertAuthCAPassPhrase file:%s\n"
        "CertAuthBaseURL https://127.0.0.1/ca\n" % (d, d, passfile)),
        vhost_conf="CertAuthCRLRefreshSeconds %d" % test_pg.REFRESH)
    try:
        h.start()
        for i in range(1, 11):
            serial = "%02X" % i
            with open("%s/newcerts/%s.pem" % (d, serial), "rb") as f:
                want = x509.load_pem_x509_certificate(f.read())
            st, hd, body = h.get("/ca/certs/%s.pem" % serial.lower())
            assert st == 200, body
            assert x509.load_pem_x509_certificate(body) == want
        with open(d + "/cacert.pem", "rb") as f:
            cacert = x509.load_pem_x509_certificate(f.read())

        def listing(c):
            out = {}
            for e in c:
                try:
                    r = e.extensions.get_extension_for_class(
                        x509.CRLReason).value.reason.name
                except x509.ExtensionNotFound:
                    r = None
                out[e.serial_number] = (r, ts(e.revocation_date))
            return out

        def crl_now():
            st, _, body = h.get("/ca/crl")
            assert st == 200, body
            crl = x509.load_der_x509_crl(body)
            assert crl.is_signature_valid(cacert.public_key())
            return crl, crl.extensions.get_extension_for_class(
                x509.CRLNumber).value.crl_number

        def crl_listing(serial):
            deadline = time.time() + 2 + test_pg.REFRESH + test_pg.MARGIN
            while True:
                crl, num = crl_now()
                if crl.get_revoked_certificate_by_serial_number(serial):
                    return crl, num
                assert time.time() < deadline, (num, len(crl))
                time.sleep(0.3)
        crl, num = crl_now()
        assert num == 3
        assert listing(crl) == listing(oldcrl) and len(listing(crl)) == 7
        # the invalidity dates of -crl_compromise / -crl_CA_compromise
        for serial, when in ((5, 1767225600), (6, 1767312000)):
            e = crl.get_revoked_certificate_by_serial_number(serial)
            inv = e.extensions.get_extension_for_class(x509.InvalidityDate)
            assert ts(inv.value.invalidity_date) == when
        assert pg.psql("SELECT crl_number FROM certauth_crl") == "3"

        # revoked with openssl ca meanwhile, imported while httpd runs
        ossl(d, "ca", "-revoke", "newcerts/0A.pem", "-config",
             "./openssl.cnf", "-passin", "pass:" + PASS, "-crl_reason",
             "affiliationChanged")
        rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                             d + "/index.txt")
        assert rc == 0, err
        assert "imported: 0 added, 1 revoked, 9 unchanged" in out
        crl, num = crl_listing(10)
        assert num == 4 and len(listing(crl)) == 8
        assert listing(crl)[10][0] == "affiliation_changed"

        # the front end revokes one (the administrator; the imported
        # owners have no login here)
        st, _, doc, body = revoke(h, "01", "superseded", user="admin")
        assert st == 200, body
        crl, num = crl_listing(1)
        assert num >= 5 and len(listing(crl)) == 9
        # the directory again: its line 1 still says V, the store says
        # revoked: a conflict, the store and the CRL number kept
        before = pg_snapshot(pg)
        rc, out, err = admin("import", "--db", pg_db(pg), "--index",
                             d + "/index.txt")
        assert rc == 1
        assert "index.txt:1: serial 01 is stored as revoked, the line says " \
            "valid" in err
        assert pg_snapshot(pg) == before
        assert crl_now()[1] == num
        h.stop()
        assert_no_crash(h)
    finally:
        h.cleanup()


# ---------------------------------------------------------------------------
# Memory: an import keeps the rows it stores, not every certificate file
# and parsed certificate of the directory (a million lines are ~150 MB of
# index.txt).  A directory of many certificates made with
# python3-cryptography (openssl ca makes ~30 a second), in openssl ca's
# layout; the peak RSS of certauth-admin for 200 and for 4000 lines.

BIG = 4000


@pytest.fixture(scope="module")
def bigdir(tmp_path_factory):
    import datetime
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    root = str(tmp_path_factory.mktemp("big"))
    cakey = ec.generate_private_key(ec.SECP256R1())
    caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Big CA")])
    nb = datetime.datetime(2026, 1, 1)
    na = nb + datetime.timedelta(days=3650)
    ca = (x509.CertificateBuilder().subject_name(caname).issuer_name(caname)
          .public_key(cakey.public_key()).serial_number(1)
          .not_valid_before(nb).not_valid_after(na)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True).sign(cakey, hashes.SHA256()))
    leaf = ec.generate_private_key(ec.SECP256R1()).public_key()
    dirs = {}
    lines = []
    for n in (200, BIG):
        d = os.path.join(root, str(n))
        os.makedirs(os.path.join(d, "newcerts"))
        with open(os.path.join(d, "cacert.pem"), "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        dirs[n] = d
    for i in range(BIG):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "user%d" % i)])
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(caname)
             .public_key(leaf).serial_number(0x1000 + i)
             .not_valid_before(nb).not_valid_after(na)
             .sign(cakey, hashes.SHA256()))
        serial = "%04X" % (0x1000 + i)
        pem = c.public_bytes(serialization.Encoding.PEM)
        for n, d in dirs.items():
            if i < n:
                with open(os.path.join(d, "newcerts", serial + ".pem"),
                          "wb") as f:
                    f.write(pem)
        rev = "260301000000Z,keyCompromise" if i % 3 == 0 else ""
        lines.append("%s\t%s\t%s\t%s\tunknown\t/CN=user%d" % (
            "R" if rev else "V", na.strftime("%y%m%d%H%M%SZ"), rev, serial,
            i))
    for n, d in dirs.items():
        with open(os.path.join(d, "index.txt"), "w") as f:
            f.write("\n".join(lines[:n]) + "\n")
    return dirs


# the peak RSS of a process counts the copy of its parent it was before
# exec (pytest's tens of MB): measured by a small Python of its own instead,
# which forks, execs certauth-admin and reports the child's ru_maxrss
PEAK = """import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss)
"""


def admin_peak_kb(*args):
    """certauth-admin's exit status and peak RSS in KB (at least the
    measuring Python's own, some 10 MB)."""
    r = run(["/usr/bin/python3", "-S", "-c", PEAK, ADMIN] + list(args),
            timeout=300)
    rc, kb = r.stdout.decode().split()
    return int(rc), int(kb)


def per_line_kb(bigdir, db_of):
    peaks = {}
    for n, d in bigdir.items():
        rc, peaks[n] = admin_peak_kb("import", "--db", db_of(n), "--index",
                                     d + "/index.txt")
        assert rc == 0
        # the second run reads every stored row back
        rc, again = admin_peak_kb("import", "--db", db_of(n), "--index",
                                  d + "/index.txt")
        assert rc == 0
        peaks[n] = max(peaks[n], again)
    return (peaks[BIG] - peaks[200]) / float(BIG - 200), peaks


def test_import_memory_per_line(bigdir, tmp_path):
    # before the fix 13-15 KB a line (every certificate file and parsed
    # certificate kept to the end), after it 0.9-1.4 KB (the rows)
    per, peaks = per_line_kb(bigdir, lambda n: "sqlite3:%s/%d.db"
                             % (tmp_path, n))
    assert per < 4, (per, peaks)


@on_pg
def test_pg_import_memory_per_line(bigdir, pg):
    for n in bigdir:
        pg.psql("CREATE DATABASE big%d" % n)
    per, peaks = per_line_kb(bigdir, lambda n: "pgsql:" + pg.params.replace(
        "dbname=certauth", "dbname=big%d" % n))
    assert per < 4, (per, peaks)
    assert pg.psql("SELECT 1") == "1"
