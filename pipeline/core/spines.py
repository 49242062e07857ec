"""Spine heads in a cell fill (one channel): bright compact blobs beside the dendrite's shaft.

In a fill the shaft is the brightest structure and as wide as a spine head: a blob filter
answers to it all along its length (the puncta detector, measured on the simulator's
``spines`` regime: 55 % of its detections false).  Here:

- the stack is matched-filtered at a head's size and projected along z (the largest value of
  each column, and the plane it is in: the head's depth).  A dendrite that climbs through the
  planes is one ridge in the projection, which a straight line in one plane does not follow;
- :func:`shaft_orientation`: the direction of the dendrite at each pixel, from the structure
  tensor at a few microns (the shaft dominates it; beside the shaft it is the shaft's);
- :func:`along_shaft_median`: the median along a line in that direction, longer than twice a
  head.  A head is less than half of the line and is left out; the shaft is kept, also beside a
  head (a line in every direction, the largest taken, would run from a head into the shaft and
  keep the head);
- heads are the peaks of what is left (a difference of Gaussians), in units of the noise
  there: photon noise grows with the fill, so the noise of the empty neuropil is scaled by the
  variance the stack shows at the shaft's level (:func:`variance_curve`);
- peaks on the shaft's core (the shaft estimate above ``core_share`` of its largest value
  nearby) are dropped: there the estimate's error is larger than a small head;
- :func:`neck_peaks`: a dimmer peak on the line from a head to the shaft is that spine's neck
  (a neck 0.5-2 um long is as wide as the head filter and holds fill), not a second spine.

:func:`head_over_shaft` gives each head's weight as MapManager reports it: the head's
intensity over the shaft's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .fine_heads import fine_heads
from .noise import robust_noise
from .optics import FWHM_TO_SIGMA, PSF_FWHM_UM
from .shaft import line_footprint


#: second heads (``fine_fwhm_um``): of two closer than this (um) the weaker is dropped, and at
#: most this many beside one head found
FINE_APART_UM = 0.5
FINE_PER_HEAD = 2
#: ``inner_reach_um``: a peak counts as nearer the shaft's core than a head when it is nearer
#: by more than this (um); a second head beside a first lies about as far out and is kept
INNER_MARGIN_UM = 0.2


def head_sigma_vox(spacing, head_fwhm_um: float, psf_fwhm_um=PSF_FWHM_UM) -> np.ndarray:
    """Gaussian SD (z, y, x voxels) of a head of ``head_fwhm_um`` seen through the PSF."""
    return np.sqrt((np.asarray(psf_fwhm_um) * FWHM_TO_SIGMA) ** 2
                   + (head_fwhm_um * FWHM_TO_SIGMA) ** 2) / np.asarray(spacing, float)


def shaft_orientation(image2d: np.ndarray, *, pixel_um: float, gradient_um: float = 0.3,
                      window_um: float = 1.5) -> np.ndarray:
    """Angle (radians from the x axis, y down) along which ``image2d`` varies least, from its
    structure tensor (gradients at ``gradient_um``, averaged over ``window_um``)."""
    g, w = gradient_um / pixel_um, window_um / pixel_um
    gy = ndimage.gaussian_filter(image2d, g, order=(1, 0))
    gx = ndimage.gaussian_filter(image2d, g, order=(0, 1))
    jxx = ndimage.gaussian_filter(gx * gx, w)
    jyy = ndimage.gaussian_filter(gy * gy, w)
    jxy = ndimage.gaussian_filter(gx * gy, w)
    return 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2   # across the strongest gradient


def along_shaft_median(image2d: np.ndarray, angle: np.ndarray, *, length_px: int,
                       directions: int) -> np.ndarray:
    """At each pixel, the median of ``image2d`` along a line ``length_px`` long in the
    direction ``angle`` there (quantised to ``directions``)."""
    which = np.round(np.mod(angle, np.pi) / (np.pi / directions)).astype(int) % directions
    out = np.zeros(image2d.shape, np.float32)
    for k in np.unique(which):
        line = line_footprint(length_px, np.pi * k / directions)[0]
        here = which == k
        out[here] = ndimage.median_filter(image2d, footprint=line, mode="nearest")[here]
    return out


def variance_curve(image: np.ndarray, *, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(mean, noise variance) pairs of ``image`` over its range: the variance of differences
    between neighbours along x (structure smooth at one voxel cancels), the top tenth of the
    squared differences left out (edges) and the truncation corrected, in bins of the local
    mean.  Photon noise makes the variance grow with the mean."""
    im = np.asarray(image, np.float32)[..., ::2, :]
    diff = ((im[..., 1:] - im[..., :-1]) / np.sqrt(2)).ravel()
    mean = ndimage.uniform_filter1d(im, 2, axis=-1)[..., 1:].ravel()
    lo, hi = np.percentile(mean, [1, 99.95])
    which = np.digitize(mean, np.linspace(lo, hi, bins + 1)) - 1
    means, variances = [], []
    for k in range(bins):
        d = diff[which == k]
        if len(d) < 100:
            continue
        sq = d * d
        kept = sq[sq <= np.percentile(sq, 90)]
        means.append(float(mean[which == k].mean()))
        variances.append(float(kept.mean()) / 0.6230)   # E[x^2 | |x| < 1.645 sd] = 0.623 sd^2
    return np.array(means), np.maximum.accumulate(np.array(variances))


