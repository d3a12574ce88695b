# Two commands on a fresh machine with Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean sipp browser

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/twistd -n convergence $(ARGS)

test: $(STAMP) sipp browser
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# sipp (Debian package sip-tester) drives the SIP integration tests; a no-op when sipp is on PATH.
sipp:
	@command -v sipp >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester)

# Debian's Chromium (+ ChromeDriver) for the browser tests, driven by Playwright's
# Python package from the test extra; a no-op when /usr/bin/chromium exists.
# Never `playwright install`: see docs/browser-testing.md.
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

clean:
	rm -rf $(VENV) build *.egg-info
