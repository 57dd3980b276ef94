"""The manual is tested: every Apache configuration excerpt of README.md and
every Apache file in conf/ must pass `apache2 -t` in a scaffold (the
modules loaded, the files it names created, the variables it uses
defined), and the README's build-dependency list must hold what
tests/install-deps.sh installs for `make run` and what the Makefile links.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import APACHE, BASE_MODULES, MODDIR, MODULE, REPO, run

README = os.path.join(REPO, "README.md")
CONF = os.path.join(REPO, "conf")
# conf/stunnel.conf is stunnel's configuration, not Apache's; the systemd
# units are not configuration files of Apache either
APACHE_CONF_FILES = ["certauth.load", "certauth.conf", "example-vhost.conf",
                     "profiles.conf"]

# what conf/profiles.conf expects to be defined (README "Shipped profiles")
DEFINES = {
    "CERTAUTH_ORG": '"Example"',
    "CERTAUTH_DOMAIN": "example.org",
    "CERTAUTH_ADMINS": "\"'admin'\"",
    "CERTAUTH_PG_AUTHORITY": "example.org",
    "CERTAUTH_PG_XMLRPC_URL": "https://www.example.org:12369/protogeni/xmlrpc",
}

# absolute paths of the excerpts, moved below the scaffold's root
PATH_RE = re.compile(r"(?<![\w.:/-])(/(?:etc|var|usr|srv|run)/[^\s\"'<>()]*)")


# An excerpt the scaffold cannot make the world for (a PKCS#11 token, the
# files of a real CA rollover) is preceded by this line naming the test
# that runs those directives for real.
NOT_SCAFFOLDED = re.compile(r"^<!-- not-scaffolded: .*; checked by "
                            r"(tests/integration/test_\w+\.py) -->$")


def readme_blocks(lang, scaffolded_only=True):
    """(first line number, text) of every ```lang block of README.md."""
    blocks, cur, start, prev = [], None, 0, ""
    with open(README) as f:
        for n, line in enumerate(f, 1):
            if cur is None and line.strip() == "```" + lang:
                if scaffolded_only and NOT_SCAFFOLDED.match(prev.strip()):
                    cur, start = None, 0
                    prev = line
                    continue
                cur, start = [], n + 1
            elif cur is not None and line.strip() == "```":
                blocks.append((start, "".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
            prev = line
    return blocks


def test_not_scaffolded_excerpts_name_their_test():
    """Every excerpt left out of the scaffold names a test that exists."""
    with open(README) as f:
        marks = [l.strip() for l in f if l.startswith("<!-- not-scaffolded")]
    assert len(marks) <= 2, marks     # the exception, not the rule
    for m in marks:
        found = NOT_SCAFFOLDED.match(m)
        assert found, m
        assert os.path.exists(os.path.join(REPO, found.group(1))), m


def uncommented(text):
    """conf/certauth.conf shows every directive commented out: `#Directive`
    or `#    Directive` inside a block (indented by fours).  Prose comments
    are `# text` and shell commands `#   command` (three spaces): they stay
    comments."""
    out = []
    for line in text.splitlines(True):
        m = re.match(r"^(\s*)#(\S.*|(?:    )+\S.*)$", line.rstrip("\n"))
        out.append(m.group(1) + m.group(2) + "\n" if m else line)
    return "".join(out)


class Scaffold:
    """A server root in which an excerpt is checked: the modules of the
    test servers loaded, a CA and a server certificate, and every file an
    excerpt names made below the root."""

    def __init__(self, ca):
        self.ca = ca
        self.root = tempfile.mkdtemp(prefix="certauth-docs-")
        os.chmod(self.root, 0o755)
        for d in ("logs", "run"):
            os.makedirs(os.path.join(self.root, d))

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def place(self, path):
        """Make the file or directory `path` (an absolute path of an
        excerpt) below the root; return its new name."""
        new = os.path.join(self.root, path.lstrip("/"))
        if os.path.exists(new):
            return new
        base = os.path.basename(path.rstrip("/"))
        parent = os.path.dirname(new.rstrip("/"))
        os.makedirs(parent, exist_ok=True)
        if base == "cacert.pem":
            shutil.copyfile(self.ca.cert, new)
        elif base == "cakey.pem":
            shutil.copyfile(self.ca.key, new)
            os.chmod(new, 0o600)
        elif base.endswith((".key",)):
            shutil.copyfile(self.ca.server_key, new)
            os.chmod(new, 0o600)
        elif base.endswith((".pem", ".crt")):
            shutil.copyfile(self.ca.server_cert, new)
        elif base == "certauth-profiles.conf":
            shutil.copyfile(os.path.join(CONF, "profiles.conf"), new)
        elif base.endswith((".db", ".so")) or path.startswith(
                "/usr/lib/apache2/modules/"):
            pass     # the database is made by the module; modules below
        elif path.endswith("/") or "." not in base:
            os.makedirs(new, exist_ok=True)
        else:
            with open(new, "w"):
                pass
        return new

    def localize(self, text):
        def sub(m):
            path = m.group(1)
            if path.startswith("/usr/lib/apache2/modules/mod_certauth.so"):
                return MODULE
            if path.startswith(("/usr/lib/", "/usr/share/", "/usr/sbin/")):
                return path
            return self.place(path)
        return PATH_RE.sub(sub, text)

    def check(self, text, defines=None):
        """apache2 -t of the excerpt; (returncode, output, configuration)."""
        port = 40000 + os.getpid() % 20000
        text = self.localize(text)
        mods = ["LoadModule mpm_event_module %s/mod_mpm_event.so" % MODDIR]
        mods += ["LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                 for m in BASE_MODULES]
        if "LoadModule certauth_module" not in text:
            mods.append("LoadModule certauth_module %s" % MODULE)
        defs = "".join("Define %s %s\n" % kv
                       for kv in (defines or {}).items())
        head = """ServerRoot "{root}"
DefaultRuntimeDir "{root}/run"
PidFile "{root}/httpd.pid"
Mutex file:{root}/run default
ServerName localhost
ErrorLog "{root}/logs/error_log"
TypesConfig /etc/mime.types
Listen 127.0.0.1:{port}
{mods}
{defs}""".format(root=self.root, port=port, mods="\n".join(mods), defs=defs)
        ca = self.localize(
            "DBDriver sqlite3\nDBDParams /var/lib/certauth/certauth.db\n"
            "CertAuthCACertificateFile /etc/apache2/certauth/cacert.pem\n"
            "CertAuthCAKeyFile /etc/apache2/certauth/private/cakey.pem\n"
            "CertAuthBaseURL https://www.example.org/ca\n")
        if "<VirtualHost" in text or "LoadModule" in text:
            # a whole virtual host (or a module file): as it stands
            conf = head + text
        else:
            if "<CertAuthProfile" not in text and "profiles.conf" not in text:
                # the profiles an excerpt may name: the shipped ones
                ca += "Include %s\n" % os.path.join(CONF, "profiles.conf")
            # an excerpt for "the SSL virtual host of the site"
            conf = head + """<VirtualHost 127.0.0.1:{port}>
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
{ca}
{text}
</VirtualHost>
""".format(port=port, cert=self.ca.server_cert, key=self.ca.server_key,
           ca=ca, text=text)
        path = os.path.join(self.root, "httpd.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = run([APACHE, "-t", "-f", path], check=False)
        out = (r.stdout + r.stderr).decode(errors="replace")
        try:
            with open(os.path.join(self.root, "logs", "error_log")) as f:
                out += f.read()
        except OSError:
            pass
        return r.returncode, out, conf


def excerpts():
    out = [pytest.param(text, id="README.md:%d" % n)
           for n, text in readme_blocks("apache")]
    for name in APACHE_CONF_FILES:
        with open(os.path.join(CONF, name)) as f:
            text = f.read()
        out.append(pytest.param(text, id="conf/" + name))
        if name == "certauth.conf":
            out.append(pytest.param(uncommented(text),
                                    id="conf/certauth.conf-uncommented"))
    return out


@pytest.fixture
def scaffold(ca):
    s = Scaffold(ca)
    try:
        yield s
    finally:
        s.cleanup()


def test_readme_has_apache_excerpts():
    assert len(readme_blocks("apache")) >= 8


@pytest.mark.parametrize("text", excerpts())
def test_excerpt_passes_configtest(scaffold, text):
    rc, out, conf = scaffold.check(text, DEFINES)
    assert rc == 0 and "Syntax OK" in out, "%s\n--- checked:\n%s" % (out, conf)
    assert "AH00111" not in out, out     # an undefined ${VARIABLE}


def test_a_trailing_comment_fails(scaffold):
    """The check sees what the issue found in the README: a `#` comment
    after a directive (httpd allows comments on lines of their own)."""
    rc, out, _ = scaffold.check(
        "DBDParams /var/lib/certauth/certauth.db      # writable by www-data\n")
    assert rc != 0, out


def test_uncommenting_keeps_prose_comments():
    text = "# Storage, through mod_dbd\n#DBDriver sqlite3\n" \
           "#   certauth-admin init\n" \
           "#<Location /ca>\n#    # a comment\n#    CertAuth On\n#\n"
    assert uncommented(text) == "# Storage, through mod_dbd\n" \
        "DBDriver sqlite3\n#   certauth-admin init\n<Location /ca>\n" \
        "    # a comment\n    CertAuth On\n#\n"


# --- the build dependencies --------------------------------------------------

def chapter(title):
    with open(README) as f:
        text = f.read()
    start = text.index("\n## " + title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def apt_packages(text):
    """The packages of every `apt-get install` command of text."""
    pkgs = set()
    for cmd in re.findall(r"apt-get install((?:[^\n]|\\\n)*)",
                          text.replace("\\\n", " ")):
        pkgs |= {w for w in cmd.split() if not w.startswith("-")
                 and re.match(r"^[a-z0-9][a-z0-9.+-]+$", w)}
    return pkgs


def install_deps(var):
    with open(os.path.join(REPO, "tests", "install-deps.sh")) as f:
        text = f.read()
    values = re.findall(r'^%s="([^"]*)"' % var, text, re.M)
    assert values, var
    return {w for v in values for w in v.split() if not w.startswith("$")}


# what each library or tool of the Makefile comes from
MAKEFILE_NEEDS = {
    "-lcrypto": "libssl-dev", "-lssl": "libssl-dev",
    "-lsqlite3": "libsqlite3-dev",
    "-ljansson": "libjansson-dev", "curl-config": "libcurl4-openssl-dev",
    "-lcurl": "libcurl4-openssl-dev", "apr-1-config": "libapr1-dev",
    "apu-1-config": "libaprutil1-dev", "APXS": "apache2-dev",
    "CC": "gcc", "NPM": "npm", "NODE": "nodejs",
    "-lp11": "libp11-kit-dev", "pkg-config": "pkgconf",   # -lp11-kit
}


def test_readme_build_dependencies_cover_install_deps():
    listed = apt_packages(chapter("Building and installing"))
    wanted = install_deps("RUN_PKGS")
    # install-deps.sh adds Debian's nodejs and npm when there is no npm
    wanted |= {"nodejs", "npm"}
    missing = sorted(wanted - listed)
    assert not missing, "README's build dependencies lack %s" % missing


def test_readme_build_dependencies_cover_the_makefile():
    with open(os.path.join(REPO, "Makefile")) as f:
        mk = f.read()
    libs = set(re.findall(r"(?<![\w-])-l[a-z0-9_]+", mk))
    unknown = sorted(libs - set(MAKEFILE_NEEDS))
    assert not unknown, "the Makefile links %s: add its package to " \
        "MAKEFILE_NEEDS, README and install-deps.sh" % unknown
    listed = apt_packages(chapter("Building and installing"))
    used = {k for k in MAKEFILE_NEEDS if k in mk}
    missing = sorted({MAKEFILE_NEEDS[k] for k in used} - listed)
    assert not missing, "README's build dependencies lack %s" % missing


def test_quick_start_begins_with_what_a_bare_debian_lacks():
    blocks = re.findall(r"```sh\n(.*?)```", chapter("Quick start"), re.S)
    first = blocks[0].splitlines()[0]
    assert first.startswith("apt-get update && apt-get install"), first
    assert {"git", "make"} <= apt_packages(first), first


# --- the index ---------------------------------------------------------------

def slug(title):
    """GitHub's anchor of a heading."""
    s = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return s.replace(" ", "-")


def test_readme_links_name_its_chapters():
    with open(README) as f:
        text = f.read()
    anchors = {slug(t) for t in re.findall(r"^#{2,4} (.+)$", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert not sorted(links - anchors), sorted(links - anchors)
    index = text[:text.index("\n## ")]
    chapters = {slug(t) for t in re.findall(r"^## (.+)$", text, re.M)}
    missing = sorted(chapters - set(re.findall(r"\]\(#([^)]+)\)", index)))
    assert not missing, "chapters missing from the index: %s" % missing


def test_readme_table_rows_are_short():
    with open(README) as f:
        long_rows = [(n, len(line)) for n, line in enumerate(f, 1)
                     if line.startswith("|") and len(line) > 201]
    assert not long_rows, long_rows
