"""Puncta on a brighter neighbour's flank: the matched filter's response with every detected
punctum's own response taken out.

A dim punctum 0.6-1.2 um beside a bright one (or between two) is a shoulder of their peaks,
not a peak of its own, in any filter wide enough to find isolated dim puncta.  Each detected
punctum is modelled as a Gaussian blob (the point-spread function widened by the punctum's
own size, which the response's curvature at the peak gives); the filter's response to that
blob is known in closed form (a Gaussian seen through a difference of Gaussians is a
difference of Gaussians), so it is subtracted at each detection, scaled to its peak, and
the peaks left in the residual are the puncta the bright ones hid.
"""
from __future__ import annotations

import numpy as np

#: the punctum's own lateral SD (um) is looked up on this grid
_SIZE_GRID_UM = np.linspace(0.0, 0.8, 161)


def _terms(size_um, *, base_vox, centre_vox, surround_vox, spacing):
    """Peak heights ``(b1, b2)`` and per-axis variances ``(v1, v2)`` (voxels², (..., ndim))
    of the centre and surround Gaussians' responses to a blob of unit height whose SD is
    ``base_vox`` (the point-spread function, and any smoothing the image had) widened by the
    object's own SD ``size_um`` (isotropic)."""
    size = np.asarray(size_um, float)[..., None] / np.asarray(spacing, float)
    w = np.asarray(base_vox, float) ** 2 + size ** 2
    v1 = w + np.asarray(centre_vox, float) ** 2
    v2 = w + np.asarray(surround_vox, float) ** 2
    return np.prod(np.sqrt(w / v1), -1), np.prod(np.sqrt(w / v2), -1), v1, v2


def blob_size_um(curvature, **filters) -> np.ndarray:
    """The object's own lateral SD (um) whose blob gives the response (centre minus surround
    Gaussian, ``filters`` as :func:`blob_responses`) this second difference of its log at the
    peak (over one voxel, the mean of the last two axes; negative).  NaN (no parabola) is
    taken as the smallest size; a curvature outside the grid's range is clipped to it."""
    b1, b2, v1, v2 = _terms(_SIZE_GRID_UM, **filters)
    # the second difference over one voxel, as the peak's parabola measures it
    lateral = np.mean([2 * np.log((b1 * np.exp(-0.5 / v1[:, ax]) - b2 * np.exp(-0.5 / v2[:, ax]))
                                  / (b1 - b2)) for ax in (-2, -1)], axis=0)
    # lateral curvature rises (towards 0) with the size: np.interp wants it increasing
    k = np.asarray(curvature, float)
    k = np.where(np.isfinite(k), k, lateral[0])
    return np.interp(k, lateral, _SIZE_GRID_UM)


def blob_responses(shape, positions, heights, sizes_um, *, base_vox, centre_vox,
                   surround_vox, spacing, reach: float = 3.0) -> np.ndarray:
    """The response (a Gaussian of SDs ``centre_vox`` minus one of ``surround_vox``, per
    axis in voxels; a centre of 0 is the image itself) to blobs at sub-voxel ``positions``
    (n, ndim), each of SD ``base_vox`` widened by its own ``sizes_um``, scaled so that each
    one's response is ``heights`` at its position's nearest voxel, out to ``reach`` SDs of
    the surround; a float32 array of ``shape``."""
    from functools import reduce

    model = np.zeros(shape, np.float32)
    b1, b2, v1, v2 = _terms(sizes_um, base_vox=base_vox, centre_vox=centre_vox,
                            surround_vox=surround_vox, spacing=spacing)
    shape = np.asarray(shape)
    for p, h, a1, a2, s1, s2 in zip(np.asarray(positions, float), heights, b1, b2, v1, v2):
        half = np.ceil(reach * np.sqrt(s2)).astype(int)
        c = np.round(p).astype(int)
        lo, hi = np.maximum(c - half, 0), np.minimum(c + half + 1, shape)
        if np.any(lo >= hi):
            continue
        axes = [np.arange(a, b) - q for a, b, q in zip(lo, hi, p)]
        e1 = [np.exp(-0.5 * d * d / v) for d, v in zip(axes, s1)]
        e2 = [np.exp(-0.5 * d * d / v) for d, v in zip(axes, s2)]
        at = np.round(p - lo).astype(int).clip(0, hi - lo - 1)
        unit = (a1 * np.prod([e[i] for e, i in zip(e1, at)])
                - a2 * np.prod([e[i] for e, i in zip(e2, at)]))
        if unit <= 0:
            continue
        scale = h / unit
        block = (a1 * scale) * reduce(np.multiply.outer, e1) - (a2 * scale) * reduce(np.multiply.outer, e2)
        model[tuple(slice(a, b) for a, b in zip(lo, hi))] += block.astype(np.float32)
    return model
