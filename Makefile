# Keyhouse: `make run` serves the app with its worker and beat; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# The web port for every process: honcho gives each its own PORT (the worker, which sends the
# mail, gets PORT+100), and the settings build mail links (SITE_URL) from this one.
export WEB_PORT := $(PORT)

.PHONY: help install local-state port-free run demo test lint format bench faults clean

help:
	@echo "make run    set up (venv, .env, database, demo data) and serve on http://127.0.0.1:$(PORT)"
	@echo "make demo   like run, with a fake Stripe and Kashier (no account or network needed)"
	@echo "make test   lint and run the whole test suite"
	@echo "make lint   ruff check and format check"
	@echo "make format apply ruff's formatting and safe fixes"
	@echo "make bench  run the benchmarks and write docs/benchmarks.md"
	@echo "make faults run the fault-injection matrix on private PostgreSQL and Redis, write docs/faults.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalls only when pyproject.toml changed, so `make test` stays quick when nothing did.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# `.env` (only if absent: it is never overwritten) and the folders under var/.
local-state: install
	$(BIN)/python -m core.envfile

# Another copy (or any program) on the web port would stop web, worker and beat at once: say
# which port and how to choose another before anything starts.
port-free:
	@$(PYTHON) -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $(PORT)))" 2>/dev/null \
		|| { echo "Port $(PORT) is in use (another copy of Keyhouse?). Stop it, or choose another port: PORT=8080 make $(MAKECMDGOALS)" >&2; exit 1; }

run: port-free local-state
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "Keyhouse is starting: open http://127.0.0.1:$(PORT)/ (helpdesk: http://127.0.0.1:$(PORT)/admin/)."
	@echo "Emails are printed below by the web and worker processes. Stop with Ctrl+C."
	@echo
	@# `-e /dev/null`: honcho would let .env override the real environment; Django reads .env
	@# itself and lets the environment win.
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -e /dev/null -f Procfile -p $(PORT)

# `make run` with a fake Stripe on 127.0.0.1:12111 and a fake Kashier on 12112 (test) and 12113
# (live), or other free ports when something (another demo) holds those, instead of the
# providers' APIs: for a demo without accounts or network. Any well-shaped key verifies; keys
# ending in bad0 are rejected.
demo: port-free local-state
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@stripe_port=$$($(BIN)/python -m tests.fake_stripe --free-port) && \
	kashier_test_port=$$($(BIN)/python -m tests.fake_kashier --mode test --free-port) && \
	kashier_live_port=$$($(BIN)/python -m tests.fake_kashier --mode live --free-port) && \
	echo && \
	echo "Keyhouse demo with a fake Stripe on port $$stripe_port and a fake Kashier on ports $$kashier_test_port (test) and $$kashier_live_port (live):" && \
	echo "open http://127.0.0.1:$(PORT)/ (helpdesk: /admin/)." && \
	echo && \
	STRIPE_PORT=$$stripe_port STRIPE_API_BASE=http://127.0.0.1:$$stripe_port \
	KASHIER_TEST_PORT=$$kashier_test_port KASHIER_API_BASE_TEST=http://127.0.0.1:$$kashier_test_port \
	KASHIER_LIVE_PORT=$$kashier_live_port KASHIER_API_BASE_LIVE=http://127.0.0.1:$$kashier_live_port \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -e /dev/null -f Procfile.demo -p $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m tests.benchmarks

# Starts its own PostgreSQL cluster and Redis on free ports (never the shared ones), stops
# them at the end; exits non-zero if a scenario fails. About 6 minutes on 2 cores.
faults: install
	$(BIN)/python -m tests.faults

clean:
	rm -rf var/broker var/celerybeat-schedule* .pytest_cache .ruff_cache
