"""The long per-synapse table that every statistic reads."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ..core.errors import InputError
from .replication import animal_units

TABLE_COLUMNS = ["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]


class TableError(InputError):
    """A problem in the per-synapse table; the message names the column and rows."""


def _rows(mask) -> str:
    idx = np.flatnonzero(np.asarray(mask)) + 2  # +1 for 1-based, +1 for the header line
    shown = ", ".join(map(str, idx[:10]))
    return f"line(s) {shown}{' ...' if len(idx) > 10 else ''} ({len(idx)} row(s))"


def prepare_table(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a long table and return it with ``observed``, ``w`` (weight where present,
    0 where absent, NaN where not observed) and ``at_noise`` (present, and the optional column
    ``weight_at_noise`` is 1: measured within the noise of absence).

    A synapse-session is not observed where ``present`` is empty or the optional column
    ``observed`` is 0 (outside the imaged volume, or a badly registered region): every
    statistic leaves such rows out instead of counting them absent.  Cells imaged on a single
    day are dropped with a warning.
    """
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise TableError(f"missing column(s) {', '.join(missing)}; the table needs "
                         f"{', '.join(TABLE_COLUMNS)}")
    out = df.copy()
    out["_order"] = np.arange(len(out))
    day = pd.to_numeric(out["day"], errors="coerce")
    if day.isna().any():
        raise TableError(f"column 'day' is not numeric at {_rows(day.isna())}")
    out["day"] = day
    present = pd.to_numeric(out["present"], errors="coerce")
    given = out["present"].notna() & (out["present"].astype(str).str.strip() != "")
    bad = given & ~present.isin([0, 1])
    if bad.any():
        raise TableError(f"column 'present' must be 0, 1 or empty (not observed); bad at "
                         f"{_rows(bad)}")
    observed = given.copy()
    if "observed" in out.columns:
        flag = pd.to_numeric(out["observed"], errors="coerce")
        if not flag.isin([0, 1]).all():
            raise TableError(f"column 'observed' must be 0 or 1; bad at {_rows(~flag.isin([0, 1]))}")
        observed &= flag == 1
    out["observed"] = observed.astype(int)
    out["present"] = present.where(observed)
    weight = pd.to_numeric(out["weight"], errors="coerce")
    bad = (out["present"] == 1) & ~(weight > 0)
    if bad.any():
        raise TableError(f"column 'weight' must be a positive number where present = 1; "
                         f"missing, zero or negative at {_rows(bad)}")
    # where absent, 'weight' is informational (the measurement at the predicted position,
    # which noise can make negative); the statistics use 0 there
    out["weight"] = weight
    out["w"] = np.where(out["present"] == 1, weight, 0.0)
    out.loc[~observed, "w"] = np.nan
    flagged = (pd.to_numeric(out["weight_at_noise"], errors="coerce").fillna(0) == 1
               if "weight_at_noise" in out.columns else False)
    out["at_noise"] = (out["present"] == 1) & flagged
    for col in ("cell", "cell_type", "session"):
        out[col] = out[col].astype(str)
    out["animal_unit"] = animal_units(out)      # the independent unit above the cell
    dup = out.duplicated(["cell", "synapse_id", "session"], keep=False)
    if dup.any():
        raise TableError(f"synapse_id repeated within a cell and session at {_rows(dup)}")
    n_sess = out.groupby("cell")["day"].nunique()
    single = n_sess[n_sess < 2].index.tolist()
    if single:
        warnings.warn(f"cell(s) {', '.join(single)} have a single session and are excluded "
                      "from the statistics", stacklevel=2)
        out = out[~out["cell"].isin(single)]
    # sessions of one day keep the order in which the table lists them (first = main session)
    out = out.sort_values(["cell_type", "cell", "synapse_id", "day", "_order"], kind="stable",
                          ignore_index=True)
    return out.drop(columns="_order")


