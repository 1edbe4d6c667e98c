# PopGate: build, unit tests, real-component integration tests, demo.
#   make test    install what is missing, swift build, swift test, integration suite
#   make demo    throw-away Dovecot + PopGate in the foreground, with curl/fetchmail commands
#   make build   swift build
#   make clean   remove build products and test caches
#   make integration-dovecot   validate the suite against Dovecot's own POP3 (no Swift binary)
#   make bench   release build, then PopGate vs Dovecot's own POP3 vs Dovecot's POP3 over imapc, side by side
#                (Tests/bench, BENCHMARKS.md; ~15 min, incl. 10,000 idle sessions; not part of `make test`)
#   make bench-quick   the same with small sizes and one run (< 2 min): does the bench still work?
#   make bench-routes   route lookup time from 10 to 100,000 domains, next to a first-match scan (~2 min)
#   make front-door-report   every front-door attack against a real popgate + Dovecot, measured (~2-5 min;
#                BASELINE=old/popgate adds an older binary side by side; not part of `make test`)
#   make fuzz    libFuzzer targets (Tests/Fuzz), each for FUZZ_SECONDS (default 300); fuzz-smoke: 30 s each
#   make test-sanitizers   unit tests and integration suite under ASan and TSan (make test runs all but the
#                TSan integration pass: ~5 min, and TSan's slowdown stretches the suite's timing windows)
#   make deb     release build, then popgate_<version>_amd64.deb (deploy/debian; version: Sources/popgate/Version.swift)
#   make man     regenerate docs/man/popgate.8 from the argument parser (after changing an option or help text)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export DEBIAN_FRONTEND := noninteractive
export PATH := $(PATH):/opt/swift/usr/bin

APT_PACKAGES := dovecot-imapd dovecot-pop3d libssl-dev libsystemd-dev pkg-config fetchmail mpop curl openssl systemd systemd-container haproxy prometheus lintian fail2ban
PYTHON ?= python3
SWIFT ?= swift
POPGATE_BIN ?= $(CURDIR)/.build/debug/popgate
PYTEST_ARGS ?= -q
FUZZ_SECONDS ?= 300

.PHONY: man man-check deb deb-check
.PHONY: all deps build unit-test integration-test deploy-test test demo clean integration-dovecot bench bench-quick front-door-report \
	bench-routes fuzz fuzz-smoke unit-test-asan unit-test-tsan integration-test-asan integration-test-tsan test-sanitizers

all: build

# Installs only what is missing: a warm machine runs no apt-get and no pip.
# policy-rc.d keeps the Debian packages from starting a system-wide Dovecot
# (it would listen on every interface); tests start their own on loopback.
# pymap 0.36.7 needs Python 3.11 or later; keep in step with harness/pymap.py's PYMAP_VERSION.
PYMAP_VERSION := 0.36.7

