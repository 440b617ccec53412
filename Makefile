# govlake — every target does its own set-up on a fresh machine (Python 3.11, Java 17, make).
#
#   make demo    generate a sample city, run every DAG through Airflow, print what was built, build the report
#   make deploy  the production deployment: Airflow's processes on PostgreSQL (infra/deploy.sh up)
#   make undeploy  stop it (infra/deploy.sh down)
#   make test    the test suite on two pytest-xdist workers (TEST_WORKERS), with a local PostgreSQL server (infra/pg.sh)
#   make parity  the Spark engine (local, on S3, on a standalone cluster) against DuckDB on the demo's city
#   make lint    ruff + sqlfluff (the .sql files, and every model rendered as it runs: infra/lint_models.py)
#   make s3      an S3-compatible server (moto) on 127.0.0.1 to try GOVLAKE_LAKE=s3://… (docs/storage.md)
#   make bench   infra/bench.py (1M and 10M rows, BENCH_SIZES; + a 10,000-record day on each, in-process and as the CLI runs it), infra/bench_report.py
#   make bench-engines   infra/bench.py on DuckDB, Spark local[2] and a standalone cluster (BENCH_ROWS)
#   make cluster       Spark master + 2 workers on 127.0.0.1 (infra/spark_cluster.py): GOVLAKE_SPARK_MASTER=spark://127.0.0.1:7077
#   make cluster-stop  stop that cluster: every JVM of it (master, workers, executors, Spark Connect server)
#   make clean   stop the test server and the cluster, remove var/

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
# uv from PATH, else the copy `pip install uv` put next to the interpreter (`python3 -m uv`).
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN = $(UV) run --frozen

DEMO_SCALE ?= 2000
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (tests/conftest.py groups the tests; 0 runs them in this process)
TEST_WORKERS ?= 2

export DEBIAN_FRONTEND := noninteractive

.PHONY: help setup jars demo deploy undeploy test parity lint bench bench-engines cluster cluster-stop clean s3

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

## setup: uv, the locked environment (bytecode precompiled; with the `spark` group, PySpark for the Spark
## engine and its tests, which also need Java 17; with the `celery` group, Airflow's CeleryExecutor), the
## Spark engine's jars (`make jars`), Debian's PostgreSQL server (tests, the deployment's metadata database),
## redis-server (the Celery broker), chromium (bulletin PDF, browser tests).
setup: jars
	@if ! command -v uv >/dev/null && ! python3 -m uv --version >/dev/null 2>&1; then \
	    echo "setup: installing uv $(UV_VERSION)"; \
	    python3 -m pip install --quiet "uv==$(UV_VERSION)" \
	        || python3 -m pip install --quiet --user --break-system-packages "uv==$(UV_VERSION)"; \
	fi
	@# Precompiled bytecode: every `airflow dags test` imports Airflow and Great Expectations afresh,
	@# and PYTHONDONTWRITEBYTECODE (or a read-only cache) would otherwise recompile them each time.
	@uv="$$(command -v uv || echo python3 -m uv)"; set -x; $$uv sync --frozen --compile-bytecode --group spark --group celery
	@if ! command -v chromium >/dev/null; then \
	    if [[ $$(id -u) -eq 0 ]]; then \
	        echo "setup: installing Debian's chromium (quality report PDF and browser tests)"; \
	        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; \
	    else \
	        echo "setup: chromium missing and not root; skipping (no bulletin PDF, browser tests skipped)"; \
	    fi; \
	fi
	@if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then \
	    if [[ $$(id -u) -eq 0 ]]; then \
	        echo "setup: installing Debian's postgresql (server for the postgres tests)"; \
	        apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	    else \
	        echo "setup: PostgreSQL server missing and not root; skipping (postgres tests will be skipped)"; \
	    fi; \
	fi
	@if ! command -v redis-server >/dev/null; then \
	    if [[ $$(id -u) -eq 0 ]]; then \
	        echo "setup: installing Debian's redis-server (the Celery broker of the deployment)"; \
	        apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	    else \
	        echo "setup: redis-server missing and not root; skipping (GOVLAKE_EXECUTOR=celery unavailable)"; \
	    fi; \
	fi

