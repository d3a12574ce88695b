# Two commands on a fresh machine with Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean sipp

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/twistd -n convergence $(ARGS)

test: $(STAMP) sipp
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# sipp (Debian package sip-tester) drives the SIP integration tests; a no-op when sipp is on PATH.
sipp:
	@command -v sipp >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester)

clean:
	rm -rf $(VENV) build *.egg-info
