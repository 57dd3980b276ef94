# mod_certauth: build, demo and tests.  See README.md.
#   make          build build/mod_certauth.so, build/certauth-admin,
#                 build/certauth-stunnel
#   make run      install missing Debian packages, build, start the demo CA
#   make stop     stop the demo
#   make test     install test dependencies, build, run every suite
#   make install  install the module and conf/certauth.{load,conf} (Debian; DESTDIR)
#                 and the web pages (build/htdocs) into $(HTDOCS_DIR)
#   make web      web pages: npm ci (once), then bundle htdocs/ into build/htdocs
#   make bench    benchmarks against cfssl, openssl ca and static Apache (minutes)
#   make bench-quick  the same, smaller and shorter (about 5 minutes)

APXS      ?= apxs
CC        ?= gcc
PORT      ?= 8443
BUILD     := build
PYTHON    ?= /usr/bin/python3

AP_INCLUDEDIR := $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
AP_CFLAGS     := $(shell $(APXS) -q CFLAGS 2>/dev/null)
AP_CPPFLAGS   := $(shell $(APXS) -q CPPFLAGS 2>/dev/null)
APR_INCLUDES  := $(shell apr-1-config --includes 2>/dev/null) $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS      := $(shell apr-1-config --link-ld --libs 2>/dev/null) $(shell apu-1-config --link-ld --libs 2>/dev/null)
APR_CPPFLAGS  := $(shell apr-1-config --cppflags --cflags 2>/dev/null)

WARN      := -Wall -Wextra -Werror
# p11-kit: the RFC 7512 parser of PKCS#11 URIs (core/ca_pkcs11.c)
P11_CFLAGS := $(shell pkg-config --cflags p11-kit-1 2>/dev/null || echo -I/usr/include/p11-kit-1)
P11_LIBS   := $(shell pkg-config --libs p11-kit-1 2>/dev/null || echo -lp11-kit)
CFLAGS_COMMON := -g -O2 -fPIC $(WARN) -std=gnu11 $(APR_CPPFLAGS) $(APR_INCLUDES) -Imod_certauth/core $(P11_CFLAGS)
SSL_LIBS  := -lcrypto $(P11_LIBS)
# the core (ca_store.c) reads the CRL entries through SQLite's own API too;
# linked with every program that links the core (after it)
DB_LIBS   := -lsqlite3
SSL_LIBS  += $(DB_LIBS)
JSON_LIBS := -ljansson

