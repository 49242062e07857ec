"""One row per cell type and headline quantity, with the CI a paper would print.

The quantities a user reports (survival to the last day, turnover per interval, SD of ln
weight, the loss hazard's slope on ln w, the ML Kesten terms with and without the noise
correction) gathered from the other tables, each with its 95 % CI and the replicates it rests
on, and a note when those are too few to trust it.  ``make bench-science`` scores these rows
against the same statistic on the simulator's truth.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..params import StatsParams
from .kesten_models import PARAMS
from .replication import animal_means, cells_by_animal, shares_animals

SUMMARY_COLUMNS = ["cell_type", "quantity", "estimate", "ci_low", "ci_high", "ci_method",
                   "n_cells", "n_animals", "n_sessions", "note"]

#: below this many independent units (cells, or animals where cells share them) a mean's
#: t interval is not given: with one or two units it says nothing about the population
MIN_UNITS_FOR_CI = 3


def mean_ci(per_cell: pd.Series, animals: dict[str, list[str]] | None, *,
            alpha: float = 0.05) -> tuple[float, float, float, str, int]:
    """Mean over cells of a per-cell value (index: cell) and its t interval.

    Where cells share animals (``animals``: animal -> cells), cells are averaged within each
    animal first and the interval is over animal means (t on animals - 1 df): cells of one
    animal are not independent.  Returns (estimate, low, high, method, n units).
    """
    x = per_cell.dropna()
    if animals is not None:
        units = animal_means(x, animals).dropna()
        what = "animals (cells averaged within each)"
    else:
        units, what = x, "cells"
    n = len(units)
    est = float(units.mean()) if n else np.nan
    if n < MIN_UNITS_FOR_CI:
        return est, np.nan, np.nan, f"none: {n} {what.split()[0]}", n
    half = stats.t.ppf(1 - alpha / 2, n - 1) * units.std(ddof=1) / np.sqrt(n)
    return est, est - half, est + half, f"t over {n} {what}, {n - 1} df", n


def first_session_sigma(table: pd.DataFrame) -> pd.Series:
    """Per cell, the SD of ln w over the synapses present in its first session."""
    first_day = table.groupby("cell")["day"].transform("min")
    first = table[(table["day"] == first_day) & (table["present"] == 1)]
    return first.groupby("cell")["w"].apply(lambda w: np.log(w).std(ddof=0))


def _last_day_survival(per_cell_survival: pd.DataFrame) -> tuple[pd.Series, float]:
    """Per cell survival on the last day (from each cell's first) that every cell of the type
    was imaged, and that day."""
    days = per_cell_survival.dropna(subset=["survival"]).groupby("cell")["day"].apply(set)
    common = set.intersection(*days) if len(days) else set()
    day = max(common) if common else np.nan
    sel = per_cell_survival[per_cell_survival["day"] == day]
    return sel.set_index("cell")["survival"], day


def summary_table(table: pd.DataFrame, *, per_cell_turnover: pd.DataFrame,
                  per_cell_survival: pd.DataFrame, noise_by_type: dict,
                  kesten: pd.DataFrame, hazard: pd.DataFrame, density: pd.DataFrame,
                  min_cells: int = StatsParams.min_cells_per_type) -> pd.DataFrame:
    """Per cell type the headline quantities with 95 % CIs (see the module docstring).

    ``table`` is the prepared main table (repeats split off), the others as ``run_stats``
    computes them (``density``: :func:`pipeline.stats.density.density_per_session`).  Means
    over cells use :func:`mean_ci`; the Kesten and hazard rows copy their tables' estimates
    and intervals.
    """
    rows = []
    for ct, grp in table.groupby("cell_type"):
        animals = cells_by_animal(grp) if shares_animals(grp) else None
        n_cells = grp["cell"].nunique()
        n_animals = grp["animal_unit"].nunique()
        n_sessions = int(grp.groupby("cell")["day"].nunique().median())
        few = []
        if n_cells < min_cells:
            few.append(f"{n_cells} cell(s), fewer than {min_cells} (stats.min_cells_per_type): "
                       "the estimate describes these cells, not the cell type")
        if n_sessions < 3:
            few.append(f"{n_sessions} sessions per cell: turnover and the Markov fits rest on "
                       "one interval")
        base = {"cell_type": ct, "n_cells": n_cells, "n_animals": n_animals,
                "n_sessions": n_sessions}

        def add(quantity, est, lo, hi, method, note=""):
            rows.append({**base, "quantity": quantity, "estimate": est, "ci_low": lo,
                         "ci_high": hi, "ci_method": method,
                         "note": "; ".join(n for n in (*few, note) if n)})

        def add_mean(quantity, per_cell, note="", bounds=(0.0, np.inf)):
            est, lo, hi, method, _ = mean_ci(per_cell, animals)
            # a t interval can reach past what the quantity can be (a share above 1)
            add(quantity, est, np.clip(lo, *bounds), np.clip(hi, *bounds), method, note)

        surv_ct = per_cell_survival[per_cell_survival["cell_type"] == ct]
        surv, day = _last_day_survival(surv_ct)
        add_mean("survival_last_day", surv, f"day {day:g} from each cell's first session"
                 if np.isfinite(day) else "no day imaged in every cell", bounds=(0.0, 1.0))
        dyn = per_cell_turnover[per_cell_turnover["cell_type"] == ct]
        add_mean("turnover_per_interval", dyn.groupby("cell")["dynamic"].mean(),
                 "added + lost per interval (the published dynamic turnover), mean over "
                 "intervals, then cells", bounds=(0.0, 2.0))
        sigma = first_session_sigma(grp)
        add_mean("sigma_ln_w", sigma, "SD of ln w in each cell's first session")
        noise = noise_by_type.get(ct)
        if noise is not None:
            add_mean("sigma_ln_w_noise_corrected",
                     np.sqrt(np.maximum(sigma ** 2 - noise["log_var"], 0.0)),
                     f"minus the ln-weight noise variance {noise['log_var']:.3g} from "
                     f"{noise['n_repeat_pairs']} repeat pairs (its own uncertainty not in the CI)")
        dens = density[(density["cell_type"] == ct)].dropna(subset=["density_per_um"])
        if len(dens):
            first = dens.sort_values("day").groupby("cell")["density_per_um"].first()
            add_mean("density_per_um", first, "synapses present per um of dendrite in each "
                     "cell's first session")
        haz = (hazard[(hazard["cell_type"] == ct) & (hazard["model"] == "logistic")
                      & (hazard["term"] == "ln_w")]
               if {"cell_type", "model", "term"} <= set(hazard.columns) else hazard.iloc[:0])
        if len(haz):
            h = haz.iloc[0]
            add("hazard_slope_ln_w", h["coef"], h["ci_low"], h["ci_high"],
                f"logistic regression, SE {h['se_type']}", h.get("note", "") or "")
        ml = (kesten[(kesten["cell_type"] == ct) & (kesten["method"] == "maximum_likelihood")
                     & (kesten["model"] == "both") & kesten["a"].notna()]
              if {"cell_type", "method", "model", "a"} <= set(kesten.columns) else kesten.iloc[:0])
        for _, r in ml.iterrows():
            corrected = r["noise_correction"] != "none"
            for k in PARAMS:
                add(f"kesten_{k}" + ("_noise_corrected" if corrected else ""), r[k],
                    r[f"{k}_ci_low"], r[f"{k}_ci_high"], r["ci_method"],
                    r["note"] if isinstance(r["note"], str) else "")
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
