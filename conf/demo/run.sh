#!/bin/bash
# Start the mod_certauth demo CA (called by `make run` after `make all`).
#
#   PORT=8443 conf/demo/run.sh
#
# Everything lives in the git-ignored run/ directory of the checkout:
#   run/ca/                 demo root CA (certauth-admin init; created once, reused)
#   run/tls/                localhost server certificate signed by it (reused)
#   run/demo-users.txt      demo logins alice, bob, admin (name:password, 0600)
#   run/users.htpasswd      the same logins for AuthType Basic (bcrypt)
#   run/db/certauth.db      SQLite database (kept between runs)
#   run/httpd.conf          generated on every run
#   run/logs/, run/htdocs/, run/runtime/, run/httpd.pid
# The web pages are served from build/htdocs (made by `make web`) at /ca/.
# As root, httpd's children run as www-data.  When www-data cannot reach the
# checkout (below /root, mode 0700, for instance), what the children read or
# write -- the database, the password file, the pages, the runtime directory
# -- lives in /var/tmp/certauth-demo-<hash of the checkout's path> instead
# (run/db then links to it); nothing of the user's directories is opened up.
# A running demo is stopped first; `make stop` (conf/demo/stop.sh) stops it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

RUN="$ROOT/run"
PORT="${PORT:-8443}"
MODULE="$ROOT/build/mod_certauth.so"
ADMIN="$ROOT/build/certauth-admin"
WEB="$ROOT/build/htdocs"
APACHE="${APACHE:-$(command -v apache2 || echo /usr/sbin/apache2)}"
MODDIR="$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)"
CA_SUBJECT="CN=certauth demo root CA,O=mod_certauth demo"
USERS="alice bob admin"
RUN_USER=www-data
RUN_GROUP=www-data

die() { echo "run.sh: $*" >&2; exit 1; }

if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
    die "PORT must be a TCP port number (1-65535), not '$PORT'"
