"""Synapse density per um of dendrite, per session and its change (issue 27).

The synapses present in a session (among those observed) over the dendrite length measured in
that session's own stack (``dendrite_length_um``, from the dendrite stage): both count the same
field, so a session imaged shallower or shifted changes numerator and denominator together.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .replication import cells_by_animal, shares_animals
from .summary import mean_ci

PER_SESSION_COLUMNS = ["cell_type", "cell", "session", "day", "n_present",
                       "dendrite_length_um", "density_per_um", "change_from_first"]
DENSITY_COLUMNS = ["cell_type", "day", "n_cells", "density_per_um", "ci_low", "ci_high",
                   "ci_method", "change_from_first", "change_ci_low", "change_ci_high"]


def density_per_session(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and session: synapses present, dendrite length, their ratio and its
    change from the cell's first session (a ratio minus 1).  Empty without lengths."""
    if "dendrite_length_um" not in table.columns:
        return pd.DataFrame(columns=PER_SESSION_COLUMNS)
    t = table.assign(is_present=(table["present"] == 1).astype(int))
    rows = t.groupby(["cell_type", "cell", "session", "day"], sort=False).agg(
        n_present=("is_present", "sum"),
        dendrite_length_um=("dendrite_length_um", "first")).reset_index()
    rows = rows.sort_values(["cell", "day"], kind="stable")
    length = pd.to_numeric(rows["dendrite_length_um"], errors="coerce")
    rows["density_per_um"] = rows["n_present"] / length.where(length > 0)
    first = rows.groupby("cell")["density_per_um"].transform("first")
    rows["change_from_first"] = rows["density_per_um"] / first - 1
    return rows[PER_SESSION_COLUMNS].reset_index(drop=True)


def density_table(table: pd.DataFrame, per_session: pd.DataFrame) -> pd.DataFrame:
    """Per cell type and day (from each cell's first session): mean density over cells and its
    relative change from the first session, with t intervals (over animal means where cells
    share animals, as :func:`pipeline.stats.summary.mean_ci`)."""
    rows = []
    ps = per_session.dropna(subset=["density_per_um"])
    if ps.empty:
        return pd.DataFrame(columns=DENSITY_COLUMNS)
    ps = ps.assign(rel_day=ps["day"] - ps.groupby("cell")["day"].transform("min"))
    animals_of = {ct: cells_by_animal(g) if shares_animals(g) else None
                  for ct, g in table.groupby("cell_type")}
    for (ct, day), grp in ps.groupby(["cell_type", "rel_day"]):
        animals = animals_of[ct]
        est, lo, hi, method, _ = mean_ci(grp.set_index("cell")["density_per_um"], animals)
        ch, ch_lo, ch_hi, _, _ = mean_ci(grp.set_index("cell")["change_from_first"], animals)
        if day == 0:
            ch_lo = ch_hi = np.nan
        rows.append({"cell_type": ct, "day": day, "n_cells": grp["cell"].nunique(),
                     "density_per_um": est, "ci_low": lo, "ci_high": hi, "ci_method": method,
                     "change_from_first": ch, "change_ci_low": ch_lo, "change_ci_high": ch_hi})
    return pd.DataFrame(rows, columns=DENSITY_COLUMNS)
