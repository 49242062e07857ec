"""Stability statistics computed from the long per-synapse table alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import STATS_TABLES
from ..params import StatsParams
from . import plots
from .compare import celltype_comparison
from .density import density_per_session, density_table
from .distributions import fit_lognormal
from .hazard import hazard_table
from .kesten import kesten_table
from .noise import noise_estimate
from .markov import markov_chain
from .summary import summary_table
from .survival import (survival, survival_by_quartile, survival_per_cell, turnover,
                       turnover_per_cell)
from .table import TableError, consecutive_pairs, prepare_table, split_repeats, weighed_pairs

__all__ = ["run_stats", "prepare_table", "TableError"]



def lognormal_table(table: pd.DataFrame, noise_by_type: dict) -> pd.DataFrame:
    """Per cell type and session (by day from each cell's first), with a noise-corrected
    sigma where the cell type has repeat imaging."""
    rows = []
    t = table.assign(rel_day=table["day"] - table.groupby("cell")["day"].transform("min"))
    for (ct, day), grp in t.groupby(["cell_type", "rel_day"]):
        fit = fit_lognormal(grp.loc[grp["present"] == 1, "w"])
        noise = noise_by_type.get(ct)
        corrected, how = np.nan, "none"
        if noise is not None and np.isfinite(fit["sigma"]):
            corrected = np.sqrt(max(fit["sigma"] ** 2 - noise["log_var"], 0.0))
            how = (f"minus ln-weight noise variance {noise['log_var']:.3g} from "
                   f"{noise['n_repeat_pairs']} repeat pairs")
        names = grp["session"].unique()
        rows.append({"cell_type": ct, "day": day,
                     "session": names[0] if len(names) == 1 else "/".join(sorted(names)),
                     "n_cells": grp["cell"].nunique(), **fit,
                     "sigma_noise_corrected": corrected, "noise_correction": how})
    return pd.DataFrame(rows)


def run_stats(table: pd.DataFrame, out_dir: str | Path, *, n_bins: int = StatsParams.kesten_bins,
              markov_bins: int = StatsParams.markov_bins, n_boot: int = StatsParams.n_boot,
              seed: int = StatsParams.seed,
              min_cells_per_type: int = StatsParams.min_cells_per_type,
              min_animals_per_type: int = StatsParams.min_animals_per_type,
              type_test: str = StatsParams.type_test) -> dict:
    """Compute every statistic from a long table and write CSV tables and plots (PNG + SVG).

    Repeat sessions (a cell imaged twice on one day) serve only the measurement-noise
    estimate; every other statistic uses the first-listed session of each day.  Bootstrap
    resampling draws from ``numpy.random.default_rng(seed)``: same seed, same numbers.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t, repeats = split_repeats(prepare_table(table))
    pairs = consecutive_pairs(t)
    noise_by_type = {ct: noise_estimate(repeats[repeats["cell_type"] == ct])
                     for ct in t["cell_type"].unique()}
    per_cell_turnover = turnover_per_cell(t)
    per_cell_survival = survival_per_cell(t)
    results = {
        "lognormal": lognormal_table(t, noise_by_type),
        "survival": survival(t, per_cell_survival),
        "survival_by_quartile": survival_by_quartile(t),
        "turnover": turnover(t, per_cell_turnover),
        "hazard": hazard_table(pairs),
    }
    chains = {}
    for ct, grp in t.groupby("cell_type"):
        chains[ct] = markov_chain(grp, n_bins=markov_bins, n_boot=n_boot, rng=rng)
    for part in ("transition", "stationary", "survival"):
        results[f"markov_{part}"] = pd.concat(
            [c[part].assign(cell_type=ct) for ct, c in chains.items()], ignore_index=True)
        cols = results[f"markov_{part}"].columns
        results[f"markov_{part}"] = results[f"markov_{part}"][["cell_type", *cols.drop("cell_type")]]
    weighed = weighed_pairs(pairs)
    results["kesten"], details = kesten_table(weighed, noise_by_type, n_bins=n_bins,
                                              n_boot=n_boot, rng=rng)
    results["celltype_comparison"] = celltype_comparison(
        t, per_cell_turnover, details, min_cells=min_cells_per_type,
        min_animals=min_animals_per_type, type_test=type_test)
    per_session_density = density_per_session(t)
    results["density"] = density_table(t, per_session_density)
    results["summary"] = summary_table(
        t, per_cell_turnover=per_cell_turnover, per_cell_survival=per_cell_survival,
        noise_by_type=noise_by_type, kesten=results["kesten"], hazard=results["hazard"],
        density=per_session_density, min_cells=min_cells_per_type)
    for name in STATS_TABLES:
        results[name].to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    plots.weight_histograms(t, results["lognormal"], out / "weights_lognormal.png")
    plots.survival_curves(results["survival"], results["survival_by_quartile"],
                          out / "survival.png", per_cell=per_cell_survival)
    plots.kesten_moments(weighed, details, out / "kesten.png")
    plots.transition_matrices(results["markov_transition"], out / "markov_transition.png")
    plots.stationary_vs_observed(results["markov_stationary"], results["markov_survival"],
                                 out / "markov_stationary.png")
    return results
