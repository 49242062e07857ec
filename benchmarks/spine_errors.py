"""What the spine detector gets wrong on a spine regime, and what it finds without noise.

    python benchmarks/spine_errors.py [--regime spines] [--seed N] [--noise-free]
                                      [--spines head_fwhm_um=0.2 ...] [--out FILE]

Each session of the regime's cell (simulated as ``make bench`` does) is detected by the detect
stage's spine detector and matched to the true spines present and in view (1 um gate, as
``detection_benchmark.py``).  Each missed spine is put in the first class it fits:

- ``beside another``: another true spine lies within ``BESIDE_UM`` laterally (two heads
  that close are one blob after the optics and the head filter);
- ``dim``: its head over the noise (``head_over_shaft``'s SNR at the true position) is below
  the detector's threshold;
- ``other``: on the shaft's core, hidden above or below the shaft, or not explained here.

Each miss is also put in one class of what the head filter's response shows at it (the
detector's own maps, ``pipeline.core.spines.head_maps``): ``no peak of its own`` (no local
maximum within ``OWN_PEAK_UM``: merged into a neighbour's blob), ``peak below threshold``,
``peak on the shaft's core`` (the shaft estimate there at least ``core_share`` of its nearby
largest) or ``peak dropped later`` (on a found head's neck, a speck, or not above the shaft).
``beside, apart in depth``: misses beside another whose neighbour lies more than 1 um deeper
or shallower.

With ``--ceiling``, each session's spine heads are also rendered alone (no shaft, necks or
noise) and their local maxima matched to the true spines: how many heads an observer that
knows the shaft and sees no noise could find as peaks, through the optics alone and after the
detector's filters (:func:`resolvable`); and the detector's recall is split between the
heads that make a maximum of their own through the optics alone and those that do not
(merged with a neighbour before any filter or noise).

Each false detection is ``near a found spine`` (within ``NEAR_UM`` of a matched detection: a
neck, or a second peak of one head) or ``elsewhere``.  With ``--noise-free`` the same cell
is simulated again without photon and read noise (the same truth) and detected with the
same settings: what the detector's filters find when noise is not what limits them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: a missed spine with another true spine this close (lateral, um) is "beside another"
BESIDE_UM = 1.2
#: a false detection this close (lateral, um) to a matched one is "near a found spine":
#: a neck (0.5-2 um) or a second peak of one head
NEAR_UM = 2.5
#: a miss with a local maximum of the head response this close (lateral, um) has a peak of its own
OWN_PEAK_UM = 0.6


def session_errors(image: np.ndarray, truth: pd.DataFrame, *, spacing, params,
                   resolved=None) -> dict:
    """One session's detections, matches, and the classes of its misses and false ones;
    with ``resolved`` (rows of ``truth`` whose head makes a maximum of its own,
    :func:`resolvable`) also the spines found among those and among the rest."""
    from pipeline.core.spines import head_maps, head_over_shaft
    from pipeline.stages.detect import detect_spine_session
    from pipeline.truth.evaluate import SPINE_GATE_UM, match_points, precision_recall

    spacing = np.asarray(spacing, float)
    det = detect_spine_session(image.astype(np.float32), spacing=spacing, params=params)
    true_vox = truth[["z", "y", "x"]].to_numpy(float)
    det_vox = det[["z", "y", "x"]].to_numpy(float)
    i_det, i_true = match_points(det_vox * spacing, true_vox * spacing, gate_um=SPINE_GATE_UM)
    missed = np.setdiff1d(np.arange(len(truth)), i_true)
    false = np.setdiff1d(np.arange(len(det)), i_det)
    lateral = true_vox[:, 1:] * spacing[1:]
    if len(truth) > 1:
        dist, idx = cKDTree(lateral).query(lateral, k=2)
        nearest_other, nearest_k = dist[:, 1], idx[:, 1]
    else:
        nearest_other, nearest_k = np.full(len(truth), np.inf), np.zeros(len(truth), int)
    # the detector's maps of this session, once for both measurements below
    maps = head_maps(image[0].astype(np.float32), spacing=spacing,
                     head_fwhm_um=params.head_fwhm_um, surround_ratio=params.surround_ratio,
                     line_um=params.line_um, directions=params.directions,
                     orientation_um=params.orientation_um,
                     core_window_um=params.core_window_um)
    snr = head_over_shaft(image[0], true_vox[missed], spacing=spacing,
                          head_fwhm_um=params.head_fwhm_um, line_um=params.line_um,
                          directions=params.directions, orientation_um=params.orientation_um,
                          core_window_um=params.core_window_um, maps=maps)["snr"].to_numpy()
    beside = nearest_other[missed] < BESIDE_UM
    apart_in_depth = beside & (np.abs(true_vox[missed, 0] - true_vox[nearest_k[missed], 0])
                               * spacing[0] > 1.0)
    view = filter_view(image[0], true_vox[missed], maps, spacing=spacing, params=params)
    dim = ~beside & (snr < params.threshold)
    found = det_vox[i_det, 1:] * spacing[1:]
    near = (cKDTree(found).query(det_vox[false, 1:] * spacing[1:])[0] < NEAR_UM
            if len(found) and len(false) else np.zeros(len(false), bool))
    score = precision_recall(len(truth), len(det), len(i_det))
    split = {}
    if resolved is not None:
        own = np.zeros(len(truth), bool)
        own[np.asarray(resolved, int)] = True
        hit = np.zeros(len(truth), bool)
        hit[i_true] = True
        split = {"resolved": int(own.sum()), "found of resolved": int((hit & own).sum()),
                 "merged": int((~own).sum()), "found of merged": int((hit & ~own).sum())}
    return {"n_true": len(truth), "n": len(det),
            "precision": score["precision"], "recall": score["recall"], **split,
            "missed": len(missed), "missed beside another": int(beside.sum()),
            "missed dim": int(dim.sum()), "missed other": int((~beside & ~dim).sum()),
            "beside, apart in depth": int(apart_in_depth.sum()),
            **{k: int((view == k).sum()) for k in FILTER_VIEW},
            "false": len(false), "false near a found spine": int(near.sum()),
            "false elsewhere": int((~near).sum())}


FILTER_VIEW = ("no peak of its own", "peak below threshold", "peak on the shaft's core",
               "peak dropped later")


def filter_view(image: np.ndarray, points_vox: np.ndarray, maps, *, spacing,
                params) -> np.ndarray:
    """Per missed spine, what the detector's head response shows there (:data:`FILTER_VIEW`):
    the nearest local maximum within ``OWN_PEAK_UM``, its SNR as the detector scores it (photon
    noise included) and its core ratio.  ``maps``: ``head_maps`` of ``image``."""
    from scipy import ndimage

    from pipeline.core.spines import photon_factor, variance_curve

    if len(points_vox) == 0:
        return np.array([], object)
    _, _, _, _, response, noise, level, near = maps
    half = max(int(round(params.min_separation_um / spacing[1])), 1)
    top = ndimage.maximum_filter(response, size=2 * half + 1, mode="nearest")
    peaks = np.argwhere((response >= top) & (response > 0))
    dist, which = cKDTree(peaks * spacing[1]).query(np.asarray(points_vox)[:, 1:] * spacing[1])
    at = tuple(peaks[which].T)
    photon = photon_factor(level[at], *variance_curve(image), neuropil=float(np.median(image)))
    snr = response[at] / (noise * photon)
    core = level[at] / np.maximum(ndimage.maximum_filter(level, size=near)[at], 1e-12)
    return np.select([dist > OWN_PEAK_UM, snr <= params.threshold, core >= params.core_share],
                     list(FILTER_VIEW[:3]), FILTER_VIEW[3])


#: heads-only images (noise-free, the shaft and necks left out): the scales they are seen at,
#: as the head widths (um) of the detector's matched filter; 0: the optics alone
CEILING_SCALES = {"optics": 0.0, "fine filter (0.2 um)": 0.2, "head filter (0.4 um)": 0.4}


def heads_only(sim, k: int) -> np.ndarray:
    """Session ``k``'s spine heads alone, as the simulator renders them (its fill and
    blur; no shaft, necks, background or noise), in that session's voxels."""
    from scipy import ndimage

    from pipeline.core.optics import FWHM_TO_SIGMA
    from pipeline.truth.simulate import fill_blur_um, render_puncta, spine_heads

    p, shape = sim.params, sim.images[k].shape[1:]
    spacing = np.asarray(p.spacing, float)
    t = sim.truth[(sim.truth.session == f"s{k:02d}") & (sim.truth.present == 1)]
    fill, diameter = spine_heads(p, t["weight"].to_numpy(float))
    heads = render_puncta(shape, spacing, t[["z", "y", "x"]].to_numpy(float), fill,
                          (diameter * FWHM_TO_SIGMA)[:, None] * np.ones(3))
    return ndimage.gaussian_filter(heads, fill_blur_um(p) / spacing, mode="constant")


