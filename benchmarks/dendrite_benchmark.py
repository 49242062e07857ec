"""Dendrite length (the denominator of density per um) on bench-science's cells, without the
workflow: each session's morphology channel through the dendrite stage's measurement, against
the simulator's centre lines in view.

    python benchmarks/dendrite_benchmark.py --seeds 5 [--first-seed 1] [--kinds effect,null]
        [--compare ridge_sigma_um=0 ...] [--out BENCHMARKS_DENDRITE.md]

``--compare KEY=VALUE`` measures the same stacks a second time with that dendrite setting
changed (``ridge_sigma_um=0``: the rule before the dim-dendrite ridge was kept).  Reports, per
setting, the length error (measured / true - 1) over cell-sessions, per cell (its mean over
sessions) and per cell type and study (the mean over its 6 cells: what a type's density per
study rests on), with the worst of each.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.core.dendrite import dendrite_length  # noqa: E402
from pipeline.params import DendriteParams  # noqa: E402
from pipeline.truth.simulate import simulate_cell  # noqa: E402
from science_benchmark import study_cells  # noqa: E402


def length_errors(seeds, kinds, settings: dict[str, dict]) -> pd.DataFrame:
    """One row per study cell-session and setting: measured and true length (um)."""
    rows = []
    for seed in seeds:
        for kind in kinds:
            for animal, cell, params in study_cells(seed, kind):
                sim = simulate_cell(params)
                for s, image in enumerate(sim.images):
                    for name, options in settings.items():
                        got = dendrite_length(image[-1], spacing=sim.params.spacing, **options)
                        rows.append({"setting": name, "kind": kind, "seed": seed,
                                     "cell_type": params.cell_type, "cell": cell, "session": s,
                                     "length_um": got["length_um"],
                                     "length_true_um": sim.dendrite_um[s]})
    out = pd.DataFrame(rows)
    out["error"] = out["length_um"] / out["length_true_um"] - 1
    return out


def _worst(x: pd.Series) -> float:
    return float(x.iloc[np.argmax(np.abs(x.to_numpy()))])


def summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per setting and cell type: mean and worst errors at each level."""
    per_cell = errors.groupby(["setting", "kind", "seed", "cell_type", "cell"])["error"].mean()
    per_study = per_cell.groupby(["setting", "kind", "seed", "cell_type"]).mean()
    rows = []
    for (setting, ct), g in errors.groupby(["setting", "cell_type"]):
        c, st = per_cell.loc[setting].xs(ct, level="cell_type"), per_study.loc[setting].xs(
            ct, level="cell_type")
        rows.append({"setting": setting, "cell_type": ct, "cell_sessions": len(g),
                     "mean error": g["error"].mean(), "median |error|": g["error"].abs().median(),
                     "worst cell-session": _worst(g["error"]),
                     "cells off > 5 %": f"{int((c.abs() > 0.05).sum())} of {len(c)}",
                     "worst cell (mean)": _worst(c),
                     "type per study, worst": _worst(st),
                     "studies off > 5 %": f"{int((st.abs() > 0.05).sum())} of {len(st)}"})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--kinds", default="effect")
    ap.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                    help="a dendrite setting measured beside the defaults")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    defaults = asdict(DendriteParams())
    settings = {"defaults": defaults}
    for item in args.compare:
        key, value = item.split("=", 1)
        if key not in defaults:
            ap.error(f"--compare {item}: no dendrite setting {key!r}")
        settings[item] = {**defaults, key: yaml.safe_load(value)}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    errors = length_errors(seeds, args.kinds.split(","), settings)
    worst = (errors.assign(abs_error=errors["error"].abs())
             .sort_values("abs_error", ascending=False)
             .groupby("setting").head(5).drop(columns="abs_error"))
    command = (f"python benchmarks/dendrite_benchmark.py --first-seed {args.first_seed} "
               f"--seeds {args.seeds} --kinds {args.kinds}"
               + "".join(f" --compare {item}" for item in args.compare))
    text = "\n".join([
        "# Dendrite length on bench-science's cells", "",
        f"Command: `{command}` ({(time.perf_counter() - started) / 60:.1f} min). Each session's "
        "morphology channel through the dendrite stage's measurement against the simulator's "
        "centre lines in view; error = measured / true - 1. `type per study`: the mean over a "
        "study's 6 cells of a type, what that type's density per study rests on.", "",
        summary(errors).round(4).to_markdown(index=False), "",
        "Worst cell-sessions:", "",
        worst.round(4).to_markdown(index=False), ""])
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
