# FinCDP set-up and entry points. `make demo` and `make test` do all set-up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTHON ?= python3

DBT_MYSQL_VENV ?= .venv-dbt-mysql
# apt needs root; a developer who is not root gets sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup setup-mysql mariadb demo test lock clean

# Dagster loads the dbt models from a parsed manifest; re-parsed whenever a model or macro changes.
DBT_MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' \) -print)

setup: $(VENV)/.installed $(DBT_MANIFEST)

$(VENV)/.installed: requirements/main.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==0.13.8
	$(UV) pip install -q --compile-bytecode -p $(PY) -r requirements/main.lock
	$(UV) pip install -q -p $(PY) --no-deps -e .
	touch $@

$(DBT_MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && FINCDP_DBT_TARGET=duckdb ../$(VENV)/bin/dbt parse --profiles-dir . --quiet
	touch $@

# What the MySQL/MariaDB tests need on top of `setup`: Debian's MariaDB server (each test run
# starts its own mariadbd on a free port; no system service is used) and dbt-mysql in its own
# environment (dbt-mysql 1.7 needs dbt-core 1.7; the main environment has 1.11).
setup-mysql: setup mariadb $(DBT_MYSQL_VENV)/.installed

# Installs only when mariadbd is missing. policy-rc.d (exit 101) keeps the package's post-install
# from starting a system service, which fails where there is no init system; it is removed again
# if this step put it there.
mariadb:
	@if PATH="$$PATH:/usr/sbin:/sbin" command -v mariadbd >/dev/null; then exit 0; fi; \
	set -e; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	  $(SUDO) chmod 755 /usr/sbin/policy-rc.d; \
	  trap '$(SUDO) rm -f /usr/sbin/policy-rc.d' EXIT; \
	fi; \
	echo "Installing Debian's mariadb-server and mariadb-client"; \
	$(SUDO) apt-get update -q; \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  mariadb-server mariadb-client

$(DBT_MYSQL_VENV)/.installed: requirements/dbt-mysql.lock $(VENV)/.installed
	[ -x $(DBT_MYSQL_VENV)/bin/python ] || $(PYTHON) -m venv --without-pip $(DBT_MYSQL_VENV)
	$(UV) pip install -q --compile-bytecode -p $(DBT_MYSQL_VENV)/bin/python -r requirements/dbt-mysql.lock
	touch $@

# The main job end to end on the embedded default (DuckDB + a local Dagster instance).
demo: setup
	$(VENV)/bin/fincdp demo run

test: setup setup-mysql
	$(VENV)/bin/pytest -n 2 --durations=15

# Re-pin after editing requirements/*.in.
lock: setup
	$(UV) pip compile -q requirements/main.in -o requirements/main.lock --python-version 3.11
	$(UV) pip compile -q requirements/dbt-mysql.in -o requirements/dbt-mysql.lock --python-version 3.11

clean:
	rm -rf $(VENV) $(DBT_MYSQL_VENV) .fincdp
