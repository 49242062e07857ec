"""Where the images' turnover departs from the truth table's: every gain or loss the presence
calls make on a synapse matched to a true one, against the true synapse's history.

For each cell of a study folder of ``make bench-science`` (``<workdir>/<kind>_<seed>/``: ``data``
and ``results``) our synapses are matched to true ones (the true synapse nearest to the
detections, within 1 um, by majority over sessions).  An event of ours is ``matched`` when the
true synapse changes at the same interval; otherwise ``shifted`` (the true synapse changes
within 2 intervals: the same event, called earlier or later, no count bias) or ``spurious``
(the true synapse does not change near it).  For spurious ones the true weight in the sessions
we called absent tells why: below ``--dim`` (a synapse too faint to see, which the truth
table counts present) or not (a failure of ours: identity, deblending, registration).

    python benchmarks/science_events.py /tmp/sci_work/effect_3 [--missed]

With ``--missed``, the other direction too: every gain or loss of a true synapse that our calls
miss (no change in the calls of the tracks holding its detections within 2 intervals), by
cause: ``not_detected`` (no detection within 0.6 um of it in the sessions beside its change: too
faint), ``track_holds_another`` (the track holding its detections holds another true synapse's
too: a neighbour born beside a lost synapse took its track, or the reverse) or
``called_through`` (the track is its own, but its calls do not change there).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree


def _match(g: pd.DataFrame, t: pd.DataFrame, sessions: list[str]) -> dict:
    votes: dict = {}
    for s in sessions:
        o, tt = g[g["session"] == s], t[t["session"] == s]
        if o.empty or tt.empty:
            continue
        d, j = cKDTree(tt[["z_um", "y_um", "x_um"]].to_numpy()).query(
            o[["z_um", "y_um", "x_um"]].to_numpy())
        for sid, dd, jj, det in zip(o["synapse_id"], d, j, o["detected"]):
            if dd < 1.0 and det == 1:
                votes.setdefault(sid, []).append(tt["synapse_id"].iloc[jj])
    return {sid: pd.Series(v).mode().iloc[0] for sid, v in votes.items()}


def _tables(study: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our ``synapses.csv`` and the simulator's truth, without the repeat sessions (same day)."""
    ours = pd.read_csv(study / "results" / "synapses.csv")
    truth = pd.read_csv(study / "data" / "truth" / "synapses.csv")
    return (ours[~ours["session"].astype(str).str.endswith("r")],
            truth[~truth["session"].astype(str).str.endswith("r")])


def _by_session(ours: pd.DataFrame, truth: pd.DataFrame, sessions: list[str]):
    """One cell's calls, true presence and true weights: synapses x ``sessions``."""
    def table(frame, values):
        return frame.pivot_table(index="synapse_id", columns="session", values=values,
                                 aggfunc="first").reindex(columns=sessions)
    return table(ours, "present"), table(truth, "present"), table(truth, "weight")


def events(study: Path, *, dim: float) -> pd.DataFrame:
    ours, truth = _tables(study)
    rows = []
    for cell, g in ours.groupby("cell"):
        t = truth[truth["cell"] == cell]
        sessions = list(g.sort_values("day")["session"].drop_duplicates())
        match = _match(g, t, sessions)
        ours_p, true_p, true_w = _by_session(g, t, sessions)
        n_truth = int(np.nansum(np.abs(np.diff(true_p.to_numpy(float), axis=1))))
        counts = {"cell": cell, "cell_type": g["cell_type"].iloc[0], "truth_events": n_truth,
                  "ours_events": 0, "matched": 0, "shifted": 0, "spurious_dim": 0,
                  "spurious_bright": 0, "unmatched_synapse": 0}
        for sid, row in ours_p.iterrows():
            a = row.to_numpy(float)
            for k in range(len(a) - 1):
                if np.isnan(a[k]) or np.isnan(a[k + 1]) or a[k] == a[k + 1]:
                    continue
                counts["ours_events"] += 1
                if sid not in match:
                    counts["unmatched_synapse"] += 1
                    continue
                b = true_p.loc[match[sid]].to_numpy(float)
                changes = np.flatnonzero(np.diff(b) != 0)
                if k in changes:
                    counts["matched"] += 1
                elif np.any(np.abs(changes - k) <= 2):
                    counts["shifted"] += 1
                else:
                    absent = k + 1 if a[k] == 1 else k      # the session we call absent
                    w = true_w.loc[match[sid]].to_numpy(float)[absent]
                    counts["spurious_dim" if w < dim else "spurious_bright"] += 1
        rows.append(counts)
    return pd.DataFrame(rows)


