"""How far each session's places without a synapse sit from its cell's other sessions.

    python benchmarks/absent_departure.py RESULTS [RESULTS ...]

Reads every ``weights/<cell>/null_snr.csv`` under each results folder (a ``make bench-science``
study, a ``make bench`` regime, a lab's run) and prints, per folder, the distribution of the
sessions' departures in absent-state SDs (:func:`pipeline.stages.presence.absent_departures`,
what the presence stage warns on beyond ``presence.warn_absent_departure``) and the largest.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pipeline.contract import Layout
from pipeline.params import PresenceParams
from pipeline.stages.presence import absent_departures


def departures(results: Path) -> pd.DataFrame:
    """One row per cell and session: its departure in SDs."""
    rows = []
    for folder in sorted(Layout(results).cell_folders("null")):
        null = pd.read_csv(folder / "null_snr.csv", dtype={"session": str})
        found, _ = absent_departures(null["snr"], null["session"], cell=folder.name)
        rows += [{"cell": folder.name, "session": s, "departure": d} for s, d in found.items()]
    return pd.DataFrame(rows, columns=["cell", "session", "departure"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    args = ap.parse_args(argv)
    limit = PresenceParams.warn_absent_departure
    for results in args.results:
        d = departures(Path(results))
        size = d["departure"].abs()
        worst = d.loc[size.idxmax()] if len(d) else None
        print(f"{results}: {len(d)} sessions, |departure| median {size.median():.2f}, "
              f"90 % {size.quantile(0.9):.2f}, beyond {limit}: {(size > limit).sum()}"
              + (f"; largest {worst['departure']:+.2f} ({worst['cell']} {worst['session']})"
                 if worst is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
