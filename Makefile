# minis3 — two commands on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run run-regions test unit integration install clean bench bench-quick bench-scrub chaos demo

# Debian packages the tests use, when we can install them (root), as package:command:
# iptables for `minis3 chaos partition-az`, chromium for the web console's browser test
# (Playwright drives Debian's chromium; it never downloads a browser of its own), and dig
# for the DNS server's test (docs/regions.md). Without them those tests are skipped.
DEBS := iptables:iptables chromium:chromium bind9-dnsutils:dig
$(STAMP): pyproject.toml
	@for pair in $(DEBS); do deb=$${pair%%:*}; cmd=$${pair##*:}; \
	  if [ "$$(id -u)" = 0 ] && ! command -v $$cmd >/dev/null && command -v apt-get >/dev/null; then \
	    echo "installing $$deb (Debian)"; \
	    apt-get install -y -q $$deb >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $$deb >/dev/null; } \
	    || echo "could not install $$deb: the tests that need it will be skipped"; fi; done
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/minis3 up

# Two regions (us-east-1, and a smaller eu-west-1) and their DNS server (docs/regions.md).
run-regions: $(STAMP)
	$(BIN)/minis3 up --regions us-east-1,eu-west-1

# A narrated tour of the running cluster: `make run` must be running in another terminal.
demo: $(STAMP)
	$(BIN)/minis3 demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra --durations=15 tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q -ra tests/integration

clean:
	rm -rf $(VENV) data .pytest_cache

# Benchmarks: a fresh minis3 and a moto_server, the same workloads against both,
# then this machine's limits, and (minis3 only) the index at scale and versioning;
# writes docs/benchmarks.md (about 40 min on 2 cores). Its "before" columns come from
# docs/benchmarks-before.json, the run kept from before the performance work (issue 19).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/minis3 bench --suite --markdown docs/benchmarks.md --json docs/benchmarks.json \
		--before docs/benchmarks-before.json

bench-quick: $(BENCH_STAMP)
	$(BIN)/minis3 bench --suite --quick --markdown bench-quick.md --json bench-quick.json

# The scrubber: a clean pass, a full-speed audit, a wiped node rebuilt, an AZ's return to full redundancy.
bench-scrub: $(STAMP)
	$(BIN)/python -m minis3.bench.scrub --markdown docs/scrub-benchmarks.md

# Long chaos runs: each AZ killed, frozen and partitioned under a mixed workload, 30 s a phase
# (make test kills each AZ and freezes and partitions one each, 2 s a phase); and the crash
# sweep: a process crashed at every failpoint under a mixed workload (make test: two of them),
# which writes docs/faults-sweep.json and its table in docs/faults.md; and each disk fault (full,
# failing, slow) 30 s under a workload, which writes docs/faults-disk.json and its table there too;
# and a frontend 5 minutes behind under a workload (docs/faults-clock.json).
chaos: $(STAMP)
	MINIS3_CHAOS_SECONDS=30 MINIS3_CHAOS_ALL=1 $(BIN)/python -m pytest -q -s -ra tests/integration/test_chaos.py \
		tests/integration/test_crash_sweep.py tests/integration/test_disk_faults.py tests/integration/test_clock_skew.py
