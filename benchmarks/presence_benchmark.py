"""Turnover and survival, per-session detection vs joint presence calls, over several cells.

    python benchmarks/presence_benchmark.py --workdir results/bench_presence --out BENCHMARKS_PRESENCE.md

The main benchmark scores one cell of ~80 synapses per regime, where a single wrong call moves
a per-interval fraction by 1.2 percentage points and one cell's luck decides the figure.  This
one simulates ``--cells`` more full-size cells per regime (the main benchmark's regimes with
other seeds), runs the workflow up to the collected table, and scores every cell against its
truth: the mean absolute error of the fractions added and lost per interval, their mean bias,
and survival to the last session, for the per-session calls (``present_detected``) and the
joint ones (``present``).  Every figure in the written file comes from this run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_benchmark import COMMON, REGIMES  # noqa: E402
from science_benchmark import code_commit  # noqa: E402

SEED_OFFSET = 20   # the main benchmark's seed + 20: cells neither it nor development used


def regime_args(sim_args: list[str], n_cells: int, seed_offset: int = SEED_OFFSET) -> list[str]:
    """The main benchmark's simulator arguments with ``n_cells`` cells and its seed plus
    ``seed_offset``."""
    args = list(sim_args)
    i = args.index("--cells")
    args[i + 1] = ",".join([args[i + 1]] * n_cells)
    j = args.index("--seed")
    args[j + 1] = str(int(args[j + 1]) + seed_offset)
    return args


def cell_scores(truth: pd.DataFrame, synapses: pd.DataFrame) -> list[dict]:
    """Per cell and call (detection / joint): turnover error and bias (pp), survival to the last session."""
    from pipeline.truth.evaluate import turnover_vs_truth
    from pipeline.stats.table import prepare_table

    cols = ["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]
    rows = []
    for cell, tc in truth.groupby("cell"):
        t_true = prepare_table(tc[cols])
        ours = synapses[synapses["cell"] == cell]
        for call, column in (("detection", "present_detected"), ("joint", "present")):
            sc = turnover_vs_truth(t_true, prepare_table(ours.assign(present=ours[column])))
            row = {"cell": cell, "cell_type": tc["cell_type"].iloc[0], "call": call,
                   "survival_true": sc["survival_true"], "survival": sc["survival_ours"]}
            for col in ("added", "lost"):
                row[f"{col}_true"] = 100 * sc[f"{col}_true"]
                row[f"{col}_error_pp"] = sc[f"{col}_error_pp"]
                row[f"{col}_bias_pp"] = 100 * float(sc[f"{col}_ours"] - sc[f"{col}_true"])
            rows.append(row)
    return rows


def run_regime(name: str, sim_args: list[str], work: Path, n_cells: int, cores: int,
               seed_offset: int = SEED_OFFSET, rerun_from: str | None = None,
               configfile: str | None = None) -> pd.DataFrame:
    """Simulate the regime's cells and run the workflow on them up to ``collect``; with
    ``rerun_from`` (a rule name) keep the cells and the outputs before that stage in ``work``
    (a finished run of this script) and run again from it; ``configfile``: settings over
    config.yaml's (as ``snakemake --configfile config.yaml FILE``)."""
    data, results = work / name / "data", work / name / "results"
    if rerun_from is None:
        if data.exists():   # always simulate afresh
            shutil.rmtree(data)
        subprocess.run([sys.executable, "-m", "pipeline", "simulate", "--out", str(data), *COMMON,
                        *regime_args(sim_args, n_cells, seed_offset)], check=True,
                       capture_output=True)
        force = ["--forceall"]
    else:
        if not (results / "synapses.csv").exists():
            sys.exit(f"--rerun-from: no finished run in {work / name}")
        # outputs before the stage stay as they are, whatever code changed since
        force = ["--forcerun", rerun_from, "--rerun-triggers", "mtime"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                    "--directory", str(work / name / ".snakemake_work"), "--cores", str(cores),
                    *force, "--until", "collect",
                    *(["--configfile", str(ROOT / "config.yaml"), str(Path(configfile).resolve())]
                      if configfile else []),
                    "--config",
                    f"sessions={data / 'sessions.tsv'}", f"results={results}"],
                   check=True, capture_output=True, env=env)
    truth = pd.read_csv(data / "truth" / "synapses.csv")
    from pipeline.contract import Layout

    synapses = pd.read_csv(Layout(results).synapses)
    return pd.DataFrame(cell_scores(truth, synapses)).assign(regime=name)


