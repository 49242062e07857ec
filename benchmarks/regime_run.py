"""The workflow end to end on one or more of the benchmark's regimes, without the peers: the
figures ``make bench`` gives for our pipeline (detection, links, turnover error against the
truth) and, per session, how registration went and whether it was judged reliable.

    python benchmarks/regime_run.py --regimes single_channel [--workdir DIR] [--out FILE]
                                    [--seed N] [--cells pyr|PV]

Each regime's cell is simulated exactly as ``make bench`` simulates it (same options, same
seed) and run through the whole Snakemake workflow with the default settings.  Use it to
measure a change on the regime it concerns in minutes; ``make bench`` remains the record.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: per-session registration figures shown (registration_benchmark.session_row)
SESSION_COLUMNS = ["session", "n", "lateral_median_um", "lateral_p95_um", "n_matches",
                   "reliable", "flagged_regions", "rows_wrong"]


def main(argv=None) -> int:
    from registration_benchmark import pipeline_sessions, write_report
    from run_benchmark import REGIMES, SPINE_REGIMES, run_ours, simulate, varied

    from pipeline.truth.evaluate import evaluate_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", default="single_channel")
    ap.add_argument("--workdir", default=str(ROOT / "results" / "bench_regime"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=None,
                    help="another draw of each regime (its own seed: make bench's cell)")
    ap.add_argument("--cells", default=None, help="another cell type for each regime (pyr, PV)")
    ap.add_argument("--title", default="The workflow on single regimes",
                    help="the report's heading (make bench appends the spine regimes' report "
                         "to BENCHMARKS.md under its own)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    work = Path(args.workdir).resolve()
    sums, lines = [], []
    for regime in args.regimes.split(","):
        data, results = work / regime / "data", work / regime / "results"
        if results.exists():
            shutil.rmtree(results)
        simulate(data, varied({**REGIMES, **SPINE_REGIMES}[regime], seed=args.seed,
                              cells=args.cells))
        ours = run_ours(data, results, args.cores)
        scores = evaluate_results(data, results)
        cell = scores["cell"].iloc[0]
        per_cell = scores[scores.cell == cell].set_index("metric")["value"]
        sessions = pipeline_sessions(data, results)
        # turnover from the presence stage's calls (what stats/ reports), per cell type
        pop = scores[scores.cell.str.startswith("type:")].set_index("metric")["value"]
        sums.append({"regime": regime, **{k: per_cell.get(k) for k in (
            "detection_precision", "detection_recall", "detection_f1", "called_precision",
            "called_recall", "link_f1", "log_weight_r", "added_abs_error_pp",
            "lost_abs_error_pp")},
            "added err pp (presence calls)": pop.get("added_abs_error_pp"),
            "lost err pp (presence calls)": pop.get("lost_abs_error_pp"),
            "sessions unreliable": int((~sessions["reliable"].astype(bool)).sum()),
            "worst session lateral p95 (um)": sessions["lateral_p95_um"].max(),
            "wall (min)": ours["wall_s"] / 60,
            "largest job peak memory (MB)": pd.Series(
                [v["max_rss_mb"] for v in ours["stages"].values()]).max()})
        lines += [f"### {regime}", "", "Scores of the cell:", "",
                  per_cell.round(4).to_frame().to_markdown(), "",
                  "The cell type's population figures (``_ours``: from the presence stage's "
                  "calls, ``_ours_detection``: a synapse present where detected; "
                  "``_truth_table``: the same statistic on the simulator's truth):", "",
                  pop.round(4).to_frame().to_markdown(), "",
                  "Registration per session (against the reference):", "",
                  sessions[SESSION_COLUMNS].round(3).to_markdown(index=False), ""]
    write_report(args.title, f"regime_run.py --regimes {args.regimes}"
                 + (f" --seed {args.seed}" if args.seed is not None else "")
                 + (f" --cells {args.cells}" if args.cells else ""),
                 started, "Simulated as make bench does; the whole workflow with default "
                 "settings; scored against the simulator's truth. added/lost_abs_error_pp: "
                 "turnover per interval with a synapse present where its track was detected; "
                 "'(presence calls)': from the presence stage's calls, as stats/ reports it.",
                 sums, lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
