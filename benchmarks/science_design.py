"""How many cells, animals and sessions give which precision: the statistics on simulated
truth tables of several study designs (no image stages: their added uncertainty is what
``science_benchmark.py`` measures).

    python benchmarks/science_design.py [--reps 20] [--out BENCHMARKS_DESIGN.md]

Each study: pyramidal and PV cells with the simulator's default dynamics (after Melander et al.
2021), ``n_synapses`` per cell on the first day, 2 cells per animal; per design and quantity
the mean 95 % CI half-width of ``stats/summary.csv`` and how often the cell-type comparison
finds PV more stable (survival, turnover) and less heterogeneous (SD of ln w) at p < 0.05.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stats import run_stats  # noqa: E402
from pipeline.truth.artificial import simulate_table  # noqa: E402
from pipeline.truth.simulate import (BIRTH_DEFAULTS, KESTEN_DEFAULTS, LOSS_DEFAULTS,  # noqa: E402
                                     WEIGHT_DEFAULTS)

#: (cells per type, sessions, synapses per cell)
DESIGNS = [(3, 8, 100), (6, 4, 100), (6, 8, 50), (6, 8, 100), (12, 8, 100)]
QUANTITIES = ["survival_last_day", "turnover_per_interval", "sigma_ln_w", "hazard_slope_ln_w",
              "kesten_a", "kesten_c", "kesten_b", "kesten_d"]
TESTS = {"survival_day": -1, "turnover_dynamic_per_interval": 1, "sigma_ln_w_first_session": 1}


def study_table(n_cells: int, n_sessions: int, n_synapses: int, seed: int) -> pd.DataFrame:
    parts = []
    for k, ct in enumerate(("pyr", "PV")):
        mu, sigma = WEIGHT_DEFAULTS[ct]
        t = simulate_table(n_cells=n_cells, n_synapses=n_synapses, n_sessions=n_sessions,
                           cell_type=ct, mu=mu, sigma=sigma, kesten=KESTEN_DEFAULTS[ct],
                           loss_logit=LOSS_DEFAULTS[ct], birth_rate=BIRTH_DEFAULTS[ct],
                           seed=seed * 10 + k)
        cell_no = t["cell"].str[-2:].astype(int)
        parts.append(t.assign(animal="m" + (cell_no // 2).astype(str)))
    return pd.concat(parts, ignore_index=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS_DESIGN.md"))
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rows, found = [], []
    for n_cells, n_sessions, n_syn in DESIGNS:
        design = f"{n_cells} cells per type ({(n_cells + 1) // 2} animals), {n_sessions} sessions, {n_syn} synapses per cell"
        for rep in range(args.reps):
            with tempfile.TemporaryDirectory() as tmp:
                res = run_stats(study_table(n_cells, n_sessions, n_syn, rep + 1), tmp,
                                n_boot=args.n_boot, seed=rep)
            summ = res["summary"]
            for r in summ[summ["quantity"].isin(QUANTITIES)].itertuples():
                rows.append({"design": design, "cell_type": r.cell_type, "quantity": r.quantity,
                             "half_width": (r.ci_high - r.ci_low) / 2, "estimate": r.estimate})
            comp = res["celltype_comparison"]
            for prefix, sign in TESTS.items():
                c = comp[comp["quantity"].str.startswith(prefix)].iloc[0]
                flip = 1 if c["cell_type_a"] == "PV" else -1
                found.append({"design": design, "test": prefix,
                              "found": bool(c["p"] < 0.05 and np.sign(flip * c["difference"]) == sign)})
        print(design, f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
    widths = (pd.DataFrame(rows).groupby(["design", "cell_type", "quantity"], sort=False)
              .agg(mean=("estimate", "mean"), ci_half_width=("half_width", "mean")).reset_index())
    table = widths.pivot_table(index=["cell_type", "quantity"], columns="design",
                               values="ci_half_width", sort=False)
    power = pd.DataFrame(found).pivot_table(index="test", columns="design", values="found",
                                            sort=False)
    lines = ["# Study design: the precision a number of cells, animals and sessions gives", "",
             f"Command: `python benchmarks/science_design.py --reps {args.reps}` "
             f"({(time.perf_counter() - started) / 60:.0f} min on 2 cores). Truth tables (no "
             "image stages) with the simulator's default dynamics; 2 cells per animal; "
             f"{args.reps} studies per design. Mean 95 % CI half-width of each quantity of "
             "`stats/summary.csv`:", "", table.round(3).to_markdown(), "",
             "Share of studies in which the cell-type comparison finds PV more stable / less "
             "heterogeneous (right sign, p < 0.05):", "", power.round(2).to_markdown(), "",
             "Means of the estimates (the truth these designs estimate):", "",
             widths.pivot_table(index=["cell_type", "quantity"], columns="design", values="mean",
                                sort=False).round(3).to_markdown(), ""]
    Path(args.out).write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
