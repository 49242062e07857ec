"""Differences between cell types in the statistics that matter."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .kesten_models import PARAMS
from .survival import survival_per_cell


COMPARISON_COLUMNS = ["quantity", "cell_type_a", "cell_type_b", "value_a", "value_b", "difference", "ci_low",
           "ci_high", "test", "statistic", "p", "p_mann_whitney", "n_a", "n_b"]


def per_cell_values(table: pd.DataFrame, turnover_per_cell: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: survival at each day, mean dynamic turnover, SD of first-session ln w."""
    surv = survival_per_cell(table)
    first_day = table.groupby("cell")["day"].transform("min")
    first = table[(table["day"] == first_day) & (table["present"] == 1)]
    sigma = first.groupby("cell")["w"].apply(lambda w: np.log(w).std(ddof=0)).rename("sigma")
    dyn = turnover_per_cell.groupby("cell")["dynamic"].mean().rename("dynamic")
    cells = table.groupby("cell")["cell_type"].first()
    return surv, pd.concat([cells, sigma, dyn], axis=1).reset_index()


def _welch(x, y, alpha=0.05):
    x, y = np.asarray(x, float), np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    diff = y.mean() - x.mean() if len(x) and len(y) else np.nan
    if len(x) < 2 or len(y) < 2:
        return diff, np.nan, np.nan, np.nan, np.nan, np.nan
    t = stats.ttest_ind(y, x, equal_var=False)
    lo, hi = t.confidence_interval(1 - alpha)
    mw = stats.mannwhitneyu(y, x, alternative="two-sided")
    return diff, lo, hi, t.statistic, t.pvalue, mw.pvalue


def celltype_comparison(table: pd.DataFrame, turnover_per_cell: pd.DataFrame,
                        kesten_details: dict, *, alpha: float = 0.05) -> pd.DataFrame:
    """Pairwise tests between cell types (difference = second minus first type).

    Survival at the last day both types were imaged, mean turnover per interval and the SD
    of ln weight are compared over cells (Welch t-test with CI, Mann-Whitney p); the ML Kesten
    terms by their bootstrap distributions (percentile CI of the difference, two-sided p).
    """
    types = sorted(table["cell_type"].unique())
    surv, cells = per_cell_values(table, turnover_per_cell)
    rows = []
    for ta, tb in combinations(types, 2):
        def add(quantity, xa, xb, **extra):
            diff, lo, hi, stat, p, p_mw = _welch(xa, xb, alpha)
            rows.append({"quantity": quantity, "cell_type_a": ta, "cell_type_b": tb,
                         "value_a": np.nanmean(xa) if len(xa) else np.nan,
                         "value_b": np.nanmean(xb) if len(xb) else np.nan, "difference": diff,
                         "ci_low": lo, "ci_high": hi, "test": "Welch t over cells",
                         "statistic": stat, "p": p, "p_mann_whitney": p_mw,
                         "n_a": int(np.sum(~np.isnan(np.asarray(xa, float)))),
                         "n_b": int(np.sum(~np.isnan(np.asarray(xb, float)))), **extra})
        days_a = set(surv.loc[surv["cell_type"] == ta, "day"])
        days_b = set(surv.loc[surv["cell_type"] == tb, "day"])
        common = sorted(days_a & days_b)
        if len(common) > 1:
            day = common[-1]
            sel = surv[surv["day"] == day]
            add(f"survival_day_{day:g}", sel.loc[sel["cell_type"] == ta, "survival"],
                sel.loc[sel["cell_type"] == tb, "survival"])
        for q, name in (("dynamic", "turnover_dynamic_per_interval"), ("sigma", "sigma_ln_w_first_session")):
            add(name, cells.loc[cells["cell_type"] == ta, q], cells.loc[cells["cell_type"] == tb, q])
        da, db = (kesten_details.get(t, {}) for t in (ta, tb))
        if "ml" in da and "ml" in db:
            n = min(len(da["draws"]), len(db["draws"]))
            for j, k in enumerate(PARAMS):
                diffs = db["draws"][:n, j] - da["draws"][:n, j]
                lo, hi = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if n else (np.nan,) * 2
                p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))) if n else np.nan
                rows.append({"quantity": f"kesten_{k}", "cell_type_a": ta, "cell_type_b": tb,
                             "value_a": da["ml"][k], "value_b": db["ml"][k],
                             "difference": db["ml"][k] - da["ml"][k], "ci_low": lo, "ci_high": hi,
                             "test": "bootstrap of the ML fits", "statistic": np.nan, "p": p,
                             "p_mann_whitney": np.nan, "n_a": da["ml"]["n_pairs"],
                             "n_b": db["ml"]["n_pairs"]})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
