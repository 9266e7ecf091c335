# The one interface to the project. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SPACY_MODEL := build/spacy_en
RISK_MODEL := build/risk_model

# Dependencies: requirements.lock is what a deployment runs, requirements-dev.lock adds the tests',
# lint and benchmark tools (both hashed; `make lock` rebuilds them). `make setup` installs both;
# a deployment runs `make setup DEPLOY=1` and gets only requirements.lock (deploy/README.md).
ifdef DEPLOY
LOCKS := requirements.lock
INSTALLED := $(VENV)/.installed-deploy
else
LOCKS := requirements.lock requirements-dev.lock
INSTALLED := $(VENV)/.installed
endif

# bot/ and actions/ are installed editable (pyproject.toml); PYTHONPATH stays for bench/ and
# scripts/, which are not packages, and for a .venv made before the editable install.
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: help setup venv spacy risk-model train run test eval bench faults lint lint-ruff lint-imports lock shell clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

# Every file is checked against the lock's hashes (--require-hashes); then bot/ and actions/
# are installed editable, with no dependency of their own (the locks have them all) and with
# the setuptools the lock pinned (--no-build-isolation: nothing unhashed is fetched).
$(INSTALLED): $(LOCKS) pyproject.toml scripts/find-python310
	@py=$$(scripts/find-python310) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$py"; $$py -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==24.0
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes $(addprefix -r ,$(LOCKS))
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(INSTALLED) ## Create .venv (Python 3.10) from the hashed locks; DEPLOY=1: requirements.lock only

$(SPACY_MODEL)/.built: $(INSTALLED) bot/nlu/spacy_pipeline.py $(wildcard bot/directory/places.py) $(wildcard data/services/*.yml)
	$(PY) -m bot.nlu.spacy_pipeline $(SPACY_MODEL)
	@touch $@

spacy: $(SPACY_MODEL)/.built ## Build the spaCy pipeline (blank English + lookup lemmas + places)

# The statistical risk reading (docs/risk.md): trained on data/risk/train and the NLU examples,
# never on tests/risk_blind or ../shared/eval. About a minute to train; rebuilt when its inputs change.
$(RISK_MODEL)/.built: $(SPACY_MODEL)/.built bot/nlu/risk_model.py bot/nlu/risk.py bot/nlu/risk_lexicon.py bot/nlu/risk_normalise.py $(wildcard data/risk/train/*.tsv) $(wildcard data/nlu/*.yml)
	$(PY) -m bot.nlu.risk_model train --out $(RISK_MODEL)
	@touch $@

risk-model: $(RISK_MODEL)/.built ## Train the statistical risk model (build/risk_model)

train: spacy risk-model ## Train the assistant if its inputs changed (cached by hash in models/)
	$(PY) -m bot.train

setup: train ## Everything run and test need: venv, spaCy pipeline, trained model, database
	$(PY) -m bot.store upgrade
	$(PY) -m bot.directory import
	@# The rota lives in the database; the example (ROTA_FILE) goes in only when it has none.
	$(PY) -m bot.escalation rota import --if-empty --by system:setup --reason "make setup: the example rota"

run: setup ## Start the line: Rasa server, action server, duty service (Ctrl-C stops)
	$(PY) -m bot.run

test: setup ## Set everything up and run every test
	@# The browser tests drive Debian's Chromium; they skip, saying why, only if it cannot be installed.
	bash scripts/ensure-chromium || echo "Chromium could not be installed: the browser tests will skip"
	@# The slowest twenty are listed at the end: make test should stay under 20 minutes.
	$(PY) -m pytest --durations=20

eval: setup ## NLU cross-validation; the risk report per taxonomy cell (tests/risk_blind) and over ../shared/eval
	$(VENV)/bin/rasa test nlu --config config_crossval.yml --nlu data/nlu --cross-validation --folds 3 --out var/results/nlu
	@echo; cat var/results/nlu/intent_report.json | $(PY) -c "import json,sys; r=json.load(sys.stdin); print('intent cross-validation (3 folds): weighted F1 %.3f, accuracy %.3f' % (r['weighted avg']['f1-score'], r['accuracy']))"
	$(PY) -m bot.nlu.risk_eval --json var/results/risk/report.json
	$(PY) -m bot.nlu.model_eval

bench: setup ## Latency, throughput, alerts, cold start, memory vs a stock Rasa bot (~14 min; BENCH_QUICK=1 for a short run)
	$(PY) bench/run.py

faults: setup ## Kill processes, fail Twilio, stop PostgreSQL for 30 s under load; fails if anything is lost (FAULT_KILLS=20)
	$(PY) bench/faults.py

# Each checker is its own lint-* target, so adding one is a new target and one word here.
lint: lint-ruff lint-imports ## Every static check: ruff, and the layers of bot/ (.importlinter); .ci/run runs it
lint-ruff: venv
	$(VENV)/bin/ruff check bot actions tests scripts bench
lint-imports: venv
	$(VENV)/bin/lint-imports

shell: setup ## Talk to the assistant in the terminal (needs the action server: make run in another terminal)
	ACTIONS_URL=$$($(PY) -c "from bot.settings import settings; print(settings().actions_url)") \
	ACTIONS_TOKEN=$$($(PY) -c "from bot.settings import settings; print(settings().actions_token)") \
	DATABASE_URL=$$($(PY) -c "from bot.settings import settings; print(settings().database_url)") \
	  $(PY) -m bot.rasa_server shell --model $$($(PY) -m bot.train --path) --endpoints endpoints.yml

# pip-compile keeps every version already in a lock file and adds hashes of all of that version's
# files on the index; LOCK_FLAGS="--upgrade-package NAME" moves one package, deliberately.
# requirements-dev.in is constrained by requirements.lock, so the two locks never disagree.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" var/lockvenv/bin/pip-compile --quiet --generate-hashes \
  --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

lock: ## Rebuild the hashed requirements.lock and requirements-dev.lock from the .in files (~12 min)
	rm -rf var/lockvenv && $$(scripts/find-python310) -m venv var/lockvenv
	var/lockvenv/bin/pip install --quiet pip==24.0 pip-tools==7.4.1
	$(PIP_COMPILE) --output-file requirements.lock requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.in
	rm -rf var/lockvenv

clean: ## Remove generated files (venv kept)
	rm -rf build models var .pytest_cache
