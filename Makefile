# The two commands a newcomer needs: `make run` and `make test`. Both create or reuse
# the virtualenv at .venv and install only when a requirements file changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCAL_REQS := local/requirements.txt serving/requirements-serve.txt model/requirements-build.txt serving/code/requirements.txt
DEV_REQS := requirements-dev.txt requirements.txt $(LOCAL_REQS)
# npm ci writes this file last: it stands for an installed node_modules (axe-core for the tests).
NODE_DEPS := node_modules/.package-lock.json

.PHONY: run test test-fast lint venv

run: $(VENV)/.installed-local
	$(PY) -m local $(ARGS)

test: $(VENV)/.installed-dev $(NODE_DEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

venv: $(VENV)/.installed-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: $(PY) $(LOCAL_REQS)
	$(PY) -m pip install --quiet -r local/requirements.txt
	touch $@

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund

$(VENV)/.installed-dev: $(PY) $(DEV_REQS)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-local
