"""Whose part of the turnover error is it?  The presence model on perfect tracks, beside the
ideal observer and the workflow.

    python benchmarks/presence_model_floor.py [--record BENCHMARKS_FLOOR.md] [--repeats 10]
                                              [--out BENCHMARKS_MODEL_FLOOR.md]
                                              [--presence NAME:KEY=VALUE,KEY=VALUE ...]

Issue 31 asks for turnover within 1.5x the ideal observer's error (``make bench-floor``).  The
ideal observer knows the simulator's dynamics and every synapse's place.  Between it and the
workflow's joint calls stand two things: the image stages (detection, registration, tracking)
and the presence model itself (fitted to the cell: the two-state HMM, which knows no dynamics,
and the settings given with ``--presence``; its default is the stage's, lost for good since
commit ed5b8ed).
This script separates them.  For each cell of ``make bench-presence`` (the regimes of
``BENCHMARKS.md``, 3 cells each at the regime's seed + 20) the truth is simulated again
without its images (the renderer draws its own random numbers: the same truth), measurements
are drawn from the cell's measurement model as the ideal observer draws them, and each row is
called twice: by the ideal observer (``pipeline.truth.ideal_observer.ideal_calls``) and by the
presence stage's own model with its defaults (``model_calls``: fitted to the cell's tracks,
300 null places drawn from the same model), both with perfect tracking.  The measurement
models (snr per unit weight, relative SD, null SD) and our errors are read from ``--record``
(the per-cell table ``presence_floor.py`` writes); the null centre is taken as 0, the
signal per unit weight as constant over sessions (the record keeps their means).  The
ideal observer's errors computed here against the record's show what that simplification
costs.  ``--presence NAME:KEY=VALUE,...`` adds the stage's model with those settings (e.g.
``lost:lost_for_good=true``), called on the same measurements as its defaults.  Beside the
turnover errors, *wrong calls*: rows called otherwise than the truth, per cell (they do not
cancel between intervals as turnover errors can).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.stats.table import prepare_table  # noqa: E402
from pipeline.truth import simulate  # noqa: E402
from pipeline.truth.evaluate import turnover_vs_truth  # noqa: E402
from pipeline.truth.ideal_observer import ideal_calls, model_calls  # noqa: E402
from presence_benchmark import regime_args  # noqa: E402
from presence_floor import COLS  # noqa: E402
from run_benchmark import COMMON, REGIMES  # noqa: E402

#: a row of presence_floor.py's per-cell table: regime, cell, snr per weight, relative SD,
#: null SD, added ours / ideal / other, lost ours / ideal / other, survival ours / ideal
ROW = re.compile(r"^\| (\w+) \| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| "
                 r"([\d.]+) / ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) / ([\d.]+) \|")


def recorded_cells(record: Path) -> pd.DataFrame:
    """The per-cell rows of a ``presence_floor.py`` report."""
    rows = []
    for line in record.read_text().splitlines():
        m = ROW.match(line)
        if m:
            g = m.groups()
            rows.append({"regime": g[0], "cell": g[1], "snr_per_weight": float(g[2]),
                         "relative_sd": float(g[3]), "null_sd": float(g[4]),
                         "added_ours": float(g[5]), "added_ideal_recorded": float(g[6]),
                         "lost_ours": float(g[8]), "lost_ideal_recorded": float(g[9])})
    return pd.DataFrame(rows)


def truth_cells(regime: str, n_cells: int) -> dict[str, tuple[pd.DataFrame, dict]]:
    """cell -> (truth table, resolved simulation parameters) of ``make bench-presence``'s
    cells of ``regime``, simulated without their images."""
    from pipeline.cli.parser import build_parser, simulation_overrides

    ns = build_parser().parse_args(["simulate", "--out", "unused", *COMMON,
                                    *regime_args(REGIMES[regime], n_cells)])
    overrides = simulation_overrides(ns)
    empty = np.zeros((2, 1, 1, 1), np.uint16)
    out = {}
    with mock.patch.object(simulate, "_render_session", lambda *a, **k: empty):
        for k, ct in enumerate(ns.cells.split(",")):
            cell = f"{ct}{k + 1:02d}"
            prm = simulate.SimulationParams(cell_type=ct, seed=ns.seed + 1000 * k, **overrides)
            sim = simulate.simulate_cell(prm, cell=cell)
            out[cell] = (sim.truth, asdict(sim.params))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", default=str(ROOT / "BENCHMARKS_FLOOR.md"))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS_MODEL_FLOOR.md"))
    ap.add_argument("--presence", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="also the stage's model with these settings, reported as NAME")
    args = ap.parse_args(argv)
    import yaml

    variants = {"model": {}}
    for item in args.presence:
        name, _, options = item.partition(":")
        variants[name] = {k: yaml.safe_load(v) for k, v in
                          (kv.split("=", 1) for kv in options.split(",") if kv)}
    started = time.perf_counter()
    cells = recorded_cells(Path(args.record))
    if cells.empty:
        raise SystemExit(f"{args.record}: no per-cell rows of presence_floor.py")
    rng = np.random.default_rng(args.seed)
    rows = []
    for regime, rec in cells.groupby("regime", sort=False):
        truths = truth_cells(regime, len(rec))
        for r in rec.itertuples():
            truth, params = truths[r.cell]
            t_true = prepare_table(truth[COLS])
            noise = {"signal_per_weight": np.full(truth["session"].nunique(), r.snr_per_weight),
                     "relative_sd": r.relative_sd, "null_centre": 0.0, "null_sd": r.null_sd}
            truth_present = truth[COLS].sort_values(["synapse_id", "day"])["present"].to_numpy()
            scores = {name: [] for name in ("ideal", *variants)}
            wrong = {name: 0 for name in scores}
            for _ in range(args.repeats):
                calls = {"ideal": ideal_calls(truth[COLS], params, noise, rng)}
                calls.update(zip(variants, model_calls(truth[COLS], params, noise, rng,
                                                       settings=list(variants.values()))))
                for name, c in calls.items():
                    scores[name].append(turnover_vs_truth(t_true, prepare_table(c)))
                    wrong[name] += int((c["present"].to_numpy() != truth_present).sum())
            row = r._asdict()
            row.pop("Index")
            for name, sc in scores.items():
                for col in ("added", "lost"):
                    row[f"{col}_{name}"] = float(np.mean([s[f"{col}_error_pp"] for s in sc]))
                row[f"wrong_{name}"] = wrong[name] / args.repeats
            rows.append(row)
    table = pd.DataFrame(rows)
    minutes = (time.perf_counter() - started) / 60

    def per_regime(g):
        out = {}
        for col in ("added", "lost"):
            ours, model, ideal = (g[f"{col}_{n}"].mean() for n in ("ours", "model", "ideal"))
            out[f"{col}: ours / model / ideal (pp)"] = f"{ours:.2f} / {model:.2f} / {ideal:.2f}"
            out[f"{col}: model over ideal"] = f"{model / ideal:.1f}x" if ideal > 0 else "inf"
            out[f"{col}: ours over model"] = f"{ours / model:.1f}x" if model > 0 else "inf"
            for name in list(variants)[1:]:
                v = g[f"{col}_{name}"].mean()
                out[f"{col}: {name} (over ideal)"] = (f"{v:.2f} ({v / ideal:.1f}x)" if ideal > 0
                                                      else f"{v:.2f}")
        out["wrong calls per cell: " + " / ".join(["ideal", *variants])] = " / ".join(
            f"{g[f'wrong_{n}'].mean():.1f}" for n in ("ideal", *variants))
        out["ideal here / recorded (added, lost)"] = (
            f"{g['added_ideal'].mean():.2f} / {g['added_ideal_recorded'].mean():.2f}, "
            f"{g['lost_ideal'].mean():.2f} / {g['lost_ideal_recorded'].mean():.2f}")
        return pd.Series(out)

    summary = table.groupby("regime", sort=False)[table.columns].apply(per_regime).reset_index()
    cmd = (f"python benchmarks/presence_model_floor.py --record {Path(args.record).name} "
           f"--repeats {args.repeats} --seed {args.seed}"
           + "".join(f" --presence {item}" for item in args.presence))
    lines = ["# The presence model on perfect tracks, beside the ideal observer and ours", "",
             f"_`{cmd}` ({minutes:.1f} min, {time.strftime('%Y-%m-%d')}). Per regime, the mean "
             "over its cells of the turnover errors (mean absolute error of the per-interval "
             "fractions, pp): `ours` the workflow's joint calls (from the record), `model` the "
             "presence stage's model (fitted, defaults) on measurements drawn at the true "
             "synapses with perfect tracking, `ideal` the ideal observer on such measurements "
             f"(the simulator's dynamics known); {args.repeats} draws each"
             + "".join(f"; `{n}` the stage's model with "
                       + ", ".join(f"{k}={v}" for k, v in o.items())
                       for n, o in list(variants.items())[1:])
             + ", on the same measurements as `model`. Wrong calls: rows called otherwise than "
             "the truth, per cell. The column `ideal here / recorded`: the ideal observer "
             "computed here (null centre 0, constant signal per weight) against the record's._",
             "",
             summary.to_markdown(index=False), "",
             "Every cell:", "",
             table.round(3).to_markdown(index=False), ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
