"""What widens a run's SD of ln weight: the rows called present that match no true synapse.

    python benchmarks/sigma_sources.py RUN [RUN ...] [--out FILE]

``RUN``: a simulated regime's folder with ``data/`` (``python -m pipeline simulate``) and
``results/`` (the workflow's run on it), as ``make bench`` and ``regime_run.py`` leave them.
Each track is given the true synapse most of its detections matched, as
:func:`pipeline.truth.evaluate.evaluate_results` gives them (0.6 um, z scaled).  Per
session, over the rows called present with a weight above 0: the SD of ln weight over all of
them (what BENCHMARKS.md's "Models" sigma is on the first session), over those of tracks
matched to a true synapse, and the truth's over the same synapses and over every true synapse
present; the rows of matched tracks whose true synapse is absent in that session; then the
rows of tracks matched to none (count, median weight over the session's
median, median SNR), split by whether their track was detected in at least half the
sessions (*persistent*: a structure of the image, seen again and again) or not; last, the
mean over the sessions.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def session_rows(run: Path) -> pd.DataFrame:
    from pipeline.truth.evaluate import cells_with_true_ids, read_run

    rows = []
    for cell, tcell, _, ours in cells_with_true_ids(*read_run(run / "data", run / "results")):
        n_sessions = ours["session"].nunique()
        detected_in = ours.groupby("synapse_id")["detected"].sum()
        ours["persistent"] = ours["synapse_id"].map(detected_in) >= n_sessions / 2
        present = ours[(ours["present"] == 1) & (ours["weight"] > 0)]
        for session, here in present.groupby("session"):
            true_here = tcell[(tcell["session"] == session) & (tcell["present"] == 1)]
            true_w = true_here.set_index("synapse_id")["weight"]
            matched = here[here["true_id"].isin(true_w.index)]
            unmatched = here[here["true_id"].isna()]
            absent_here = here[here["true_id"].notna() & ~here["true_id"].isin(true_w.index)]
            median = here["weight"].median()
            row = {"cell": cell, "session": session, "present": len(here),
                   "SD ln w, all present": np.log(here["weight"]).std(),
                   "SD ln w, matched": np.log(matched["weight"]).std(),
                   "SD ln w, truth of the matched": np.log(true_w[matched["true_id"]]).std(),
                   "SD ln w, truth": np.log(true_w[true_w > 0]).std(),
                   "matched, true synapse absent here": len(absent_here),
                   "unmatched": len(unmatched)}
            for name, part in (("persistent", unmatched[unmatched["persistent"]]),
                               ("transient", unmatched[~unmatched["persistent"]])):
                row[f"unmatched {name}"] = len(part)
                row[f"unmatched {name}: weight / median"] = part["weight"].median() / median
                row[f"unmatched {name}: SNR"] = part["snr"].median()
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.time()
    parts = [f"_`python benchmarks/sigma_sources.py {' '.join(map(str, args.runs))}`, "
             f"{time.strftime('%Y-%m-%d')}._"]
    for run in args.runs:
        table = session_rows(run)
        mean = table.drop(columns=["cell", "session"]).mean()
        table = pd.concat([table, pd.DataFrame([{"cell": "mean", "session": "", **mean}])])
        parts += ["", f"### {run}", "", table.round(3).to_markdown(index=False)]
    parts += ["", f"_{(time.time() - t0) / 60:.1f} min._"]
    text = "\n".join(parts) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
