"""Precision and recall of a whole run from a person's sample check (review/check.html).

The tiles are a simple random sample of the run's field tiles (:mod:`pipeline.review.sample_check`);
in each checked tile the person has marked the synapses shown that are not synapses (``wrong``)
and clicked those not shown (``missed``).  Precision is the share of shown synapses that are
right, recall the share of synapses that are shown, both ratio estimates over the checked tiles.
Synapses of one tile are not independent (a dim field is hard throughout), so the 95 % interval
is Wilson's with the effective number of synapses: their number divided by the design effect
(the variance of the ratio over tiles, by linearisation, relative to the binomial variance),
never more than the number itself.

A tile is scored only if what it shows now is what the person checked (the synapse ids listed
when it was checked); after a rerun changed a tile, it is named as stale, to check again.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..contract import SAMPLE_CHECK_COLUMNS
from ..core.errors import InputError
from ..review.sample_check import tile_claims

SCORE_COLUMNS = ["cell", "tiles_checked", "tiles_stale", "tiles_skipped", "shown", "wrong",
                 "missed", "precision", "precision_ci_low", "precision_ci_high", "recall",
                 "recall_ci_low", "recall_ci_high", "design_effect_precision",
                 "design_effect_recall"]


def ratio_interval(numerator, denominator, *, level: float = 0.95) -> tuple[float, float, float, float]:
    """(ratio, low, high, design effect) of sum(numerator) / sum(denominator) over sampled units.

    ``numerator[t] <= denominator[t]`` are counts in unit (tile) ``t``.  The interval is Wilson's
    with ``sum(denominator) / design effect`` trials; NaN when nothing was counted.
    """
    a = np.asarray(numerator, float)
    n = np.asarray(denominator, float)
    total = n.sum()
    if total <= 0:
        return np.nan, np.nan, np.nan, np.nan
    p = a.sum() / total
    deff = 1.0
    units = len(n)
    binomial = p * (1 - p) / total
    if units > 1 and binomial > 0:
        linear = units / (units - 1) * ((a - p * n) ** 2).sum() / total ** 2
        deff = max(1.0, linear / binomial)
    m = total / deff
    z = stats.norm.ppf(0.5 + level / 2)
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    return float(p), float(max(0.0, centre - half)), float(min(1.0, centre + half)), float(deff)


def _id_set(text: str) -> frozenset[int]:
    return frozenset(int(v) for v in str(text).replace(",", ";").split(";") if v.strip())


def tile_counts(tiles: pd.DataFrame, table: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    """Per tile drawn: whether it was checked, is stale, and its counts shown / wrong / missed.

    ``tiles`` is the drawn sample (review/check_tiles.csv), ``table`` the run's synapses.csv as
    it is now, ``marks`` a sample-check file (:func:`pipeline.inputs.check_marks.read_marks`).
    """
    claims = tile_claims(table, tiles)
    shown_now = claims.groupby("tile")["synapse_id"].agg(frozenset)
    checked = marks[marks["mark"] == "checked"].drop_duplicates("tile", keep="last")
    shown_then = dict(zip(checked["tile"], checked["claims"].map(_id_set)))
    wrong = marks[marks["mark"] == "wrong"].assign(sid=lambda m: m["synapse_id"].astype(int))
    wrong_of = wrong.groupby("tile")["sid"].agg(frozenset)
    missed_of = marks[marks["mark"] == "missed"].drop_duplicates(
        ["tile", "y_um", "x_um"]).groupby("tile").size()
    rows = []
    for t in tiles.itertuples(index=False):
        now = shown_now.get(t.tile, frozenset())
        is_checked = t.tile in shown_then
        stale = is_checked and shown_then[t.tile] != now
        rows.append({"tile": t.tile, "order": t.order, "cell": t.cell, "session": t.session,
                     "checked": is_checked, "stale": stale, "shown": len(now),
                     "wrong": len(wrong_of.get(t.tile, frozenset()) & now),
                     "missed": int(missed_of.get(t.tile, 0))})
    return pd.DataFrame(rows)


def _score(counts: pd.DataFrame, cell: str) -> dict:
    used = counts[counts["checked"] & ~counts["stale"]]
    right = used["shown"] - used["wrong"]
    prec = ratio_interval(right, used["shown"])
    rec = ratio_interval(right, right + used["missed"])
    last = counts.loc[counts["checked"], "order"].max() if counts["checked"].any() else 0
    skipped = int(((counts["order"] < last) & ~counts["checked"]).sum())
    return {"cell": cell, "tiles_checked": len(used), "tiles_stale": int(counts["stale"].sum()),
            "tiles_skipped": skipped, "shown": int(used["shown"].sum()),
            "wrong": int(used["wrong"].sum()), "missed": int(used["missed"].sum()),
            "precision": prec[0], "precision_ci_low": prec[1], "precision_ci_high": prec[2],
            "recall": rec[0], "recall_ci_low": rec[1], "recall_ci_high": rec[2],
            "design_effect_precision": prec[3], "design_effect_recall": rec[3]}


def score_sample(tiles: pd.DataFrame, table: pd.DataFrame, marks: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per cell and pooled ``all``: :data:`SCORE_COLUMNS`; per tile: :func:`tile_counts`).

    The pooled row is the ratio over every checked tile of the run (the tiles are one random
    sample of the whole run's fields), not the mean of the cells' estimates.
    """
    unknown = sorted(set(marks["tile"]) - set(tiles["tile"]))
    if unknown:
        raise InputError(f"the sample-check file names tiles this run did not draw "
                         f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}): it "
                         "belongs to another results folder, or the sample was drawn anew")
    counts = tile_counts(tiles, table, marks)
    rows = [_score(g, str(cell)) for cell, g in counts.groupby("cell", sort=True)]
    rows.append(_score(counts, "all"))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS), counts


