"""The filtered PSD-95 channel's noise as it rises with the labelled cell's brightness.

Diffuse PSD-95 in a dendrite follows the fill, and where it is patchy (every micron or so),
subtracting its mean share of the morphology channel leaves the patches: bumps a punctum's
size whose height grows with the shaft's brightness.  On the brightest shaft they reach 5-8
noise SDs of the stack and pass for puncta.  Measured on the cell's voxels away from puncta,
in bins of the morphology channel's brightness, the matched filter's response varies more on
a textured bright shaft than on the cell's dim parts, and hardly more where the shaft is
smooth.  A peak's noise is scaled by that ratio at its brightness, so the threshold rises
only where the cell's own texture does.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .noise import robust_noise

#: bins of the cell's brightness (quantiles of its voxels away from puncta): the first, the
#: dimmer 70 %, is the reference; the brightest holds 0.5 % (a few hundred voxels)
BRIGHTNESS_QUANTILES = (0.0, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995, 1.0)

#: voxels of the response above this many of its noise SDs, and their flanks, are puncta and
#: left out of the noise measured; the texture's bumps (4.5-8 SDs) stay in it (left out at
#: the detection threshold, they were, and a draw's factor swung between 1.4 and 2.2 on a
#: synthetic textured shaft, tests/test_detect.py)
PUNCTA_SNR = 10.0

#: a bin's factor counts only beyond this excess over the reference: the brightest bins'
#: noise is measured on a few hundred voxels, and the shaft's own photon noise, under which
#: the threshold of 4.5 was set, raises it by some percent (counted from 1.0, the low-signal
#: regime lost 28 of 351 true detections instead of 11: BENCHMARKS_DETECTION.md)
TOLERANCE = 0.1

#: a session's texture is the factor of the bin from this quantile of the cell's brightness
#: (its brightest 10 %; the curve is non-decreasing, so the bins below count too): the brighter
#: bins hold fewer voxels (the brightest 0.5 %, a few hundred) and swing more.  This bin reads
#: 1.74-2.69 on channel_departure's textured shafts and at most 1.19 on the smooth regimes'
#: (benchmarks/texture_sessions.py, BENCHMARKS_DETECTION.md)
TEXTURE_QUANTILE = 0.9


class BrightnessCurve(NamedTuple):
    """The noise factor by the cell's brightness (:func:`brightness_noise_curve`)."""
    centres: np.ndarray     #: each bin's median brightness
    factor: np.ndarray      #: its factor, at least 1, non-decreasing
    lower: np.ndarray       #: its lower edge, as a quantile of the cell's brightness


_FLAT = BrightnessCurve(np.array([0.0]), np.array([1.0]), np.array([0.0]))


def brightness_noise_curve(response: np.ndarray, brightness: np.ndarray, where: np.ndarray, *,
                           exclude: np.ndarray | None = None,
                           quantiles=BRIGHTNESS_QUANTILES, min_voxels: int = 500):
    """The noise of ``response`` on the voxels ``where`` (without ``exclude``), in bins of
    ``brightness``, over its noise in the first bin (the dimmer 70 % of them).

    Parameters
    ----------
    response : (z, y, x) filtered image
    brightness : (z, y, x) smoothed morphology channel, same shape
    where : boolean (z, y, x), the labelled cell's voxels
    exclude : boolean (z, y, x), voxels left out (puncta and their flanks)
    quantiles : bin edges as quantiles of ``brightness`` on the kept voxels
    min_voxels : fewer kept voxels than this: no curve (a factor of 1 everywhere)

    Returns
    -------
    BrightnessCurve : each bin's median brightness, its noise over the reference's less
    ``TOLERANCE`` (at least 1 and non-decreasing with brightness: a brighter shaft is not
    less noisy), and its lower edge's quantile.
    """
    kept = where if exclude is None else where & ~exclude
    b, r = brightness[kept], response[kept]
    if b.size < min_voxels:
        return _FLAT
    edges = np.quantile(b, quantiles)
    which = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, len(edges) - 2)
    centres, sds, lower = [], [], []
    for k in range(len(edges) - 1):
        inside = which == k
        if inside.sum() < 10:
            continue
        centres.append(float(np.median(b[inside])))
        sds.append(robust_noise(r[inside]))
        lower.append(float(quantiles[k]))
    sds = np.asarray(sds)
    if len(sds) == 0 or sds[0] <= 0:
        return _FLAT
    excess = np.maximum(sds / sds[0] - 1.0 - TOLERANCE, 0.0)
    return BrightnessCurve(np.asarray(centres), 1.0 + np.maximum.accumulate(excess),
                           np.asarray(lower))


def brightness_noise_factor(curve, brightness_at: np.ndarray) -> np.ndarray:
    """The factor of :func:`brightness_noise_curve` at each of ``brightness_at``
    (interpolated; the end bins' beyond)."""
    return np.interp(np.asarray(brightness_at, float), curve.centres, curve.factor)


def texture_factor(curve: BrightnessCurve, *, quantile: float = TEXTURE_QUANTILE) -> float:
    """How much a session's detection threshold rose on its labelled cell's brightest parts:
    the factor of ``curve``'s bin from ``quantile`` of the cell's brightness (the last bin
    starting at or below it).  1: the bright shaft is as noisy as the dim cell; 2: a
    textured bright shaft, where a dim punctum needs twice the signal to be detected."""
    at = int(np.searchsorted(curve.lower, quantile, side="right")) - 1
    return float(curve.factor[max(at, 0)])

