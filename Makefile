# FinCDP set-up and entry points. `make demo` and `make test` do all set-up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTHON ?= python3

.PHONY: setup demo test lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements/main.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==0.13.8
	$(UV) pip install -q -p $(PY) -r requirements/main.lock
	$(UV) pip install -q -p $(PY) --no-deps -e .
	touch $@

# The main job end to end on the embedded default (DuckDB + a local Dagster instance).
demo: setup
	$(VENV)/bin/fincdp demo run

test: setup
	$(VENV)/bin/pytest -n 2 --durations=15

# Re-pin after editing requirements/*.in.
lock: setup
	$(UV) pip compile -q requirements/main.in -o requirements/main.lock --python-version 3.11
	$(UV) pip compile -q requirements/dbt-mysql.in -o requirements/dbt-mysql.lock --python-version 3.11

clean:
	rm -rf $(VENV) .fincdp
