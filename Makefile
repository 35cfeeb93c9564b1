# The WAP bundle's commands. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PROJECT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV := $(PROJECT)/.venv
UV_VERSION := 0.13.9

export PATH := $(VENV)/bin:$(PATH)
export AIRFLOW_HOME ?= $(PROJECT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(PROJECT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(PROJECT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__API__HOST ?= 127.0.0.1
export AIRFLOW__API__PORT ?= 8080
export AIRFLOW__API__BASE_URL ?= http://127.0.0.1:8080
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL ?= 1
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export WAP_DUCKDB_PATH ?= $(PROJECT)/.wap/warehouse.duckdb

.PHONY: setup demo demo-data demo-rollback test test-slow lint browser bench airflow clean

## setup: venv with the pinned packages, the `wap` CLI, Airflow's database and settings, then the dbt project
## (WAP_DBT_PROJECT_DIR, default dbt/): the bundle's profile, its packages, its manifest (`wap dbt prepare`)
setup: $(VENV)/.installed $(AIRFLOW_HOME)/.migrated
	wap settings apply
	wap dbt prepare

# One venv locally: the Airflow side (requirements.txt), dbt (requirements-dbt.txt; its own venv in the image),
# Airflow itself and the test tools (requirements-dev.txt), and the `wap` package. All pinned; `uv pip check` must pass.
$(VENV)/.installed: requirements.txt requirements-dbt.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { apt-get update && apt-get install -y python3-venv; }
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(VENV)/bin/python \
	  -r requirements.txt -r requirements-dbt.txt -r requirements-dev.txt -e .
	$(VENV)/bin/uv pip check --python $(VENV)/bin/python
	touch $@

$(AIRFLOW_HOME)/.migrated: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || { tail -30 $(AIRFLOW_HOME)/migrate.log; exit 1; }
	touch $@

## demo-data: a fresh embedded warehouse: landing through 2021, production `dwh` built from it, then the 2022 load
demo-data: setup
	wap demo reset

## demo: set up, then three WAP cycles of wap_dwh on Airflow's real components, and what they wrote: the 2022 load
## (no history yet: a reviewer approves), the 2023 load (routine: published by the review policy, dbt/wap_policy.yml),
## and 2023 again without a region (rows removed: the policy names the rule it broke; a reviewer rejects it)
demo: demo-data
	@export WAP_APPROVAL_POKE_INTERVAL=$${WAP_APPROVAL_POKE_INTERVAL:-2s} WAP_REVIEW_TIMEOUT=$${WAP_REVIEW_TIMEOUT:-10m}
	echo "== Before the run =="
	wap series
	echo
	echo "######## Cycle 1: the 2022 load. No published cycle in the history yet, so the review policy leaves it to a reviewer ########"
	wap cycle --decision approve
	echo "== The review, as \`wap status\` shows it =="
	wap status
	echo
	echo "== After the publish: dwh has the new build, develop_dwh the previous production =="
	wap series
	echo
	echo "######## Cycle 2: the 2023 load, a routine cycle: nobody decides, the review policy publishes it ########"
	wap landing load --from 2023 --through 2023
	wap cycle --decision none
	wap status
	wap series
	echo
	echo "######## Cycle 3: 2023 loaded again without one region: rows removed, the policy names the rule; a reviewer rejects ########"
	wap landing load --from 2023 --through 2023 --without-region "1804 Bodø"
	wap cycle --decision reject
	wap status
	echo
	echo "== Production still holds cycle 2's build (published by policy) =="
	wap series
	echo
	echo "make airflow, then http://127.0.0.1:8080/wap/reviews (user admin, password printed at start), shows these reviews."

## demo-rollback: after `make demo`, put the previous production back with wap_dwh_rollback
demo-rollback: setup
	@echo "== Before the rollback =="
	wap series
	# A refused rollback fails its run on purpose (and says why); the demo shows the reason either way.
	airflow dags test wap_dwh_rollback > $(PROJECT)/.wap/rollback-run.log 2>&1 || true
	grep -o -e "Rolled back: .*" -e "AirflowFailException: .*" $(PROJECT)/.wap/rollback-run.log | sed 's/ \[.*//' | head -1
	grep -o "DagRun Finished: dag_id=wap_dwh_rollback.*state=[a-z]*" $(PROJECT)/.wap/rollback-run.log | sed 's/, run_start.*, state=/ ... state=/'
	echo "== After the rollback =="
	wap series

## test: set-up, ruff, then the whole pytest suite (the review view's browser test drives Debian's chromium)
test: setup lint browser
	pytest -m "not slow"

## browser: Debian's chromium for the Playwright test (Playwright cannot download its own browser here)
browser:
	command -v chromium > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

## test-slow: the soak (20 WAP cycles on the real components, about 30 min); CI runs it after `make test`
test-slow: setup browser
	pytest -m slow -s

## lint: ruff, and the import-linter contracts of pyproject.toml (the layers of docs/design.md)
lint: $(VENV)/.installed
	ruff check .
	ruff format --check .
	lint-imports

## bench: benchmark ratios (see bench/)
bench: setup
	python bench/run.py

## airflow: the whole local Airflow (scheduler, triggerer, dag processor, API server) on 127.0.0.1:8080
airflow: setup
	airflow standalone

clean:
	rm -rf $(AIRFLOW_HOME) $(PROJECT)/.wap dbt/target dbt/logs