def split_repeats(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate repeat imaging (two sessions of one cell on one day) from the time series.

    Returns the table with one session per cell and day (the first listed) and a table of
    repeat pairs ``cell_type, cell, synapse_id, day, w1, w2`` for synapses present in both.
    """
    sess = table[["cell", "day", "session"]].drop_duplicates()
    rank = sess.groupby(["cell", "day"]).cumcount()
    main_sessions = sess[rank == 0]
    main = table.merge(main_sessions, on=["cell", "day", "session"])
    repeats = sess[rank > 0]
    if repeats.empty:
        return main, pd.DataFrame(columns=["cell_type", "cell", "synapse_id", "day", "w1", "w2"])
    second = table.merge(repeats, on=["cell", "day", "session"])
    pairs = main.merge(second[["cell", "synapse_id", "day", "w"]], on=["cell", "synapse_id", "day"],
                       suffixes=("", "_repeat"))
    pairs = pairs[(pairs["w"] > 0) & (pairs["w_repeat"] > 0)]
    return main, pd.DataFrame({"cell_type": pairs["cell_type"], "cell": pairs["cell"],
                               "synapse_id": pairs["synapse_id"], "day": pairs["day"],
                               "w1": pairs["w"], "w2": pairs["w_repeat"]}).reset_index(drop=True)


def consecutive_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Pairs of consecutive sessions per synapse: cell_type, cell, day, w_t, w_next, and
    ``measured_t``: False where the start is present at noise level (``at_noise``), so that
    ``w_t`` is no measure of its weight; an interval counts only where the synapse was
    observed at both ends."""
    t = table.sort_values(["cell", "synapse_id", "day"], kind="stable")
    nxt = t.groupby(["cell", "synapse_id"])[["w", "day"]].shift(-1)
    pairs = pd.DataFrame({"cell_type": t["cell_type"], "cell": t["cell"],
                          "animal_unit": t["animal_unit"] if "animal_unit" in t else t["cell"],
                          "synapse_id": t["synapse_id"], "day": t["day"],
                          "day_next": nxt["day"], "w_t": t["w"], "w_next": nxt["w"],
                          "measured_t": ~t["at_noise"]})
    return pairs.dropna(subset=["w_t", "w_next"]).reset_index(drop=True)


def weighed_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs whose start has a measured weight (``measured_t``): the ones a model of
    w' given w may use.  A start at noise level has no measured w, and selecting on the
    regressor leaves the fit unbiased; an end at noise level stays (a noisy measurement of a
    dim w')."""
    return pairs[pairs["measured_t"]]


def long_from_matrix(wide: pd.DataFrame, *, cell_type: str | None = None) -> pd.DataFrame:
    """Long table from a wide synapse x session weight matrix (0 or empty = absent).

    ``wide`` has ``synapse_id``, ``cell`` (optional ``cell_type``) and one column per session
    whose name ends in its day (``d0``, ``day4``, ``D12`` ...).  Without a ``cell_type``
    column, ``cell_type`` must be given.
    """
    for col in ("synapse_id", "cell"):
        if col not in wide.columns:
            raise TableError(f"the weight matrix has no '{col}' column; it needs synapse_id, cell "
                             "and one column per session named by its day (d0, d4, ...)")
    if "cell_type" not in wide.columns and not cell_type:
        raise TableError("the weight matrix has no 'cell_type' column; give --cell-type")
    session_cols = [c for c in wide.columns if c not in ("synapse_id", "cell", "cell_type")]
    days = {}
    for col in session_cols:
        m = re.search(r"(\d+(?:\.\d+)?)\s*$", str(col))
        if not m:
            raise TableError(f"column '{col}' does not end in a day number; name session "
                             "columns by their day, e.g. d0, d4, day8")
        days[col] = float(m.group(1))
    if not session_cols:
        raise TableError("the weight matrix has no session columns (d0, d4, ...)")
    values = wide[session_cols].apply(pd.to_numeric, errors="coerce")
    text = wide[session_cols].notna() & values.isna()
    if text.any().any():
        col = text.any().idxmax()
        raise TableError(f"column '{col}' is not numeric at {_rows(text[col])}")
    if (values < 0).any().any():
        col = (values < 0).any().idxmax()
        raise TableError(f"column '{col}' has negative weights at {_rows(values[col] < 0)}")
    ids = wide[["cell", "synapse_id"]].copy()
    ids["cell_type"] = wide["cell_type"] if "cell_type" in wide.columns else cell_type
    long = values.assign(**ids).melt(id_vars=["cell", "cell_type", "synapse_id"],
                                     value_vars=session_cols, var_name="session",
                                     value_name="weight")
    long["weight"] = long["weight"].fillna(0.0)
    long["day"] = long["session"].map(days)
    long["day"] = long["day"].astype(int) if (long["day"] % 1 == 0).all() else long["day"]
    long["present"] = (long["weight"] > 0).astype(int)
    long = long.sort_values(["cell", "synapse_id", "day"], kind="stable", ignore_index=True)
    return long[TABLE_COLUMNS]


def drop_uncertain_synapses(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The table without every synapse that has a ``presence_uncertain`` row, and how many
    synapses that left out (none when the table has no such column)."""
    if "presence_uncertain" not in table.columns:
        return table, 0
    unsure = table.loc[table["presence_uncertain"] == 1, ["cell", "synapse_id"]]
    keys = pd.MultiIndex.from_frame(table[["cell", "synapse_id"]])
    return (table[~keys.isin(pd.MultiIndex.from_frame(unsure))],
            len(unsure.drop_duplicates()))
