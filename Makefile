# make run   : create the virtual environment (pinned dependencies) and run the pipeline on data_sample/
# make test  : same environment, run the test suite
# make lint  : snakemake --lint
# make bench : accuracy/speed/memory benchmark vs peer tools -> BENCHMARKS.md (about 20 min on 2 cores)
# make bench-stats: the statistics on the reference data, CI coverage over 200 simulated tables,
#                   noise correction, LRT size -> BENCHMARKS_STATS.md (about 10 min on 2 cores)
# make sample: regenerate data_sample/ with the simulator (the command is recorded in data_sample/README.md)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
RESULTS ?= results/sample
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv run test lint sample bench bench-stats clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs --config results=$(RESULTS)
	@echo
	@echo "Per-synapse table : $(RESULTS)/synapses.csv"
	@echo "Statistics        : $(RESULTS)/stats/ (CSV tables and PNG plots)"
	@echo "Registration QC   : $(RESULTS)/register/<cell>/<session>_qc.png"
	@echo "Report            : $(RESULTS)/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/snakemake --lint

$(VENV)/.peers: $(STAMP) benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $(VENV)/.peers

bench: $(VENV)/.peers
	$(BIN)/python benchmarks/run_benchmark.py --workdir results/bench --out BENCHMARKS.md --cores $(CORES)

REFERENCE ?= ../shared/reference/melander2021_pyr
bench-stats: $(STAMP)
	$(BIN)/python benchmarks/stats_benchmark.py --reference $(REFERENCE) --workdir results/bench_stats --out BENCHMARKS_STATS.md --runs 200 --cores $(CORES)

sample: $(STAMP)
	rm -rf data_sample
	$(BIN)/python -m pipeline simulate --out data_sample --cells pyr,PV --sessions 6 --shape 20,256,256 --seed 1

clean:
	rm -rf results .snakemake
