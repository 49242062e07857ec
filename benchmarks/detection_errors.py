"""What the false detections of a regime stand on (structure the image has
without noise, such as patchy shaft PSD-95, or noise), and what its missed synapses are.

    python benchmarks/detection_errors.py [--regime channel_departure] [--sessions 8]
                                          [--out FILE]

The regime's cell is simulated as ``make bench`` simulates it, and again with the same seed
and truth but without photon or read noise (``--photon-noise false``).  The noisy sessions
are detected as the workflow detects them (``detection_benchmark.detected_sessions``); each
false detection (no true synapse present and in view within the 0.6 um gate) is put in one
kind:

- *beside a synapse*: a synapse present in that session lies within 1.2 um (a displaced or
  split detection of it);
- *on structure*: the noise-free image, filtered as the detector filters it (each surround
  ratio's DoG after the same morphology share, or without a morphology channel the
  shaft's line background, is subtracted), has a peak (the maximum of
  the detector's neighbourhood) within 1 plane and 3 pixels of it of at least half the
  threshold in the noisy image's noise SD at that place: the noise only lifted a
  bump that is there in every session;
- *noise*: neither.

Each missed synapse (present and in view, no detection within the gate) is *merged with a
neighbour* (the noise-free twin's filtered image has no peak of its own at it, and another
synapse lies within 1.2 um laterally: one peak for two), *below threshold noise-free* (its
own peak there, if any, is under the threshold: found only when noise lifts it), or *lost
to noise* (its noise-free peak passes the threshold).

A detector that cannot tell a bump on structure from a dim punctum of the same brightness
must take the one with the other.  Whether their width could tell them apart is
measured by the ratio of the DoG one scale up (1.6x wider) to the detector's at the
detection (an isolated PSF-sized spot gives ~0.6, a wider bump more): in the noisy image,
for false detections on structure and for true detections as dim (SNR below 12), and the
same in the noise-free image.
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

BESIDE_UM = 1.2      # a false detection this near a present synapse is a displaced one
DIM_SNR = 12.0       # true detections this dim are what a bump must be told from
SCALE_UP = 1.6       # the width test's second scale, over the detector's


def dog(signal: np.ndarray, sigma_vox, ratio: float) -> np.ndarray:
    """The detector's filter (:func:`pipeline.stages.detect.detect_puncta`): the matched
    Gaussian minus one ``ratio`` times wider."""
    from scipy import ndimage
    return (ndimage.gaussian_filter(signal, sigma_vox, mode="nearest")
            - ndimage.gaussian_filter(signal, np.asarray(sigma_vox) * ratio, mode="nearest"))


def own_peak_at(image: np.ndarray, points: np.ndarray, *, half, window=(1, 3, 3)) -> np.ndarray:
    """The largest local maximum of ``image`` (the maximum of its (2*half+1) box, as the
    detector's peaks) within ``window`` voxels of each (rounded) point; -inf where none is."""
    from scipy import ndimage
    half, window = np.asarray(half, int), np.asarray(window, int)
    out = np.full(len(points), -np.inf)
    for i, c in enumerate(np.round(points).astype(int)):
        lo = np.maximum(c - window - half, 0)
        hi = np.minimum(c + window + half + 1, image.shape)
        crop = image[tuple(slice(a, b) for a, b in zip(lo, hi))]
        peaks = crop == ndimage.maximum_filter(crop, size=tuple(2 * half + 1), mode="nearest")
        near = tuple(slice(max(v - w - a, 0), v + w + 1 - a) for v, w, a in zip(c, window, lo))
        if peaks[near].any():
            out[i] = crop[near][peaks[near]].max()
    return out


def in_units_of(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """The noise-free twin in the noisy stack's units, channel by channel (least squares of
    noisy on clean: an 8-bit stack is scaled to its own range, and the twin's range differs)."""
    from pipeline.core.noise import subsample

    out = np.empty(clean.shape, np.float32)
    for c in range(clean.shape[0]):
        x, y = subsample(clean[c]).astype(float), subsample(noisy[c]).astype(float)
        a, b = np.polyfit(x, y, 1)
        out[c] = a * clean[c] + b
    return out


def detector_signal(stack: np.ndarray, noisy: np.ndarray, share, *, spacing, params):
    """What the detector filters, made of ``stack`` as it is made of the ``noisy`` stack: the
    morphology share subtracted (left alone where the noisy stack shows a foreign object), or
    without a morphology channel the shaft's line background."""
    from pipeline.core.channels import foreign_morphology
    from pipeline.core.noise import subsample
    from pipeline.core.shaft import line_background

    if noisy.shape[0] == 1:
        return stack[0] - line_background(stack[0], spacing=spacing,
                                          length_um=params.shaft_line_um, workers=2)
    kept = ~foreign_morphology(noisy[0], noisy[1], share, spacing=spacing)
    return stack[0] - np.float32(share) * (stack[1] - np.median(subsample(stack[1]))) * kept


def peak_snr_at(signal: np.ndarray, ref: np.ndarray, points: np.ndarray, *, spacing, params,
                single_channel: bool) -> np.ndarray:
    """Per point, the largest peak of ``signal``'s DoG response over the surround ratios near
    it (:func:`own_peak_at`) in units of the noise SD the detector takes there from ``ref``
    (the noisy image's :func:`detector_signal`): the interior's, its rise near the faces, and
    without a morphology channel (``local_noise`` auto) the noise around the peak."""
    from pipeline.core.noise import robust_noise
    from pipeline.core.shaft import local_noise_factor
    from pipeline.stages.detect import noise_gain, noise_gain_at, punctum_sigma_um

    sigma_vox = punctum_sigma_um(params.psf_fwhm_um, params.punctum_fwhm_um) / spacing
    half = np.maximum(np.round(np.asarray(params.min_separation_um) / spacing).astype(int), 1)
    at_vox = points.round().astype(int)
    by_neighbourhood = params.local_noise == "always" or (params.local_noise == "auto"
                                                          and single_channel)
    best = np.full(len(points), -np.inf)
    for ratio in params.surround_ratios:
        resp = dog(ref, sigma_vox, ratio)
        margin = np.ceil(3 * ratio * sigma_vox).astype(int)
        margin = np.where(np.array(resp.shape) > 4 * margin, margin, 0)
        noise = robust_noise(resp[tuple(slice(m, n - m) for m, n in zip(margin, resp.shape))])
        at_noise = noise * noise_gain_at(noise_gain(resp.shape, sigma_vox=sigma_vox,
                                                    ratio=ratio), at_vox)
        if by_neighbourhood:
            at_noise = at_noise * local_noise_factor(resp, noise, at_vox, spacing=spacing)
        best = np.maximum(best, own_peak_at(dog(signal, sigma_vox, ratio), points,
                                            half=half) / at_noise)
    return best


def width_at(signal: np.ndarray, points: np.ndarray, *, spacing, params) -> np.ndarray:
    """The width ratio at each point: ``signal``'s DoG one scale up over the detector's."""
    from pipeline.stages.detect import punctum_sigma_um

    sigma_vox = punctum_sigma_um(params.psf_fwhm_um, params.punctum_fwhm_um) / spacing
    at = tuple(points.round().astype(int).T)
    first = params.surround_ratios[0]
    return (dog(signal, sigma_vox * SCALE_UP, first)[at]
            / np.maximum(dog(signal, sigma_vox, first)[at], 1e-12))


def session_rows(sim, clean, sessions: int, threads: int):
    """One row per session: its false detections by kind, and the width test's medians."""
    from detection_benchmark import detected_sessions
    from pipeline.params import DetectParams
    from pipeline.truth.evaluate import PSF_ANISOTROPY, match_points

    params = DetectParams()
    spacing = np.asarray(sim.params.spacing)
    # 16-bit stacks record the same gain and offset with and without noise
    rescale = sim.params.bit_depth < 16
    scale = np.array([1 / PSF_ANISOTROPY, 1, 1])
    rows = []
    for k, (session, det, t, share, _) in enumerate(detected_sessions(sim, None, threads)):
        if k >= sessions:
            break
        pos = det[["z", "y", "x"]].to_numpy(float)
        ia, ib = match_points(pos * spacing, t[["z", "y", "x"]].to_numpy() * spacing)
        false = np.ones(len(det), bool)
        false[ia] = False
        present = sim.truth[(sim.truth.session == session) & (sim.truth.present == 1)]
        d = np.linalg.norm((pos[:, None] - present[["z", "y", "x"]].to_numpy()[None])
                           * spacing * scale, axis=2).min(1)
        beside = false & (d <= BESIDE_UM)
        # what the detector filters, of the noisy stack and of its noise-free twin (each
        # made once), at the detections and at the true synapses
        true_pos = t[["z", "y", "x"]].to_numpy(float)
        noisy = sim.images[k].astype(np.float32)
        twin = clean.images[k].astype(np.float32)
        twin = in_units_of(twin, noisy) if rescale else twin
        noisy_signal = detector_signal(noisy, noisy, share["used"], spacing=spacing,
                                       params=params)
        clean_signal = detector_signal(twin, noisy, share["used"], spacing=spacing,
                                       params=params)
        both_snr = peak_snr_at(clean_signal, noisy_signal, np.concatenate([pos, true_pos]),
                               spacing=spacing, params=params,
                               single_channel=noisy.shape[0] == 1)
        clean_snr, true_snr = both_snr[:len(pos)], both_snr[len(pos):]
        clean_width = width_at(clean_signal, pos, spacing=spacing, params=params)
        noisy_width = width_at(noisy_signal, pos, spacing=spacing, params=params)
        structure = false & ~beside & (clean_snr >= params.threshold / 2)
        # the misses: no peak of its own without noise beside another synapse (one peak for
        # two), its own peak under the threshold without noise, or noise hid a peak above it
        missed = np.ones(len(t), bool)
        missed[ib] = False
        lateral = np.linalg.norm(true_pos[:, None, 1:] - true_pos[None, :, 1:], axis=2)
        np.fill_diagonal(lateral, np.inf)
        crowded = (missed & ~np.isfinite(true_snr)
                   & (lateral.min(1, initial=np.inf) * spacing[1] <= BESIDE_UM))
        faint = missed & ~crowded & ~(true_snr >= params.threshold)
        dim_true = ~false & (det.snr.to_numpy() < DIM_SNR)
        rows.append({
            "session": session, "detected": len(det), "false": int(false.sum()),
            "false share": false.sum() / max(len(det), 1),
            "beside a synapse": int(beside.sum()), "on structure": int(structure.sum()),
            "noise": int((false & ~beside & ~structure).sum()),
            "false, noise-free response (SD, median)": np.median(np.maximum(clean_snr[false & ~beside], 0))
            if (false & ~beside).any() else np.nan,
            "false share without structure": (false & ~structure).sum() / max(len(det), 1),
            "missed": int(missed.sum()), "missed, merged with a neighbour": int(crowded.sum()),
            "missed, below threshold noise-free": int(faint.sum()),
            "missed, lost to noise": int((missed & ~crowded & ~faint).sum()),
            "true dim": int(dim_true.sum()),
            "width: structure, noisy": np.median(noisy_width[structure]) if structure.any() else np.nan,
            "width: true dim, noisy": np.median(noisy_width[dim_true]) if dim_true.any() else np.nan,
            "width: structure, noise-free": np.median(clean_width[structure]) if structure.any() else np.nan,
            "width: true dim, noise-free": np.median(clean_width[dim_true]) if dim_true.any() else np.nan,
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, REGIMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regime", default="channel_departure")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    regime_args = COMMON + REGIMES[args.regime]
    started = time.perf_counter()
    sim = simulated_cell(regime_args)
    clean = simulated_cell(regime_args + ["--photon-noise", "false"])
    per = session_rows(sim, clean, args.sessions, args.threads)
    counts = ["detected", "false", "beside a synapse", "on structure", "noise", "missed",
              "missed, merged with a neighbour", "missed, below threshold noise-free",
              "missed, lost to noise"]
    total = {"regime": args.regime, "sessions": len(per), **per[counts].sum().to_dict(),
             "worst session false share": per["false share"].max(),
             "worst session false share without structure":
                 per["false share without structure"].max()}
    write_report("What the detection errors are",
                 f"detection_errors.py --regime {args.regime} --sessions {args.sessions}",
                 started, "Each false detection of the noisy cell: beside a present synapse "
                 f"(<= {BESIDE_UM} um), on structure (the noise-free twin's filtered image "
                 "peaks there at >= half the threshold, in the noisy image's noise SD), or "
                 "noise. Misses: merged with a neighbour (no noise-free peak of its own, another "
                 "synapse <= 1.2 um laterally), below the threshold noise-free, or lost to noise. Width: DoG 1.6x wider over the detector's, at the "
                 "detection (median).",
                 [total], [f"### {args.regime}", "", per.round(3).to_markdown(index=False), ""],
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
