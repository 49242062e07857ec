"""Where a workflow run's log-weight r is lost: its synapses' weight errors against the
simulator's truth, by kind.

    python benchmarks/weight_errors.py RUN [RUN ...] [--top 15] [--out FILE]
                                       [--against OTHER_RUN]

``RUN``: a simulated regime's folder with ``data/`` (``python -m pipeline simulate``) and
``results/`` (the workflow's run on it), as ``make bench`` and ``regime_run.py`` leave them
(e.g. ``results/bench/close_pairs``).  Each synapse-session scored by ``log_weight_r``
(called present, matched to a true synapse present there, as
:func:`pipeline.truth.evaluate.evaluate_results` matches them) gets its log-weight error
(ours over the truth's, less the cell's median) and one kind:

- *pair seen as one*: its true synapse has a close-pair partner (the simulator's
  ``partner_id``) present in that session that no detection of ours matched: the one
  detection stands for both, and its weight is the pair's light;
- *beside a neighbour*: its row has the quality flag ``neighbour`` (another synapse's light
  reaches its aperture);
- *not detected*: measured at its track's centre in a session without a detection;
- *other*.

Reported per run: the worst session's median weight ratio to the truth (over the run's
median ratio), against the truth's weights and against the truth normalised as the run
normalised ours (``weights.normalisation``: the published 40-60th percentile scale follows
the population, so the truth's own scale moves between sessions; also reported), r over all
rows, the mean absolute error and r without each kind, r
with a pair seen as one scored against its two members' summed weight (the convention of
:func:`~pipeline.truth.evaluate.pair_scores`' ``pair_unit_link_precision``), and the rows
with the largest errors.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

KINDS = ("pair seen as one", "beside a neighbour", "not detected", "other")


def scored_rows(run: Path) -> pd.DataFrame:
    """The synapse-sessions ``log_weight_r`` scores in ``run``, with the truth's weight, the
    error and the kind."""
    from pipeline.core.normalise import normalise_cell_weights
    from pipeline.truth.evaluate import cells_with_true_ids, read_run

    out = []
    for cell, tcell, tracks, ours in cells_with_true_ids(*read_run(run / "data", run / "results")):
        res = ours[ours["present"] == 1]
        cols = ["synapse_id", "session", "weight"] + (["partner_id"] if "partner_id" in tcell
                                                      else [])
        present = tcell[tcell["present"] == 1].copy()
        if "in_view" in present.columns:
            present = present[present["in_view"] == 1]
        # the truth normalised as the run normalised ours (its own population's scale)
        method = str(res["normalisation"].iloc[0]) if "normalisation" in res and len(res) \
            else "percentile_40_60"
        present["weight_normalised"] = normalise_cell_weights(
            present.assign(intensity=present["weight"]), method).to_numpy()
        cols.append("weight_normalised")
        both = res.merge(present[cols], left_on=["true_id", "session"],
                         right_on=["synapse_id", "session"], suffixes=("", "_true"))
        both = both[(both["weight"] > 0) & (both["weight_true"] > 0)].copy()
        err = np.log(both["weight"]) - np.log(both["weight_true"])
        both["error"] = err - err.median()
        matched = set(zip(tracks["true_id"], tracks["session"].astype(str)))
        weight_of = dict(zip(zip(present["synapse_id"], present["session"].astype(str)),
                             present["weight"]))
        mate = (both["partner_id"] if "partner_id" in both
                else pd.Series(0, index=both.index)).astype(int)
        sess = both["session"].astype(str)
        merged = np.array([m > 0 and (m, s) in weight_of and (m, s) not in matched
                           for m, s in zip(mate, sess)], bool)
        both["weight_pair_true"] = np.where(
            merged, both["weight_true"] + np.array([weight_of.get((m, s), 0.0)
                                                    for m, s in zip(mate, sess)]),
            both["weight_true"])
        flags = both["quality_flags"].fillna("").astype(str)
        both["kind"] = np.select(
            [merged, flags.str.contains("neighbour"), both["detected"] == 0],
            KINDS[:3], KINDS[3])
        out.append(both)
    return pd.concat(out, ignore_index=True)


def worst_session_offset(rows: pd.DataFrame, truth: str) -> tuple[float, str]:
    """How far the session most off is: its median weight ratio (ours over ``truth``'s
    column) over the run's median ratio, as the factor it is off by either way minus 1
    (exp|log| - 1: 0.10 for 10 % high or 1/1.1 low), and that session."""
    e = np.log(rows["weight"]) - np.log(rows[truth])
    per = e.groupby(rows["session"]).median()
    per = (per - per.median()).abs()
    return float(np.expm1(per.max())), str(per.idxmax())


def run_summary(name: str, rows: pd.DataFrame) -> dict:
    from weight_floor import log_r

    raw, raw_at = worst_session_offset(rows, "weight_true")
    alike, alike_at = worst_session_offset(rows, "weight_normalised")
    drift = np.log(rows["weight_true"] / rows["weight_normalised"]).groupby(rows["session"]).median()
    out = {"run": name, "rows": len(rows), "r": log_r(rows["weight"], rows["weight_true"]),
           "worst session's median ratio off, against the truth": f"{raw:.3f} ({raw_at})",
           "... against the truth normalised alike": f"{alike:.3f} ({alike_at})",
           "the truth's own scale, worst session off": f"{np.expm1((drift - drift.median()).abs().max()):.3f}",
           "r, a pair seen as one scored as the pair": log_r(rows["weight"],
                                                           rows["weight_pair_true"])}
    for kind in KINDS:
        part = rows[rows["kind"] == kind]
        rest = rows[rows["kind"] != kind]
        out[f"{kind}: rows"] = len(part)
        out[f"{kind}: mean |error|"] = float(part["error"].abs().mean()) if len(part) else np.nan
        out[f"r without {kind}"] = log_r(rest["weight"], rest["weight_true"])
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _only(rows: pd.DataFrame, both: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """``rows`` whose ``key`` is not in ``both``."""
    mark = rows.merge(both[key], on=key, how="left", indicator=True)
    return mark[mark["_merge"] == "left_only"]


def against(rows: pd.DataFrame, other: pd.DataFrame, *, top: int) -> tuple[dict, pd.DataFrame]:
    """Two runs on the same cell (``rows`` and ``other``'s :func:`scored_rows`): r on the
    true synapse-sessions both score (each run's first row of each), the rows only one
    scores, and the ``top`` common rows whose absolute error changed most."""
    from weight_floor import log_r

    key = ["true_id", "session"]
    a, b = (r.drop_duplicates(key) for r in (rows, other))
    both = a.merge(b, on=key, suffixes=("", "_other"))
    change = both["error"].abs() - both["error_other"].abs()
    figures = {"rows": len(a), "rows, other run": len(b), "rows both score": len(both),
               "r on them": log_r(both["weight"], both["weight_true"]),
               "r on them, other run": log_r(both["weight_other"], both["weight_true_other"]),
               "mean |error| on them": float(both["error"].abs().mean()),
               "mean |error| on them, other run": float(both["error_other"].abs().mean()),
               "rows only this run scores": len(a) - len(both),
               "mean |error| of those": float(_only(a, both, key)["error"].abs().mean()),
               "rows only the other scores": len(b) - len(both),
               "mean |error| of those, other run": float(_only(b, both, key)["error"].abs().mean())}
    for n in (1, 3):     # without the rows that changed most (either way)
        rest = both.drop(change.abs().sort_values(ascending=False).index[:n])
        figures[f"r on them without the {n} most changed"] = log_r(rest["weight"], rest["weight_true"])
        figures[f"r on them without the {n} most changed, other run"] = log_r(
            rest["weight_other"], rest["weight_true_other"])
    cols = ["true_id", "session", "weight_true", "weight", "weight_other", "error",
            "error_other", "detected", "detected_other", "quality_flags"]
    moved = both.reindex(change.abs().sort_values(ascending=False).index).head(top)[cols]
    return ({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()},
            moved.round(3))


def main(argv=None) -> int:
    from registration_benchmark import write_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=None)
    ap.add_argument("--against", default=None, metavar="RUN",
                    help="another run on the same cell (e.g. before a change): r on the rows "
                         "both score, and the rows whose error changed most")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    sums, lines = [], []
    for run in map(Path, args.runs):
        rows = scored_rows(run)
        sums.append(run_summary(run.name, rows))
        worst = rows.reindex(rows["error"].abs().sort_values(ascending=False).index)
        lines += [f"### {run.name}: the {args.top} largest errors", "",
                  worst.head(args.top)[["synapse_id", "true_id", "session", "weight",
                                        "weight_true", "weight_pair_true", "error", "kind",
                                        "detected", "snr", "quality_flags"]]
                  .round(3).to_markdown(index=False), ""]
    if args.against:
        other = scored_rows(Path(args.against))
        for run in map(Path, args.runs):
            figures, moved = against(scored_rows(run), other, top=args.top)
            lines += [f"### {run.name} against {args.against}", "",
                      pd.Series(figures).to_frame("value").to_markdown(), "",
                      f"The {args.top} rows whose error changed most (`_other`: the other run):",
                      "", moved.to_markdown(index=False), ""]
    summary = pd.DataFrame(sums).set_index("run").T.reset_index(names="figure")
    write_report("Where the log-weight r is lost",
                 "weight_errors.py " + " ".join(args.runs)
                 + (f" --against {args.against}" if args.against else ""), started,
                 "Each synapse-session log_weight_r scores (called present, matched to a true "
                 "synapse present there): its log-weight error (less the cell's median) and "
                 "its kind: a pair seen as one (its close-pair partner present and matched by "
                 "no detection), beside a neighbour (quality flag), not detected (measured at "
                 "the track's centre), other.",
                 summary.to_dict("records"), lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
