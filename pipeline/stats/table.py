"""The long per-synapse table that every statistic reads."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..io import InputError

REQUIRED = ["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]


class TableError(InputError):
    """A problem in the per-synapse table; the message names the column and rows."""


def _rows(mask) -> str:
    idx = np.flatnonzero(np.asarray(mask)) + 2  # +1 for 1-based, +1 for the header line
    shown = ", ".join(map(str, idx[:10]))
    return f"line(s) {shown}{' ...' if len(idx) > 10 else ''} ({len(idx)} row(s))"


def prepare_table(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a long table and return it with ``w`` (weight where present, else 0).

    Cells with a single session are dropped with a warning.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise TableError(f"missing column(s) {', '.join(missing)}; the table needs "
                         f"{', '.join(REQUIRED)}")
    out = df.copy()
    day = pd.to_numeric(out["day"], errors="coerce")
    if day.isna().any():
        raise TableError(f"column 'day' is not numeric at {_rows(day.isna())}")
    out["day"] = day
    present = pd.to_numeric(out["present"], errors="coerce")
    if present.isna().any() or not present.isin([0, 1]).all():
        raise TableError(f"column 'present' must be 0 or 1; bad at {_rows(~present.isin([0, 1]))}")
    out["present"] = present.astype(int)
    weight = pd.to_numeric(out["weight"], errors="coerce")
    bad = (out["present"] == 1) & ~(weight > 0)
    if bad.any():
        raise TableError(f"column 'weight' must be a positive number where present = 1; "
                         f"missing, zero or negative at {_rows(bad)}")
    # where absent, 'weight' is informational (the measurement at the predicted position,
    # which noise can make negative); the statistics use 0 there
    out["weight"] = weight
    out["w"] = np.where(out["present"] == 1, weight, 0.0)
    for col in ("cell", "cell_type", "session"):
        out[col] = out[col].astype(str)
    dup = out.duplicated(["cell", "synapse_id", "session"], keep=False)
    if dup.any():
        raise TableError(f"synapse_id repeated within a cell and session at {_rows(dup)}")
    n_sess = out.groupby("cell")["session"].nunique()
    single = n_sess[n_sess < 2].index.tolist()
    if single:
        warnings.warn(f"cell(s) {', '.join(single)} have a single session and are excluded "
                      "from the statistics", stacklevel=2)
        out = out[~out["cell"].isin(single)]
    return out.sort_values(["cell_type", "cell", "synapse_id", "day"], kind="stable",
                           ignore_index=True)


def consecutive_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Pairs of consecutive sessions per synapse: cell_type, cell, day, w_t, w_next."""
    t = table.sort_values(["cell", "synapse_id", "day"], kind="stable")
    nxt = t.groupby(["cell", "synapse_id"])[["w", "day"]].shift(-1)
    pairs = pd.DataFrame({"cell_type": t["cell_type"], "cell": t["cell"],
                          "synapse_id": t["synapse_id"], "day": t["day"],
                          "day_next": nxt["day"], "w_t": t["w"], "w_next": nxt["w"]})
    return pairs.dropna(subset=["w_next"]).reset_index(drop=True)