def photon_factor(level, means, variances, *, neuropil: float) -> np.ndarray:
    """How much noisier the image is at ``level`` above ``neuropil`` than at the neuropil
    (the square root of :func:`variance_curve`'s variances there, at least 1).  The neuropil's
    variance is floored at the smallest positive one the curve shows: a stack whose
    background was subtracted and clipped at zero (or one without noise) has none there,
    and dividing by it would leave no head standing."""
    level = np.maximum(np.asarray(level, float), 0)
    positive = variances[variances > 0]
    if len(positive) == 0:
        return np.ones(level.shape)
    base = max(float(np.interp(neuropil, means, variances)), float(positive.min()))
    return np.sqrt(np.maximum(np.interp(neuropil + level, means, variances), base) / base)


def project(image: np.ndarray, *, spacing, head_fwhm_um: float):
    """(matched-filtered projection, plane of each pixel's largest value, the filtered stack)
    of a (z, y, x) fill."""
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32),
                                     head_sigma_vox(spacing, head_fwhm_um))
    depth = smooth.argmax(0)
    return np.take_along_axis(smooth, depth[None], 0)[0], depth, smooth


def shaft_estimate(projection: np.ndarray, *, pixel_um: float, line_um: float,
                   directions: int, orientation_um: float) -> np.ndarray:
    """The dendrite's shaft in a projection: the median along the shaft's own direction."""
    angle = shaft_orientation(projection, pixel_um=pixel_um, window_um=orientation_um)
    length = max(int(round(line_um / pixel_um)) | 1, 3)
    return along_shaft_median(projection, angle, length_px=length, directions=directions)


def head_maps(image, *, spacing, head_fwhm_um, surround_ratio, line_um, directions,
               orientation_um, core_window_um):
    """What detection, :func:`spine_zone` and :func:`head_over_shaft` read off a fill:
    (projection, plane of each pixel's largest value, the filtered stack, projection above the
    shaft estimate, its difference-of-Gaussians response, that response's robust noise, the
    shaft estimate above the neuropil, the core window in pixels).  The weights stage computes
    it once per session and hands it to both (``maps``): the filtering and the shaft's
    median along 16 directions are most of their cost."""
    proj, depth, smooth = project(image, spacing=spacing, head_fwhm_um=head_fwhm_um)
    shaft = shaft_estimate(proj, pixel_um=spacing[1], line_um=line_um, directions=directions,
                           orientation_um=orientation_um)
    head = proj - shaft
    lateral = head_sigma_vox(spacing, head_fwhm_um)[1:]
    response = head - ndimage.gaussian_filter(head, lateral * np.sqrt(surround_ratio ** 2 - 1))
    level = shaft - float(np.median(shaft))
    near = max(int(round(core_window_um / spacing[1])) | 1, 3)
    return proj, depth, smooth, head, response, robust_noise(response), level, near


