"""The simulator's truth playing the person of the sample check (review/check.html).

Writes the marks a person who sees every synapse would make on the first N tiles of a run's
sample check (``pipeline.truth.sample_check.marks_from_points``): shown synapses with no true
synapse within the gate are 'wrong', true synapses with none shown are 'missed'.  Then
``python -m pipeline evaluate --sample-check FILE --results RESULTS`` scores them, as it would a
person's.  The truth's ``y_um, x_um`` are in the reference frame (simulator convention).

    python benchmarks/sample_check_truth.py --results results/sample --truth data_sample \\
        --tiles 30 --out /tmp/sample_check.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pipeline.contract import Layout
from pipeline.truth.sample_check import marks_from_points


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--truth", required=True, help="the simulated dataset's folder")
    ap.add_argument("--tiles", type=int, default=30, help="the first N tiles are checked")
    ap.add_argument("--gate-um", type=float, default=0.6)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    layout = Layout(args.results)
    tiles = pd.read_csv(layout.path("review_check_tiles"))
    tiles = tiles[tiles["order"] <= args.tiles]
    truth = pd.read_csv(Path(args.truth) / "truth" / "synapses.csv")
    points = truth.loc[truth["present"] == 1, ["cell", "session", "y_um", "x_um"]]
    marks = marks_from_points(tiles, pd.read_csv(layout.synapses), points, gate_um=args.gate_um)
    marks.to_csv(args.out, sep="\t", index=False)
    print(f"{args.out}: {len(tiles)} tiles checked by the truth, "
          f"{(marks['mark'] == 'wrong').sum()} wrong, {(marks['mark'] == 'missed').sum()} missed")


if __name__ == "__main__":
    main()