def resolvable(heads: np.ndarray, truth: pd.DataFrame, *, spacing, extra_fwhm_um: float,
               min_separation_um: float, surround_ratio: float | None = None) -> dict:
    """Recall of an observer that knows the shaft exactly and sees no noise: the local
    maxima of the heads-only image (smoothed as the detector smooths for heads
    ``extra_fwhm_um`` wide, the PSF included; 0: not smoothed) matched one-to-one to the
    true spines (``truth``: present and in view) within the benchmark's gate, in the
    z-projection (the detector's view) and in 3-D: the rows of ``truth`` found, per view.  A
    spine whose head makes no maximum of its own is merged with a neighbour at that scale."""
    from scipy import ndimage

    from pipeline.core.spines import head_sigma_vox
    from pipeline.truth.evaluate import SPINE_GATE_UM, match_points

    spacing = np.asarray(spacing, float)
    image = heads
    if extra_fwhm_um > 0:
        centre = head_sigma_vox(spacing, extra_fwhm_um)
        image = ndimage.gaussian_filter(heads, centre)
        if surround_ratio is not None:      # the detector's difference of Gaussians
            surround = centre * np.sqrt(surround_ratio ** 2 - 1)
            image = image - ndimage.gaussian_filter(image, surround)
    half = max(int(round(min_separation_um / spacing[1])), 1)
    floor = 1e-6 * float(image.max())
    true_um = truth[["z", "y", "x"]].to_numpy(float) * spacing
    out = {}
    depth = image.argmax(0)
    proj = np.take_along_axis(image, depth[None], 0)[0]
    top = ndimage.maximum_filter(proj, size=2 * half + 1, mode="nearest")
    yx = _one_per_plateau((proj >= top) & (proj > floor))
    peaks = np.column_stack([depth[tuple(yx.T)], yx]).astype(float)
    out["projection"] = match_points(peaks * spacing, true_um, gate_um=SPINE_GATE_UM)[1]
    top = ndimage.maximum_filter(image, size=(3, 2 * half + 1, 2 * half + 1), mode="nearest")
    peaks = _one_per_plateau((image >= top) & (image > floor)).astype(float)
    out["3-D"] = match_points(peaks * spacing, true_um, gate_um=SPINE_GATE_UM)[1]
    return out