def detect_spines(image: np.ndarray, *, spacing, head_fwhm_um: float, threshold: float,
                  surround_ratio: float, line_um: float, directions: int,
                  orientation_um: float, core_share: float, core_window_um: float,
                  min_separation_um: float, shoulder_snr: float | None,
                  shoulder_apart_um: float, neck_ratio: float | None,
                  neck_width_um: float, fine_fwhm_um: float | None, fine_snr: float,
                  fine_reach_um, inner_reach_um: float | None,
                  inner_depth_um: float) -> pd.DataFrame:
    """Spine heads in one (z, y, x) stack of a cell fill (the settings' defaults and
    meanings: :class:`pipeline.params.SpinesParams`).

    Parameters
    ----------
    image : (z, y, x) array, the fill
    spacing : voxel size (z, y, x), um
    head_fwhm_um : typical head diameter, um (with the PSF, the matched filter)
    threshold : peak response over the noise there (neuropil noise scaled by photon noise)
    surround_ratio : the background Gaussian's width over the matched one (lateral)
    line_um, directions, orientation_um : the shaft estimate (:func:`shaft_estimate`)
    core_share, core_window_um : peaks where the shaft estimate is above ``core_share`` of
        its largest value within ``core_window_um`` are on the shaft, and dropped
    min_separation_um : a peak tops its neighbours within this lateral distance
    shoulder_snr, shoulder_apart_um : a head on a brighter one's flank: the response with
        every peak's own taken out (:mod:`~pipeline.core.shoulders`, a blob of the size its
        curvature gives) is searched again for peaks of this SNR farther than
        ``shoulder_apart_um`` from every peak; None: not
    neck_ratio, neck_width_um : a peak whose response is below ``neck_ratio`` times a head's,
        within ``neck_width_um`` of the line from that head to the shaft's core and between
        them, is the head's neck and dropped (:func:`neck_peaks`); None: kept
    inner_reach_um, inner_depth_um : a peak within ``inner_reach_um`` of a head of higher SNR,
        nearer the shaft's core than that head and within ``inner_depth_um`` of the core (the
        neck's base, the shaft's edge under a head) is dropped (:func:`inner_peaks`); None: kept
    fine_fwhm_um, fine_snr, fine_reach_um : a head the matched filter merged with a brighter
        neighbour: the fill filtered for heads this wide is searched for peaks of this SNR
        between ``fine_reach_um`` from the nearest head found, off the shaft's core and off a
        found head's neck (:func:`~pipeline.core.fine_heads.fine_heads`; their ``snr`` is the
        fine filter's); None: not searched

    Returns
    -------
    DataFrame, one row per head, brightest first: ``z, y, x`` (voxel units; z the plane of
    the head's largest filtered value, refined by a parabola), ``peak`` (response), ``snr``,
    ``head`` (projection above the shaft estimate), ``shaft`` (the shaft's largest value
    within twice ``core_window_um``, above the neuropil), ``weight`` (head over shaft),
    ``core_ratio`` (shaft estimate there over that largest value).
    """
    spacing = np.asarray(spacing, float)
    _, depth, smooth, head, response, noise, level, near = head_maps(
        image, spacing=spacing, head_fwhm_um=head_fwhm_um, surround_ratio=surround_ratio,
        line_um=line_um, directions=directions, orientation_um=orientation_um,
        core_window_um=core_window_um)
    lateral = head_sigma_vox(spacing, head_fwhm_um)[1:]
    shaft_near = ndimage.maximum_filter(level, size=near)
    shaft_ref = _shaft_reference(level, near)
    half = max(int(round(min_separation_um / spacing[1])), 1)
    top = ndimage.maximum_filter(response, size=2 * half + 1, mode="nearest")
    peaks = np.argwhere((response >= top) & (response > threshold * noise))
    peak, least = response[tuple(peaks.T)], np.full(len(peaks), float(threshold))
    if shoulder_snr is not None and len(peaks):
        more, more_peak = _shoulder_peaks(
            response, peaks, noise * shoulder_snr, half=half,
            apart_px=shoulder_apart_um / spacing[1], base_vox=lateral,
            surround_vox=lateral * np.sqrt(surround_ratio ** 2 - 1), spacing=spacing[1:])
        peaks, peak = np.concatenate([peaks, more]), np.concatenate([peak, more_peak])
        least = np.concatenate([least, np.full(len(more), float(shoulder_snr))])
    at = tuple(peaks.T)
    photon = photon_factor(level[at], *variance_curve(image), neuropil=float(np.median(image)))
    snr = peak / (noise * photon)
    core_ratio = level[at] / np.maximum(shaft_near[at], 1e-12)
    # a head rises above the shaft estimate (the DoG also peaks beside a dip in the fill)
    keep = (snr > least) & (core_ratio < core_share) & (head[at] > 0)
    peaks, snr, core_ratio, peak = peaks[keep], snr[keep], core_ratio[keep], peak[keep]
    fine = fine_fwhm_um is not None and len(peaks) > 0
    # the shaft's core, for the neck rule (of found heads, and of the fine search's) and the
    # foot rule
    inner = inner_reach_um is not None and len(peaks) > 1
    core = (shaft_core(level, shaft_ref, core_share=core_share, floor=threshold * noise,
                       min_pixels=int(round(line_um / spacing[1])))
            if (neck_ratio is not None and (len(peaks) > 1 or fine)) or inner else None)
    if neck_ratio is not None and len(peaks) > 1:
        keep = ~neck_peaks(peaks, peak, core, ratio=neck_ratio,
                           width_px=neck_width_um / spacing[1], max_length_px=near)
        peaks, snr, core_ratio, peak = peaks[keep], snr[keep], core_ratio[keep], peak[keep]
    if inner:       # (fewer than two peaks left after the neck rule: none dropped)
        keep = ~inner_peaks(peaks, snr, core, reach_px=inner_reach_um / spacing[1],
                            margin_px=INNER_MARGIN_UM / spacing[1],
                            depth_px=inner_depth_um / spacing[1])
        peaks, snr, core_ratio, peak = peaks[keep], snr[keep], core_ratio[keep], peak[keep]
    if fine:
        more, more_snr = _second_heads(
            image, peaks, response, level, shaft_near, core, spacing=spacing,
            fine_fwhm_um=fine_fwhm_um, fine_snr=fine_snr, fine_reach_um=fine_reach_um,
            surround_ratio=surround_ratio, core_share=core_share,
            min_separation_um=min_separation_um, neck_ratio=neck_ratio,
            neck_width_um=neck_width_um, near=near, line_um=line_um, directions=directions,
            orientation_um=orientation_um)
        at = tuple(more.T)
        peaks, snr = np.concatenate([peaks, more]), np.concatenate([snr, more_snr])
        core_ratio = np.concatenate([core_ratio, level[at] / np.maximum(shaft_near[at], 1e-12)])
        peak = np.concatenate([peak, response[at]])
    at = tuple(peaks.T)
    z = depth[at].astype(float) + _parabola_offset(smooth, depth, peaks)
    out = pd.DataFrame({"z": z, "y": peaks[:, 0].astype(float), "x": peaks[:, 1].astype(float),
                        "peak": peak, "snr": snr, "head": head[at],
                        "shaft": shaft_ref[at], "weight": head[at] / np.maximum(shaft_ref[at], 1e-12),
                        "core_ratio": core_ratio})
    return out.sort_values("snr", ascending=False, ignore_index=True)


