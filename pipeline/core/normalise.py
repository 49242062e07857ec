"""Per-session normalisation of synapse weights within one cell (the weights and presence
stages both apply it: presence again after its calls change which synapses are present)."""
from __future__ import annotations

import numpy as np
import pandas as pd

NORMALISATIONS = ("percentile_40_60", "median_ratio")


def _percentile_scale(w: np.ndarray) -> float:
    if len(w) == 0:
        return np.nan
    lo, hi = np.percentile(w, [40, 60])
    sel = w[(w >= lo) & (w <= hi)]
    return sel.mean() if len(sel) else np.median(w)


def normalise_cell_weights(table: pd.DataFrame, method: str) -> pd.Series:
    """:func:`normalise_weights` of one cell's per-synapse-session table (columns
    ``intensity, present, session, day, synapse_id``), the earliest session being the
    reference of the median_ratio method."""
    first = str(table.loc[table["day"].idxmin(), "session"])
    return normalise_weights(table["intensity"], table["present"],
                             groups=table["session"].astype(str), method=method,
                             synapse_ids=table["synapse_id"], reference=first)


def normalise_weights(intensity: pd.Series, present: pd.Series, *, groups: pd.Series,
                      method: str = "percentile_40_60", synapse_ids: pd.Series | None = None,
                      reference=None, min_shared: int = 5) -> pd.Series:
    """Divide intensities by a per-group (one cell's session) scale.

    ``percentile_40_60`` (the published definition): the mean of the present synapses'
    intensities between the 40th and 60th percentile of that session.  It moves when the
    population does (many new small synapses lower it).

    ``median_ratio``: each session's brightness relative to the ``reference`` group (default:
    the first), as the median ratio of intensities over the synapses present (with positive
    intensity) in both; the reference's scale is its percentile_40_60 scale, so the two
    methods agree there.  Births and losses do not move it.  A group sharing fewer than
    ``min_shared`` synapses with the reference keeps its own percentile scale.  Needs
    ``synapse_ids``.
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation method {method!r}; use one of {NORMALISATIONS}")
    df = pd.DataFrame({"intensity": intensity, "present": present, "g": groups})
    ok = df[(df["present"] == 1)]
    scales = ok.groupby("g", sort=False)["intensity"].apply(lambda w: _percentile_scale(w.to_numpy()))
    scales = scales.reindex(pd.unique(df["g"]))
    if method == "median_ratio":
        if synapse_ids is None:
            raise ValueError("median_ratio normalisation needs synapse_ids")
        df["id"] = synapse_ids
        pos = df[(df["present"] == 1) & (df["intensity"] > 0)]
        wide = pos.pivot_table(index="id", columns="g", values="intensity", aggfunc="first")
        first = scales.index[0] if reference is None else reference
        for g in scales.index.drop(first):
            both = wide[[first, g]].dropna() if first in wide and g in wide else wide.iloc[:0]
            if len(both) >= min_shared:
                scales[g] = scales[first] * float(np.exp(np.median(np.log(both[g] / both[first]))))
    return intensity / groups.map(scales)