def _one_per_plateau(is_max: np.ndarray) -> np.ndarray:
    """One pixel (the first) of each connected group of local maxima: a maximum between two
    pixels is two equal ones, not two heads."""
    from scipy import ndimage

    labels, n = ndimage.label(is_max, structure=np.ones((3,) * is_max.ndim))
    if n == 0:
        return np.zeros((0, is_max.ndim), int)
    first = ndimage.minimum_position(np.arange(labels.size).reshape(labels.shape), labels,
                                     np.arange(1, n + 1))
    return np.array(first, int).reshape(n, is_max.ndim)


def ceiling(sim, params) -> tuple[pd.DataFrame, list]:
    """:func:`resolvable` per session and scale: how many true spines (present and in view)
    an observer without noise, knowing the shaft, could find as peaks; and per session the
    rows of those spines the optics alone resolve (in the projection), for
    :func:`cell_errors`."""
    from registration_benchmark import _in_view

    rows, resolved = [], []
    for k in range(len(sim.images)):
        session = f"s{k:02d}"
        truth = _in_view(sim.truth, session)
        heads = heads_only(sim, k)
        row = {"session": session, "n_true": len(truth)}
        for name, fwhm in CEILING_SCALES.items():
            for dog in (None, params.surround_ratio) if fwhm else (None,):
                found = resolvable(heads, truth, spacing=sim.params.spacing,
                                   extra_fwhm_um=fwhm, surround_ratio=dog,
                                   min_separation_um=params.min_separation_um)
                label = name + (", DoG" if dog else "")
                row.update({f"{label}, {view}": len(rows_found)
                            for view, rows_found in found.items()})
                if not fwhm:
                    resolved.append(found["projection"])
        rows.append(row)
    return pd.DataFrame(rows), resolved