def _second_heads(image, peaks, response, level, shaft_near, core, *, spacing,
                  fine_fwhm_um, fine_snr, fine_reach_um, surround_ratio, core_share,
                  min_separation_um, neck_ratio, neck_width_um, near, line_um, directions,
                  orientation_um):
    """:func:`~pipeline.core.fine_heads.fine_heads` beside ``peaks`` (the heads found), on
    the fill's projection filtered at ``fine_fwhm_um`` minus its own shaft estimate; the
    neck rule judged on the head scale's ``response`` over found heads and candidates."""
    fine_proj = project(image, spacing=spacing, head_fwhm_um=fine_fwhm_um)[0]
    # the shaft in the fine projection itself: the head scale's estimate, smoother, lies
    # below the fine projection along the shaft's edges and leaves peaks there
    fine_shaft = shaft_estimate(fine_proj, pixel_um=spacing[1], line_um=line_um,
                                directions=directions, orientation_um=orientation_um)
    on_neck = None
    if neck_ratio is not None and core is not None:
        def on_neck(cand):
            both = np.concatenate([peaks, cand])
            return neck_peaks(both, response[tuple(both.T)], core, ratio=neck_ratio,
                              width_px=neck_width_um / spacing[1],
                              max_length_px=near)[len(peaks):]
    return fine_heads(fine_proj - fine_shaft, peaks, pixel_um=spacing[1],
                      centre_px=head_sigma_vox(spacing, fine_fwhm_um)[1:],
                      surround_ratio=surround_ratio, threshold=fine_snr,
                      reach_um=tuple(fine_reach_um), apart_um=FINE_APART_UM,
                      per_head=FINE_PER_HEAD, min_separation_um=min_separation_um,
                      on_core=level / np.maximum(shaft_near, 1e-12) >= core_share,
                      on_neck=on_neck)


