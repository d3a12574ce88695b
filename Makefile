# Two commands on a fresh machine with Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean sipp prosody browser bench bench-deps lint compliance clients clients-deps selfhelp-assets

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/twistd -n convergence $(ARGS)

test: $(STAMP) sipp prosody browser clients-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# sipp (Debian package sip-tester) drives the SIP integration tests; a no-op when sipp is on PATH.
sipp:
	@command -v sipp >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester)

# Debian's prosody for the federation interop test (tests/test_s2s_prosody.py);
# the package would start a system-wide Prosody on 5222/5269: the test runs its
# own on loopback, so that service is stopped and disabled right after the install.
prosody:
	@command -v prosody >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody && (systemctl disable --now prosody >/dev/null 2>&1 || service prosody stop >/dev/null 2>&1 || true))

# Debian's Chromium (+ ChromeDriver) for the browser tests, driven by Playwright's
# Python package from the test extra; a no-op when /usr/bin/chromium exists.
# Never `playwright install`: see docs/browser-testing.md.
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# The client matrix (docs/clients.md, tests/clients/): Debian's profanity (in
# tmux), go-sendxmpp, sendxmpp and python3-nbxmpp, installed when missing, and
# @xmpp/client by `npm ci` into tests/clients/js/node_modules (gitignored)
# from the committed package-lock.json. A no-op when all are there.
CLIENT_PACKAGES := profanity tmux go-sendxmpp sendxmpp python3-nbxmpp
CLIENTS_JS := tests/clients/js
clients-deps: $(CLIENTS_JS)/node_modules/.installed
	@missing=$$(for p in $(CLIENT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(CLIENTS_JS)/node_modules/.installed: $(CLIENTS_JS)/package.json $(CLIENTS_JS)/package-lock.json
	cd $(CLIENTS_JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The selfhelp page's browser libraries, committed as built in
# apps/selfhelp/static/vendor/ with their licences (docs/selfhelp.md): npm ci
# of the pinned @xmpp/client, SIP.js and esbuild in apps/selfhelp/assets
# (node_modules gitignored), then build.mjs. Commit what changes.
SELFHELP_ASSETS := apps/selfhelp/assets
selfhelp-assets:
	cd $(SELFHELP_ASSETS) && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

# Every client against a fresh server; rewrites docs/clients.md (commit it
# when it changes). tests/test_clients.py runs the same in `make test`.
clients: $(STAMP) clients-deps
	$(BIN)/python -m tests.clients

# convergence against the references on this machine, in one run: Prosody for
# XMPP, a sipp UAS for SIP (docs/performance.md). About 20 minutes on 2 cores;
# `make bench BENCH_ARGS=--quick` for a short try, `BENCH_ARGS="--only sip"`.
bench: $(STAMP) bench-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Debian's prosody (the XMPP reference; `make test` needs it too), kamailio
# (the SIP registrar reference) and sipp, installed when missing. The packages
# would start a system-wide Prosody on 5222/5269 and Kamailio on 5060: the
# bench runs its own on loopback, so those services are stopped and disabled
# right after the install.
bench-deps: sipp prosody
	@command -v kamailio >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio && (systemctl disable --now kamailio >/dev/null 2>&1 || service kamailio stop >/dev/null 2>&1 || true))

# ruff from PyPI (the `lint` extra), installed into the venv on first use.
# Not part of `make test`.
lint: $(STAMP)
	@$(BIN)/python -m ruff --version >/dev/null 2>&1 || $(BIN)/python -m pip install -q -e '.[lint]'
	$(BIN)/python -m ruff check convergence apps tests bench twisted

# docs/compliance.md and docs/convergence.doap (XEP-0453) from the feature
# declarations; tests/test_compliance.py fails while the committed ones differ.
compliance: $(STAMP)
	$(BIN)/python -m convergence.compliance

clean:
	rm -rf $(VENV) build dist *.egg-info