def cell_errors(sim, params, *, resolved: list | None = None) -> pd.DataFrame:
    """:func:`session_errors` of every session of a simulated fill, one row each; with
    ``resolved`` (per session, :func:`ceiling`'s rows the optics resolve) also the spines
    found among those and among the merged ones."""
    from registration_benchmark import _in_view

    rows = []
    for k, image in enumerate(sim.images):
        session = f"s{k:02d}"
        rows.append({"session": session, **session_errors(
            image, _in_view(sim.truth, session), spacing=sim.params.spacing, params=params,
            resolved=None if resolved is None else resolved[k])})
    return pd.DataFrame(rows)


def totals(per_session: pd.DataFrame) -> dict:
    """Pooled figures of a cell: precision and recall over all sessions, counts summed."""
    s = per_session.sum(numeric_only=True)
    matched = s["n_true"] - s["missed"]
    split = ({"recall of resolved": s["found of resolved"] / s["resolved"],
              "recall of merged": s["found of merged"] / max(s["merged"], 1),
              "merged share": s["merged"] / s["n_true"]}
             if "resolved" in per_session else {})
    return {"precision": matched / s["n"], "recall": matched / s["n_true"],
            "worst session recall": per_session.recall.min(), **split,
            **{k: int(s[k]) for k in ("missed", "missed beside another", "missed dim",
                                      "missed other", "beside, apart in depth", *FILTER_VIEW,
                                      "false", "false near a found spine",
                                      "false elsewhere")}}


def main(argv=None) -> int:
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, SPINE_REGIMES, reseeded

    from pipeline.params import SpinesParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regime", default="spines", choices=sorted(SPINE_REGIMES))
    ap.add_argument("--seed", type=int, default=None, help="another draw of the regime")
    ap.add_argument("--noise-free", action="store_true",
                    help="also detect the cell simulated without photon and read noise")
    ap.add_argument("--spines", action="append", default=[], metavar="KEY=VALUE",
                    help="a spines setting other than its default")
    ap.add_argument("--ceiling", action="store_true",
                    help="also count the spines whose head makes a maximum of its own in the "
                         "heads alone, without noise (the shaft known), at each scale, and "
                         "the recall among those the optics resolve and the merged ones")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    params = SpinesParams(**{k: yaml.safe_load(v) for k, v in
                             (item.split("=", 1) for item in args.spines)})
    regime_args = reseeded(SPINE_REGIMES[args.regime], args.seed)
    seed = int(regime_args[regime_args.index("--seed") + 1])
    variants = [("with noise", [])] + ([("noise-free", ["--photon-noise", "false"])]
                                       if args.noise_free else [])
    sums, lines = [], []
    for name, extra in variants:
        sim = simulated_cell(COMMON + regime_args + extra)
        top, resolved = ceiling(sim, params) if args.ceiling and not extra else (None, None)
        per = cell_errors(sim, params, resolved=resolved)
        sums.append({"regime": args.regime, "seed": seed, "images": name, **totals(per)})
        lines += [f"### {args.regime}, {name}", "", per.round(3).to_markdown(index=False), ""]
        if top is not None:
            share = top.sum(numeric_only=True)
            share = (share / share["n_true"]).drop("n_true").round(3)
            lines += [f"### {args.regime}: heads with a maximum of their own (no noise, the "
                      "shaft known)", "", top.to_markdown(index=False), "",
                      "Share of the true spines: " + "; ".join(
                          f"{k} {v}" for k, v in share.items()), ""]
    command = (f"spine_errors.py --regime {args.regime}"
               + (f" --seed {args.seed}" if args.seed is not None else "")
               + (" --noise-free" if args.noise_free else "")
               + (" --ceiling" if args.ceiling else "")
               + "".join(f" --spines {item}" for item in args.spines))
    write_report("Spine detection errors", command, started,
                 f"Matched within 1 um; a miss 'beside another' has a true spine within "
                 f"{BESIDE_UM} um, 'dim' a head below the threshold over the noise; a false "
                 f"detection 'near a found spine' lies within {NEAR_UM} um of a matched one.",
                 sums, lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
