"""Survival and turnover of synapses (the published definitions)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def _mean_sem(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna()
    n = len(v)
    sem = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(v.mean()) if n else float("nan"), sem, n


def presence_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Synapse x day matrix of present (0/1) for one cell, columns sorted by day."""
    return table.pivot_table(index="synapse_id", columns="day", values="present",
                             aggfunc="max", fill_value=0).sort_index(axis=1)


def survival_per_cell(table: pd.DataFrame) -> pd.DataFrame:
    """Share of each cell's first-session synapses present on each later day."""
    rows = []
    for (ctype, cell), grp in table.groupby(["cell_type", "cell"]):
        m = presence_matrix(grp)
        first = m.iloc[:, 0] == 1
        for day in m.columns:
            frac = m.loc[first, day].mean() if first.any() else np.nan
            rows.append({"cell_type": ctype, "cell": cell, "day": day, "survival": frac,
                         "n_synapses": int(first.sum())})
    return pd.DataFrame(rows)


def survival(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell type and day: mean over cells of the surviving share, its SEM and n cells."""
    per_cell = survival_per_cell(table)
    rows = []
    for (ctype, day), grp in per_cell.groupby(["cell_type", "day"]):
        mean, sem, n = _mean_sem(grp["survival"])
        rows.append({"cell_type": ctype, "day": day, "survival": mean, "sem": sem,
                     "n_cells": n, "n_synapses": int(grp["n_synapses"].sum())})
    return pd.DataFrame(rows)


def survival_by_quartile(table: pd.DataFrame) -> pd.DataFrame:
    """Share of first-session synapses present each day, by quartile of first-session weight.

    Quartiles are taken over all first-session synapses of a cell type (pooled over cells).
    """
    rows = []
    for ctype, grp in table.groupby("cell_type"):
        first_day = grp.groupby("cell")["day"].transform("min")
        first = grp[(grp["day"] == first_day) & (grp["present"] == 1)]
        key = first[["cell", "synapse_id"]].assign(
            quartile=pd.qcut(first["weight"], 4, labels=[1, 2, 3, 4]).astype(int).to_numpy())
        merged = grp.merge(key, on=["cell", "synapse_id"])
        merged["rel_day"] = merged["day"] - merged.groupby("cell")["day"].transform("min")
        for (q, day), g in merged.groupby(["quartile", "rel_day"]):
            rows.append({"cell_type": ctype, "quartile": q, "day": day,
                         "survival": g["present"].mean(), "n_synapses": len(g)})
    return pd.DataFrame(rows)


def turnover(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell type and interval: fraction added, lost and their sum, mean and SEM over cells."""
    per_cell = []
    for (ctype, cell), grp in table.groupby(["cell_type", "cell"]):
        m = presence_matrix(grp).to_numpy()
        days = sorted(grp["day"].unique())
        for i in range(len(days) - 1):
            before, after = m[:, i] == 1, m[:, i + 1] == 1
            per_cell.append({"cell_type": ctype, "cell": cell, "day": days[i],
                             "day_next": days[i + 1],
                             "added": (after & ~before).sum() / max(after.sum(), 1),
                             "lost": (before & ~after).sum() / max(before.sum(), 1)})
    per_cell = pd.DataFrame(per_cell)
    per_cell["dynamic"] = per_cell["added"] + per_cell["lost"]
    rows = []
    for (ctype, day, day_next), grp in per_cell.groupby(["cell_type", "day", "day_next"]):
        row = {"cell_type": ctype, "day": day, "day_next": day_next}
        for col in ("added", "lost", "dynamic"):
            row[col], row[f"{col}_sem"], row["n_cells"] = _mean_sem(grp[col])
        rows.append(row)
    return pd.DataFrame(rows)
