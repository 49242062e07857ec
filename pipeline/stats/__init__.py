"""Stability statistics computed from the long per-synapse table alone."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import plots
from .distributions import fit_lognormal
from .kesten import fit_kesten_binned
from .survival import survival, survival_by_quartile, turnover
from .table import TableError, consecutive_pairs, prepare_table

__all__ = ["run_stats", "prepare_table", "TableError"]


def lognormal_table(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (ct, sess), grp in table.groupby(["cell_type", "session"], sort=False):
        rows.append({"cell_type": ct, "session": sess, "day": grp["day"].min(),
                     **fit_lognormal(grp.loc[grp["present"] == 1, "weight"])})
    return pd.DataFrame(rows).sort_values(["cell_type", "day"], ignore_index=True)


def kesten_table(table: pd.DataFrame, *, n_bins: int = 20) -> tuple[pd.DataFrame, dict]:
    pairs = consecutive_pairs(table)
    rows, fits = [], {}
    for ct, grp in pairs.groupby("cell_type"):
        try:
            fit = fit_kesten_binned(grp["w_t"], grp["w_next"], n_bins=n_bins)
        except ValueError as exc:
            rows.append({"cell_type": ct, "method": "binned_moments", "note": str(exc)})
            continue
        fits[ct] = fit
        rows.append({"cell_type": ct, "method": "binned_moments",
                     **{k: fit[k] for k in ("a", "c", "b", "d", "n_pairs", "n_bins", "bin_size")},
                     "note": ""})
    return pd.DataFrame(rows), fits


def run_stats(table: pd.DataFrame, out_dir: str | Path, *, n_bins: int = 20) -> dict:
    """Compute every statistic from a long table and write CSV tables and PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = prepare_table(table)
    results = {
        "lognormal": lognormal_table(t),
        "survival": survival(t),
        "survival_by_quartile": survival_by_quartile(t),
        "turnover": turnover(t),
    }
    results["kesten"], fits = kesten_table(t, n_bins=n_bins)
    for name, df in results.items():
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    plots.weight_histograms(t, results["lognormal"], out / "weights_lognormal.png")
    plots.survival_curves(results["survival"], results["survival_by_quartile"], out / "survival.png")
    plots.kesten_moments(fits, out / "kesten.png")
    return results
