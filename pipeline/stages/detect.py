"""3D detection of PSD-95 puncta.

The share of the morphology channel that shows in the PSD-95 channel (bleed-through and diffuse
PSD-95 in the shaft, estimated from the data with the puncta left out) is subtracted, so bright
shafts and empty spine heads are not taken for puncta.  A Gaussian matched to the punctum
(point-spread function convolved with a typical punctum size, per axis in voxels) minus a wider
Gaussian enhances puncta and removes the smooth background; two surround widths are run and
their detections pooled.  Each response's noise is estimated robustly (MAD over the interior,
scaled exactly at the faces), so one threshold, in units of noise, works across sessions of
different brightness.  With a morphology channel, only peaks near the labelled cell are kept.
Bright elongated peaks are tested for being two puncta closer than the filters resolve.  Peaks
are localised to sub-voxel precision by a parabola through the log response on each axis.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core.brightness_noise import (PUNCTA_SNR, brightness_noise_curve, brightness_noise_factor,
                                    texture_factor)
from ..core.channels import (cell_mask, foreign_morphology, morphology_coefficient,
                             remove_bleedthrough)
from ..core.noise import puncta_and_flanks, robust_noise
from ..core.optics import FWHM_TO_SIGMA
from ..core.pairs import elongation, fit_pairs
from ..core.photometry import aperture_photometry
from ..core.shaft import (dendrite_mask, line_background, local_noise_factor, photon_noise_map,
                          ridge_like, shaft_brightness, shaft_snr)
from ..core.shoulders import blob_responses, blob_size_um
from ..core.spines import detect_spines
from ..params import DetectParams, SpinesParams, as_options

def punctum_sigma_um(psf_fwhm_um, punctum_fwhm_um: float) -> np.ndarray:
    """Per-axis SD (um) of a punctum of FWHM ``punctum_fwhm_um`` seen through the PSF."""
    psf = np.asarray(psf_fwhm_um, float) * FWHM_TO_SIGMA
    return np.sqrt(psf ** 2 + (punctum_fwhm_um * FWHM_TO_SIGMA) ** 2)


def noise_gain(shape, *, sigma_vox, ratio: float = 1.6, mode: str = "nearest"):
    """Per-axis factors of the DoG's noise variance relative to the stack's interior.

    Near a face of the stack the filter's padding (``mode``) reuses the edge voxels, so the
    response to white noise varies more there and the edge would be full of false maxima at
    an interior threshold.  The DoG is a difference of two separable Gaussians, so its
    noise variance at a voxel, ``sum_j (a_j - b_j)**2``, is a sum of three products of
    per-axis sums.  Returns ``(aa, ab, bb)``: three lists of 1D arrays (one per axis) such
    that the variance at (z, y, x) over the interior's is
    ``prod aa[k][i_k] - 2 prod ab[k][i_k] + prod bb[k][i_k]``.
    """
    from scipy.ndimage import gaussian_filter1d

    aa, ab, bb = [], [], []
    for n, s in zip(shape, np.asarray(sigma_vox, float)):
        eye = np.eye(n)
        a = gaussian_filter1d(eye, s, axis=0, mode=mode)          # a[i, j]: weight of j in i
        b = gaussian_filter1d(eye, s * ratio, axis=0, mode=mode)
        aa.append((a * a).sum(1))
        ab.append((a * b).sum(1))
        bb.append((b * b).sum(1))
    centre = [n // 2 for n in shape]
    ref = (np.prod([v[c] for v, c in zip(aa, centre)]) - 2 * np.prod([v[c] for v, c in zip(ab, centre)])
           + np.prod([v[c] for v, c in zip(bb, centre)]))
    scale = ref ** (1 / 3)
    return [v / scale for v in aa], [v / scale for v in ab], [v / scale for v in bb]


def noise_gain_at(gain, points: np.ndarray) -> np.ndarray:
    """Relative noise SD of the DoG response at integer (z, y, x) ``points`` (see
    :func:`noise_gain`)."""
    aa, ab, bb = gain
    pts = np.asarray(points, int).reshape(-1, 3)
    term = [np.prod([v[k][pts[:, k]] for k in range(3)], axis=0) for v in (aa, ab, bb)]
    return np.sqrt(np.maximum(term[0] - 2 * term[1] + term[2], 1e-12))


def distance_to_mask(mask: np.ndarray, points_vox: np.ndarray, *, spacing) -> np.ndarray:
    """Distance (um) from each (z, y, x) voxel position to the nearest voxel of ``mask``
    (about half a voxel or less when inside it; inf when the mask is empty).

    Only the mask's surface is searched: from a point outside, a voxel of the interior
    (its six neighbours in the mask) is never the nearest, since its neighbour towards the
    point is nearer; from a point whose own voxel is in the mask, that voxel is."""
    from scipy.spatial import cKDTree

    spacing = np.asarray(spacing, float)
    pts = np.asarray(points_vox, float).reshape(-1, 3)
    if not mask.any() or len(pts) == 0:
        return np.full(len(pts), np.inf)
    surface = mask & ~ndimage.binary_erosion(mask, border_value=1)
    # an unbalanced tree builds in half the time (1.5 M surface voxels of a crowded stack's
    # dendrite mask: 0.8 -> 0.4 s) and finds the same nearest distances
    out = cKDTree(np.argwhere(surface) * spacing, balanced_tree=False,
                  compact_nodes=False).query(pts * spacing)[0]
    own = np.clip(np.round(pts).astype(int), 0, np.array(mask.shape) - 1)
    inside = mask[tuple(own.T)]
    out[inside] = np.linalg.norm((pts[inside] - own[inside]) * spacing, axis=1)
    return out


def _subvoxel(resp: np.ndarray, peaks: np.ndarray):
    """Parabolic refinement of each peak on log(response) along z, y and x.

    Returns offsets (n, 3) in voxels, clipped to +-0.5, and the curvature-derived SD (n, 3).
    """
    offsets = np.zeros(peaks.shape, float)
    sigmas = np.full(peaks.shape, np.nan)
    shape = np.array(resp.shape)
    f0 = resp[tuple(peaks.T)]
    for ax in range(3):
        step = np.zeros(3, int)
        step[ax] = 1
        lo, hi = peaks - step, peaks + step
        ok = (lo[:, ax] >= 0) & (hi[:, ax] < shape[ax])
        fm = np.where(ok, resp[tuple(np.clip(lo, 0, shape - 1).T)], np.nan)
        fp = np.where(ok, resp[tuple(np.clip(hi, 0, shape - 1).T)], np.nan)
        pos = ok & (fm > 0) & (fp > 0) & (f0 > 0)
        with np.errstate(all="ignore"):
            lm, l0, lp = np.log(np.where(pos, fm, 1)), np.log(np.where(pos, f0, 1)), np.log(np.where(pos, fp, 1))
            curv = lm - 2 * l0 + lp
            off = np.where(pos & (curv < 0), 0.5 * (lm - lp) / curv, 0.0)
            sigmas[:, ax] = np.where(pos & (curv < 0), np.sqrt(-1.0 / curv), np.nan)
        offsets[:, ax] = np.clip(off, -0.5, 0.5)
    return offsets, sigmas


def image_fwhm_um(sd_vox: np.ndarray, *, centre_vox, ratio: float, psf_vox, psf_fwhm_um,
                  spacing) -> np.ndarray:
    """Lateral FWHM (um) of each punctum's image, from the SDs (n, 3) of the parabola through
    the log response at its peak (:func:`_subvoxel`) of the filter that found it (a Gaussian of
    SDs ``centre_vox`` minus one ``ratio`` times wider): the punctum's own size that gives
    that response's curvature (:func:`~pipeline.core.shoulders.blob_size_um`) added to the
    point-spread function's lateral FWHM in quadrature.  The response of a difference of
    Gaussians is narrower than the punctum, and less so the larger the punctum: its own FWHM
    read as the punctum's measured 0.51-0.72 um for images of 0.45-0.81 um.  NaN where the
    peak has no parabola."""
    sd = np.asarray(sd_vox, float).reshape(-1, 3)
    own_sd = own_size_um(sd, centre_vox=centre_vox, ratio=ratio, psf_vox=psf_vox,
                         spacing=spacing)
    fwhm = np.hypot(np.asarray(psf_fwhm_um, float)[1], own_sd / FWHM_TO_SIGMA)
    return np.where(np.isfinite(sd[:, 1:]).all(1), fwhm, np.nan)


def own_size_um(sd_vox: np.ndarray, *, centre_vox, ratio: float, psf_vox,
                spacing) -> np.ndarray:
    """Each punctum's own lateral SD (um) whose blob gives the response (a Gaussian of SDs
    ``centre_vox`` minus one ``ratio`` times wider) the curvature of the parabola (SDs
    ``sd_vox``, (n, 3), :func:`_subvoxel`) at its peak
    (:func:`~pipeline.core.shoulders.blob_size_um`; no parabola: the smallest size)."""
    sd = np.asarray(sd_vox, float).reshape(-1, 3)
    centre = np.asarray(centre_vox, float)
    with np.errstate(all="ignore"):
        curvature = -0.5 / sd[:, 1] ** 2 - 0.5 / sd[:, 2] ** 2
    return blob_size_um(curvature, base_vox=psf_vox, centre_vox=centre,
                        surround_vox=ratio * centre, spacing=spacing)


def split_pairs(signal: np.ndarray, pos: np.ndarray, snr: np.ndarray, *, spacing, sigma_um,
                min_snr: float = 15.0, min_f: float = 30.0, min_separation_um: float = 0.25,
                workers: int = 1):
    """Split detections that are two puncta closer than the filters resolve.

    For each detection with ``snr >= min_snr`` whose spot is elongated (major over minor axis
    1.2 or more, :func:`~pipeline.core.pairs.elongation`) the sum of three planes around it
    is tested with :func:`~pipeline.core.pairs.fit_pairs` (all such spots at once); it
    becomes two when the two-point model is better by ``min_f`` (in noise units), its
    points are ``min_separation_um`` or more apart, and each keeps at least a quarter of the
    pair's brightness.  Returns the new (n, 3) positions and, per
    row, the index of the detection it came from.  ``workers``: threads for the fits.
    """
    spacing = np.asarray(spacing, float)
    sigma_px = float(sigma_um[1] / spacing[1])
    psf_z_um = 2.5 * sigma_um[0] / FWHM_TO_SIGMA / 2.0   # 2.5 half-widths in z
    r = int(np.ceil(4 * sigma_px))
    shape = np.array(signal.shape)
    # another detection in the patch (and the planes summed) makes its spot look elongated,
    # and a point the fit put there would be dropped below: no fit (a crowded stack's cost)
    from scipy.spatial import cKDTree
    r_um = r * spacing[1]
    scaled = pos * spacing * [r_um / psf_z_um, 1.0, 1.0]
    crowded = np.array([len(js) > 1 for js in cKDTree(scaled).query_ball_point(
        scaled, r_um, p=np.inf)]) if len(pos) else np.zeros(0, bool)
    tested, patches = [], []
    for i, p in enumerate(pos):
        c = np.round(p).astype(int)
        if (snr[i] < min_snr or crowded[i] or np.any(c[1:] - r < 0)
                or np.any(c[1:] + r >= shape[1:])):
            continue
        z0, z1 = max(c[0] - 1, 0), min(c[0] + 2, shape[0])
        tested.append(i)
        patches.append(signal[z0:z1, c[1] - r:c[1] + r + 1, c[2] - r:c[2] + r + 1].sum(0, dtype=np.float64))
    if tested:
        patches = np.array(patches)
        long = elongation(patches, sigma_px=sigma_px) >= 1.2
        tested, patches = [i for i, k in zip(tested, long) if k], patches[long]
    fits = dict(zip(tested, zip(*fit_pairs(patches, sigma_px=sigma_px,
                                                      workers=workers)))) if tested else {}
    out, origin = [], []
    for i, p in enumerate(pos):
        out.append(p), origin.append(i)
        if i not in fits:
            continue
        centres, amps, f = fits[i]
        yx = centres - r + np.round(p[1:]).astype(int)
        sep_um = np.linalg.norm((yx[0] - yx[1]) * spacing[1:])
        if f < min_f or sep_um < min_separation_um or amps.min() < 0.25 * amps.sum():
            continue
        others = np.delete(pos, i, axis=0)
        new = [np.r_[p[0], q] for q in yx]
        # the planes summed see puncta a PSF length above and below: a point that another
        # detection there already explains is not a new punctum
        near = others[np.abs(others[:, 0] - p[0]) * spacing[0] < psf_z_um]
        if len(near) and any(np.min(np.linalg.norm((near[:, 1:] - q[1:]) * spacing[1:], axis=1))
                             < 2 * sigma_um[1] for q in new):
            continue
        out[-1] = new[0]
        out.append(new[1]), origin.append(i)
    return np.array(out).reshape(-1, 3), np.array(origin, int)


def _local_maxima(resp: np.ndarray, half, floor: float) -> np.ndarray:
    """(n, 3) voxels above ``floor`` that are the maximum of their (2*half+1) box (the box
    clipped at the stack's faces).  Only voxels above the floor are examined, against their
    box's voxels nearest first, and a candidate is dropped at its first larger neighbour:
    most fall within their 26 nearest, so a stack crowded with puncta (800,000 voxels above
    the floor) costs a fraction of a full maximum filter."""
    cand = np.argwhere(resp > floor)
    return cand[_box_maxima(resp, cand, half)] if len(cand) else cand


def _box_maxima(resp: np.ndarray, cand: np.ndarray, half) -> np.ndarray:
    """Indices of the voxels ``cand`` (n, 3) that are the maximum of their (2*half+1) box."""
    half = np.asarray(half, int)
    # edge padding: a box clipped at a face compares with the face's voxels, as before
    padded = np.pad(resp, [(h, h) for h in half], mode="edge")
    strides = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1])
    at = (cand + half) @ strides
    vals = resp[tuple(cand.T)]
    offsets = np.argwhere(np.ones(tuple(2 * half + 1), bool)) - half
    offsets = offsets[np.argsort((offsets ** 2).sum(1), kind="stable")][1:]   # nearest first
    keep = np.arange(len(cand))
    flat = padded.reshape(-1)
    for step in offsets @ strides:
        ok = vals >= flat[at + step]
        if not ok.all():
            keep, at, vals = keep[ok], at[ok], vals[ok]
    return keep


_D = DetectParams   # the defaults


def detect_puncta(image: np.ndarray, *, spacing, psf_fwhm_um=_D.psf_fwhm_um,
                  punctum_fwhm_um: float = _D.punctum_fwhm_um, threshold: float = _D.threshold,
                  surround_ratios=_D.surround_ratios,
                  min_separation_um=_D.min_separation_um,
                  close_separation_um=_D.close_separation_um, close_min_snr=_D.close_min_snr,
                  aperture_um=_D.aperture_um,
                  mask: np.ndarray | None = None, morphology: np.ndarray | None = None,
                  morphology_coefficient_value: float | None = None,
                  cell_distance_um: float | None = _D.cell_distance_um,
                  cell_threshold: float = _D.cell_threshold,
                  split_snr: float | None = 15.0, shaft_line_um: float | None = _D.shaft_line_um,
                  shaft_distance_um: float | None = _D.shaft_distance_um,
                  local_noise: str = _D.local_noise,
                  local_threshold: float | None = _D.local_threshold,
                  local_flanks_um=_D.local_flanks_um,
                  brightness_noise: bool = _D.brightness_noise,
                  photon_noise_shaft_snr: float | None = _D.photon_noise_shaft_snr,
                  fine_scale: float | None = _D.fine_scale,
                  fine_apart_sd: float = _D.fine_apart_sd,
                  shoulder_snr: float | None = _D.shoulder_snr,
                  shoulder_apart_sd: float = _D.shoulder_apart_sd,
                  shoulder_near_sd: float = _D.shoulder_near_sd,
                  shoulder_near_snr: float | None = _D.shoulder_near_snr,
                  workers: int = 1) -> pd.DataFrame:
    """Find PSD-95 puncta in one (z, y, x) stack.

    The matched filter (a Gaussian of the punctum's size) minus a wider Gaussian
    (``surround_ratios`` times wider) is run once per ratio and the detections are pooled:
    the narrow surround keeps a dim punctum beside a bright one a separate peak, the wide
    one loses less of an isolated dim punctum's signal.  A detection of a later ratio within
    1.5 punctum SDs of an earlier one is the same punctum and is dropped.  A third filter,
    narrower laterally (``fine_scale``), resolves a dim punctum some 0.6 um beside a bright
    one, which the matched filter's peak swallows: its peaks of SNR ``close_min_snr`` or more
    (in its own noise) farther than ``fine_apart_sd`` punctum SDs from every detection are
    added.

    Parameters
    ----------
    image : (z, y, x) array, the PSD-95 channel
    spacing : voxel size (z, y, x) in um
    psf_fwhm_um : FWHM of the point-spread function (z, y, x) in um
    punctum_fwhm_um : typical punctum diameter (FWHM) before blurring, um
    threshold : minimum peak response in units of the response's noise SD (robust, from the
        stack's interior, and scaled up near the faces where the filter's padding makes
        the response noisier, :func:`noise_gain`)
    surround_ratios : widths of the background Gaussians over the matched one, in order of
        precedence
    min_separation_um : half-size (z, y, x) of the neighbourhood in which a peak must be
        the maximum
    close_separation_um, close_min_snr : a peak that is the maximum only of this smaller
        neighbourhood (two puncta a plane apart and a few pixels aside, each with its own
        peak), or only of the narrower filter (``fine_scale``), is kept when its SNR is at
        least ``close_min_snr``; a weaker one is more often noise on a punctum's flank (or
        in the narrower filter, on a shaft's texture)
    aperture_um : semi-axes of the photometry aperture (see :func:`aperture_photometry`)
    mask : optional boolean (z, y, x); peaks outside it are dropped
    morphology : optional (z, y, x) morphology channel; the part of it that shows in the
        PSD-95 channel (bleed-through, diffuse PSD-95 in the shaft, see
        :func:`morphology_coefficient`) is subtracted before detection, so empty spine heads
        and bright shafts are not taken for puncta
    morphology_coefficient_value : use this coefficient instead of estimating it
    cell_distance_um : with ``morphology``, keep only puncta within this distance (um) of
        the labelled cell (:func:`cell_mask`), which drops puncta of unlabelled neighbouring
        cells and noise in the empty neuropil; None keeps all
    cell_threshold : threshold of :func:`cell_mask`, in noise SDs of the smoothed channel
    shaft_line_um : without ``morphology``, the dendrite's diffuse PSD-95 is estimated from
        the image itself (:func:`~pipeline.core.shaft.line_background`, lines this long, um)
        and subtracted; None: not
    shaft_distance_um : with ``shaft_line_um`` and no ``morphology``, keep only puncta within
        this distance (um) of the dendrite that line outlines
        (:func:`~pipeline.core.shaft.dendrite_mask`; all kept when none is seen); None: keep all
    local_noise : ``auto`` (without ``morphology``), ``always``, ``cell`` or ``never``: the
        threshold is in units of the noise around each peak
        (:func:`~pipeline.core.shaft.local_noise_factor`), not only the stack's, so the
        brighter, noisier shaft does not pass its noise for puncta; ``cell``: that noise
        measured on the labelled cell's voxels only (the morphology channel's
        :func:`cell_mask`), where the shaft's texture is, at ``threshold``
    local_threshold : the threshold in those units (None: ``threshold``) where the noise
        around a peak includes the neuropil's; the shaft's texture is not Gaussian noise, and
        its peaks passed for puncta at 4.5
    local_flanks_um : that noise is measured without the voxels this close (z, y, x, um) to a
        punctum (its flanks); None: with them
    brightness_noise : with ``morphology`` and the stack's noise (``local_noise`` not by
        neighbourhood), each peak's noise is scaled by how much noisier the response is on
        the labelled cell's voxels as bright as the peak's than on the cell's dim 70 %
        (:func:`~pipeline.core.brightness_noise.brightness_noise_curve`, puncta and their
        ``local_flanks_um`` left out): a patchy diffuse PSD-95 in a bright shaft leaves
        bumps that passed for puncta, and the threshold rises there only
    photon_noise_shaft_snr : by neighbourhood, where the shaft subtracted (``shaft_line_um``)
        stands this many noise SDs or more (``shaft_snr`` below), each peak's noise is at
        least the photon noise of the image there
        (:func:`~pipeline.core.shaft.photon_noise_map`): the openings leave a ridge along a
        bright shaft that the neighbourhood's SD leaves out as puncta; and the matched
        filter's peaks that are bumps on that ridge are dropped
        (:func:`~pipeline.core.shaft.ridge_like`); None: not
    fine_scale : lateral SD of the narrower filter over the matched one's; None: not run.
        Not run where ``shaft_line_um`` was subtracted (its openings notch large heads,
        which this filter splits)
    fine_apart_sd : its peaks this far (in punctum SDs per axis) or nearer to a detection
        are that punctum
    shoulder_snr : puncta on a brighter neighbour's flank: the first ratio's response with
        every detection's own response taken out (:mod:`~pipeline.core.shoulders`) is
        searched again, and its peaks of this SNR or more are added; None: not run (nor
        where ``shaft_line_um`` was subtracted)
    shoulder_apart_sd : ... when farther than this (in punctum SDs per axis) from every
        detection (nearer, the residual is the model's error at that punctum)
    shoulder_near_sd, shoulder_near_snr : ... and from ``shoulder_near_sd`` to
        ``shoulder_apart_sd``, at this higher SNR (a neighbour 0.6 um aside on a dense shaft
        is there; so is the model's error beside a punctum on a textured shaft); None: not
    split_snr : detections this bright or brighter are tested for being two puncta closer
        than the filters resolve (:func:`split_pairs`; the two then share the peak and SNR
        of the detection they came from); None: no test
    workers : threads for the filters, the shaft's openings, each filter's peaks, the pair
        fits and the photometry (scipy and numpy release the GIL in them); the result does
        not depend on it

    Returns
    -------
    DataFrame, one row per punctum, brightest first: ``z, y, x`` (sub-voxel, voxel units),
    ``peak`` (response), ``snr`` (peak over the response's noise SD there),
    ``morphology_coefficient`` (subtracted share of the morphology channel), ``intensity``,
    ``background`` (aperture photometry), ``size_um`` (the punctum's lateral image FWHM in um,
    from the peak's curvature, :func:`image_fwhm_um`), ``cell_distance_um`` (to the labelled cell, or without ``morphology``
    to the dendrite the PSD-95 channel outlines; NaN when neither is known),
    ``texture_factor`` (the session's: how many times ``brightness_noise`` raised the
    threshold on the cell's brightest 10 %, :func:`~pipeline.core.brightness_noise.texture_factor`;
    NaN without it), ``shaft_snr`` (the session's, without ``morphology``: the subtracted
    shaft's brightest part in units of the stack's noise SD,
    :func:`~pipeline.core.shaft.shaft_snr`; NaN where no shaft was subtracted).
    """
    spacing = np.asarray(spacing, float)
    sigma_um = punctum_sigma_um(psf_fwhm_um, punctum_fwhm_um)
    sigma_vox = sigma_um / spacing
    psf_vox = punctum_sigma_um(psf_fwhm_um, 0.0) / spacing
    signal = image.astype(np.float32)
    k_morph = 0.0
    foreign = None      # where the morphology channel shows what PSD-95 does not
    shaft = None        # without morphology: the diffuse PSD-95 that outlines the dendrite
    shaft_level = np.nan    # ... and how bright it is (its top 0.1 %, in noise SDs)
    if morphology is not None:
        k_morph = (morphology_coefficient(image, morphology)
                   if morphology_coefficient_value is None else morphology_coefficient_value)
        foreign = (foreign_morphology(image, morphology, k_morph, spacing=spacing)
                   if k_morph > 0 else None)
        signal = remove_bleedthrough(image, morphology, k_morph, foreign=foreign)
    elif shaft_line_um:
        shaft = line_background(image, spacing=spacing, length_um=shaft_line_um,
                                workers=workers)
        shaft_level = shaft_snr(shaft_brightness(shaft), image)
        signal -= shaft
    notched = shaft is not None
    # a bright shaft's photon noise, which its leftover ridge hides from the neighbourhood's
    # SD, and a test of each peak for a bump on that ridge (benchmarks/detection_benchmark.py,
    # median F1 on single_channel_bright_shaft: 0.694, 0.791 with the photon noise, 0.884
    # with both; per-session recall 0.96-0.99 before, 0.93-0.98 with either: a dim punctum is
    # held to the bright shaft's photon noise).  Only on a bright shaft: the photon noise used
    # on every session cost recall where puncta crowd a dim shaft and add their own photon
    # noise (single_channel 0.944 -> 0.925, single_channel_PV 0.928 -> 0.890), and the ridge
    # test takes a chain of puncta along a shaft for a ridge (10-26 of 623 true puncta of
    # single_channel_PV in scratch measurements)
    photon = (photon_noise_map(image, sigma_vox=sigma_vox)
              if notched and photon_noise_shaft_snr is not None
              and shaft_level >= photon_noise_shaft_snr else None)
    by_neighbourhood = (local_noise in ("always", "cell")
                        or (local_noise == "auto" and morphology is None))
    # "cell": the noise around each peak measured on the labelled cell's voxels only (the
    # shaft's own texture and photon noise, which the neuropil around it dilutes), at the
    # threshold; local_threshold is for the noise of a neighbourhood that includes neuropil
    by_brightness = brightness_noise and morphology is not None and not by_neighbourhood
    cell_voxels = (cell_mask(morphology, spacing=spacing, threshold=cell_threshold)
                   if (local_noise == "cell" or by_brightness) and morphology is not None
                   else None)
    noise_where = cell_voxels if local_noise == "cell" else None
    # an object in the morphology channel only is bright and as noisy as the neuropil:
    # measured, it would flatten the curve of the cell's own brightness
    bright_where = (None if not by_brightness else cell_voxels if foreign is None
                    else cell_voxels & ~foreign)
    # the morphology channel at the matched filter's scale: a peak's brightness on the cell
    brightness = (ndimage.gaussian_filter(np.asarray(morphology, np.float32), sigma_vox,
                                          mode="nearest") if by_brightness else None)
    if by_neighbourhood and noise_where is None and local_threshold is not None:
        threshold = local_threshold     # thresholds in the local units
    half, close_half = (np.maximum(np.round(np.asarray(sep) / spacing).astype(int), 1)
                        for sep in (min_separation_um, close_separation_um))
    close_half = np.minimum(close_half, half)

    noises = {}     # (surround ratio, threshold) -> the response's noise SD in the interior
    textures = {}   # (surround ratio, threshold) -> the matched filter's texture_factor

    def noise_at(resp, noise, peaks, sig_vox, ratio, key=None):
        """The response's noise SD at integer ``peaks``: the interior's, scaled near the
        faces and, by neighbourhood, to the noise around each (or, by brightness, to the
        cell's noise as bright as each; its texture factor kept under ``key``)."""
        out = noise * noise_gain_at(noise_gain(resp.shape, sigma_vox=sig_vox, ratio=ratio), peaks)
        if by_neighbourhood:
            factor = local_noise_factor(resp, noise, peaks, spacing=spacing,
                                        flanks_um=local_flanks_um, where=noise_where,
                                        workers=workers)
            if photon is not None and sig_vox is sigma_vox and len(peaks):
                factor = np.maximum(factor, photon[tuple(np.asarray(peaks).T)])
            out *= factor
        elif brightness is not None and len(peaks):
            puncta = puncta_and_flanks(resp, PUNCTA_SNR * noise, spacing=spacing,
                                       flanks_um=local_flanks_um or (0.0, 0.0, 0.0))
            curve = brightness_noise_curve(resp, brightness, bright_where, exclude=puncta)
            out *= brightness_noise_factor(curve, brightness[tuple(np.asarray(peaks).T)])
            if key is not None:
                textures[key] = texture_factor(curve)
        return out

    def shoulder_peaks(resp, pos, *, ratio, noise):
        """Peaks of ``resp`` (the first ratio's response) with the detections at ``pos``
        taken out (:mod:`~pipeline.core.shoulders`), of SNR ``shoulder_snr`` or more, farther
        than ``shoulder_apart_sd`` punctum SDs from every detection; as ``peaks_of``."""
        from scipy.spatial import cKDTree

        at = np.clip(np.round(pos).astype(int), 0, np.array(resp.shape) - 1)
        _, sd = _subvoxel(resp, at)
        # the blob: the PSF (the matched filter's SD) widened by the punctum's own size
        filters = dict(base_vox=psf_vox, centre_vox=sigma_vox, surround_vox=ratio * sigma_vox,
                       spacing=spacing)
        size = own_size_um(sd, centre_vox=sigma_vox, ratio=ratio, psf_vox=psf_vox,
                           spacing=spacing)
        resp -= blob_responses(resp.shape, pos, resp[tuple(at.T)], size, **filters)
        peaks = _local_maxima(resp, half, 0.95 * shoulder_snr * noise)
        # nearer than shoulder_apart_sd, down to shoulder_near_sd, at shoulder_near_snr
        nearest, near_snr = ((shoulder_apart_sd, shoulder_snr) if shoulder_near_snr is None
                             else (shoulder_near_sd, shoulder_near_snr))
        d, _ = cKDTree(pos * spacing / sigma_um).query(peaks * spacing / sigma_um)
        peaks, d = peaks[d > nearest], d[d > nearest]
        if mask is not None:
            inside = mask[tuple(peaks.T)]
            peaks, d = peaks[inside], d[inside]
        peak_noise = noise_at(resp, noise, peaks, sigma_vox, ratio)
        bar = np.where(d > shoulder_apart_sd, shoulder_snr, near_snr)
        keep = resp[tuple(peaks.T)] > bar * peak_noise
        peaks, peak_noise = peaks[keep], peak_noise[keep]
        offsets, sd = _subvoxel(resp, peaks)
        peak = resp[tuple(peaks.T)]
        return peaks + offsets, peak, peak / peak_noise, fwhm_of(sd, sigma_vox, ratio)

    def fwhm_of(sd, centre_vox, ratio):
        """Each peak's punctum's lateral image FWHM (um), from its parabola's SDs ``sd``
        in the response of the filter of SDs ``centre_vox`` and surround ``ratio``."""
        return image_fwhm_um(sd, centre_vox=centre_vox, ratio=ratio, psf_vox=psf_vox,
                             psf_fwhm_um=psf_fwhm_um, spacing=spacing)

    def peaks_of(centre, resp, ratio, sig_vox=sigma_vox, least=threshold):
        """(positions, peak, snr, lateral image FWHM in um) of the DoG ``centre - resp`` (surround
        ``ratio`` times the centre's SDs ``sig_vox``, computed in ``resp``'s place) with an
        SNR of at least ``least``."""
        np.subtract(centre, resp, out=resp)
        # the noise SD of the interior, where the padding does not reach
        margin = np.ceil(3 * ratio * sig_vox).astype(int)
        margin = np.where(np.array(resp.shape) > 4 * margin, margin, 0)
        noise = robust_noise(resp[tuple(slice(m, n - m) for m, n in zip(margin, resp.shape))])
        noises[ratio, least] = noise
        # the gain dips just below 1 one voxel in from a face
        peaks = _local_maxima(resp, close_half, 0.95 * least * noise)
        tops_all = np.zeros(len(peaks), bool)
        tops_all[_box_maxima(resp, peaks, half)] = True
        peak_noise = noise_at(resp, noise, peaks, sig_vox, ratio,
                              key=(ratio, least) if sig_vox is sigma_vox else None)
        level = np.where(tops_all, least, max(least, close_min_snr))
        keep = resp[tuple(peaks.T)] > level * peak_noise
        if mask is not None:
            keep &= mask[tuple(peaks.T)]
        peaks, peak_noise = peaks[keep], peak_noise[keep]
        offsets, sd = _subvoxel(resp, peaks)
        if photon is not None and sig_vox is sigma_vox and len(peaks):
            # on a bright shaft, bumps on the ridge its openings left are not puncta
            puncta = ~ridge_like(resp, peaks + offsets, spacing=spacing, noise=noise)
            peaks, peak_noise, offsets, sd = (v[puncta] for v in (peaks, peak_noise, offsets, sd))
        peak = resp[tuple(peaks.T)]
        return peaks + offsets, peak, peak / peak_noise, fwhm_of(sd, sig_vox, ratio)

    from concurrent.futures import ThreadPoolExecutor

    # the filters, the masks and each ratio's peaks side by side (scipy's filters and numpy's
    # whole-array work release the GIL); the results do not depend on the threads
    with ThreadPoolExecutor(max(int(workers), 1)) as pool:
        on_cell = (pool.submit(cell_mask, morphology, spacing=spacing, threshold=cell_threshold)
                   if morphology is not None and cell_distance_um is not None
                   and cell_voxels is None else None)
        on_dendrite = (pool.submit(dendrite_mask, shaft, spacing=spacing)
                       if shaft is not None and shaft_distance_um is not None else None)
        del shaft           # freed as soon as the mask is made
        blurred = list(pool.map(lambda r: ndimage.gaussian_filter(signal, sigma_vox * r, mode="nearest"),
                                (1.0, *surround_ratios)))
        matched = blurred.pop(0)
        found = list(pool.map(lambda r, b: peaks_of(matched, b, r), surround_ratios, blurred))
        # the first ratio's response; not where the shaft's line openings were subtracted,
        # whose notches in large heads it takes for shoulders (single_channel regime: median
        # F1 0.944 -> 0.887, 7 sessions above 10 % false; benchmarks/detection_benchmark.py
        # --regimes single_channel --detect shoulder_snr=6 --detect shoulder_apart_sd=4 at
        # commit c8ada65, where it ran there)
        first = blurred[0] if shoulder_snr is not None and not notched else None
        del blurred, matched
        # not where the shaft's line openings were subtracted: they notch a large head beside
        # the shaft and move its matched peak, and this filter splits it (single_channel
        # regime: 4 false, none found)
        fine = []
        if fine_scale and not notched:
            # a narrower centre (lateral only: the misses it is for lie side by side) resolves
            # a dim punctum some 0.6 um beside a bright one, a shoulder of the matched peak
            fine_vox = sigma_vox * [1.0, fine_scale, fine_scale]
            centre, surround = pool.map(
                lambda r: ndimage.gaussian_filter(signal, fine_vox * r, mode="nearest"),
                (1.0, surround_ratios[0]))
            fine = [peaks_of(centre, surround, surround_ratios[0], fine_vox,
                             max(threshold, close_min_snr))]
            del centre, surround
        cell = (on_cell.result() if on_cell is not None
                else cell_voxels if cell_distance_um is not None else None)
        dendrite = on_dendrite.result() if on_dendrite is not None else None
    # later ratios' detections within 1.5 punctum SDs of an earlier one, and the narrower
    # filter's within fine_apart_sd, are the same punctum
    pos, peak, snr, fwhm = found[0]
    for more, apart in [(f, 1.5) for f in found[1:]] + [(f, fine_apart_sd) for f in fine]:
        if len(pos) and len(more[0]):
            from scipy.spatial import cKDTree
            d, _ = cKDTree(pos * spacing / sigma_um).query(more[0] * spacing / sigma_um)
            more = tuple(v[d > apart] for v in more)
        pos, peak, snr, fwhm = (np.concatenate([a, b]) for a, b in zip((pos, peak, snr, fwhm), more))
    if first is not None and len(pos):
        more = shoulder_peaks(first, pos, ratio=surround_ratios[0],
                              noise=noises[surround_ratios[0], threshold])
        pos, peak, snr, fwhm = (np.concatenate([a, b]) for a, b in zip((pos, peak, snr, fwhm), more))
        del first
    if split_snr is not None and len(pos):
        pos, origin = split_pairs(signal, pos, snr, spacing=spacing, sigma_um=sigma_um,
                                  min_snr=split_snr, workers=workers)
        peak, snr, fwhm = peak[origin], snr[origin], fwhm[origin]
    to_cell = np.full(len(pos), np.nan)
    near, within = (cell, cell_distance_um) if cell is not None else (dendrite, shaft_distance_um)
    if near is not None and len(pos):
        to_cell = distance_to_mask(near, pos, spacing=spacing)
        keep = to_cell <= within
        pos, peak, snr, fwhm, to_cell = pos[keep], peak[keep], snr[keep], fwhm[keep], to_cell[keep]
    cols = ["z", "y", "x", "peak", "morphology_coefficient", "snr", "intensity", "background",
            "size_um", "cell_distance_um", "texture_factor", "shaft_snr"]
    if len(pos) == 0:
        return pd.DataFrame(columns=cols)
    phot = aperture_photometry(signal, pos, spacing=spacing, radius_um=aperture_um,
                               workers=workers)
    out = pd.DataFrame({"z": pos[:, 0], "y": pos[:, 1], "x": pos[:, 2], "peak": peak,
                        "morphology_coefficient": k_morph, "snr": snr,
                        "intensity": phot["intensity"].to_numpy(),
                        "background": phot["background"].to_numpy(), "size_um": fwhm,
                        "cell_distance_um": to_cell,
                        # the session's, as morphology_coefficient: the first ratio's matched
                        # response's threshold factor on the cell's brightest 10 %
                        "texture_factor": textures.get((surround_ratios[0], threshold), np.nan),
                        # the session's: the subtracted shaft's brightness in noise SDs
                        # (NaN where no shaft was subtracted)
                        "shaft_snr": shaft_level})
    return out.sort_values("snr", ascending=False, ignore_index=True)


def detect_session(stack: np.ndarray, *, spacing, params: DetectParams = DetectParams(),
                   workers: int = 1, share: float | None = None) -> pd.DataFrame:
    """The detect stage on one ingested (c, z, y, x) stack: :func:`detect_puncta` on channel 0
    with channel 1, if any, as the morphology; adds positions in um (``z_um, y_um, x_um``).
    ``share``: the morphology share to subtract, as the channels stage chose it for this
    session (:func:`pipeline.stages.channels.pooled_shares`); None estimates it here."""
    opts = as_options(params)
    for name in ("share_departure", "departing_share"):   # the channels stage's
        opts.pop(name)
    morphology = stack[1] if stack.shape[0] > 1 else None
    if not opts.pop("subtract_morphology"):
        opts["morphology_coefficient_value"] = 0.0   # the channel still gives the cell mask
    elif share is not None:
        opts["morphology_coefficient_value"] = float(share)
    puncta = detect_puncta(stack[0], spacing=spacing, morphology=morphology, workers=workers,
                           **opts)
    spacing = np.asarray(spacing)
    for ax, col in enumerate(("z", "y", "x")):
        puncta[f"{col}_um"] = puncta[col] * spacing[ax]
    return puncta


def single_channel_choice(puncta: pd.DataFrame, params: DetectParams) -> str:
    """For a session without a morphology channel, whether the dendrite its PSD-95 outlines
    was seen and confined the puncta (the cell's choices are in the channels stage's note)."""
    if not params.shaft_line_um or params.shaft_distance_um is None:
        return "PSD-95 alone: puncta kept anywhere (no dendrite mask asked for)"
    if len(puncta) and puncta["cell_distance_um"].isna().all():
        return "PSD-95 alone: no dendrite seen in the PSD-95 channel; puncta kept anywhere"
    return (f"PSD-95 alone: puncta kept within {params.shaft_distance_um:g} um of the dendrite "
            "the PSD-95 channel outlines")


def detect_spine_session(stack: np.ndarray, *, spacing,
                         params: SpinesParams = SpinesParams()) -> pd.DataFrame:
    """The detect stage on a cell whose synapses are spines (sheet ``target: spines``):
    :func:`~pipeline.core.spines.detect_spines` on channel 0 (the fill), in the columns the
    puncta table has (``intensity`` the head above the shaft, ``background`` the shaft,
    ``size_um`` the head size the filter assumed) plus ``weight`` and ``core_ratio``."""
    options = as_options(params)
    options.pop("shadow_snr")                   # the weights stage's, not the detector's
    options.pop("shadow_necks")
    heads = detect_spines(stack[0], spacing=spacing, **options)
    spacing = np.asarray(spacing, float)
    out = heads.assign(morphology_coefficient=0.0, intensity=heads["head"],
                       background=heads["shaft"], size_um=params.head_fwhm_um,
                       cell_distance_um=np.nan)
    for ax, col in enumerate(("z", "y", "x")):
        out[f"{col}_um"] = out[col] * spacing[ax]
    return out.drop(columns=["head", "shaft"])