def write_report(scores: pd.DataFrame, out: Path, args, seconds: float) -> None:
    some_regimes = args.regimes != ",".join(REGIMES)
    lines = [
        "# Presence benchmark: turnover and survival over several cells per regime", "",
        f"`python benchmarks/presence_benchmark.py --cells {args.cells} --cores {args.cores}"
        + (f" --seed-offset {args.seed_offset}" if args.seed_offset != SEED_OFFSET else "")
        + (f" --rerun-from {args.rerun_from}" if args.rerun_from else "")
        + (f" --configfile {args.configfile}" if args.configfile else "")
        + (f" --regimes {args.regimes}" if some_regimes else "")
        + (f" --workdir {args.workdir}`, "
           if args.seed_offset != SEED_OFFSET or args.rerun_from or args.configfile or some_regimes
           else "` (`make bench-presence`), ")
        + f"{dt.date.today()}, commit {code_commit()}, {os.cpu_count()} CPUs, "
        f"{platform.python_version()}, {seconds / 60:.1f} min.", "",
        f"{args.cells} full-size cells (8 sessions of 34x512x512 two-channel stacks) per regime of "
        "`BENCHMARKS.md`, simulated with that regime's arguments and its seed + "
        f"{args.seed_offset}. Errors are mean absolute differences of the per-interval fractions "
        "(percentage points), biases the difference of their means; survival is to the last "
        "session. `detection`: present = detected in that session; `joint`: the presence "
        "stage's calls.", "",
        "| regime | cell | call | added: truth %, error, bias (pp) | lost: truth %, error, bias (pp) | survival: truth / ours |",
        "|---|---|---|---|---|---|"]
    for (regime, cell), g in scores.groupby(["regime", "cell"], sort=False):
        for _, r in g.iterrows():
            lines.append(f"| {regime} | {cell} | {r['call']} | {r['added_true']:.1f}, {r['added_error_pp']:.1f}, "
                         f"{r['added_bias_pp']:+.1f} | {r['lost_true']:.1f}, {r['lost_error_pp']:.1f}, "
                         f"{r['lost_bias_pp']:+.1f} | {r['survival_true']:.3f} / {r['survival']:.3f} |")
    lines += ["", "## Mean over the cells of each regime", "",
              "| regime | call | added error (pp) | added bias (pp) | lost error (pp) | lost bias (pp) | survival error: mean, largest |",
              "|---|---|---|---|---|---|---|"]
    for (regime, call), g in scores.groupby(["regime", "call"], sort=False):
        ds = g["survival"] - g["survival_true"]
        lines.append(f"| {regime} | {call} | {g['added_error_pp'].mean():.2f} | {g['added_bias_pp'].mean():+.2f} | "
                     f"{g['lost_error_pp'].mean():.2f} | {g['lost_bias_pp'].mean():+.2f} | "
                     f"{ds.mean():+.3f}, {ds.abs().max():.3f} |")
    lines += ["", "Targets (presence issue): added and lost within 1 pp of the truth per interval, "
              "survival to the last session within 0.02.", ""]
    out.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="results/bench_presence")
    ap.add_argument("--out", default="BENCHMARKS_PRESENCE.md")
    ap.add_argument("--cells", type=int, default=3, help="cells per regime")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed-offset", type=int, default=SEED_OFFSET,
                    help="added to each regime's seed; another value gives cells development "
                         "never saw (a candidate tuned on the default's cells is tried there)")
    ap.add_argument("--rerun-from", default=None, metavar="STAGE",
                    help="keep the cells and outputs of a finished run in --workdir and run "
                         "the workflow again from this stage (e.g. presence)")
    ap.add_argument("--configfile", default=None, metavar="FILE",
                    help="settings over config.yaml's for this run (e.g. a track: section)")
    ap.add_argument("--regimes", default=",".join(REGIMES), metavar="NAME,...",
                    help="these regimes of BENCHMARKS.md only (default: all)")
    args = ap.parse_args()
    chosen = args.regimes.split(",")
    unknown = sorted(set(chosen) - set(REGIMES))
    if unknown:
        ap.error(f"unknown regime(s) {', '.join(unknown)}; known: {', '.join(REGIMES)}")
    work = Path(args.workdir).resolve()
    t0 = time.perf_counter()
    scores = pd.concat([run_regime(name, sim, work, args.cells, args.cores, args.seed_offset,
                                   args.rerun_from, args.configfile)
                        for name, sim in REGIMES.items() if name in chosen],
                       ignore_index=True)
    work.mkdir(parents=True, exist_ok=True)
    scores.to_csv(work / "scores.csv", index=False)
    write_report(scores, Path(args.out), args, time.perf_counter() - t0)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
