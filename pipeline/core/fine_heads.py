"""Spine heads the matched filter merged with a brighter neighbour, found at a finer scale.

Two heads about 1 um apart, each 0.4-1 um across, are one blob to a filter the size of a head:
on the simulated spine regimes most missed spines had another within 1.2 um and no peak of their
own in the filtered projection (BENCHMARKS_SPINES.md).  A filter half that size still sees two
peaks, but on its own finds the noise as well.  So the finer filter is searched only near the
heads already found: a peak there, off the shaft's core and off the found head's neck, is a
second head.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .noise import robust_noise


def fine_heads(fine_head: np.ndarray, heads_yx: np.ndarray, *, pixel_um: float,
               centre_px: np.ndarray, surround_ratio: float, threshold: float,
               reach_um: tuple[float, float], apart_um: float, per_head: int,
               min_separation_um: float, on_core: np.ndarray,
               on_neck=None) -> tuple[np.ndarray, np.ndarray]:
    """Second heads beside found ones, in the fine filter's projection above the shaft.

    Parameters
    ----------
    fine_head : (y, x) projection of the fill filtered at the fine scale, minus the shaft
    heads_yx : (n, 2) pixels of the heads found at the head scale
    pixel_um : lateral pixel size, um
    centre_px : (2,) the fine filter's lateral SD in pixels (its difference of Gaussians has a
        surround ``surround_ratio`` times as wide)
    threshold : a peak's response over the response's robust noise
    reach_um : (nearest, farthest) distance from the nearest found head, um
    apart_um : of two candidates closer than this, the weaker is dropped
    per_head : at most this many second heads beside one found head (the strongest)
    min_separation_um : a peak tops its neighbours within this distance
    on_core : (y, x) bool, the shaft's core (no head there)
    on_neck : callable, (m, 2) candidates -> (m,) bool: which lie on a found head's neck

    Returns
    -------
    (m, 2) int pixels of the second heads, strongest first, and their SNR (m,).
    """
    heads_yx = np.asarray(heads_yx, float).reshape(-1, 2)
    empty = np.zeros((0, 2), int), np.zeros(0)
    if len(heads_yx) == 0:
        return empty
    surround = centre_px * np.sqrt(surround_ratio ** 2 - 1)
    response = fine_head - ndimage.gaussian_filter(fine_head, surround)
    noise = robust_noise(response)
    if noise <= 0:
        return empty
    half = max(int(round(min_separation_um / pixel_um)), 1)
    top = ndimage.maximum_filter(response, size=2 * half + 1, mode="nearest")
    peaks = np.argwhere((response >= top) & (response > threshold * noise) & (fine_head > 0))
    if len(peaks) == 0:
        return empty
    dist, nearest = cKDTree(heads_yx * pixel_um).query(peaks * pixel_um)
    keep = (dist > reach_um[0]) & (dist < reach_um[1]) & ~on_core[tuple(peaks.T)]
    peaks, nearest = peaks[keep], nearest[keep]
    if on_neck is not None and len(peaks):
        keep = ~on_neck(peaks)
        peaks, nearest = peaks[keep], nearest[keep]
    snr = response[tuple(peaks.T)] / noise
    order = np.argsort(-snr, kind="stable")
    taken, per = [], np.zeros(len(heads_yx), int)
    for i in order:            # strongest first: per found head, and apart from each other
        if per[nearest[i]] >= per_head:
            continue
        if taken and np.min(np.linalg.norm((peaks[taken] - peaks[i]) * pixel_um, axis=1)) < apart_um:
            continue
        taken.append(i)
        per[nearest[i]] += 1
    taken = np.array(taken, int)
    return peaks[taken], snr[taken]
