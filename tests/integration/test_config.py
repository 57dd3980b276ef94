"""Configuration mistakes fail `apache2 -t` with one line naming the
directive; a good configuration passes."""
import os
import shutil

import pytest

from harness import Httpd, run


def configtest(ca, **kw):
    h = Httpd(ca, **kw)
    try:
        return h.configtest()
    finally:
        h.cleanup()


def test_good_config(ca):
    rc, out = configtest(ca)
    assert rc == 0, out
    assert "Syntax OK" in out


def ca_dirs(ca, key=None, cert=None, base="https://127.0.0.1/ca", extra=""):
    return ("CertAuthCACertificateFile %s\nCertAuthCAKeyFile %s\n"
            "CertAuthBaseURL %s\n%s" % (cert or ca.cert, key or ca.key, base,
                                        extra))


@pytest.fixture
def other_ca(tmp_path):
    from harness import TestCA
    os.chmod(str(tmp_path), 0o755)
    return TestCA(str(tmp_path))


def test_missing_key_file(ca):
    rc, out = configtest(ca, ca_directives=ca_dirs(ca, key="/nonexistent/k.pem"))
    assert rc != 0
    assert "CertAuthCAKeyFile" in out and "/nonexistent/k.pem" in out


def test_key_readable_by_others(ca, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(ca.key, key)
    os.chmod(key, 0o644)
    rc, out = configtest(ca, ca_directives=ca_dirs(ca, key=str(key)))
    assert rc != 0
    assert "CertAuthCAKeyFile" in out and "readable by group or others" in out


def test_key_not_matching(ca, other_ca):
    rc, out = configtest(ca, ca_directives=ca_dirs(ca, key=other_ca.key))
    assert rc != 0
    assert "does not match" in out and "CertAuthCAKeyFile" in out


def test_not_a_ca_certificate(ca):
    rc, out = configtest(ca, ca_directives=ca_dirs(
        ca, cert=ca.server_cert, key=ca.server_key))
    assert rc != 0
    assert "CertAuthCACertificateFile" in out and "not a CA" in out


def test_missing_base_url(ca):
    rc, out = configtest(ca, ca_directives=(
        "CertAuthCACertificateFile %s\nCertAuthCAKeyFile %s\n"
        % (ca.cert, ca.key)))
    assert rc != 0
    assert "CertAuthBaseURL" in out


def test_missing_ca(ca):
    rc, out = configtest(ca, ca_directives="CertAuthBaseURL https://x/ca\n")
    assert rc != 0
    assert "CertAuthCACertificateFile" in out


@pytest.mark.parametrize("directive,message", [
    ("CertAuthBaseURL ftp://example.org/ca", "CertAuthBaseURL"),
    ("CertAuthBaseURL not-a-url", "CertAuthBaseURL"),
    ("CertAuthCAPassPhrase sometimes", "CertAuthCAPassPhrase"),
])
def test_bad_server_directives(ca, directive, message):
    rc, out = configtest(ca, vhost_conf=directive)
    assert rc != 0
    assert message in out
    assert "httpd.conf" in out  # names the file (and line)


@pytest.mark.parametrize("directive,message", [
    ("CertAuthValidityDays 0", "CertAuthValidityDays"),
    ("CertAuthValidityDays abc", "CertAuthValidityDays"),
    ("CertAuthKeyUsage digitalSigning", "CertAuthKeyUsage"),
    ("CertAuthExtendedKeyUsage webAuth", "CertAuthExtendedKeyUsage"),
    ("CertAuthExtendedKeyUsage 1.2.x", "CertAuthExtendedKeyUsage"),
    ('CertAuthSubjectRDN CN "%{"', "CertAuthSubjectRDN"),
    ('CertAuthSubjectRDN XX "a"', "CertAuthSubjectRDN"),
    ("CertAuthMaxRequestBody 10", "CertAuthMaxRequestBody"),
    ("CertAuthProfileName bad/name", "CertAuthProfileName"),
])
def test_bad_location_directives(ca, directive, message):
    rc, out = configtest(ca, location_conf=directive)
    assert rc != 0
    assert message in out and "httpd.conf" in out


def test_certauth_outside_location(ca):
    rc, out = configtest(ca, vhost_conf="<Directory /tmp>\nCertAuth On\n</Directory>")
    assert rc != 0 and "CertAuth" in out


def test_encrypted_key_with_passphrase(ca, tmp_path):
    key = tmp_path / "enc.pem"
    run(["openssl", "pkey", "-in", ca.key, "-aes256", "-passout",
         "pass:s3cret", "-out", str(key)])
    os.chmod(key, 0o600)
    pf = tmp_path / "pass"
    pf.write_text("s3cret\n")
    rc, out = configtest(ca, ca_directives=ca_dirs(
        ca, key=str(key), extra="CertAuthCAPassPhrase file:%s\n" % pf))
    assert rc == 0, out
    pf.write_text("wrong\n")
    rc, out = configtest(ca, ca_directives=ca_dirs(
        ca, key=str(key), extra="CertAuthCAPassPhrase file:%s\n" % pf))
    assert rc != 0 and "CertAuthCAKeyFile" in out
    rc, out = configtest(ca, ca_directives=ca_dirs(ca, key=str(key)))
    assert rc != 0 and "CertAuthCAPassPhrase" in out


def test_mod_dbd_missing(ca):
    h = Httpd(ca)
    try:
        with open(h.conf) as f:
            conf = f.read()
        conf = "\n".join(l for l in conf.splitlines()
                         if "mod_dbd.so" not in l and not l.strip().startswith("DBD"))
        with open(h.conf, "w") as f:
            f.write(conf)
        rc, out = h.configtest()
        assert rc != 0 and "mod_dbd" in out
    finally:
        h.cleanup()
