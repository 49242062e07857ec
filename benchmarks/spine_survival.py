"""Where a spines run's survival and turnover depart from the truth (issue 26).

    python benchmarks/spine_survival.py WORKDIR [WORKDIR ...] [--regime spines]

WORKDIR: a ``regime_run.py`` work folder (``WORKDIR/<regime>/data`` and ``results``).  Per run:

- the undetected rows of every track, by what the truth has there (a true spine present, a
  true spine absent, no true spine: the track matched none), how many measure at least 5
  noise units and how many of those the presence stage called present;
- the undetected rows not observed because their light is another synapse's (flag
  ``shadowed``: at another's detection, on a found spine's neck with ``spines.shadow_necks``,
  or bright with ``spines.shadow_snr``), by what the truth has there;
- gains and losses on intervals observed at both ends: matched (the true spine changes the
  same way there), spurious (a matched track whose true spine does not), unmatched (a track
  matched to no true spine), against the truth's own events;
- the first session's true spines by how many tracks were called present on them there (0:
  never found), with their true survival to the last session and median true weight.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.truth.evaluate import cells_with_true_ids, read_run  # noqa: E402


def _what_truth_has(rows: pd.DataFrame, true_present: pd.Series) -> pd.Series:
    truth = [true_present.get((t, s), np.nan) if t == t else -1
             for t, s in zip(rows["true_id"], rows["session"])]
    return pd.Series(np.select([np.array(truth) == -1, np.array(truth) == 1],
                               ["no true spine", "true spine present"], "true spine absent"),
                     index=rows.index, dtype=object)


def _shadowed(ours: pd.DataFrame, true_present: pd.Series) -> pd.Series:
    rows = ours[(ours["detected"] == 0) & ours["quality_flags"].fillna("").str.contains(
        "shadowed")]
    return _what_truth_has(rows, true_present).value_counts().reindex(
        ["no true spine", "true spine absent", "true spine present"], fill_value=0)


def _undetected(ours: pd.DataFrame, true_present: pd.Series) -> pd.DataFrame:
    rows = ours[(ours["detected"] == 0) & (ours["observed"] == 1)]
    what = _what_truth_has(rows, true_present)
    bright = rows["snr"] >= 5
    return pd.DataFrame({"undetected rows": rows.groupby(what).size(),
                         "measuring >= 5": bright.groupby(what).sum(),
                         "of which called present": (bright & (rows["present"] == 1))
                         .groupby(what).sum()})


def _events(ours: pd.DataFrame, truth: pd.DataFrame, sessions: list) -> pd.Series:
    ours_p = ours.pivot_table(index="synapse_id", columns="session", values="present",
                              aggfunc="first").reindex(columns=sessions)
    true_p = truth.pivot(index="synapse_id", columns="session",
                         values="present").reindex(columns=sessions)
    true_id = ours.groupby("synapse_id")["true_id"].first()
    kinds = []
    for sid, row in ours_p.iterrows():
        p, t = row.to_numpy(), true_id[sid]
        tt = true_p.loc[t].to_numpy() if t == t else None
        for k in range(len(sessions) - 1):
            if np.isnan(p[k]) or np.isnan(p[k + 1]) or p[k] == p[k + 1]:
                continue
            kinds.append("unmatched" if tt is None else
                         "matched" if tt[k] != tt[k + 1] and (tt[k + 1] > tt[k]) == (p[k + 1] > p[k])
                         else "spurious")
    out = pd.Series(kinds, dtype=object).value_counts().reindex(
        ["matched", "spurious", "unmatched"], fill_value=0)
    out["ours, all"] = len(kinds)
    out["truth"] = int(sum(((true_p.iloc[:, k + 1] != true_p.iloc[:, k])
                            & true_p.iloc[:, k].notna()).sum() for k in range(len(sessions) - 1)))
    return out


def _coverage(ours: pd.DataFrame, truth: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    true_p = truth.pivot(index="synapse_id", columns="session", values="present")
    true_w = truth.pivot(index="synapse_id", columns="session", values="weight")
    ids = true_p.index[true_p[first] == 1]
    found = ours[(ours["session"] == first) & (ours["present"] == 1)].groupby("true_id").size()
    tab = pd.DataFrame({"tracks present on it": found.reindex(ids).fillna(0).astype(int).to_numpy(),
                        "survives": true_p.loc[ids, last].to_numpy(),
                        "w": true_w.loc[ids, first].to_numpy()})
    return tab.groupby("tracks present on it").agg(
        spines=("survives", "size"), true_survival=("survives", "mean"),
        median_true_weight=("w", "median")).round(3)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdirs", nargs="+")
    ap.add_argument("--regime", default="spines")
    args = ap.parse_args(argv)
    for work in map(Path, args.workdirs):
        truth, params, layout, synapses = read_run(work / args.regime / "data",
                                                   work / args.regime / "results")
        for cell, tcell, _, ours in cells_with_true_ids(truth, params, layout, synapses):
            sessions = sorted(tcell["session"].unique())
            present = tcell.set_index(["synapse_id", "session"])["present"]
            print(f"### {work} {cell}\n")
            print(_undetected(ours, present).to_markdown(), "\n")
            print(_shadowed(ours, present).to_frame("undetected rows shadowed").to_markdown(),
                  "\n")
            print(_events(ours, tcell, sessions).to_frame("gains and losses").to_markdown(), "\n")
            print(_coverage(ours, tcell, sessions[0], sessions[-1]).to_markdown(), "\n")


if __name__ == "__main__":
    main()