## jars: the Spark engine's JVM jars (Delta Lake for Spark 4.2, hadoop-aws and the AWS SDK), every one named
## with its version in infra/spark/pom.xml, copied by Maven into var/jars, and govlake's Delta LogStore for S3
## (infra/spark/logstore, built by Maven) beside them; GOVLAKE_SPARK_JARS reads them from there (docs/spark.md).
## Skipped when var/jars holds what it lists and was made from these very sources; no Ivy resolution at run time.
JARS_DIR := $(CURDIR)/var/jars
JARS_SOURCES := infra/spark/pom.xml infra/spark/logstore/pom.xml $(shell find infra/spark/logstore/src -type f 2>/dev/null | sort)
jars:
	@missing="$$(cd "$(JARS_DIR)" 2>/dev/null && while read -r jar; do [[ -f "$$jar" ]] || echo "$$jar"; done < jars.txt)" \
	    || missing=all; \
	if [[ -z "$$missing" ]] && sha256sum $(JARS_SOURCES) | cmp -s - "$(JARS_DIR)/sources.sha256"; then exit 0; fi; \
	if ! command -v mvn >/dev/null; then \
	    if [[ $$(id -u) -eq 0 ]]; then \
	        echo "setup: installing Debian's maven (the Spark engine's jars)"; \
	        apt-get update -qq && apt-get install -y -qq --no-install-recommends maven >/dev/null; \
	    else \
	        echo "setup: maven missing and not root; skipping the Spark engine's jars (spark tests will be skipped)"; \
	        exit 0; \
	    fi; \
	fi; \
	echo "setup: copying the Spark engine's jars (infra/spark/pom.xml) into var/jars, building infra/spark/logstore"; \
	mkdir -p "$(dir $(JARS_DIR))"; rm -rf "$(JARS_DIR).tmp"; \
	{ mvn -q -B -Dstyle.color=never -f infra/spark/pom.xml dependency:copy-dependencies -DoutputDirectory="$(JARS_DIR).tmp" \
	  && mvn -q -B -Dstyle.color=never -f infra/spark/logstore/pom.xml -Dbuild.dir="$(JARS_DIR).build" \
	       -DskipTests clean package; } >"$(JARS_DIR).log" 2>&1 || { cat "$(JARS_DIR).log" >&2; exit 1; }; \
	cp "$(JARS_DIR).build"/govlake-delta-s3-logstore-*.jar "$(JARS_DIR).tmp/"; \
	rm -rf "$(JARS_DIR).log" "$(JARS_DIR).build"; \
	(cd "$(JARS_DIR).tmp" && ls -1 -- *.jar > jars.txt); \
	sha256sum $(JARS_SOURCES) > "$(JARS_DIR).tmp/sources.sha256"; \
	rm -rf "$(JARS_DIR)"; mv "$(JARS_DIR).tmp" "$(JARS_DIR)"

## demo: a sample city through every DAG (airflow dags test), then `govlake status` and `govlake report`.
demo: export GOVLAKE_VAR ?= $(CURDIR)/var
demo: setup
	$(RUN) govlake generate --out "$$GOVLAKE_VAR/city" --scale $(DEMO_SCALE)
	@# Every feed DAG of the catalog (dags/feeds.py builds one per resource), then the publish DAGs (gold,
	@# conflicts, 回流; credit, extract, open data, KPIs), then the alerts check (stored; sent nowhere unless
	@# GOVLAKE_ALERT_* channels are set), then the weekly maintenance (vacuum, the meta tables compacted).
	@# generate records the city's as-of date (2026-11-20) in var/business_date: it is the DAG runs'
	@# logical date, the day their files land on, and the business date of every later command
	@# (status, kpi, report: "last month" and the quarter) unless GOVLAKE_AS_OF says otherwise.
	feeds="$$($(RUN) govlake catalog list --dags)"; \
	DAGS_TEST_DATE="$$(cat "$$GOVLAKE_VAR/business_date")" infra/dags-test.sh $$feeds publish_gold publish_credit alerts maintain
	$(RUN) govlake status
	$(RUN) govlake report

## deploy: the production deployment in one command (README "Production deployment"): the api-server,
## scheduler, dag-processor and triggerer (with GOVLAKE_EXECUTOR=celery also Redis and a Celery worker) as
## separate processes on PostgreSQL, under a supervisor; waits until each reports healthy.
deploy: setup
	infra/deploy.sh up