def _code(a) -> str:
    return "".join("." if np.isnan(x) else str(int(x)) for x in a)


def missed_events(study: Path) -> pd.DataFrame:
    """Every gain or loss of a true synapse in the study's cells: ``found`` by our calls or,
    if not, ``why`` (see the module's docstring); ``weight``: its largest true weight in the
    sessions beside the change."""
    ours, truth = _tables(study)
    rows = []
    for cell, g in ours.groupby("cell"):
        t = truth[truth["cell"] == cell]
        sessions = list(g.sort_values("day")["session"].drop_duplicates())
        ours_of, true_of = {}, {}        # (true id, session) -> our id, and the reverse
        for s in sessions:
            o = g[(g["session"] == s) & (g["detected"] == 1)]
            tt = t[(t["session"] == s) & (t["present"] == 1)]
            if o.empty or tt.empty:
                continue
            d, j = cKDTree(o[["z_um", "y_um", "x_um"]].to_numpy()).query(
                tt[["z_um", "y_um", "x_um"]].to_numpy())
            for tid, dd, jj in zip(tt["synapse_id"], d, j):
                if dd < 0.6:
                    ours_of[(tid, s)] = o["synapse_id"].iloc[jj]
                    true_of[(o["synapse_id"].iloc[jj], s)] = tid
        ours_p, true_p, true_w = _by_session(g, t, sessions)
        for tid, row in true_p.iterrows():
            b = row.to_numpy(float)
            for k in range(len(b) - 1):
                if np.isnan(b[k]) or np.isnan(b[k + 1]) or b[k] == b[k + 1]:
                    continue
                beside = [i for i in range(max(k - 1, 0), min(k + 3, len(b))) if b[i] == 1]
                tracks = {ours_of[(tid, sessions[i])] for i in beside
                          if (tid, sessions[i]) in ours_of}
                found, why = False, "not_detected"
                for oid in sorted(tracks):
                    a = ours_p.loc[oid].to_numpy(float)
                    changes = [j for j in range(len(a) - 1) if not np.isnan(a[j])
                               and not np.isnan(a[j + 1]) and a[j] != a[j + 1]]
                    if any(abs(j - k) <= 2 for j in changes):
                        found = True
                        break
                    others = {true_of[(oid, s)] for s in sessions if (oid, s) in true_of} - {tid}
                    if why != "track_holds_another":
                        why = "track_holds_another" if others else "called_through"
                rows.append({"cell": cell, "cell_type": g["cell_type"].iloc[0], "true_id": tid,
                             "interval": k, "kind": "birth" if b[k + 1] == 1 else "loss",
                             "found": found, "why": "" if found else why,
                             "weight": np.nanmax(true_w.loc[tid].to_numpy(float)[beside]),
                             "truth": _code(b),
                             "ours": ";".join(_code(ours_p.loc[o].to_numpy(float))
                                              for o in sorted(tracks))})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--dim", type=float, default=0.2,
                    help="true weight below which a synapse is taken as too faint to see")
    ap.add_argument("--missed", action="store_true",
                    help="also the true gains and losses our calls miss, by cause")
    args = ap.parse_args(argv)
    table = pd.concat([events(s, dim=args.dim).assign(study=s.name) for s in args.studies])
    print(table.to_string(index=False))
    print(table.groupby("cell_type").sum(numeric_only=True).to_string())
    if args.missed:
        true = pd.concat([missed_events(s).assign(study=s.name) for s in args.studies])
        missed = true[~true["found"]]
        print("\nTrue gains and losses:", len(true), "; missed by our calls:", len(missed))
        print(true.groupby("cell_type")["found"].agg(true_events="size", found="sum").join(
            missed.groupby(["cell_type", "why"]).size().unstack(fill_value=0)).fillna(0)
            .astype(int).to_string())
        print(missed.groupby(["cell_type", "why"])["weight"].median()
              .rename("median true weight").to_string())


if __name__ == "__main__":
    main()