def shaft_core(level: np.ndarray, shaft_ref: np.ndarray, *, core_share: float,
               floor: float, min_pixels: int) -> np.ndarray:
    """The shaft's core in a projection: the shaft estimate (``level``, above the neuropil)
    at ``core_share`` or more of its largest value within twice the core window
    (``shaft_ref``; a window that reaches past a head on a long neck to its shaft) and above
    ``floor`` (the detection threshold's noise: no core in the empty neuropil), in pieces of
    ``min_pixels`` or more (a shaft is long; a speck at the field's edge is not one)."""
    core = (level >= core_share * shaft_ref) & (level > floor)
    labels, n = ndimage.label(core)
    if n == 0:
        return core
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    return (sizes >= min_pixels)[labels] & core


def maps_core(maps, *, pixel_um: float, core_share: float, threshold: float,
              line_um: float) -> np.ndarray:
    """The shaft's core (:func:`shaft_core`) from :func:`head_maps`' output, as detection
    finds it."""
    _, _, _, _, _, noise, level, near = maps
    return shaft_core(level, _shaft_reference(level, near), core_share=core_share,
                      floor=threshold * noise, min_pixels=int(round(line_um / pixel_um)))


def on_found_necks(points_vox: np.ndarray, found, snr, core: np.ndarray, *, pixel_um: float,
                   ratio: float, width_um: float, max_length_px: float) -> np.ndarray:
    """Which of the spines not found in a session (``found`` False) lie on a found one's neck:
    between its head and the shaft's ``core``, as :func:`neck_peaks` judges peaks, with a
    measured ``snr`` below ``ratio`` times the head's.  Such a place measures the found
    spine's neck, whatever is there: on six simulated spine cells, 85 rows of tracks of no
    spine and 40 of spines not yet born or already lost, against 27 of spines present
    (BENCHMARKS_SPINES.md, "Necks in the measurement").  ``points_vox``: (n, 3) z, y, x in
    the session's voxels."""
    found = np.asarray(found, bool)
    out = np.zeros(len(found), bool)
    if found.sum() == 0 or found.all() or not core.any():
        return out
    yx = np.clip(np.round(np.asarray(points_vox, float).reshape(-1, 3)[:, 1:]), 0,
                 np.array(core.shape) - 1)
    strength = np.nan_to_num(np.asarray(snr, float), nan=0.0)
    on_neck = neck_peaks(yx, strength, core, ratio=ratio, width_px=width_um / pixel_um,
                         max_length_px=max_length_px, heads=found)
    return on_neck & ~found


def spine_zone(image: np.ndarray, *, spacing, head_fwhm_um: float, surround_ratio: float,
               line_um: float, directions: int, orientation_um: float, core_share: float,
               core_window_um: float, threshold: float,
               reach_um: tuple[float, float] = (0.3, 2.5), maps=None,
               core=None) -> np.ndarray:
    """Where a spine head could be in a (z, y, x) fill: the voxels (each column's plane of
    largest filtered value) ``reach_um`` from the shaft's core (:func:`shaft_core`; heads sit
    on necks up to ~2 um long).  Places there without a spine show what an absent spine's
    head over its shaft measures, the presence model's absent state (the weights stage's
    null places).  ``maps``: :func:`head_maps` of this image with these settings, and
    ``core``: :func:`maps_core` of them, if the caller has them."""
    spacing = np.asarray(spacing, float)
    if maps is None:
        maps = head_maps(image, spacing=spacing, head_fwhm_um=head_fwhm_um,
                         surround_ratio=surround_ratio, line_um=line_um, directions=directions,
                         orientation_um=orientation_um, core_window_um=core_window_um)
    depth = maps[1]
    if core is None:
        core = maps_core(maps, pixel_um=spacing[1], core_share=core_share,
                         threshold=threshold, line_um=line_um)
    zone = np.zeros(np.shape(image), bool)
    if not core.any():
        return zone
    dist = ndimage.distance_transform_edt(~core) * spacing[1]
    yy, xx = np.nonzero((dist >= reach_um[0]) & (dist <= reach_um[1]))
    zone[depth[yy, xx], yy, xx] = True
    return zone


