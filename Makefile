# Sikkerhetsnett — every target does its own set-up on a fresh machine.
#   make run    the bot (demo against the local Bot API when TELEGRAM_BOT_TOKEN is unset)
#   make test   everything CI checks (the tests on SQLite, then on PostgreSQL where it can be had)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYBABEL := $(BIN)/pybabel
DOMAINS := messages content
# uv installs exactly what uv.lock says (hashes checked); it is itself pinned, with hashes, in
# tools/uv-requirements.txt and lives in its own small venv so `uv sync` never removes it.
UV_VENV := .uv
UV      := $(UV_VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test test-pg pg-up chat catalogs compile check lint typecheck bench clean help \
	system-deps lock lock-check wheel wheel-check axe

help:
	@sed -n '1,4p' Makefile

$(UV): tools/uv-requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes -r tools/uv-requirements.txt
	@touch $(UV)

# The project (editable) and its dev tools, exactly as locked. --locked refuses a uv.lock that no
# longer matches pyproject.toml instead of quietly resolving anew.
$(STAMP): pyproject.toml uv.lock $(UV)
	@$(MAKE) --no-print-directory lock-check
	$(UV) sync --locked --python $(PYTHON) --quiet
	@touch $(STAMP)

# Resolve pyproject.toml's ranges anew and write uv.lock (commit it). `make lock UPGRADE=1` moves
# every package to its newest release within the ranges; otherwise locked versions are kept.
lock: $(UV)
	$(UV) lock --python $(PYTHON) $(if $(UPGRADE),--upgrade,)

lock-check: $(UV)
	@out="$$($(UV) lock --check --python $(PYTHON) 2>&1)" || { printf '%s\n' "$$out" >&2; \
		echo "make: uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock" >&2; \
		exit 1; }

# A venv with the project, compiled catalogs, and a migrated database.
install: $(STAMP) compile
	$(BIN)/python -m bot db upgrade

compile: $(STAMP)
	@for domain in $(DOMAINS); do $(PYBABEL) compile -d locales -D $$domain --statistics || exit 1; done

run: install
	$(BIN)/python -m bot run

# A terminal chat with the demo bot, as a person (run `make run` in another terminal first).
chat: $(STAMP)
	$(BIN)/python -m devkit chat

# Apertium's Bokmål→Nynorsk pair, for `python -m bot content translate` and its tests: installed
# from Debian when missing and we may (root, or sudo without a password); skipped otherwise.
APT_PACKAGES := apertium apertium-nno-nob chromium chromium-driver  # chromium: tests/e2e

system-deps:
	@if command -v apertium >/dev/null 2>&1 && apertium -l 2>/dev/null | grep -qw 'nob-nno' \
		&& command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: skipped, no apt-get here; install Apertium with the nob-nno pair yourself"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "system-deps: installing $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "system-deps: installing $(APT_PACKAGES)"; \
		sudo -n apt-get update -qq && \
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	else \
		echo "system-deps: skipped, not root and no password-less sudo (sudo apt-get install $(APT_PACKAGES))"; \
	fi

# axe-core, the accessibility engine tests/e2e runs inside the advice page: the npm package at
# this version, fetched with npm and refused unless its SHA-512 is this one (npm's "integrity"),
# unpacked under tests/e2e/vendor/ (not committed). Nothing is downloaded at test time.
AXE_VERSION := 4.14.1
AXE_SHA512 := FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE := tests/e2e/vendor/axe-core-$(AXE_VERSION).min.js

axe: $(AXE)

$(AXE):
	@command -v npm >/dev/null 2>&1 || { echo "axe: npm is needed to fetch axe-core" >&2; exit 1; }
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent "axe-core@$(AXE_VERSION)" >/dev/null) && \
	$(PYTHON) tools/unpack_checked.py "$$tmp/axe-core-$(AXE_VERSION).tgz" "$(AXE_SHA512)" \
		package/axe.min.js "$@"

# The checks, the tests on SQLite, then the same tests on PostgreSQL (see test-pg), then the wheel.
test: lock-check system-deps install axe lint typecheck
	$(BIN)/python -m bot content check
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-pg
	@$(MAKE) --no-print-directory wheel-check

# The wheel (and sdist) in dist/: what a deployment installs (README, "Deploying"). The devkit
# (local Bot API, demo) is its own wheel: make wheel builds both, a deployment takes only the bot.
wheel: $(UV)
	$(UV) build --out-dir dist
	$(UV) build --package sikkerhetsnett-devkit --out-dir dist

# The wheel, installed alone into an empty venv with the locked dependencies, works from /tmp.
wheel-check: $(UV)
	@UV=$(UV) PYTHON=$(PYTHON) bash .ci/wheel-check

# A local PostgreSQL for the tests: installed from Debian and started when missing and we may
# (root, or sudo without a password); prints its URL. See .ci/pg-up.
pg-up:
	@bash .ci/pg-up

# The tests that use a database, on PostgreSQL, one fresh database per test: on the server in
# TEST_DATABASE_URL if set, else on the one pg-up provides. Where pg-up cannot (not root, no
# apt-get) this is skipped with a note, except under CI, where it fails.
test-pg: $(STAMP) compile
	@url="$${TEST_DATABASE_URL:-}"; \
	if [ -z "$$url" ]; then \
		status=0; url="$$(bash .ci/pg-up)" || status=$$?; \
		url="$$(printf '%s\n' "$$url" | tail -n 1)"; \
		if [ "$$status" = 2 ] && [ -z "$${CI:-}" ]; then \
			echo "test-pg: skipped, no PostgreSQL here (set TEST_DATABASE_URL=postgresql://…)"; \
			exit 0; \
		elif [ "$$status" != 0 ]; then \
			echo "test-pg: no PostgreSQL to test on (pg-up exited with $$status)" >&2; exit 1; \
		fi; \
	fi; \
	echo "test-pg: the tests that use a database, again on PostgreSQL"; \
	TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest $(PYTEST_ARGS)

# Extract → update → compile, for the bot's own texts and for the content.
catalogs: $(STAMP)
	$(PYBABEL) extract -F babel.cfg -o locales/messages.pot --no-wrap --sort-by-file \
		--project=Sikkerhetsnett --copyright-holder=Sikkerhetsnett \
		--msgid-bugs-address=admin@example.invalid --add-comments=TRANSLATORS: .
	$(PYBABEL) extract -F babel-content.cfg -o locales/content.pot --no-wrap --sort-by-file \
		--project=Sikkerhetsnett --copyright-holder=Sikkerhetsnett \
		--msgid-bugs-address=admin@example.invalid .
	$(PYBABEL) update -i locales/messages.pot -d locales -D messages --no-wrap --ignore-obsolete
	$(PYBABEL) update -i locales/content.pot -d locales -D content --no-wrap --ignore-obsolete
	$(MAKE) compile

check: $(STAMP) compile
	$(BIN)/python -m bot content check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy bot handlers

# The five benchmarks at full size (~15 min; not run by CI). Quick run: make bench BENCH_ARGS=--small
BENCHES := bench/bench_fanout.py bench/bench_budget.py bench/bench_deeplink.py bench/bench_tick.py \
	bench/bench_startup.py
bench: install
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS) || exit 1; done

clean:
	rm -rf $(VENV) $(UV_VENV) dist var .pytest_cache .mypy_cache .ruff_cache locales/*/LC_MESSAGES/*.mo