CORE_SRC  := $(wildcard mod_certauth/core/*.c)
CORE_OBJ  := $(patsubst mod_certauth/core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
CORE_HDR  := $(wildcard mod_certauth/core/*.h)
CORE_LIB  := $(BUILD)/libcertauth.a

MOD_SRC   := $(wildcard mod_certauth/*.c)
MOD_HDR   := $(wildcard mod_certauth/*.h)
MOD_SO    := $(BUILD)/mod_certauth.so

ADMIN     := $(BUILD)/certauth-admin
ADMIN_SRC := mod_certauth/admin/certauth_admin.c mod_certauth/admin/admin_pkcs11.c
ADMIN_HDR := mod_certauth/admin/admin_pkcs11.h

STUNNEL     := $(BUILD)/certauth-stunnel
STUNNEL_SRC := stunnel-helper/certauth_stunnel.c \
               $(wildcard stunnel-helper/cmd_*.c) \
               stunnel-helper/est_client.c stunnel-helper/keycert.c
STUNNEL_HDR := stunnel-helper/certauth_stunnel.h stunnel-helper/est_client.h \
               stunnel-helper/keycert.h
CURL_CFLAGS := $(shell curl-config --cflags 2>/dev/null)
CURL_LIBS   := $(shell curl-config --libs 2>/dev/null || echo -lcurl)

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all run stop test unit integration install deps-run deps-test clean \
        web browser-deps bench bench-quick deps-bench

# Web pages: htdocs/ holds the sources; build/htdocs what httpd serves (each
# page assembled by build-pages.mjs from its own part and the shared
# partials/layout.html, CSS copied, each page's JavaScript bundled with pkijs
# + asn1js by esbuild).  npm ci runs only when the lock file changed, so
# `make run` works offline once the packages are installed.
NPM        ?= npm
NODE       ?= node
HTDOCS_DIR ?= /usr/local/share/certauth/htdocs
WEB_OUT    := $(BUILD)/htdocs
WEB_SRC    := $(wildcard htdocs/*.html htdocs/error/*.html htdocs/partials/*.html htdocs/css/*.css \
                htdocs/js/*.js) htdocs/build-pages.mjs htdocs/favicon.svg
# where the pages are served: the error documents link to it absolutely
WEB_ROOT   ?= /ca/
WEB_PAGES  := home request mycerts
WEB_DEPS   := htdocs/node_modules/.package-lock.json
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json

all: $(MOD_SO) $(ADMIN) $(STUNNEL)

$(BUILD)/core/%.o: mod_certauth/core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The module: compiled with the flags apxs reports, linked against the core.
$(MOD_SO): $(MOD_SRC) $(MOD_HDR) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared $(CFLAGS_COMMON) $(AP_CFLAGS) $(AP_CPPFLAGS) -I$(AP_INCLUDEDIR) \
	    $(CURL_CFLAGS) -o $@ $(MOD_SRC) $(CORE_LIB) -lssl $(SSL_LIBS) $(JSON_LIBS) \
	    $(CURL_LIBS)

$(ADMIN): $(ADMIN_SRC) $(ADMIN_HDR) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Imod_certauth/admin -o $@ $(ADMIN_SRC) $(CORE_LIB) $(APR_LIBS) $(SSL_LIBS)

$(STUNNEL): $(STUNNEL_SRC) $(STUNNEL_HDR) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CURL_CFLAGS) -Istunnel-helper -o $@ $(STUNNEL_SRC) \
	    $(CORE_LIB) $(CURL_LIBS) $(APR_LIBS) $(SSL_LIBS)

# certauth-stunnel's key-cert files, an object of their own for its unit test
$(BUILD)/stunnel/keycert.o: stunnel-helper/keycert.c stunnel-helper/keycert.h $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Istunnel-helper -c $< -o $@

# unit tests link the core library (and the objects they name below)
UNIT_DEPS := tests/unit/unit.h tests/unit/rawdb.h $(CORE_LIB)
$(BUILD)/tests/test_keycert: $(BUILD)/stunnel/keycert.o
$(BUILD)/tests/test_keycert: UNIT_OBJS := $(BUILD)/stunnel/keycert.o
$(BUILD)/tests/test_keycert: UNIT_INC := -Istunnel-helper

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Itests/unit $(UNIT_INC) -o $@ $< $(UNIT_OBJS) \
	    $(CORE_LIB) $(APR_LIBS) $(SSL_LIBS) $(JSON_LIBS)

$(WEB_DEPS): htdocs/package.json htdocs/package-lock.json
	cd htdocs && $(NPM) ci --no-audit --no-fund --prefer-offline
	@touch $@

$(WEB_OUT)/.built: $(WEB_SRC) $(WEB_DEPS)
	rm -rf $(WEB_OUT)
	mkdir -p $(WEB_OUT)/css $(WEB_OUT)/js $(WEB_OUT)/error
	$(NODE) htdocs/build-pages.mjs $(WEB_OUT) htdocs/*.html
	$(NODE) htdocs/build-pages.mjs $(WEB_OUT)/error --root=$(WEB_ROOT) htdocs/error/*.html
	cp htdocs/favicon.svg $(WEB_OUT)/
	cp htdocs/css/*.css $(WEB_OUT)/css/
	cp htdocs/js/pkcs12.js $(WEB_OUT)/js/
	htdocs/node_modules/.bin/esbuild $(WEB_PAGES:%=htdocs/js/%.js) --bundle \
	    --format=iife --target=es2020 --minify --legal-comments=eof \
	    --log-level=warning --outdir=$(WEB_OUT)/js
	@touch $@

web: $(WEB_OUT)/.built

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && $(NPM) ci --no-audit --no-fund --prefer-offline
	@touch $@

browser-deps: $(BROWSER_DEPS)

deps-run:
	@tests/install-deps.sh run

deps-test:
	@tests/install-deps.sh test

run: deps-run
	@$(MAKE) --no-print-directory all web
	@PORT=$(PORT) conf/demo/run.sh

stop:
	@conf/demo/stop.sh

unit: $(UNIT_BIN)
	@tests/unit/run.sh $(UNIT_BIN)

integration: all web browser-deps
	cd tests/integration && $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

test: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

# Benchmarks (not part of `make test`): tests/bench/, see tests/bench/README.md.
deps-bench:
	@tests/install-deps.sh bench

bench: deps-bench
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py

bench-quick: deps-bench
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py --quick

# DESTDIR is honoured (packaging, staged installs): the module goes where
# apxs says modules live, installed like the rest (apxs -i would ignore it).
AP_LIBEXECDIR := $(shell $(APXS) -q LIBEXECDIR 2>/dev/null)
AP_SYSCONFDIR := $(shell $(APXS) -q SYSCONFDIR 2>/dev/null)

install: all web
	install -D -m 0644 $(MOD_SO) $(DESTDIR)$(AP_LIBEXECDIR)/mod_certauth.so
	install -D -m 0644 conf/certauth.load $(DESTDIR)$(AP_SYSCONFDIR)/mods-available/certauth.load
	install -D -m 0644 conf/certauth.conf $(DESTDIR)$(AP_SYSCONFDIR)/mods-available/certauth.conf
	install -D -m 0644 conf/profiles.conf $(DESTDIR)$(AP_SYSCONFDIR)/conf-available/certauth-profiles.conf
	install -D -m 0755 $(ADMIN) $(DESTDIR)/usr/local/bin/certauth-admin
	install -D -m 0755 $(STUNNEL) $(DESTDIR)/usr/local/bin/certauth-stunnel
	install -D -m 0644 stunnel-helper/certauth-stunnel.1 $(DESTDIR)/usr/local/share/man/man1/certauth-stunnel.1
	install -D -m 0644 mod_certauth/admin/certauth-admin.1 $(DESTDIR)/usr/local/share/man/man1/certauth-admin.1
	install -d -m 0755 $(DESTDIR)$(HTDOCS_DIR)/css $(DESTDIR)$(HTDOCS_DIR)/js $(DESTDIR)$(HTDOCS_DIR)/error
	install -m 0644 $(WEB_OUT)/*.html $(WEB_OUT)/favicon.svg $(DESTDIR)$(HTDOCS_DIR)/
	install -m 0644 $(WEB_OUT)/error/*.html $(DESTDIR)$(HTDOCS_DIR)/error/
	install -m 0644 $(WEB_OUT)/css/* $(DESTDIR)$(HTDOCS_DIR)/css/
	install -m 0644 $(WEB_OUT)/js/* $(DESTDIR)$(HTDOCS_DIR)/js/

clean:
	rm -rf $(BUILD)
