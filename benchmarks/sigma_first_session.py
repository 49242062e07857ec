"""The first session's SD of ln weight, per cell, in two runs of the same simulated cells.

    python benchmarks/sigma_first_session.py BEFORE AFTER [--out FILE]

``BEFORE``, ``AFTER``: presence-benchmark work folders (``<regime>/data`` and
``<regime>/results`` for each regime, as ``presence_benchmark.py`` leaves them) holding the
same cells run two ways (e.g. a copy re-run with ``--rerun-from``).  Per cell: the truth
table's SD of ln weight over the synapses present in the first session, each run's over the
synapses it calls present there (weight above 0), their errors, and per regime the mean
absolute error.  The log-normal's sigma is one of the study's headline quantities; a change
to the presence calls can move it by calling dim synapses present or absent.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def first_session_sd(synapses: pd.DataFrame, cell: str) -> tuple[float, int]:
    """SD of ln weight of one cell's present rows in its first session, and how many."""
    t = synapses[synapses["cell"] == cell]
    first = t.loc[t["day"] == t["day"].min()]
    w = first.loc[(first["present"] == 1) & (first["weight"] > 0), "weight"]
    return float(np.log(w).std()), int(len(w))


def compare(before: Path, after: Path) -> pd.DataFrame:
    rows = []
    for regime in sorted(p.parent.parent.name for p in after.glob("*/results/synapses.csv")):
        truth = pd.read_csv(before / regime / "data" / "truth" / "synapses.csv")
        runs = {name: pd.read_csv(w / regime / "results" / "synapses.csv")
                for name, w in (("before", before), ("after", after))}
        for cell in sorted(truth["cell"].unique()):
            row = {"regime": regime, "cell": cell, "truth": first_session_sd(truth, cell)[0]}
            for name, table in runs.items():
                row[name], row[f"{name} rows"] = first_session_sd(table, cell)
                row[f"{name} error"] = row[name] - row["truth"]
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    table = compare(args.before, args.after)
    means = (table.groupby("regime")[["before error", "after error"]]
             .agg(lambda v: float(np.abs(v).mean())).reset_index())
    text = (table.round(3).to_markdown(index=False) + "\n\nMean absolute error per regime:\n\n"
            + means.round(3).to_markdown(index=False))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
