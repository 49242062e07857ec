# make run   : create the virtual environment (pinned dependencies) and run the pipeline on data_sample/
#              (or on another sheet: make run SESSIONS=/data/exp1/sessions.tsv RESULTS=/data/exp1/results)
# make test  : same environment plus the formats extra, run the test suite
# make formats: install the optional readers of CZI, LIF, ND2 and OME-Zarr into the venv
# make lint  : snakemake --lint
# make bench : accuracy/speed/memory benchmark vs peer tools -> BENCHMARKS.md, then the spine
#              regimes (issue 26) through the whole workflow, appended (about 2 h on 2 cores)
# make bench-stats: the statistics on the reference data, CI coverage over 200 simulated tables,
#                   noise correction, LRT size -> BENCHMARKS_STATS.md (about 10 min on 2 cores)
# make bench-scale: peak memory and time per job on 1024x1024x100 two-channel 16-bit sessions
#                   -> BENCHMARKS_SCALE.md
# make bench-crowded: detection and weights on one 8-bit stack of 20 M voxels holding 13,000
#                   puncta (issue 24's cost target) -> BENCHMARKS_CROWDED.md (about 3 min)
# make bench-presence: turnover and survival over 3 more full-size cells per regime, detection vs
#                   joint calls -> BENCHMARKS_PRESENCE.md (about 20 min on 2 cores)
# make bench-floor: the ideal observer's turnover errors beside ours on bench-presence's cells
#                   -> BENCHMARKS_FLOOR.md (under 1 min; run bench-presence first)
# make bench-science: simulated studies (6 pyramidal + 6 PV cells in 3 animals, 8 sessions and a
#                   repeat) through the whole workflow and stats, effect and null, 20 seeds:
#                   bias and CI coverage per quantity, the PV-vs-pyramidal conclusions, density
#                   -> BENCHMARKS_SCIENCE.md (about 16 h on 2 cores, 25 min a study; the studies are kept
#                   in benchmarks/science_runs/ and skipped when run again: SEEDS=4 runs seeds 1-4,
#                   only those not yet kept)
# make bench-pairs: pairs of puncta 0.3-0.4 um apart (the close_pairs regime): detected as two or
#                   one, whether a spot's shape tells a pair from a single punctum, and the
#                   whole workflow's links on them -> BENCHMARKS_CLOSE_PAIRS.md (about 12 min)
# make bench-links: the missed and wrong links of make bench's run by cause, linked in session
#                   order and re-linked -> BENCHMARKS_LINKS.md (under 1 min; run make bench first)
# make bench-regime REGIME=single_channel: the whole workflow on one of make bench's regimes,
#                   without the peers (detection, links, turnover, registration per session)
# make sample: regenerate data_sample/ with the simulator (the command is recorded in data_sample/README.md)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
RESULTS ?= results/sample
SESSIONS ?= data_sample/sessions.tsv
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv formats run test lint sample bench bench-science bench-stats bench-scale bench-crowded bench-presence bench-floor bench-links bench-registration bench-detection bench-regime bench-pairs clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# the optional readers of CZI, LIF, ND2 and OME-Zarr (README "Input formats")
$(VENV)/.formats: $(STAMP) requirements-formats.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-formats.txt
	touch $(VENV)/.formats

formats: $(VENV)/.formats

# --keep-going: a cell with a bad file fails alone; the others reach the statistics and the
# report lists the failure (make exits non-zero so that the failure is not missed)
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --keep-going --show-failed-logs --config sessions=$(SESSIONS) results=$(RESULTS)
	@echo
	@echo "Per-synapse table : $(RESULTS)/synapses.csv"
	@echo "Statistics        : $(RESULTS)/stats/ (CSV tables and PNG plots)"
	@echo "Registration QC   : $(RESULTS)/register/<cell>/<session>_qc.png"
	@echo "Report            : $(RESULTS)/report.html"
	@echo "Review pages      : $(RESULTS)/review/index.html (every synapse, least certain first)"

# the tests read every format, so they install the formats extra
test: $(VENV)/.formats
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/snakemake --lint

$(VENV)/.peers: $(STAMP) benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $(VENV)/.peers

bench: $(VENV)/.peers
	$(BIN)/python benchmarks/run_benchmark.py --workdir results/bench --out BENCHMARKS.md --cores $(CORES)
	$(BIN)/python benchmarks/regime_run.py --regimes spines,spines_20M --workdir results/bench_spines --cores $(CORES) --out results/bench_spines/spines.md --title "Spines (issue 26): the spine regimes through the whole workflow"
	cat results/bench_spines/spines.md >> BENCHMARKS.md
	$(BIN)/python benchmarks/regime_run.py --regimes spines,spines_20M --seed 3003 --workdir results/bench_spines_3003 --cores $(CORES) --out results/bench_spines_3003/spines.md --title "Spines, a third draw (--seed 3003)"
	cat results/bench_spines_3003/spines.md >> BENCHMARKS.md

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale_benchmark.py --workdir results/bench_scale --out BENCHMARKS_SCALE.md --cores $(CORES)

bench-crowded: $(STAMP)
	$(BIN)/python benchmarks/candidates_cost.py --repeat 3 --out BENCHMARKS_CROWDED.md

bench-presence: $(STAMP)
	$(BIN)/python benchmarks/presence_benchmark.py --workdir results/bench_presence --out BENCHMARKS_PRESENCE.md --cores $(CORES)

bench-registration: $(STAMP)
	$(BIN)/python benchmarks/registration_benchmark.py --out BENCHMARKS_REGISTRATION.md

bench-pairs: $(STAMP)
	$(BIN)/python benchmarks/close_pairs.py --out BENCHMARKS_CLOSE_PAIRS.md
	$(BIN)/python benchmarks/regime_run.py --regimes close_pairs --workdir results/bench_regime --cores $(CORES) --out results/bench_regime/close_pairs.md
	cat results/bench_regime/close_pairs.md >> BENCHMARKS_CLOSE_PAIRS.md

bench-detection: $(STAMP)
	$(BIN)/python benchmarks/detection_benchmark.py --out BENCHMARKS_DETECTION.md

REGIME ?= single_channel
bench-regime: $(STAMP)
	$(BIN)/python benchmarks/regime_run.py --regimes $(REGIME) --workdir results/bench_regime --cores $(CORES)

SEEDS ?= 20
bench-science: $(STAMP)
	$(BIN)/python benchmarks/science_benchmark.py --seeds $(SEEDS) --workdir results/bench_science --out BENCHMARKS_SCIENCE.md --cores $(CORES)

bench-links: $(STAMP)
	$(BIN)/python benchmarks/link_errors.py --workdir results/bench --out BENCHMARKS_LINKS.md

bench-floor: $(STAMP)
	$(BIN)/python benchmarks/presence_floor.py --workdir results/bench_presence --out BENCHMARKS_FLOOR.md

REFERENCE ?= ../shared/reference/melander2021_pyr
bench-stats: $(STAMP)
	$(BIN)/python benchmarks/stats_benchmark.py --reference $(REFERENCE) --workdir results/bench_stats --out BENCHMARKS_STATS.md --runs 200 --cores $(CORES)

sample: $(STAMP)
	rm -rf data_sample
	$(BIN)/python -m pipeline simulate --out data_sample --cells pyr,PV --sessions 6 --shape 20,256,256 --seed 1

clean:
	rm -rf results .snakemake
