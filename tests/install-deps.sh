#!/bin/sh
# Install the Debian packages mod_certauth needs, if any are missing.
#
#   tests/install-deps.sh run    what `make run` needs (build + demo server)
#   tests/install-deps.sh test   the above plus everything `make test` needs
#   tests/install-deps.sh bench  the run packages plus what `make bench` needs
#
# Quiet when everything is present.  As root, missing packages are installed
# with apt-get (non-interactive, works in CI without a terminal); otherwise the
# exact command to run is printed and the script exits 1.
set -eu

RUN_PKGS="apache2 apache2-dev apache2-utils libaprutil1-dbd-sqlite3 libssl-dev
libapr1-dev libaprutil1-dev libjansson-dev openssl curl make gcc sqlite3
libcurl4-openssl-dev libsqlite3-dev libp11-kit-dev pkgconf"

# libp11-kit-dev: p11-kit parses PKCS#11 URIs (CA keys in tokens) and loads
# the modules for certauth-admin init --pkcs11.
# Test suites: pytest + cryptography (integration), valgrind (leak checks),
# and what later suites use (libcurl clients, PostgreSQL front ends, stunnel
# for certauth-stunnel's tests, the ACME clients certbot and lego (and
# python3-acme/josepy, which test_acme.py signs with; mod_md is in apache2),
# certutil for browser NSS databases and vfychain for OCSP, gnutls-bin for
# ocsptool, gdb for backtraces of crashed children).
TEST_PKGS="python3-pytest python3-cryptography valgrind libcurl4-openssl-dev
libaprutil1-dbd-pgsql postgresql-15 stunnel4 libnss3-tools gdb gnutls-bin
certbot lego python3-acme python3-josepy"
# CA keys in PKCS#11 tokens (test_pkcs11.py): OpenSSL's pkcs11 engine,
# SoftHSM2 tokens, pkcs11-tool (opensc) to look into them
TEST_PKGS="$TEST_PKGS libengine-pkcs11-openssl softhsm2 opensc"

# The web pages are bundled with npm packages (make web), and the browser
# tests drive Debian's chromium (playwright-core from npm, no browser
# download).  Node.js from elsewhere (e.g. NodeSource, which bundles npm)
# is fine: Debian's nodejs/npm are wanted only when there is no npm.
WEB_PKGS=""
command -v npm >/dev/null 2>&1 || WEB_PKGS="nodejs npm"
RUN_PKGS="$RUN_PKGS $WEB_PKGS"
TEST_PKGS="$TEST_PKGS chromium"

# Benchmarks (make bench, make bench-quick): the load generator, the tools
# compared with (cfssl; openssl ca comes with openssl), hyperfine,
# PostgreSQL for the optional pgsql row, perf for profiling, SoftHSM2 with
# OpenSSL's pkcs11 engine and pkcs11-tool for the token row (p).
BENCH_PKGS="wrk golang-cfssl hyperfine
libaprutil1-dbd-pgsql postgresql-15 linux-perf
libengine-pkcs11-openssl softhsm2 opensc"

case "${1:-run}" in
    run)   wanted="$RUN_PKGS" ;;
    test)  wanted="$RUN_PKGS $TEST_PKGS" ;;
    bench) wanted="$RUN_PKGS $BENCH_PKGS" ;;
    *)     echo "usage: $0 [run|test|bench]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
    # shellcheck disable=SC2086
    echo "install-deps: install by hand:" $wanted >&2
    exit 1
fi

missing=""
for pkg in $wanted; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *)   missing="$missing $pkg" ;;
    esac
done
missing=${missing# }

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: $missing" >&2
    echo "install-deps: run this, then try again:" >&2
    echo "sudo apt-get install -y $missing"
    exit 1
fi

echo "install-deps: installing $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing </dev/null