def marks_from_points(tiles: pd.DataFrame, table: pd.DataFrame, points: pd.DataFrame, *,
                      gate_um: float) -> pd.DataFrame:
    """The marks a person who sees every synapse would make: a simulator's truth as a check.

    ``points`` holds the true synapses present (``cell, session, y_um, x_um`` in the reference
    frame).  In each tile, shown synapses and true ones are paired one to one within ``gate_um``
    (laterally: the page shows a projection); unpaired shown ones are ``wrong``, unpaired true
    ones ``missed``.  Every tile is marked checked.
    """
    claims = tile_claims(table, tiles)
    truth = tile_claims(points.assign(present=1, synapse_id=np.arange(len(points))), tiles)
    rows = []
    for t in tiles.itertuples(index=False):
        shown = claims[claims["tile"] == t.tile]
        true = truth[truth["tile"] == t.tile]
        base = {"tile": t.tile, "cell": t.cell, "session": t.session}
        rows.append({**base, "mark": "checked",
                     "claims": ";".join(str(v) for v in shown["synapse_id"])})
        paired_shown, paired_true = set(), set()
        if len(shown) and len(true):
            d = cdist(shown[["y_um", "x_um"]].to_numpy(float), true[["y_um", "x_um"]].to_numpy(float))
            r, c = linear_sum_assignment(np.where(d <= gate_um, d, 1e6))
            ok = d[r, c] <= gate_um
            paired_shown, paired_true = set(r[ok]), set(c[ok])
        rows += [{**base, "mark": "wrong", "synapse_id": str(s)}
                 for k, s in enumerate(shown["synapse_id"]) if k not in paired_shown]
        rows += [{**base, "mark": "missed", "y_um": f"{y:.3f}", "x_um": f"{x:.3f}"}
                 for k, (y, x) in enumerate(true[["y_um", "x_um"]].to_numpy(float))
                 if k not in paired_true]
    return pd.DataFrame(rows).reindex(columns=SAMPLE_CHECK_COLUMNS).astype(object).fillna("")
