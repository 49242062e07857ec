"""What the single-channel threshold allows for on the shaft: noise, or the shaft's texture?

    python benchmarks/local_noise.py [--regime single_channel] [--out FILE]

Without a morphology channel the detect stage sets its threshold in units of the noise
around each peak (``detect.local_noise``, :func:`pipeline.core.shaft.local_noise_factor`,
with the detector's ``local_flanks_um``):
the SD of the filtered image near the peak over the stack's.  That SD holds two things: the
photon and read noise, and structure the noise-free image has there (the texture of the
shaft's diffuse PSD-95 that its line opening leaves).  The regime's cell is simulated as
``make bench`` simulates it and again without noise (same truth); at every true synapse
present and in view, beside the factor the detector uses, the same local SD is measured on
the noise alone (the noisy image's filtered signal minus its noise-free twin's, in the same
window).  Where the first is well above the second, the threshold is allowing for texture:
a dim punctum and a bump of texture look alike to it.
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

#: the Gaussian window (z, y, x SDs, um) of :func:`pipeline.core.shaft.local_noise_factor`
WINDOW_UM = (2.0, 1.0, 1.0)


def session_factors(noisy: np.ndarray, twin: np.ndarray, truth: pd.DataFrame, found, *,
                    share, spacing) -> pd.DataFrame:
    """Per true synapse: the detector's local noise factor and the noise-only one."""
    from scipy import ndimage

    from detection_errors import detector_signal, dog
    from pipeline.core.noise import robust_noise
    from pipeline.core.shaft import local_noise_factor
    from pipeline.params import DetectParams
    from pipeline.stages.detect import punctum_sigma_um

    params = DetectParams()
    sigma_vox = punctum_sigma_um(params.psf_fwhm_um, params.punctum_fwhm_um) / spacing
    ratio = params.surround_ratios[0]
    response = dog(detector_signal(noisy, noisy, share, spacing=spacing, params=params),
                   sigma_vox, ratio)
    clean = dog(detector_signal(twin, noisy, share, spacing=spacing, params=params),
                sigma_vox, ratio)
    noise = robust_noise(response)
    at_vox = truth[["z", "y", "x"]].to_numpy(float).round().astype(int)
    factor = local_noise_factor(response, noise, at_vox, spacing=spacing,
                                flanks_um=params.local_flanks_um)
    only_noise = np.square(response - clean)
    local_sd = np.sqrt(ndimage.gaussian_filter(only_noise, np.asarray(WINDOW_UM) / spacing))
    return pd.DataFrame({"found": found, "detector factor": factor,
                         "noise-only factor": local_sd[tuple(at_vox.T)] / noise,
                         "noise-free peak (stack SDs)": clean[tuple(at_vox.T)] / noise})


def main(argv=None) -> int:
    from detection_benchmark import detected_sessions
    from detection_errors import in_units_of
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, REGIMES
    from pipeline.truth.evaluate import match_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regime", default="single_channel")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    regime_args = COMMON + REGIMES[args.regime]
    sim = simulated_cell(regime_args)
    clean = simulated_cell(regime_args + ["--photon-noise", "false"])
    spacing = np.asarray(sim.params.spacing)
    rows = []
    for k, (session, det, truth, share, _) in enumerate(detected_sessions(sim)):
        noisy = sim.images[k].astype(np.float32)
        twin = in_units_of(clean.images[k].astype(np.float32), noisy)
        found = np.zeros(len(truth), bool)
        found[match_points(det[["z", "y", "x"]].to_numpy(float) * spacing,
                           truth[["z", "y", "x"]].to_numpy(float) * spacing)[1]] = True
        rows.append(session_factors(noisy, twin, truth, found, share=share["used"],
                                    spacing=spacing).assign(session=session))
    per = pd.concat(rows, ignore_index=True)
    per["synapses"] = np.where(per.found, "found", "missed")
    cols = ["detector factor", "noise-only factor", "noise-free peak (stack SDs)"]
    by_session = (per.groupby(["session", "synapses"])[cols].median()
                  .join(per.groupby(["session", "synapses"]).size().rename("n")).reset_index())
    sums = [{"regime": args.regime, "synapses": kind, "n": int((per.synapses == kind).sum()),
             **{f"{c} (median)": per.loc[per.synapses == kind, c].median() for c in cols}}
            for kind in ("found", "missed")]
    write_report("The noise the threshold allows for", f"local_noise.py --regime {args.regime}",
                 started, "At each true synapse present and in view: the detector's local noise "
                 "factor (the SD of its filtered image around the synapse over the stack's) "
                 "and the same SD of the noise alone (noisy minus noise-free), medians.",
                 sums, [f"### {args.regime}", "", by_session.round(3).to_markdown(index=False),
                        ""], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