undeploy:
	infra/deploy.sh down

## test: start (or reuse) this clone's PostgreSQL test server (infra/pg.py, a free port), then pytest on
## TEST_WORKERS processes (pytest-xdist; a module, or the modules sharing a Spark cluster, stay on one worker).
test: setup
	@url="$$(infra/pg.sh)" || { \
	    if [[ -n "$${CI:-}" ]]; then echo "test: no PostgreSQL server (infra/pg.sh failed)" >&2; exit 1; fi; \
	    echo "test: no PostgreSQL server; postgres tests will be skipped" >&2; url=""; }; \
	echo "GOVLAKE_TEST_PG_URL=$$url"; \
	GOVLAKE_TEST_PG_URL="$$url" $(RUN) pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## parity: tests/test_spark_pipeline.py on the demo's city (scale 2000; PARITY_SCALE=…): `govlake run` on
## DuckDB, on Spark local[2], on Spark over S3 and on a standalone cluster over S3 must give the same tables.
PARITY_SCALE ?= 2000
parity: setup
	GOVLAKE_PARITY_SCALE=$(PARITY_SCALE) $(RUN) pytest -p no:cacheprovider tests/test_spark_pipeline.py $(PYTEST_ARGS)

## lint: every linter runs; any one failing fails the target. sqlfluff lints the .sql files as they are,
## then infra/lint_models.py every model rendered with the catalog's context (about 10 s on 2 idle
## cores; `make test` runs it too, as tests/test_lint_models.py, marked slow).
lint: setup
	@rc=0; \
	$(RUN) ruff check jobs dags tests infra || rc=1; \
	$(RUN) sqlfluff lint sql/ || rc=1; \
	$(RUN) python infra/lint_models.py || rc=1; \
	exit $$rc

## s3: moto's S3 on 127.0.0.1 in the foreground (infra/s3.py), printing the `export` lines of a lake on it.
s3: setup
	$(RUN) python infra/s3.py

## bench: infra/bench.py on DuckDB at BENCH_SIZES penalty records (default 1 and 10 million; the 30-million run is
## opt-in: BENCH_SIZES="1000000 10000000 30000000"), each stage's seconds, rows/s, multiple of the floor and peak memory.
BENCH_SIZES ?= 1000000 10000000
bench: setup
	$(RUN) python infra/bench.py $(BENCH_SIZES)
	$(RUN) python infra/bench_report.py

## bench-engines: the same workload on DuckDB, Spark local[2] and a two-worker standalone cluster on loopback
## (BENCH_ROWS, default 1 million; docs/spark.md "How fast").
BENCH_ROWS ?= 1000000
bench-engines: setup
	$(RUN) python infra/bench.py --engine duckdb --engine spark --engine cluster $(BENCH_ROWS)

## cluster: infra/spark_cluster.py start (a master on 7077, its UI and JSON status on 8080, two workers of 1 core
## and 2g, everything under var/spark-cluster; returns once both workers are ALIVE, prints the master's URL; a
## second `make cluster` starts nothing). SPARK_CLUSTER_ARGS passes more: --master-port, --ui-port, --workers,
## --worker-cores, --worker-memory, and --connect-port 15002 for a Spark Connect server on the cluster
## (GOVLAKE_SPARK_REMOTE=sc://127.0.0.1:15002); `infra/spark_cluster.py status` shows it; docs/spark.md.
SPARK_CLUSTER_ARGS ?=
cluster: setup
	$(RUN) python infra/spark_cluster.py start $(SPARK_CLUSTER_ARGS)

cluster-stop:
	$(RUN) python infra/spark_cluster.py stop

clean:
	@# The test server's cluster may live outside var/ (as root, under $$TMPDIR): infra/pg.py removes it too.
	@if [[ -d var/pg ]]; then infra/pg.sh clean || true; fi
	@# A Spark cluster's JVMs work in var/spark-cluster: stop them before deleting it.
	@if [[ -d var/spark-cluster && -x .venv/bin/python ]]; then .venv/bin/python infra/spark_cluster.py stop || true; fi
	rm -rf var
