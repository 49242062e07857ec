"""Close pairs (issue 24): can a pair of puncta 0.3-0.4 um apart be told from one punctum?

    python benchmarks/close_pairs.py [--sessions 8] [--out FILE]

The ``close_pairs`` regime's cell is simulated as ``make bench`` simulates it and each session
detected with the default settings.  Per session: the pairs whose members are both present,
how many were detected as two (each member matched by its own detection) and how many as one.
Then the shape of each detection matched to a true synapse, measured as the pair test
(:func:`pipeline.stages.detect.split_pairs`) measures it: the elongation of its spot and the
two-point fit's improvement over one elliptical Gaussian (noise units), for spots that are
one member of a pair merged with the other and for single puncta.  Where the two classes
overlap, no test on the spot's shape can flag the merged pairs without flagging as many
single puncta.
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


def spot_shapes(stack: np.ndarray, det: pd.DataFrame, *, spacing) -> pd.DataFrame:
    """Elongation and two-point fit improvement of each detection's spot (the sum of three
    planes of the bleed-through-corrected PSD-95 channel, as the pair test takes it)."""
    from pipeline.core.channels import remove_bleedthrough
    from pipeline.params import DetectParams
    from pipeline.core.pairs import elongation, fit_pairs
    from pipeline.stages.detect import punctum_sigma_um

    prm = DetectParams()
    sigma_um = punctum_sigma_um(prm.psf_fwhm_um, prm.punctum_fwhm_um)
    sigma_px = float(sigma_um[1] / spacing[1])
    r = int(np.ceil(4 * sigma_px))
    k = float(det["morphology_coefficient"].iloc[0]) if len(det) else 0.0
    signal = remove_bleedthrough(stack[0].astype(np.float32), stack[1].astype(np.float32), k,
                                 spacing=spacing)
    rows = []
    for z, y, x in np.round(det[["z", "y", "x"]].to_numpy()).astype(int):
        if min(y, x) - r < 0 or y + r >= signal.shape[1] or x + r >= signal.shape[2]:
            rows.append((np.nan, np.nan))
            continue
        patch = signal[max(z - 1, 0):z + 2, y - r:y + r + 1, x - r:x + r + 1].sum(0, dtype=np.float64)
        rows.append((elongation(patch, sigma_px=sigma_px), fit_pairs(patch, sigma_px=sigma_px)[2]))
    return pd.DataFrame(rows, columns=["elongation", "two_point_gain"], index=det.index)


def session_pairs(sim, s: int) -> tuple[dict, pd.DataFrame]:
    """One session: counts of pairs detected as two and as one, and the spots' shapes."""
    from scipy.spatial import cKDTree

    from pipeline.params import DetectParams
    from pipeline.stages.detect import detect_session
    from pipeline.truth.evaluate import match_points

    spacing = np.asarray(sim.params.spacing)
    stack = sim.images[s]
    det = detect_session(stack.astype(np.float32), spacing=spacing, params=DetectParams())
    t = sim.truth[(sim.truth.session == f"s{s:02d}") & (sim.truth.present == 1)]
    ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * spacing,
                          t[["z", "y", "x"]].to_numpy() * spacing)
    matched_true = set(t.synapse_id.to_numpy()[ib])
    mate = dict(zip(t.synapse_id, t.partner_id))
    present = set(t.synapse_id)
    members = [i for i in present if mate.get(i, 0) in present]
    pairs = {frozenset((i, mate[i])) for i in members}
    as_two = sum(all(m in matched_true for m in p) for p in pairs)
    # a spot matched to one member while the other is present and matched by none: merged
    shapes = spot_shapes(stack, det.iloc[ia], spacing=spacing)
    ids = t.synapse_id.to_numpy()[ib]
    merged = np.array([mate.get(i, 0) in present and mate.get(i, 0) not in matched_true
                       for i in ids])
    single = np.array([mate.get(i, 0) == 0 for i in ids])
    # a single punctum with another detection within 1 um looks elongated for that reason
    tree = cKDTree(det[["y", "x"]].to_numpy() * spacing[1:])
    lonely = np.array([len(tree.query_ball_point(p, 1.0)) == 1
                       for p in det.iloc[ia][["y", "x"]].to_numpy() * spacing[1:]])
    shapes["spot"] = np.where(merged, "pair seen as one", np.where(single & lonely, "single",
                                                                    "other"))
    shapes["session"] = f"s{s:02d}"
    return ({"session": f"s{s:02d}", "pairs present": len(pairs), "detected as two": as_two,
             "detected as one": len(pairs) - as_two}, shapes)


def main(argv=None) -> int:
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, REGIMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    sim = simulated_cell(COMMON + REGIMES["close_pairs"])
    counts, shapes = zip(*(session_pairs(sim, s) for s in range(args.sessions)))
    shapes = pd.concat(shapes)
    shapes = shapes[shapes.spot != "other"]
    gain = 30.0   # split_pairs' min_f
    per_class = shapes.groupby("spot").agg(
        spots=("elongation", "size"),
        elongation_median=("elongation", "median"),
        elongation_p90=("elongation", lambda v: v.quantile(0.9)),
        share_elongated_1_2=("elongation", lambda v: (v >= 1.2).mean()),
        two_point_gain_median=("two_point_gain", "median"),
        share_gain_over_30=("two_point_gain", lambda v: (v >= gain).mean())).reset_index()
    lines = ["### Pairs per session", "", pd.DataFrame(counts).to_markdown(index=False), "",
             "### Spot shapes", "", per_class.round(3).to_markdown(index=False), ""]
    write_report("Close pairs", "close_pairs.py", started,
                 "The close_pairs regime's cell (PV, 12-14 % of synapses in pairs 0.3-0.4 um "
                 "apart), each session detected with the default settings; shapes as the pair "
                 "test measures them (elongation >= 1.2 and a two-point gain >= 30 split a "
                 "spot).", [{"sessions": args.sessions,
                             "pairs present (sum)": sum(c["pairs present"] for c in counts),
                             "detected as two": sum(c["detected as two"] for c in counts)}],
                 lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