# `prometheus` is there for promtool (the metrics test lints the scraped text); its server is
# never started, and its unit is disabled so a boot does not start it either.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing packages:$$missing"; \
	  created_policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; \
	    created_policy=1; \
	  fi; \
	  status=0; \
	  { apt-get update && apt-get install -y --no-install-recommends $$missing; } || status=$$?; \
	  if [ -n "$$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	  case " $$missing " in *" prometheus "*) systemctl disable prometheus.service >/dev/null 2>&1 || true;; esac; \
	  exit $$status; \
	fi
	@if ! $(PYTHON) -c "import pytest" 2>/dev/null; then \
	  echo "make: installing pytest"; \
	  $(PYTHON) -m pip install --quiet pytest \
	    || $(PYTHON) -m pip install --quiet --break-system-packages pytest \
	    || apt-get install -y --no-install-recommends python3-pytest; \
	fi
	@# pymap: the second, independent IMAP server of the integration suite (Tests/integration/harness/pymap.py)
	@if [ "$$($(PYTHON) -c 'import importlib.metadata as m; print(m.version("pymap"))' 2>/dev/null)" != "$(PYMAP_VERSION)" ]; then \
	  echo "make: installing pymap $(PYMAP_VERSION)"; \
	  $(PYTHON) -m pip install --quiet "pymap==$(PYMAP_VERSION)" \
	    || $(PYTHON) -m pip install --quiet --break-system-packages "pymap==$(PYMAP_VERSION)"; \
	fi

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test

integration-test: build
	POPGATE_BIN="$(POPGATE_BIN)" $(PYTHON) -m pytest $(PYTEST_ARGS) Tests/integration

# The shipped units: systemd-analyze's offline exposure score (must be <= 1.5), then the .deb: lintian and
# its contents (check-deb.sh), and a boot of a throw-away systemd-nspawn container that installs it with
# apt and drives the installed units and binary.
deploy-test: deb
	bash Tests/deploy/check-security.sh
	bash Tests/packaging/check-deb.sh "$(DEB)"
	POPGATE_DEB="$(DEB)" bash Tests/deploy/nspawn-smoke.sh

# Manual pages (docs/man). popgate.8 is generated from the argument parser: `make man` rewrites it,
# man-check regenerates it and fails on any difference. popgate.yaml.5 is checked by ConfigSchemaTests.
MAN_SCRATCH ?= .build
man: build
	SWIFT="$(SWIFT)" SCRATCH="$(MAN_SCRATCH)" bash Tests/packaging/man-popgate8.sh --write

man-check: build
	SWIFT="$(SWIFT)" SCRATCH="$(MAN_SCRATCH)" bash Tests/packaging/man-popgate8.sh

# The Debian package, from a release build with the Swift runtime linked in (no toolchain on the
# target host). Its own scratch folder: the bench's release build has other flags.
VERSION := $(shell sed -n 's/^let popGateVersion = "\([^"]*\)"$$/\1/p' Sources/popgate/Version.swift)
DEB := popgate_$(VERSION)_amd64.deb
DEB_SCRATCH ?= .build-deb
deb: deps
	$(SWIFT) build -c release --static-swift-stdlib --product popgate --scratch-path $(DEB_SCRATCH)
	bash deploy/debian/build-deb.sh $(DEB_SCRATCH)/release/popgate $(CURDIR)

deb-check: deb
	bash Tests/packaging/check-deb.sh "$(DEB)"

# The TSan integration pass is in test-sanitizers only (see the header).
test: unit-test man-check fuzz-smoke unit-test-asan unit-test-tsan deploy-test integration-test integration-test-asan

# libFuzzer targets (Tests/Fuzz/README.md): crashes exit non-zero, artifacts go to a temp folder.
fuzz:
	SWIFT="$(SWIFT)" bash Tests/Fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke:
	SWIFT="$(SWIFT)" bash Tests/Fuzz/run.sh 30

# Sanitizers, each in its own scratch folder. Unit tests under ASan run without leak checking: XCTest's
# weak-reference side tables look leaked to LSan and everything its test cases hold hangs off them.
# The daemon's leaks are checked in the integration run (Tests/sanitizers/).
unit-test-asan: deps
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --sanitize=address --scratch-path .build-asan

unit-test-tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan

SANITIZED_INTEGRATION := SWIFT="$(SWIFT)" PYTHON="$(PYTHON)" PYTEST_ARGS="$(PYTEST_ARGS)" bash Tests/sanitizers/integration.sh
integration-test-asan: deps
	$(SANITIZED_INTEGRATION) address

integration-test-tsan: deps
	$(SANITIZED_INTEGRATION) thread

test-sanitizers: unit-test-asan unit-test-tsan integration-test-asan integration-test-tsan

# Validate the suite itself without the Swift binary: against Dovecot's own POP3
# (PopGate-only tests skip, known Dovecot differences are strict xfails).
integration-dovecot: deps
	POP3_TARGET=dovecot $(PYTHON) -m pytest $(PYTEST_ARGS) Tests/integration

# Numbers only mean something for a release binary: `make bench POPGATE_BIN=...` to use another.
# RELEASE_SCRATCH: swift's scratch folder for the release build (e.g. .build-bench in a second worktree).
RELEASE_SCRATCH ?= .build
BENCH_ARGS ?=
bench bench-quick: POPGATE_BIN = $(CURDIR)/$(RELEASE_SCRATCH)/release/popgate
bench: deps
	$(SWIFT) build -c release --scratch-path $(RELEASE_SCRATCH)
	$(PYTHON) Tests/bench/bench.py --popgate "$(POPGATE_BIN)" $(BENCH_ARGS)

bench-quick: deps
	$(SWIFT) build -c release --scratch-path $(RELEASE_SCRATCH)
	$(PYTHON) Tests/bench/bench.py --popgate "$(POPGATE_BIN)" --quick $(BENCH_ARGS)

# Route lookup time from 10 to 100,000 domains, PopGate's table vs a first-match scan (Tests/bench/RouteBench).
bench-routes:
	POPGATE_BENCH=1 $(SWIFT) build -c release --scratch-path .build-bench --product RouteBench
	.build-bench/release/RouteBench

# A report, not a test: the issue-6 attacks with RSS, fds, CPU, the other client's latency and the
# mailbox afterwards, as a Markdown table (Tests/bench/README.md). BASELINE=path/to/old/popgate adds
# an older binary side by side (it runs only the attacks its config keys allow).
BASELINE ?=
front-door-report: build
	$(PYTHON) Tests/bench/front_door.py --popgate "$(POPGATE_BIN)" $(if $(BASELINE),--baseline "$(BASELINE)")

demo: build
	$(PYTHON) Tests/integration/demo.py --popgate "$(POPGATE_BIN)"

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan .build-deb popgate_*.deb Tests/integration/.pytest_cache
	find Tests/integration -name __pycache__ -type d -prune -exec rm -rf {} +
