"""PSD-95 alone on a smooth shaft: false puncta along it, by its brightness and direction.

    python benchmarks/bright_shaft.py [--out FILE] [--seed 0]

Without a morphology channel the detect stage takes the shaft's diffuse PSD-95 out by the
largest opening by 2.5 um lines in 8 in-plane directions (``detect.shaft_line_um``).  Here a
straight shaft (a tube 0.8 um across, 2 um deep, as the simulator's fill) with Poisson noise
over a background of 2 photons, at 0 and at 11.25 degrees (half way between two of the
openings' directions), with dim puncta (450 photons: weight 0.3 at make bench's 1,500 per
weight; one of weight 1 peaks at ~24 photons) every 4 um along it.  Per shaft: how much of the
shaft the line background misses on its core (where the tube is above half its peak), the
detections farther than 0.5 um from every punctum per 10 um of shaft (all false: the shaft
has nothing else), and the puncta found.  The simulator's default diffuse PSD-95 puts the
shaft's peak near 2 photons; ``single_channel_bright_shaft`` (make bench) at ~9.
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

SPACING = np.array([0.8, 0.0887, 0.0887])
SHAPE = (20, 384, 384)
FWHM_TO_SD = 1 / 2.3548
BACKGROUND = 2.0
PUNCTUM_PHOTONS = 450.0


def shaft_stack(rng, *, peak: float, angle_deg: float):
    """(expected photons, shaft alone, punctum centres in voxels) of one shaft."""
    from pipeline.truth.render import render_puncta, straight_shaft

    a = np.deg2rad(angle_deg)
    shaft = straight_shaft(SHAPE, SPACING, peak=peak, angle_deg=angle_deg)
    step = 4.0 / SPACING[2]                                  # a punctum every 4 um
    along = np.arange(-150, 151, step)
    centres = np.column_stack([np.full(len(along), SHAPE[0] / 2),
                               SHAPE[1] / 2 + along * np.sin(a), SHAPE[2] / 2 + along * np.cos(a)])
    centres += rng.uniform(-0.5, 0.5, centres.shape)
    sd = np.sqrt((np.array([2.0, 0.4, 0.4]) * FWHM_TO_SD) ** 2 + (0.45 * FWHM_TO_SD) ** 2)
    puncta = render_puncta(SHAPE, SPACING, centres, np.full(len(centres), PUNCTUM_PHOTONS),
                           np.tile(sd, (len(centres), 1)))
    return shaft + BACKGROUND + puncta, shaft, centres


def one_shaft(rng, *, peak: float, angle_deg: float) -> dict:
    from scipy.spatial import cKDTree

    from pipeline.core.shaft import line_background
    from pipeline.params import DetectParams
    from pipeline.stages.detect import detect_puncta

    expected, shaft, centres = shaft_stack(rng, peak=peak, angle_deg=angle_deg)
    image = rng.poisson(expected).astype(np.float32)
    core = shaft > 0.5 * peak
    missed = np.nan
    if peak > 0:
        estimate = line_background(image, spacing=SPACING, length_um=DetectParams.shaft_line_um)
        missed = float((shaft - estimate)[core].mean() / shaft[core].mean())
    det = detect_puncta(image, spacing=SPACING)
    found = np.zeros(len(centres), bool)
    false = len(det)
    if len(det):
        d, j = cKDTree(centres * SPACING).query(det[["z", "y", "x"]].to_numpy() * SPACING)
        found[j[d < 0.5]] = True
        false = int((d >= 0.5).sum())
    length_um = SHAPE[2] * SPACING[2] / np.cos(np.deg2rad(angle_deg))
    return {"shaft peak (photons)": peak, "direction (deg)": angle_deg,
            "shaft the line background misses, core": missed,
            "false detections per 10 um": 10 * false / length_um,
            "puncta found": f"{found.sum()} / {len(centres)}"}


def main(argv=None) -> int:
    from registration_benchmark import write_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    rows = [one_shaft(rng, peak=peak, angle_deg=angle)
            for angle in (0.0, 11.25) for peak in (0.0, 2.0, 4.0, 9.0, 20.0)]
    table = pd.DataFrame(rows).round(3)
    write_report("PSD-95 alone on a smooth shaft: false puncta along it",
                 "bright_shaft.py" + (f" --seed {args.seed}" if args.seed else ""), started,
                 __doc__.split("\n\n", 2)[2].strip().replace("\n", " "),
                 table.to_dict("records"), [], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
