"""Channel arithmetic: binning, the morphology channel's share of PSD-95, the cell mask."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .noise import robust_noise, subsample


def block_average_yx(image: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the last two (y, x) axes by ``factor`` (partial blocks dropped), float32."""
    if factor <= 1:
        return image.astype(np.float32, copy=False)
    *lead, y, x = image.shape
    y, x = y // factor * factor, x // factor * factor
    v = image[..., :y, :x].astype(np.float32, copy=False)
    # a sum of strided views: several times faster than reshape(...).mean()
    out = np.zeros((*lead, y // factor, x // factor), np.float32)
    for i in range(factor):
        for j in range(factor):
            out += v[..., i::factor, j::factor]
    out *= np.float32(1.0 / factor ** 2)
    return out


def foreign_morphology(psd95: np.ndarray, morphology: np.ndarray, coefficient: float, *,
                       spacing, bin_yx: int = 2, ratio: float = 3.0, sds: float = 3.0,
                       min_volume_um3: float = 10.0) -> np.ndarray:
    """Where the morphology channel shows something the PSD-95 channel does not (a bright
    object in that channel only: autofluorescence, another cell, a vessel): connected regions
    of at least ``min_volume_um3`` whose expected share ``coefficient`` x morphology (above its
    median), smoothed over ~0.3 um, exceeds ``ratio`` times the PSD-95 signal there plus
    ``sds`` noise SDs.  On the shaft the PSD-95 channel carries at least the share (patchy as
    its PSD-95 may be); an empty spine head (a micron across) is the cell's own and smaller
    than the volume, so its share is still subtracted.  Boolean, full size."""
    shape = morphology.shape
    p = block_average_yx(psd95, bin_yx)
    m = block_average_yx(morphology, bin_yx)
    p -= np.median(subsample(p))
    m -= np.median(subsample(m))
    sigma = (0.7, 1.5, 1.5)
    ps = ndimage.gaussian_filter(p, sigma)
    share = ndimage.gaussian_filter(np.float32(coefficient) * m, sigma)
    noise = robust_noise(ps)
    small = share > ratio * np.maximum(ps, 0) + sds * noise
    if small.any():
        labels, n = ndimage.label(small)
        voxel_um3 = float(np.prod(np.asarray(spacing, float) * [1, bin_yx, bin_yx]))
        sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_um3
        small = (sizes >= min_volume_um3)[labels] & small
    if not small.any():
        return np.zeros(shape, bool)
    small = ndimage.binary_dilation(small, iterations=2)
    full = np.zeros(shape, bool)
    up = small.repeat(bin_yx, axis=1).repeat(bin_yx, axis=2)
    full[:, :up.shape[1], :up.shape[2]] = up
    return full


def remove_bleedthrough(psd95: np.ndarray, morphology: np.ndarray, coefficient: float, *,
                        spacing=None, foreign: np.ndarray | None = None) -> np.ndarray:
    """PSD-95 minus ``coefficient`` times the morphology channel above its median (float32).

    The median is the channels' common dark level, which must not be subtracted twice;
    :func:`morphology_coefficient` estimates the coefficient from the data.  Given the voxel
    ``spacing``, nothing is subtracted where the morphology channel shows an object the PSD-95
    channel does not (:func:`foreign_morphology`): a hole dug there would surround the next
    punctum with a false background and ring with false detections.  ``foreign``: that
    mask, computed already.
    """
    base = np.float32(np.median(subsample(morphology)))
    share = np.float32(coefficient) * (morphology.astype(np.float32) - base)
    if foreign is None and spacing is not None and coefficient > 0:
        foreign = foreign_morphology(psd95, morphology, coefficient, spacing=spacing)
    if foreign is not None:
        share[foreign] = 0
    return psd95.astype(np.float32) - share


def morphology_coefficient(psd95: np.ndarray, morphology: np.ndarray, *, bin_yx: int = 2,
                           iterations: int = 3) -> float:
    """How much of the morphology channel shows in the PSD-95 channel (bleed-through plus
    diffuse, non-synaptic PSD-95 in the dendrite), estimated from the data.

    Both channels are block-averaged in y and x (to tame the photon noise cheaply) and
    background-subtracted (their medians).  On bright morphology voxels (the dendrite) the
    median ratio PSD-95 / morphology is a first estimate; then, ``iterations`` times, voxels
    whose PSD-95 exceeds that share by more than 2 noise SDs (puncta), and their neighbours,
    are left out and the median is taken again.  Without that, puncta sitting on the shaft
    (most synapses of an interneuron) inflate the estimate and the subtraction eats their
    weights.  Clipped to [0, 1].
    """
    p, m = block_average_yx(psd95, bin_yx), block_average_yx(morphology, bin_yx)
    p -= np.median(subsample(p))
    m -= np.median(subsample(m))
    top = np.percentile(subsample(m), 99.9)
    sel = m > 0.3 * top
    if top <= 0 or sel.sum() < 100:
        return 0.0
    k = float(np.median(p[sel] / m[sel]))
    for _ in range(iterations):
        resid = p - np.float32(k) * m
        puncta = ndimage.binary_dilation(resid > 2.0 * robust_noise(resid[sel]), iterations=2)
        keep = sel & ~puncta
        if keep.sum() < 100:
            break
        k = float(np.median(p[keep] / m[keep]))
    return float(np.clip(k, 0.0, 1.0))


def cell_mask(morphology: np.ndarray, *, spacing, threshold: float = 5.0,
              smooth_um=(0.4, 0.15, 0.15), bin_yx: int = 2) -> np.ndarray:
    """Voxels of the labelled cell (dendrite shaft and spines) in the morphology channel.

    The channel is block-averaged by ``bin_yx`` in y and x (the mask needs no finer grain,
    and it is four times cheaper), smoothed a little (``smooth_um``, Gaussian SD per axis)
    and thresholded at its median plus ``threshold`` robust noise SDs; the median is the
    background because the cell fills a few percent of the stack.  Returned at full size.
    """
    b = max(int(bin_yx), 1)
    small = block_average_yx(morphology, b)
    step = np.asarray(spacing, float) * [1, b, b]
    sm = ndimage.gaussian_filter(small, np.asarray(smooth_um) / step)
    mask = sm > np.median(subsample(sm)) + threshold * robust_noise(sm)
    full = np.zeros(morphology.shape, bool)
    up = mask.repeat(b, axis=1).repeat(b, axis=2)
    full[:, :up.shape[1], :up.shape[2]] = up
    return full


def fragmentation(channel: np.ndarray, *, top_percent: float = 1.0) -> float:
    """Connected pieces per 100 voxels among a channel's brightest ``top_percent`` (binned 2x2
    in y and x, lightly smoothed).  A cell fill (the morphology channel) is a few long
    connected tubes; PSD-95 is many separate puncta: measured on the simulator's cells, 0.02-0.07
    for the morphology channel against 0.2-1.3 for PSD-95."""
    b = ndimage.gaussian_filter(block_average_yx(channel, 2), (0.7, 1.0, 1.0))
    bright = b > np.percentile(subsample(b), 100 - top_percent)
    n_pieces = ndimage.label(bright)[1]
    return 100.0 * n_pieces / max(int(bright.sum()), 1)