def neck_peaks(peaks: np.ndarray, response: np.ndarray, core: np.ndarray, *, ratio: float,
               width_px: float, max_length_px: float, heads=None) -> np.ndarray:
    """Which of ``peaks`` ((n, 2) y, x pixels of a projection) lie on a brighter peak's neck.

    Peak ``i`` is on peak ``j``'s neck when ``response[i] < ratio * response[j]`` and ``i``
    lies between ``j`` and the nearest pixel of ``core`` (the shaft) to ``j``, within
    ``width_px`` of the line joining them.  A neck leaves the shaft towards its head, so the
    head's nearest shaft is where its neck starts; a second spine beside a head lies off
    that line, or is about as bright.  Only heads within ``max_length_px`` of the core are
    judged, and pairs are searched within that reach: the cost grows with the number of
    peaks, not with the image or the distance to the shaft.  ``heads`` (bool per peak, None:
    all): which peaks may be the head whose neck another lies on.
    """
    from scipy.spatial import cKDTree

    peaks = np.asarray(peaks, float)
    on_neck = np.zeros(len(peaks), bool)
    if len(peaks) < 2 or not core.any():
        return on_neck
    _, nearest = ndimage.distance_transform_edt(~core, return_indices=True)
    at = tuple(peaks.astype(int).T)
    base = np.stack([nearest[0][at], nearest[1][at]], axis=1).astype(float)
    neck = base - peaks                       # head to the shaft, per peak as a head
    length = np.linalg.norm(neck, axis=1)
    length[length > max_length_px] = 0          # too far from the shaft: not judged
    pairs = cKDTree(peaks).query_pairs(float(length.max()) + width_px, output_type="ndarray")
    if len(pairs) == 0:
        return on_neck
    both = np.concatenate([pairs, pairs[:, ::-1]])       # (candidate neck, head)
    i, j = both[:, 0], both[:, 1]
    ok = (response[i] < ratio * response[j]) & (length[j] > 0)
    if heads is not None:
        ok &= np.asarray(heads, bool)[j]
    i, j = i[ok], j[ok]
    v, seg = peaks[i] - peaks[j], neck[j]
    t = np.einsum("ij,ij->i", v, seg) / length[j] ** 2
    across = np.abs(v[:, 0] * seg[:, 1] - v[:, 1] * seg[:, 0]) / length[j]
    on_neck[i[(t > 0) & (t < 1) & (across < width_px)]] = True
    return on_neck


def inner_peaks(peaks: np.ndarray, snr: np.ndarray, core: np.ndarray, *, reach_px: float,
                margin_px: float, depth_px: float) -> np.ndarray:
    """Which of ``peaks`` ((n, 2) y, x pixels of a projection) sit at a stronger head's foot.

    Peak ``i`` is dropped when a peak ``j`` within ``reach_px`` has the higher ``snr`` and lies
    farther from ``core`` (the shaft's core, bool) by more than ``margin_px``, and ``i`` itself
    lies within ``depth_px`` of the core.  That is where a neck meets the shaft, or the shaft's
    edge swells under a head: on the simulated spine cells most false detections lay within
    2.5 um of a found spine (BENCHMARKS_SPINES.md, "A head's foot"), and the neck rule takes
    only those on the line from the head to its nearest core.  A second head beside a first
    lies about as far from the shaft and is kept.
    """
    from scipy.spatial import cKDTree

    peaks = np.asarray(peaks, float)
    drop = np.zeros(len(peaks), bool)
    if len(peaks) < 2 or not core.any():
        return drop
    at = tuple(peaks.astype(int).T)
    depth = ndimage.distance_transform_edt(~core)[at]
    pairs = cKDTree(peaks).query_pairs(reach_px, output_type="ndarray")
    if len(pairs) == 0:
        return drop
    i, j = np.concatenate([pairs, pairs[:, ::-1]]).T      # (candidate foot, head)
    foot = (snr[j] > snr[i]) & (depth[i] + margin_px < depth[j]) & (depth[i] < depth_px)
    drop[i[foot]] = True
    return drop


