# mod_certauth: build, demo and tests.  See README.md.
#   make          build build/mod_certauth.so, build/certauth-admin
#   make run      install missing Debian packages, build, start the demo CA
#   make stop     stop the demo
#   make test     install test dependencies, build, run every suite
#   make install  install the module and conf/certauth.{load,conf} (apxs, Debian)
#   make bench    benchmarks against cfssl, openssl ca and static Apache (minutes)
#   make bench-quick  the same, smaller and shorter (under 2 minutes)

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
CFLAGS_COMMON := -g -O2 -fPIC $(WARN) -std=gnu11 $(APR_CPPFLAGS) $(APR_INCLUDES) -Imod_certauth/core
SSL_LIBS  := -lcrypto
JSON_LIBS := -ljansson

CORE_SRC  := $(wildcard mod_certauth/core/*.c)
CORE_OBJ  := $(patsubst mod_certauth/core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
CORE_HDR  := $(wildcard mod_certauth/core/*.h)
CORE_LIB  := $(BUILD)/libcertauth.a

MOD_SRC   := $(wildcard mod_certauth/*.c)
MOD_HDR   := $(wildcard mod_certauth/*.h)
MOD_SO    := $(BUILD)/mod_certauth.so

ADMIN     := $(BUILD)/certauth-admin
ADMIN_SRC := stunnel-helper/certauth_admin.c

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all run stop test unit integration install deps-run deps-test clean \
        bench bench-quick deps-bench

all: $(MOD_SO) $(ADMIN)

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
	    -o $@ $(MOD_SRC) $(CORE_LIB) $(SSL_LIBS) $(JSON_LIBS)

$(ADMIN): $(ADMIN_SRC) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $(ADMIN_SRC) $(CORE_LIB) $(APR_LIBS) $(SSL_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/rawdb.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Itests/unit -o $@ $< $(CORE_LIB) $(APR_LIBS) $(SSL_LIBS)

deps-run:
	@tests/install-deps.sh run

deps-test:
	@tests/install-deps.sh test

run: deps-run
	@$(MAKE) --no-print-directory all
	@PORT=$(PORT) conf/demo/run.sh

stop:
	@conf/demo/stop.sh

unit: $(UNIT_BIN)
	@tests/unit/run.sh $(UNIT_BIN)

integration: all
	cd tests/integration && $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

test: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

# Benchmarks (not part of `make test`): tests/bench/, see README "Performance".
deps-bench:
	@tests/install-deps.sh bench

bench: deps-bench
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py

bench-quick: deps-bench
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/bench/bench.py --quick

install: all
	$(APXS) -i -n certauth $(MOD_SO)
	install -m 0644 conf/certauth.load $(DESTDIR)$(shell $(APXS) -q SYSCONFDIR)/mods-available/certauth.load
	install -m 0644 conf/certauth.conf $(DESTDIR)$(shell $(APXS) -q SYSCONFDIR)/mods-available/certauth.conf
	install -m 0644 conf/profiles.conf $(DESTDIR)$(shell $(APXS) -q SYSCONFDIR)/conf-available/certauth-profiles.conf
	install -m 0755 $(ADMIN) $(DESTDIR)/usr/local/bin/certauth-admin

clean:
	rm -rf $(BUILD)
