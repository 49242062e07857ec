"""Survival and turnover of synapses (the published definitions).

A synapse-session that was not observed (``present`` NaN: outside the imaged volume or badly
registered) is censored, never counted as a loss: survival's denominator on a day holds only the
first-session synapses observed that day, a turnover interval only the synapses observed at both
ends, and a Kaplan-Meier spell ends at the last session the synapse was observed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _mean_sem(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna()
    n = len(v)
    sem = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(v.mean()) if n else float("nan"), sem, n


def presence_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Synapse x day matrix of present (1), absent (0) and not observed (NaN) for one cell,
    columns sorted by day (days counted from the cell's first session).  A synapse with no row
    for a session counts as absent there (tables that list only present synapses)."""
    rel = table.assign(day=table["day"] - table["day"].min(),
                       _p=table["present"].fillna(-1))   # pivot_table would drop NaN
    m = rel.pivot_table(index="synapse_id", columns="day", values="_p", aggfunc="max",
                        fill_value=0).sort_index(axis=1)
    return m.where(m >= 0).astype(float)


def spells(table: pd.DataFrame) -> pd.DataFrame:
    """Time to first absence per synapse: cell_type, cell, synapse_id, entry, exit, event.

    A synapse enters at the first session it is present (days from the cell's first session)
    and exits at the first later session it is observed absent (``event`` 1) or, if it never
    is, at the last session it was observed (``event`` 0, censored).
    """
    rows = []
    for (ctype, cell), grp in table.groupby(["cell_type", "cell"]):
        mat = presence_matrix(grp)
        m, days, ids = mat.to_numpy(), mat.columns.to_numpy(float), mat.index
        pres, seen = m == 1, ~np.isnan(m)
        ever = pres.any(axis=1)
        pres, seen, ids = pres[ever], seen[ever], ids[ever]
        first = pres.argmax(axis=1)
        after = np.arange(len(days))[None, :] > first[:, None]
        gone = after & seen & ~pres
        has_event = gone.any(axis=1)
        last_seen = len(days) - 1 - np.argmax(seen[:, ::-1], axis=1)
        exit_idx = np.where(has_event, gone.argmax(axis=1), last_seen)
        rows.append(pd.DataFrame({"cell_type": ctype, "cell": cell, "synapse_id": ids,
                                  "entry": days[first], "exit": days[exit_idx],
                                  "event": has_event.astype(int)}))
    return pd.concat(rows, ignore_index=True)


def kaplan_meier(entry, exit, event, *, alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier survival with delayed entry (left truncation) and Greenwood bounds.

    A spell is at risk at time t when ``entry < t <= exit``.  Bounds use the log(-log)
    transform so that they stay within [0, 1].
    """
    entry, exit, event = (np.asarray(x, float) for x in (entry, exit, event))
    times = np.unique(np.concatenate([[0.0], entry, exit]))
    z = stats.norm.ppf(1 - alpha / 2)
    s, gw = 1.0, 0.0
    rows = []
    for t in times:
        at_risk = int(((entry < t) & (exit >= t)).sum())
        d = int(((exit == t) & (event == 1)).sum())
        if at_risk > 0 and t > 0:
            s *= 1 - d / at_risk
            gw += d / (at_risk * (at_risk - d)) if at_risk > d else np.inf
        if 0 < s < 1 and np.isfinite(gw):
            se = np.sqrt(gw) / abs(np.log(s))
            lo, hi = np.exp(-np.exp(np.log(-np.log(s)) + np.array([z, -z]) * se))
        else:
            lo, hi = (s, s) if s == 1 else (0.0, s)
        rows.append({"day": t, "km_survival": s, "km_ci_low": lo, "km_ci_high": hi,
                     "km_at_risk": at_risk, "km_events": d})
    return pd.DataFrame(rows)


def survival_per_cell(table: pd.DataFrame) -> pd.DataFrame:
    """Share of each cell's first-session synapses present on each later day, among those
    observed that day (``n_synapses``; ``n_not_observed`` left out)."""
    rows = []
    for (ctype, cell), grp in table.groupby(["cell_type", "cell"]):
        m = presence_matrix(grp)
        first = m.iloc[:, 0] == 1
        for day in m.columns:
            vals = m.loc[first, day]
            seen = int(vals.notna().sum())
            rows.append({"cell_type": ctype, "cell": cell, "day": day,
                         "survival": vals.mean() if seen else np.nan, "n_synapses": seen,
                         "n_not_observed": int(first.sum()) - seen})
    return pd.DataFrame(rows)


def survival(table: pd.DataFrame, per_cell: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cell type and day (from each cell's first session).

    ``survival``: mean over cells of the share of first-session synapses present that day,
    with ``sem`` and ``n_cells`` (the published definition).  ``km_*``: Kaplan-Meier estimate
    of time to first absence pooled over synapses, later-born synapses entering late.
    ``per_cell``: :func:`survival_per_cell` of the table, when the caller has it already.
    """
    per_cell = survival_per_cell(table) if per_cell is None else per_cell
    rows = []
    for (ctype, day), grp in per_cell.groupby(["cell_type", "day"]):
        mean, sem, n = _mean_sem(grp["survival"])
        rows.append({"cell_type": ctype, "day": day, "survival": mean, "sem": sem,
                     "n_cells": n, "n_synapses": int(grp["n_synapses"].sum()),
                     "n_not_observed": int(grp["n_not_observed"].sum())})
    out = pd.DataFrame(rows)
    sp = spells(table)
    km = pd.concat([kaplan_meier(g["entry"], g["exit"], g["event"]).assign(cell_type=ct)
                    for ct, g in sp.groupby("cell_type")], ignore_index=True)
    return out.merge(km, on=["cell_type", "day"], how="left")


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
            rows.append({"cell_type": ctype, "quartile": q, "day": day,     # observed only
                         "survival": g["present"].mean(), "n_synapses": int(g["present"].count())})
    return pd.DataFrame(rows)


def turnover_per_cell(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell and interval: share added (of those present after) and lost (of those before),
    over the synapses observed at both ends of the interval."""
    per_cell = []
    for (ctype, cell), grp in table.groupby(["cell_type", "cell"]):
        mat = presence_matrix(grp)
        m, days = mat.to_numpy(), mat.columns.to_numpy()
        for i in range(len(days) - 1):
            both = ~np.isnan(m[:, i]) & ~np.isnan(m[:, i + 1])
            before, after = both & (m[:, i] == 1), both & (m[:, i + 1] == 1)
            per_cell.append({"cell_type": ctype, "cell": cell, "day": days[i],
                             "day_next": days[i + 1],
                             "added": (after & ~before).sum() / max(after.sum(), 1),
                             "lost": (before & ~after).sum() / max(before.sum(), 1)})
    per_cell = pd.DataFrame(per_cell, columns=["cell_type", "cell", "day", "day_next", "added", "lost"])
    per_cell["dynamic"] = per_cell["added"] + per_cell["lost"]
    return per_cell


def turnover(table: pd.DataFrame, per_cell: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cell type and interval: fraction added, lost and their sum, mean and SEM over cells."""
    per_cell = turnover_per_cell(table) if per_cell is None else per_cell
    rows = []
    for (ctype, day, day_next), grp in per_cell.groupby(["cell_type", "day", "day_next"]):
        row = {"cell_type": ctype, "day": day, "day_next": day_next}
        for col in ("added", "lost", "dynamic"):
            row[col], row[f"{col}_sem"], row["n_cells"] = _mean_sem(grp[col])
        rows.append(row)
    return pd.DataFrame(rows)