fi
PORT=$((10#$PORT))
# the OCSP responder (and CRL) over plain HTTP, as mod_ssl and stunnel ask
OCSP_PORT="${OCSP_PORT:-$((PORT + 1))}"
if ! [[ $OCSP_PORT =~ ^[0-9]{1,5}$ ]] || ((10#$OCSP_PORT < 1 || 10#$OCSP_PORT > 65535)); then
    die "OCSP_PORT must be a TCP port number (1-65535), not '$OCSP_PORT'"
fi
OCSP_PORT=$((10#$OCSP_PORT))
[[ -x $APACHE ]] || die "apache2 not found (run: make deps-run)"
[[ -f $MODULE ]] || die "$MODULE is missing (run: make all)"
[[ -x $ADMIN ]] || die "$ADMIN is missing (run: make all)"
[[ -f $WEB/index.html ]] || die "$WEB is missing (run: make web)"

AS_ROOT=0
[[ $(id -u) -eq 0 ]] && AS_ROOT=1

# ---------------------------------------------------------------- running?
if [[ -f $RUN/httpd.pid ]]; then
    pid=$(tr -dc '0-9' <"$RUN/httpd.pid")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        echo "The demo is already running (pid $pid); stopping it first."
    fi
    "$ROOT/conf/demo/stop.sh"
fi

umask 022
mkdir -p "$RUN"
chmod 0755 "$RUN"
mkdir -p "$RUN/logs" "$RUN/tls"
chmod 0700 "$RUN/tls"

# As root, httpd's children run as www-data: they read the pages and the
# password file and write the database.  SRV is where those live: run/ when
# www-data can reach it, else a directory of the demo's own in /var/tmp.
SRV="$RUN"
WEB_SRV="$WEB"
if ((AS_ROOT)); then
    id "$RUN_USER" >/dev/null 2>&1 || die "user $RUN_USER does not exist"
    if ! runuser -u "$RUN_USER" -g "$RUN_GROUP" -- test -x "$RUN" 2>/dev/null; then
        SRV="/var/tmp/certauth-demo-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
        if [[ -e $SRV || -L $SRV ]]; then
            [[ -d $SRV && ! -L $SRV && $(stat -c %u "$SRV") == 0 ]] ||
                die "$SRV exists and is not a directory of root's"
        else
            mkdir -m 0755 "$SRV"
        fi
        chmod 0755 "$SRV"
        # the pages, copied where the children can read them
        WEB_SRV="$SRV/web"
        rm -rf "$WEB_SRV.new"
        cp -R "$WEB" "$WEB_SRV.new"
        chmod -R u=rwX,go=rX "$WEB_SRV.new"
        rm -rf "$WEB_SRV"
        mv "$WEB_SRV.new" "$WEB_SRV"
        [[ -e $RUN/db || -L $RUN/db ]] || ln -s "$SRV/db" "$RUN/db"
        echo "$RUN_USER cannot reach $RUN: the files httpd's children use are in $SRV"
    fi
fi
mkdir -p "$SRV/htdocs" "$SRV/runtime" "$SRV/db"

# ---------------------------------------------------------------- demo CA
CA_DIR="$RUN/ca"
CA_CERT="$CA_DIR/cacert.pem"
CA_KEY="$CA_DIR/private/cakey.pem"
if [[ -f $CA_CERT && -f $CA_KEY ]]; then
    ca_state="reused"
elif [[ -e $CA_CERT || -e $CA_KEY ]]; then
    die "incomplete demo CA in $CA_DIR (cacert.pem or private/cakey.pem missing); remove $CA_DIR to create a new one"
else
    # A directory left empty by an interrupted run is fine to replace.
    rmdir "$CA_DIR/private" "$CA_DIR" 2>/dev/null || true
    "$ADMIN" init --dir "$CA_DIR" --key-type ec --days 3650 \
        --subject "$CA_SUBJECT" >/dev/null ||
        die "certauth-admin init failed"
    [[ -f $CA_CERT && -f $CA_KEY ]] ||
        die "certauth-admin init did not create $CA_CERT and $CA_KEY"
    ca_state="created"
fi
# The CA key stays root-only (or owner-only): the module reads it in the
# parent process at start-up and refuses a group/world-readable key.
chmod 0700 "$CA_DIR/private"
chmod 0600 "$CA_KEY"
chmod 0644 "$CA_CERT"

# ---------------------------------------------------------------- server cert
TLS_KEY="$RUN/tls/server.key"
TLS_CERT="$RUN/tls/server.crt"
tls_state="reused"
# Reuse while it is signed by the current CA, valid for 30 more days, and
# matches its key; otherwise make a new key and certificate.
if ! [[ -f $TLS_KEY && -f $TLS_CERT ]] ||
   ! openssl verify -purpose sslserver -CAfile "$CA_CERT" "$TLS_CERT" >/dev/null 2>&1 ||
   ! openssl x509 -checkend 2592000 -noout -in "$TLS_CERT" >/dev/null 2>&1 ||
   [[ "$(openssl x509 -noout -pubkey -in "$TLS_CERT" 2>/dev/null)" != \
      "$(openssl pkey -pubout -in "$TLS_KEY" 2>/dev/null)" ]]; then
    tls_state="created"
    tmp="$RUN/tls/.new.$$"
    mkdir -m 0700 "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$tmp/server.key" 2>/dev/null) || die "cannot generate the server key"
    openssl req -new -key "$tmp/server.key" -subj "/O=mod_certauth demo/CN=localhost" \
        -out "$tmp/server.csr" || die "cannot create the server CSR"
    cat >"$tmp/ext.cnf" <<'EOF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl x509 -req -in "$tmp/server.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
        -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
        -extfile "$tmp/ext.cnf" -extensions server -out "$tmp/server.crt" 2>/dev/null ||
        die "cannot sign the server certificate with the demo CA"
    chmod 0600 "$tmp/server.key"
    chmod 0644 "$tmp/server.crt"
    mv -f "$tmp/server.key" "$TLS_KEY"
    mv -f "$tmp/server.crt" "$TLS_CERT"
    rm -rf "$tmp"
    trap - EXIT
fi

# ---------------------------------------------------------------- demo logins
USERS_FILE="$RUN/demo-users.txt"
HTPASSWD="$SRV/users.htpasswd"
gen_password() {
    local pw
    pw=$(openssl rand -base64 30 | tr -dc 'A-Za-z0-9')
    printf '%s' "${pw:0:20}"
}
[[ -e $USERS_FILE ]] || (umask 077 && : >"$USERS_FILE")
chmod 0600 "$USERS_FILE"
users_changed=0
for u in $USERS; do
    if ! grep -q "^$u:" "$USERS_FILE"; then
        printf '%s:%s\n' "$u" "$(gen_password)" >>"$USERS_FILE"
        users_changed=1
    fi
done
if ((users_changed)) || [[ ! -s $HTPASSWD || $USERS_FILE -nt $HTPASSWD ]]; then
    tmp_ht="$HTPASSWD.tmp.$$"
    (umask 077 && : >"$tmp_ht")
    while IFS=: read -r name pw; do
        [[ -n $name && -n $pw ]] || continue
        # -i: password on stdin, never on a command line
        printf '%s\n' "$pw" | htpasswd -niB "$name" 2>/dev/null | grep . >>"$tmp_ht" ||
            die "htpasswd failed for $name"
    done <"$USERS_FILE"
    mv -f "$tmp_ht" "$HTPASSWD"
fi
if ((AS_ROOT)); then
    chown "root:$RUN_GROUP" "$HTPASSWD"
    chmod 0640 "$HTPASSWD"
else
    chmod 0600 "$HTPASSWD"
fi

# ---------------------------------------------------------------- database
DB="$SRV/db/certauth.db"
if ((AS_ROOT)); then
    # SQLite writes the database and its WAL files next to it: the children
    # (www-data) own the directory and everything in it.
    chown -R "$RUN_USER:$RUN_GROUP" "$SRV/db"
fi
chmod 0750 "$SRV/db"

# ---------------------------------------------------------------- htdocs
cat >"$SRV/htdocs/index.html" <<EOF
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>mod_certauth demo CA</title></head>
<body>
<h1>mod_certauth demo CA</h1>
<ul>
<li><a href="/ca/">The CA's web pages</a>: request, download, renew and revoke certificates</li>
<li><a href="/ca/cacert.crt">CA certificate</a> (DER, to install in a browser)</li>
<li><a href="/ca/cacert.pem">CA certificate</a> (PEM)</li>
</ul>
<p>Enrollment: POST a PKCS#10 request to <code>/ca/enroll</code> with a demo login
(see <code>run/demo-users.txt</code>).</p>
</body>
</html>
EOF
chmod 0644 "$SRV/htdocs/index.html"

if [[ -r /etc/mime.types ]]; then
    MIME_TYPES=/etc/mime.types
else
    MIME_TYPES="$RUN/mime.types"
    printf '%s\n' 'text/html html htm' 'text/css css' 'application/javascript js' \
        'application/x-x509-ca-cert crt der' 'application/x-pem-file pem' >"$MIME_TYPES"
fi

# ---------------------------------------------------------------- httpd.conf
compiled_in=$("$APACHE" -l 2>/dev/null || true)
load_modules=""
for m in mpm_event watchdog authz_core authz_host authz_user authn_core authn_file \
         auth_basic mime ssl socache_shmcb dbd log_config headers setenvif \
         alias dir unixd; do
    grep -q "^ *mod_$m\.c\$" <<<"$compiled_in" && continue
    [[ -f $MODDIR/mod_$m.so ]] || die "$MODDIR/mod_$m.so is missing"
    load_modules+="LoadModule ${m}_module $MODDIR/mod_$m.so"$'\n'
done

user_lines="# not started as root: the children keep the current user"
if ((AS_ROOT)); then
    user_lines="User $RUN_USER
Group $RUN_GROUP"
fi

CONF="$RUN/httpd.conf"
cat >"$CONF.tmp" <<EOF
# Generated by conf/demo/run.sh; rewritten by every \`make run\`.
ServerRoot "$RUN"
DefaultRuntimeDir "$SRV/runtime"
PidFile "$RUN/httpd.pid"
Listen 127.0.0.1:$PORT
Listen 127.0.0.1:$OCSP_PORT
ServerName localhost

${load_modules}LoadModule certauth_module "$MODULE"

$user_lines

ErrorLog "$RUN/logs/error_log"
LogLevel warn certauth:info
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{User-Agent}i\"" demo
CustomLog "$RUN/logs/access_log" demo

TypesConfig "$MIME_TYPES"
StartServers 1
ServerLimit 4
ThreadsPerChild 16
MinSpareThreads 4
MaxSpareThreads 32
MaxRequestWorkers 64
Timeout 30
ServerTokens Prod
TraceEnable off

<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Files ".ht*">
    Require all denied
</Files>

DocumentRoot "$SRV/htdocs"
<Directory "$SRV/htdocs">
    Options None
    Require all granted
</Directory>
DirectoryIndex index.html

SSLSessionCache "shmcb:$SRV/runtime/ssl_scache(512000)"
SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1
SSLSessionTickets off

<VirtualHost 127.0.0.1:$PORT>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile "$TLS_CERT"
    SSLCertificateKeyFile "$TLS_KEY"
    # People without a certificate still reach the site; a certificate of
    # this CA identifies its holder (renew, revoke, My certificates).
    SSLVerifyClient optional
    SSLVerifyDepth 2
    SSLCACertificateFile "$CA_CERT"

    # Storage through mod_dbd
    DBDriver sqlite3
    DBDParams "$DB"

    # The CA: key read once by the parent at start-up
    CertAuthCACertificateFile "$CA_CERT"
    CertAuthCAKeyFile "$CA_KEY"
    CertAuthBaseURL https://localhost:$PORT/ca
    # issued certificates name the OCSP responder of the HTTP host below
    CertAuthOCSPURL http://localhost:$OCSP_PORT/ca/ocsp

    # The shipped profiles (user, server, stunnel, protogeni,
    # protogeni-authority), with the demo's values
    Define CERTAUTH_ORG "mod_certauth demo"
    Define CERTAUTH_DOMAIN localhost
    Define CERTAUTH_ADMINS "'admin'"
    Define CERTAUTH_PG_AUTHORITY localhost
    Define CERTAUTH_PG_XMLRPC_URL https://localhost:$PORT/protogeni/xmlrpc
    Include "$ROOT/conf/profiles.conf"

    # Public: cacert.crt, cacert.pem, certs/{serial}
    <Location /ca>
        CertAuth On
        Require all granted
        CertAuthDefaultProfile user
        CertAuthAdmin "%{CERTAUTH_OWNER} in {'admin'} || %{CERTAUTH_CERT_OWNER} in {'admin'}"
    </Location>

    # The web pages (build/htdocs, made by make web) next to the endpoints,
    # with a strict Content-Security-Policy: nothing inline, nothing from
    # other sites (the same lines as conf/example-vhost.conf)
    RedirectMatch 301 ^/ca\$ /ca/
    Alias /ca/ "$WEB_SRV/"
    <Directory "$WEB_SRV">
        Options None
        AllowOverride None
        Require all granted
        DirectoryIndex index.html
    </Directory>
    <Location /ca>
        Header always set Content-Security-Policy "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        Header always set X-Content-Type-Options "nosniff"
        Header always set X-Frame-Options "DENY"
        Header always set Referrer-Policy "no-referrer"
        Header always set Cross-Origin-Opener-Policy "same-origin"
        Header always set Permissions-Policy "camera=(), microphone=(), geolocation=()"
        # the pages' own error documents (build/htdocs/error)
        ErrorDocument 401 /ca/error/401.html
        ErrorDocument 403 /ca/error/403.html
        ErrorDocument 404 /ca/error/404.html
        ErrorDocument 500 /ca/error/500.html
        ErrorDocument 502 /ca/error/503.html
        ErrorDocument 503 /ca/error/503.html
        ErrorDocument 504 /ca/error/503.html
    </Location>

    # Enrollment needs the site's own login: here Basic auth with the demo
    # users; so do the pages that enroll
    <LocationMatch "^/ca/(enroll|pkcs12|request\.html|pkcs12\.html)\$">
        AuthType Basic
        AuthName "mod_certauth demo"
        AuthBasicProvider file
        AuthUserFile "$HTPASSWD"
        Require valid-user
    </LocationMatch>

    # Revoke and "My certificates": the login, or a certificate of this CA
    <LocationMatch "^/ca/(revoke|api/|mycerts\.html\$)">
        AuthType Basic
        AuthName "mod_certauth demo"
        AuthBasicProvider file
        AuthUserFile "$HTPASSWD"
        <RequireAny>
            <RequireAll>
                Require ssl-verify-client
                Require expr "-z req('Authorization')"
            </RequireAll>
            Require valid-user
        </RequireAny>
    </LocationMatch>

    # ACME (RFC 8555) at https://localhost:$PORT/acme/directory for
    # certbot, lego, mod_md: accounts need EAB credentials of a site user
    # whom the profile allows (POST /ca/api/acme/eab, the button on My
    # certificates); names localhost and below; http-01 fetched from port
    # 5002, tls-alpn-01 on port 5001, as Pebble does (run the client's
    # standalone server there)
    CertAuthACMEProfile server localhost *.localhost
    CertAuthACMEChallengePort ${ACME_HTTP_PORT:-5002}
    CertAuthACMETLSPort ${ACME_TLS_PORT:-5001}
    <Location /acme>
        CertAuthACME On
        Require all granted
    </Location>

    # EST (RFC 7030): /.well-known/est/[label/]...; a label names a profile
    <Location /.well-known/est>
        CertAuth On
        CertAuthDefaultProfile user
        AuthType Basic
        AuthName "mod_certauth demo"
        AuthBasicProvider file
        AuthUserFile "$HTPASSWD"
        <RequireAny>
            <RequireAll>
                Require ssl-verify-client
                Require expr "-z req('Authorization')"
            </RequireAll>
            Require valid-user
        </RequireAny>
    </Location>
    <LocationMatch "^/\.well-known/est/([^/]+/)?(cacerts|csrattrs)\$">
        Require all granted
    </LocationMatch>
</VirtualHost>

# The OCSP responder (README "OCSP"), the CRL and the CA certificate over
# plain HTTP; nothing else of the CA here.
<VirtualHost 127.0.0.1:$OCSP_PORT>
    ServerName localhost
    AllowEncodedSlashes NoDecode
    MergeSlashes Off
    ErrorDocument 400 /ca/ocsp/error
    DBDriver sqlite3
    DBDParams "$DB"
    CertAuthCACertificateFile "$CA_CERT"
    CertAuthCAKeyFile "$CA_KEY"
    CertAuthBaseURL https://localhost:$PORT/ca
    CertAuthOCSP On
    <Location /ca>
        CertAuth On
        Require all granted
    </Location>
    <LocationMatch "^/ca/(?!ocsp(/|\$)|crl\$|cacert\.(crt|pem)\$)">
        Require all denied
    </LocationMatch>
</VirtualHost>
EOF
mv -f "$CONF.tmp" "$CONF"

# ---------------------------------------------------------------- start
if ! out=$("$APACHE" -f "$CONF" -t 2>&1); then
    echo "$out" >&2
    die "the generated configuration $CONF does not pass apache2 -t"
fi
# Start-up failures of a checked configuration (port in use, ...) end up
# in the error log; keep a mark to show only this run's part.
touch "$RUN/logs/error_log"
log_start=$(($(wc -l <"$RUN/logs/error_log") + 1))
if ! out=$("$APACHE" -f "$CONF" -k start 2>&1); then
    echo "$out" >&2
    tail -n +"$log_start" "$RUN/logs/error_log" | tail -n 20 >&2
    die "apache2 -k start failed"
fi
[[ -n $out ]] && echo "$out"

URL="https://localhost:$PORT"
up=0
code=""
deadline=$((SECONDS + 15))
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        --cacert "$CA_CERT" "$URL/ca/cacert.pem" 2>/dev/null || true)
    if [[ $code == 200 ]]; then
        up=1
        break
    fi
    # No point in waiting for an httpd that has exited.
    if [[ -f $RUN/httpd.pid ]]; then
        pid=$(tr -dc '0-9' <"$RUN/httpd.pid")
        [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && break
    fi
    ((SECONDS < deadline)) || break
    sleep 0.25
done
if ((!up)); then
    echo "The demo httpd does not answer $URL/ca/cacert.pem (last status: ${code:-none})." >&2
    echo "--- $RUN/logs/error_log (this run):" >&2
    tail -n +"$log_start" "$RUN/logs/error_log" | tail -n 30 >&2
    "$ROOT/conf/demo/stop.sh" >/dev/null 2>&1 || true
    die "start-up failed; the demo is not running"
fi

# ---------------------------------------------------------------- report
first_pw=$(grep '^alice:' "$USERS_FILE" | cut -d: -f2-)
cat <<EOF

mod_certauth demo CA is running (pid $(cat "$RUN/httpd.pid"), CA $ca_state, server certificate $tls_state).

  $URL/ca/              the web pages: Home, Request a certificate, My certificates
  $URL/ca/cacert.crt    CA certificate, DER (install in a browser)
  $URL/ca/cacert.pem    CA certificate, PEM
  $URL/ca/enroll        POST a PKCS#10 request (Basic auth: demo login)
  $URL/ca/certs/SERIAL  issued certificates by serial
  http://localhost:$OCSP_PORT/ca/ocsp   OCSP responder (named in every issued certificate)
  $URL/acme/directory   ACME (certbot, lego, mod_md); see README "ACME"

Demo logins ($RUN/demo-users.txt):
EOF
sed 's/^/  /' "$USERS_FILE"
cat <<EOF

Enroll a certificate for alice (paste in $ROOT):

  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout run/alice.key -subj /CN=alice -out run/alice.csr
  curl --fail-with-body --cacert run/ca/cacert.pem -u 'alice:$first_pw' -H 'Content-Type: application/pkcs10' --data-binary @run/alice.csr $URL/ca/enroll -o run/alice.pem
  openssl verify -x509_strict -CAfile run/ca/cacert.pem run/alice.pem
  openssl ocsp -issuer run/ca/cacert.pem -CAfile run/ca/cacert.pem -cert run/alice.pem -url \$(openssl x509 -noout -ocsp_uri -in run/alice.pem)

A server certificate for localhost by ACME (certbot; EAB credentials of
admin, whom the server profile allows; http-01 on port ${ACME_HTTP_PORT:-5002}):

  admin_pw=\$(grep '^admin:' run/demo-users.txt | cut -d: -f2-)
  curl --cacert run/ca/cacert.pem -u "admin:\$admin_pw" -X POST -H 'Content-Type: application/json' $URL/ca/api/acme/eab
  REQUESTS_CA_BUNDLE=run/ca/cacert.pem certbot certonly --standalone --http-01-port ${ACME_HTTP_PORT:-5002} --server $URL/acme/directory --eab-kid=KID --eab-hmac-key=HMAC_KEY -d localhost --agree-tos --register-unsafely-without-email --config-dir run/certbot --work-dir run/certbot --logs-dir run/certbot

Logs: run/logs/error_log, run/logs/access_log.   Stop: make stop
EOF