def _shoulder_peaks(response, peaks, floor, *, half, apart_px, base_vox, surround_vox,
                    spacing):
    """(n, 2) peaks of ``response`` above ``floor`` once every one of ``peaks``' own
    response (a blob of the size its curvature gives) is taken out, farther than
    ``apart_px`` from all of them (nearer, the residual is the model's error there), and
    the residual there."""
    from scipy.spatial import cKDTree

    from .shoulders import blob_responses, blob_size_um

    filters = dict(base_vox=base_vox, centre_vox=np.zeros(2), surround_vox=surround_vox,
                   spacing=spacing)
    padded = np.pad(response, 1, mode="edge")
    at = tuple((peaks + 1).T)
    with np.errstate(all="ignore"):
        curv = [2 * np.log(np.sqrt(padded[tuple((peaks + 1 + d).T)] * padded[tuple((peaks + 1 - d).T)])
                           / padded[at]) for d in (np.array([1, 0]), np.array([0, 1]))]
    size = blob_size_um(0.5 * (curv[0] + curv[1]), **filters)
    residual = response - blob_responses(response.shape, peaks, response[tuple(peaks.T)], size,
                                         **filters)
    top = ndimage.maximum_filter(residual, size=2 * half + 1, mode="nearest")
    found = np.argwhere((residual >= top) & (residual > floor))
    if len(found):
        found = found[cKDTree(peaks).query(found)[0] > apart_px]
    return found, residual[tuple(found.T)]


def _shaft_reference(level: np.ndarray, near_px: int) -> np.ndarray:
    """The shaft a head's weight is divided by: the shaft estimate's largest value within
    twice the core window (a head on a 2 um neck lies beyond the core window's reach)."""
    return ndimage.maximum_filter(level, size=2 * near_px + 1)


def _parabola_offset(smooth, depth, peaks) -> np.ndarray:
    """Sub-plane z of each peak: a parabola through the filtered column's top three planes."""
    nz = smooth.shape[0]
    if len(peaks) == 0 or nz < 3:
        return np.zeros(len(peaks))
    top = depth[tuple(peaks.T)]
    z0 = np.clip(top, 1, nz - 2)
    y, x = peaks[:, 0], peaks[:, 1]
    a, b, c = smooth[z0 - 1, y, x], smooth[z0, y, x], smooth[z0 + 1, y, x]
    denom = a - 2 * b + c
    with np.errstate(all="ignore"):
        off = np.where(denom < 0, 0.5 * (a - c) / denom, 0.0)
    return np.clip(off, -0.5, 0.5) + (z0 - top)


def head_over_shaft(image: np.ndarray, points_vox: np.ndarray, *, spacing,
                    head_fwhm_um: float, line_um: float, directions: int,
                    orientation_um: float, core_window_um: float,
                    search_um: float = 0.25, maps=None) -> pd.DataFrame:
    """Each point's head intensity over its shaft's (MapManager's spine weight), whether a
    head is there or not: ``head`` (the largest projection above the shaft estimate within
    ``search_um`` of the point, laterally), ``shaft`` (the shaft's largest value within
    twice ``core_window_um``, above the neuropil), ``weight`` (their ratio), ``snr`` (head over
    the robust noise of the projection's residual above the shaft, high-passed at four head
    widths: one noise for the whole stack, unlike :func:`detect_spines`' photon-scaled one).
    ``maps``: :func:`head_maps` of this image with these settings, if the caller has it."""
    spacing = np.asarray(spacing, float)
    if maps is None:
        proj = project(image, spacing=spacing, head_fwhm_um=head_fwhm_um)[0]
        shaft = shaft_estimate(proj, pixel_um=spacing[1], line_um=line_um,
                               directions=directions, orientation_um=orientation_um)
        residual = proj - shaft
        level = shaft - float(np.median(shaft))
        near = max(int(round(core_window_um / spacing[1])) | 1, 3)
    else:
        proj, _, _, residual, _, _, level, near = maps
    head = ndimage.maximum_filter(residual,
                                  size=2 * max(int(round(search_um / spacing[1])), 1) + 1)
    shaft_near = _shaft_reference(level, near)
    yx = np.clip(np.round(np.asarray(points_vox, float).reshape(-1, 3)[:, 1:]).astype(int), 0,
                 np.array(proj.shape) - 1)
    at = tuple(yx.T)
    noise = robust_noise(residual - ndimage.gaussian_filter(residual, 4 * head_sigma_vox(
        spacing, head_fwhm_um)[1:]))
    return pd.DataFrame({"head": head[at], "shaft": shaft_near[at],
                         "weight": head[at] / np.maximum(shaft_near[at], 1e-12),
                         "snr": head[at] / max(noise, 1e-12)})
