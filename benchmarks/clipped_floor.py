"""What a clipped dark level does to detection: one session of the single-channel regime with
its dark level subtracted and clipped at zero by more and more, detected with the defaults.

    python benchmarks/clipped_floor.py [--session 1] [--out FILE]

The cell is simulated exactly as ``make bench`` simulates the ``single_channel`` regime.  The
input check warns (naming the file) above half the voxels at the lowest value.
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

#: percentiles of the stack's values subtracted before clipping at zero
CLIP_PERCENTILES = (0, 25, 50, 75, 90)


def main(argv=None) -> int:
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, REGIMES

    from pipeline.inputs.session import clipped_floor_warning
    from pipeline.stages.detect import detect_puncta
    from pipeline.truth.evaluate import score_detection

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--session", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    sim = simulated_cell(COMMON + REGIMES["single_channel"])
    spacing = np.asarray(sim.params.spacing)
    image = sim.images[args.session][0].astype(np.float32)
    name = f"s{args.session:02d}"
    t = sim.truth[(sim.truth.session == name) & (sim.truth.present == 1) & (sim.truth.in_view == 1)]
    rows = []
    for q in CLIP_PERCENTILES:
        clipped = np.clip(image - (np.percentile(image, q) if q else 0), 0, None)
        det = detect_puncta(clipped, spacing=spacing)
        score = score_detection(det[["z", "y", "x"]].to_numpy(), t[["z", "y", "x"]].to_numpy(),
                                spacing)
        rows.append({"subtracted (percentile)": q, "voxels at 0": float((clipped == 0).mean()),
                     "input check warns": bool(clipped_floor_warning(clipped[None], name)),
                     "true synapses": len(t), "detections": len(det),
                     "precision": score["precision"], "recall": score["recall"],
                     "f1": score["f1"]})
    write_report("Detection on a clipped dark level", f"clipped_floor.py --session {args.session}",
                 started, f"Session {name} of the single_channel regime, its values minus a "
                 "percentile of them, clipped at zero; default detection settings.",
                 pd.DataFrame(rows).to_dict("records"), [], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
