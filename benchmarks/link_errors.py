"""What the missed and wrong links are, with the track stage's re-linking and without it.

    python benchmarks/link_errors.py --workdir results/bench [--regimes R1,R2] [--out FILE]

Reads a ``make bench`` (or ``benchmarks/regime_run.py``) work folder: per regime, the
simulator's truth and each cell's track table.  The track stage is run again on the table's
puncta (reference-frame positions and registration error estimates: the stage's own input) in
session order only (``relink_passes=0``, no split at jumps: the stage before re-linking),
re-linked without splitting at jumps (``max_jump_sd=None``, the stage before 52fc475) and with
the stage's defaults (and, with ``--max-gap-jump X``, with ``track.max_gap_jump_um: X`` too;
with ``--max-jump-sd K``, with ``track.max_jump_sd: K``), and each is scored against the truth
as ``make bench`` scores links; a second table sums each setting's counts over a regime's
cells.  A missed link
(a true synapse detected in consecutive sessions, in two tracks) is classed as

- *beyond the gate*: its two detections are farther apart than the gate (z scaled), so no
  linker with this gate joins them (registration or localisation error);
- *neighbour took the track*: the track of one of its detections holds another true synapse's
  detection in the other session (two synapses' detections alternating between tracks);
- *other*.

A wrong link (consecutive detections of one track that are not one true synapse) is between
two true synapses or touches a false detection.  Gap links (a track's detections with a missed
session between them, not in the link scores) are counted alike.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGE_INPUT = ["session", "day", "session_index", "z", "y", "x", "z_um", "y_um", "x_um",
               "registration_error_um"]


def classify_links(tracks: pd.DataFrame, true_id: np.ndarray, *, gate_um: float,
                   z_scale: float) -> dict:
    """Counts of true links, found links, missed links by cause and wrong links by kind."""
    from pipeline.truth.evaluate import _links, score_links, true_links_of

    t = tracks.assign(true_id=true_id)
    true_links = true_links_of(t, true_id)
    sorted_t, nxt, linked = _links(t)
    found = {(a, s) for a, s, ok, b in zip(sorted_t["true_id"], sorted_t["session_index"],
                                           linked, nxt["true_id"]) if ok and a >= 0 and a == b}
    wrong_pairs = [(a, b) for a, ok, b in zip(sorted_t["true_id"], linked, nxt["true_id"])
                   if ok and not (a >= 0 and a == b)]
    at = t.set_index(["true_id", "session_index"])
    scale = np.array([z_scale, 1.0, 1.0])
    causes = {"beyond the gate": 0, "neighbour took the track": 0, "other": 0}
    for tid, s in sorted(true_links - found):
        a, b = at.loc[(tid, s)], at.loc[(tid, s + 1)]
        gap = np.linalg.norm((a[["z_um", "y_um", "x_um"]].to_numpy(float)
                              - b[["z_um", "y_um", "x_um"]].to_numpy(float)) * scale)
        a_next = t[(t.synapse_id == a.synapse_id) & (t.session_index == s + 1)]["true_id"]
        b_prev = t[(t.synapse_id == b.synapse_id) & (t.session_index == s)]["true_id"]
        if gap > gate_um:
            causes["beyond the gate"] += 1
        elif ((a_next >= 0) & (a_next != tid)).any() or ((b_prev >= 0) & (b_prev != tid)).any():
            causes["neighbour took the track"] += 1
        else:
            causes["other"] += 1
    score = score_links(t, true_id, true_links)
    # gap-closing links (a track's puncta a missed session or more apart), which the link
    # scores above (consecutive sessions) do not see
    by_track = t.sort_values(["synapse_id", "session_index"])
    same = by_track["synapse_id"].to_numpy()[1:] == by_track["synapse_id"].to_numpy()[:-1]
    over_gap = same & (np.diff(by_track["session_index"].to_numpy()) > 1)
    a, b = by_track["true_id"].to_numpy()[:-1][over_gap], by_track["true_id"].to_numpy()[1:][over_gap]
    gap_links = {"gap links": int(over_gap.sum()),
                 "gap links: one synapse": int(((a >= 0) & (a == b)).sum()),
                 "gap links: two true synapses": int(((a >= 0) & (b >= 0) & (a != b)).sum()),
                 "gap links: a false detection": int(((a < 0) | (b < 0)).sum())}
    return {"link_precision": round(score["precision"], 3), "link_recall": round(score["recall"], 3),
            "true_links": len(true_links), "missed": len(true_links - found),
            **{f"missed: {k}": v for k, v in causes.items()},
            "wrong": len(wrong_pairs),
            "wrong: two true synapses": sum(a >= 0 and b >= 0 for a, b in wrong_pairs),
            "wrong: a false detection": sum(a < 0 or b < 0 for a, b in wrong_pairs),
            **gap_links, "tracks": int(t["synapse_id"].nunique())}


def regime_rows(workdir: Path, regime: str, max_gap_jump_um: float | None = None,
                max_jump_sd: float | None = None) -> list[dict]:
    from pipeline.contract import Layout
    from pipeline.params import TrackParams
    from pipeline.stages.track import link_sessions
    from pipeline.truth.evaluate import _spacing_of, assign_true_ids

    data, results = workdir / regime / "data", workdir / regime / "results"
    truth = pd.read_csv(data / "truth" / "synapses.csv")
    params = json.loads((data / "truth" / "params.json").read_text())
    prm = TrackParams()
    rows = []
    for cell in pd.unique(truth["cell"]):
        path = Layout(results).path("track", cell=cell)
        if not path.exists():
            continue
        puncta = pd.read_csv(path)[STAGE_INPUT]
        true_id = assign_true_ids(puncta, truth[truth.cell == cell], _spacing_of(params, cell))
        settings = [("in session order (relink_passes=0, max_jump_sd=None)",
                     dict(relink_passes=0, max_jump_sd=None)),
                    (f"re-linked (relink_passes={prm.relink_passes}), max_jump_sd=None",
                     dict(max_jump_sd=None)),
                    (f"the stage's defaults (relink_passes={prm.relink_passes}, "
                     f"max_jump_sd={prm.max_jump_sd})", {})]
        if max_gap_jump_um is not None:
            settings.append((f"re-linked, max_gap_jump_um={max_gap_jump_um}",
                             dict(max_gap_jump_um=max_gap_jump_um)))
        if max_jump_sd is not None:
            settings.append((f"re-linked, max_jump_sd={max_jump_sd}",
                             dict(max_jump_sd=max_jump_sd)))
        for label, options in settings:
            tracks = link_sessions(puncta, **options)
            rows.append({"regime": regime, "cell": cell, "linking": label,
                         **classify_links(tracks, true_id, gate_um=prm.max_distance_um,
                                          z_scale=prm.z_scale)})
    return rows


def regime_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Each regime's and setting's counts summed over its cells (the settings in table order),
    with the link precision and recall of the sums."""
    counts = [c for c in table.columns if c not in ("regime", "cell", "linking", "link_precision",
                                                    "link_recall")]
    sums = table.groupby(["regime", "linking"], sort=False)[counts].sum().reset_index()
    found = sums["true_links"] - sums["missed"]
    sums.insert(2, "link_precision", (found / (found + sums["wrong"])).round(4))
    sums.insert(3, "link_recall", (found / sums["true_links"]).round(4))
    return sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="a make bench work folder")
    ap.add_argument("--regimes", default=None, help="comma-separated (default: every one there)")
    ap.add_argument("--out", default=None, help="write the table here (markdown) too")
    ap.add_argument("--max-gap-jump", type=float, default=None,
                    help="also score the stage with track.max_gap_jump_um set to this")
    ap.add_argument("--max-jump-sd", type=float, default=None,
                    help="also score the stage with track.max_jump_sd set to this")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    regimes = (args.regimes.split(",") if args.regimes else
               sorted(p.name for p in workdir.iterdir() if (p / "data" / "truth").is_dir()))
    start = time.time()
    table = pd.DataFrame([r for regime in regimes
                          for r in regime_rows(workdir, regime, args.max_gap_jump,
                                                  args.max_jump_sd)])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "unknown"
    text = ("## Links: what the missed and wrong ones are\n\n"
            f"_`python benchmarks/link_errors.py --workdir {args.workdir}"
            f"{' --regimes ' + args.regimes if args.regimes else ''}"
            f"{f' --max-gap-jump {args.max_gap_jump}' if args.max_gap_jump else ''}"
            f"{f' --max-jump-sd {args.max_jump_sd}' if args.max_jump_sd else ''}` "
            f"({(time.time() - start) / 60:.1f} min, {datetime.date.today()}, script of commit "
            f"{commit}). The track stage run again on each cell's puncta, in session order and "
            "re-linked; scored against the simulator's truth as make bench scores links._\n\n"
            + table.to_markdown(index=False) + "\n\nSummed over each regime's cells:\n\n"
            + regime_totals(table).to_markdown(index=False) + "\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
