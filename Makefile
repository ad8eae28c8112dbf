# pg_monitoring: build, install, test. `make help` lists the targets.

EXTENSION  := pg_monitoring
EXTVERSION := $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)
PG_CONFIG  ?= pg_config
PG_MAJOR   := $(shell $(PG_CONFIG) --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')

# The built scripts live inside the Python package: `pg-monitoring install` runs the very
# files that `make install` copies into the server's extension directory.
BUILD_DIR   := python/pg_monitoring/extension
CURRENT     := $(BUILD_DIR)/$(EXTENSION)--$(EXTVERSION).sql
RELEASED    := $(patsubst sql/released/%,$(BUILD_DIR)/%,$(wildcard sql/released/*.sql))
UPGRADES    := $(patsubst sql/upgrades/%,$(BUILD_DIR)/%,$(wildcard sql/upgrades/*.sql))
EXT_SCRIPTS     := $(CURRENT) $(RELEASED) $(UPGRADES)
SQL_SOURCES := $(shell find sql -name '*.sql' -not -path 'sql/released/*')
# pgtap/ mirrors sql/ folder by folder; pgtap/fixtures/ is loaded before the suite, not run;
# pgtap/citus/ runs on a Citus cluster (make test-citus).
PGTAP_TESTS := $(filter-out pgtap/fixtures/% pgtap/citus/%,$(sort $(wildcard pgtap/*/*.sql)))
CITUS_TESTS := $(sort $(wildcard pgtap/citus/*.sql))

VENV       := .venv
VENV_BIN   := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed

# `make test` and `make bench` run against a throwaway cluster from Debian's pg_virtualenv
# (initdb as the postgres user when we are root, free port, removed on exit or Ctrl-C). The
# extension is installed into STAGE and found there through Debian's extension_destdir.
# Every pg_virtualenv cluster is "15/regress": each gets its own external pid file, or one
# run ending would delete /var/run/postgresql/15-regress.pid and another's would look down.
STAGE   := $(CURDIR)/build/stage
CLUSTER := pg_virtualenv -t \
	-o shared_preload_libraries=pg_stat_statements \
	-o extension_destdir=$(STAGE) \
	-o external_pid_file=$(shell mktemp -u /tmp/pg_monitoring-cluster-XXXXXX.pid)

.PHONY: all help release test lint deps system-deps stage test-in-cluster pgtap pytest \
	demo test-docker bench bench-in-cluster bench-errors bench-tracker bench-cache \
	bench-traces bench-otlp bench-middleware bench-database bench-sentry bench-metrics bench-scrape bench-envelope \
	citus test-citus test-citus-in-cluster bench-citus

all: $(EXT_SCRIPTS) $(BUILD_DIR)/$(EXTENSION).control

help:
	@echo 'make            build the extension scripts into $(BUILD_DIR)'
	@echo 'make install    install them into $$($(PG_CONFIG) --sharedir)/extension'
	@echo 'make test       lint + pgTAP + pytest on a throwaway cluster (installs what it needs)'
	@echo 'make demo       the demo, in a database of its own on $$DATABASE_URL, or on a throwaway cluster'
	@echo 'make bench      benchmarks side by side on a throwaway cluster (see BENCHMARKS.md)'
	@echo 'make release    freeze the current version into sql/released/'
	@echo 'make test-docker  pgTAP in the official postgres image (needs a Docker engine)'
	@echo 'make citus      build and install Citus from ../shared/vendor/ (root; minutes)'
	@echo 'make test-citus the Citus suite on a throwaway coordinator and two workers'
	@echo 'make bench-citus capture and span ingest, one server against a Citus cluster'

$(BUILD_DIR):
	mkdir -p $@

$(CURRENT): sql/$(EXTENSION).sql $(SQL_SOURCES) sql/flatten.awk | $(BUILD_DIR)
	awk -v version=$(EXTVERSION) -f sql/flatten.awk $< > $@.tmp && mv $@.tmp $@

# An upgrade records the version after the last "--" of its name.
$(BUILD_DIR)/$(EXTENSION)--%.sql: sql/upgrades/$(EXTENSION)--%.sql $(SQL_SOURCES) \
		sql/flatten.awk | $(BUILD_DIR)
	awk -v version=$(lastword $(subst --, ,$*)) -f sql/flatten.awk $< > $@.tmp && mv $@.tmp $@

$(BUILD_DIR)/%.sql: sql/released/%.sql | $(BUILD_DIR)
	cp $< $@

$(BUILD_DIR)/$(EXTENSION).control: $(EXTENSION).control | $(BUILD_DIR)
	cp $< $@

# Released scripts are frozen: users have them installed, and upgrades start from them.
release: $(CURRENT) $(UPGRADES)
	@if [ -e sql/released/$(notdir $(CURRENT)) ]; then \
		echo "$(EXTVERSION) is released already; raise default_version in $(EXTENSION).control"; \
		exit 1; fi
	cp $(CURRENT) $(UPGRADES) sql/released/
	rm -f $(wildcard sql/upgrades/*.sql)
	@echo "Froze $(EXTVERSION). Next: raise default_version in $(EXTENSION).control and the"
	@echo "version in python/pyproject.toml, and start sql/upgrades/$(EXTENSION)--$(EXTVERSION)--NEXT.sql"

# `make install`: PGXS where the server's build files are installed, else a plain copy.
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
DATA := $(EXT_SCRIPTS)
EXTRA_CLEAN := $(BUILD_DIR) build
include $(PGXS)
else
EXTENSION_DIR := $(DESTDIR)$(shell $(PG_CONFIG) --sharedir)/extension
.PHONY: install uninstall clean
install: all
	install -d $(EXTENSION_DIR)
	install -m 644 $(EXTENSION).control $(EXT_SCRIPTS) $(EXTENSION_DIR)/
uninstall:
	rm -f $(EXTENSION_DIR)/$(EXTENSION).control $(EXTENSION_DIR)/$(EXTENSION)--*.sql
clean:
	rm -rf $(BUILD_DIR) build
endif

$(VENV_STAMP): python/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV_BIN)/pip install --quiet --upgrade pip
	$(VENV_BIN)/pip install --quiet -e './python[dev]'
	touch $@

deps: $(VENV_STAMP) system-deps

system-deps:
	@PG_MAJOR=$(PG_MAJOR) tests/system-deps.sh

lint: $(VENV_STAMP)
	$(VENV_BIN)/sqlfluff lint --processes 2 sql pgtap
	$(VENV_BIN)/ruff check python tests tools
	$(VENV_BIN)/ruff format --check python tests tools
	$(VENV_BIN)/python tools/async_to_sync.py --check

stage: all
	rm -rf $(STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(STAGE) >/dev/null
	@if [ "$$(id -u)" = 0 ] && ! runuser -u postgres -- test -r $(STAGE)/$$($(PG_CONFIG) --sharedir)/extension/$(EXTENSION).control; then \
		echo "The postgres user can not read $(STAGE); run from a directory it can read (e.g. under /tmp)."; \
		exit 1; fi

test: deps lint stage
	$(CLUSTER) $(MAKE) --no-print-directory test-in-cluster

# The targets below expect PG* variables naming a disposable server (make test sets them).
test-in-cluster: pgtap pytest

pgtap:
	dropdb --if-exists pgtap_suite
	createdb pgtap_suite
	psql -X -q -v ON_ERROR_STOP=1 -d pgtap_suite \
		-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION $(EXTENSION)' \
		-f pgtap/fixtures/helpers.sql -f pgtap/fixtures/otlp.sql
	pg_prove -d pgtap_suite --failures $(PGTAP_TESTS)

pytest: $(VENV_STAMP)
	$(VENV_BIN)/pytest tests

# The demo makes a database of its own on DATABASE_URL's server and drops it at the end (it
# never writes to the database named); without DATABASE_URL, or when the role may not create
# databases, it starts a throwaway cluster of its own with pg_virtualenv.
demo: $(VENV_STAMP) all
	$(VENV_BIN)/pg-monitoring demo $(if $(DATABASE_URL),,--local-cluster)

# Benchmarks print medians and ratios measured side by side in one run; BENCHMARKS.md keeps
# the results. fsync stays on (pg_virtualenv turns it off for tests): commits cost what they
# cost in production. The bench-* targets expect PG* variables naming a disposable server,
# like test-in-cluster.
bench: deps stage
	$(CLUSTER) -o fsync=on $(MAKE) --no-print-directory bench-in-cluster

bench-in-cluster: bench-errors bench-tracker bench-cache bench-traces bench-otlp bench-middleware \
	bench-database bench-sentry bench-metrics bench-scrape bench-envelope

bench-errors:
	bench/capture.sh

bench-tracker: $(VENV_STAMP)
	$(VENV_BIN)/python bench/tracker_latency.py

bench-cache: $(VENV_STAMP)
	$(VENV_BIN)/python bench/cache_bench.py

bench-traces: $(VENV_STAMP)
	$(VENV_BIN)/python bench/spans_bench.py

bench-otlp: $(VENV_STAMP)
	$(VENV_BIN)/python bench/otlp_bench.py

bench-middleware: $(VENV_STAMP)
	$(VENV_BIN)/python bench/middleware_bench.py

bench-database: $(VENV_STAMP)
	$(VENV_BIN)/python bench/database_bench.py

bench-sentry: $(VENV_STAMP)
	$(VENV_BIN)/python bench/sentry_transport_bench.py

bench-metrics: $(VENV_STAMP)
	$(VENV_BIN)/python bench/metrics_bench.py

# 5,000,000 events and spans and 1,000,000 cache entries: minutes to load (BENCH_SCALE=0.2
# loads a fifth)
bench-scrape: $(VENV_STAMP)
	$(VENV_BIN)/python bench/scrape_bench.py

bench-envelope: $(VENV_STAMP)
	$(VENV_BIN)/python bench/envelope_bench.py

# Citus, for monitoring.distribute() and make test-citus: built from ../shared/vendor/ (no
# registry packages it for PostgreSQL 15); minutes on 2 cores, so not part of make test.
citus:
	tools/citus_build.sh

# A coordinator and two workers on 127.0.0.1 (ports CITUS_PORT..+2, default 9700), removed at
# the end; the extension found in STAGE as make test finds it.
test-citus: deps stage
	tools/citus_cluster.sh -o extension_destdir=$(STAGE) $(MAKE) --no-print-directory test-citus-in-cluster

# Expects PG* variables naming a Citus coordinator with its workers added (tools/citus_cluster.sh).
test-citus-in-cluster:
	psql -X -q -v ON_ERROR_STOP=1 \
		-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION $(EXTENSION)' \
		-c 'SELECT count(*) AS tables FROM monitoring.distribute()' \
		-f pgtap/fixtures/helpers.sql -f pgtap/fixtures/otlp.sql
	pg_prove --failures $(CITUS_TESTS)
	PG_MONITORING_CITUS_DSN="dbname=$$PGDATABASE" $(VENV_BIN)/pytest tests/citus

# Capture and span ingest on one server and through a coordinator with two workers, side by
# side (BENCHMARKS.md, stop 22); fsync on, as make bench. A few minutes: not in make bench.
bench-citus: deps stage
	tools/citus_cluster.sh -o extension_destdir=$(STAGE) \
		-o fsync=on -o synchronous_commit=on -o full_page_writes=on \
		$(VENV_BIN)/python bench/citus_bench.py

test-docker:
	docker build -f tests/docker/Dockerfile -t $(EXTENSION)-test .
	docker run --rm $(EXTENSION)-test
