"""What a change to ``observed`` does, on two runs of the same simulated cells: the rows it
newly censors (observed before, not after) against the truth, and the gains and losses the
presence calls make against the true synapses' (:func:`science_events.events`).

Each argument is a regime's folder name; ``--before`` and ``--after`` hold one folder per regime
with ``data`` (the simulation, with ``truth/``) and ``results`` (a run), as ``make bench``'s work
folder does (``results/bench/<regime>``).  A run repeated from a later stage keeps the track ids,
so rows are compared by synapse and session.

    python benchmarks/censoring_rule.py --before OLD --after results/bench hard_registration pyr_typical
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import Layout
from pipeline.truth.evaluate import _spacing_of, assign_true_ids, track_true_ids
from science_events import events


def newly_censored(regime_before: Path, regime_after: Path) -> tuple[pd.DataFrame, int]:
    """Rows observed in the run before and not after, with ``present_before`` and
    ``true_present`` (the true synapse its track matches; NaN for a track matching none),
    and the number of rows of the run before."""
    truth = pd.read_csv(regime_before / "data" / "truth" / "synapses.csv")
    params = json.loads((regime_before / "data" / "truth" / "params.json").read_text())
    before = pd.read_csv(Layout(regime_before / "results").synapses)
    after = pd.read_csv(Layout(regime_after / "results").synapses)
    both = before.merge(after, on=["cell", "synapse_id", "session"], suffixes=("_before", ""))
    out = []
    for cell, rows in both.groupby("cell"):
        t = truth[truth["cell"] == cell]
        tracks = pd.read_csv(Layout(regime_before / "results").path("track", cell=cell))
        tracks["true_id"] = assign_true_ids(tracks, t, _spacing_of(params, cell))
        true_of = track_true_ids(tracks)
        rows = rows[(rows["observed_before"] == 1) & (rows["observed"] == 0)].copy()
        present = t.set_index(["synapse_id", "session"])["present"]
        ids = rows["synapse_id"].map(true_of)
        rows["true_present"] = [present.get((int(i), s), np.nan) if np.isfinite(i) else np.nan
                                for i, s in zip(ids, rows["session"])]
        out.append(rows[["cell", "synapse_id", "session", "present_before", "true_present",
                         "registration_error_um", "quality_flags"]])
    return pd.concat(out, ignore_index=True), len(before)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("regimes", nargs="+")
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--dim", type=float, default=0.2,
                    help="true weight below which a synapse is taken as too faint to see")
    args = ap.parse_args(argv)
    summary = []
    for regime in args.regimes:
        rows, n_rows = newly_censored(args.before / regime, args.after / regime)
        line = {"regime": regime, "rows": n_rows, "newly_censored": len(rows),
                "of_true_absent": int((rows["true_present"] == 0).sum()),
                "of_true_present": int((rows["true_present"] == 1).sum()),
                "of_false_tracks": int(rows["true_present"].isna().sum())}
        for name, folder in (("before", args.before), ("after", args.after)):
            ev = events(folder / regime, dim=args.dim).sum(numeric_only=True)
            line[f"true_events_{name}"] = int(ev["matched"] + ev["shifted"])
            line[f"false_events_{name}"] = int(ev["spurious_dim"] + ev["spurious_bright"]
                                               + ev["unmatched_synapse"])
        summary.append(line)
    table = pd.DataFrame(summary)
    total = table.drop(columns="regime").sum().to_frame().T.assign(regime="all")
    print(pd.concat([table, total], ignore_index=True).to_string(index=False))


if __name__ == "__main__":
    main()
