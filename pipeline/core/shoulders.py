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


def _terms(size_um, *, sigma_vox, spacing, ratio):
    """Peak heights ``(b1, b2)`` and per-axis variances ``(v1, v2)`` (voxels², (..., 3)) of
    the centre and surround Gaussians' responses to a unit blob of the punctum's own SD
    ``size_um`` (isotropic, before the point-spread function, which ``sigma_vox`` is)."""
    size = np.asarray(size_um, float)[..., None] / np.asarray(spacing, float)
    c = np.asarray(sigma_vox, float) ** 2
    w = c + size ** 2                          # the blob: the PSF widened by the punctum
    v1, v2 = w + c, w + ratio ** 2 * c
    b1 = np.prod(np.sqrt(w / v1), -1)
    b2 = np.prod(np.sqrt(w / v2), -1)
    return b1, b2, v1, v2


def blob_size_um(curvature, *, sigma_vox, spacing, ratio: float) -> np.ndarray:
    """The punctum's own lateral SD (um) whose blob gives the difference of Gaussians'
    response this second difference of its log at the peak (over one voxel, the mean of y
    and x; negative).  NaN (no parabola) is taken as the smallest size; a curvature outside
    the grid's range is clipped to it."""
    b1, b2, v1, v2 = _terms(_SIZE_GRID_UM, sigma_vox=sigma_vox, spacing=spacing, ratio=ratio)
    # the second difference over one voxel, as the peak's parabola measures it
    step = [2 * np.log((b1 * np.exp(-0.5 / v1[:, ax]) - b2 * np.exp(-0.5 / v2[:, ax])) / (b1 - b2))
            for ax in (1, 2)]
    lateral = 0.5 * (step[0] + step[1])
    # lateral curvature rises (towards 0) with the size: np.interp wants it increasing
    k = np.asarray(curvature, float)
    k = np.where(np.isfinite(k), k, lateral[0])
    return np.interp(k, lateral, _SIZE_GRID_UM)


def blob_responses(shape, positions, heights, sizes_um, *, sigma_vox, spacing,
                   ratio: float, reach: float = 3.0) -> np.ndarray:
    """The difference of Gaussians' response (centre SDs ``sigma_vox``, surround ``ratio``
    times wider) to blobs at sub-voxel ``positions`` (n, 3), scaled so that each one's
    response is ``heights`` at its position's nearest voxel, out to ``reach`` SDs of the
    surround; float32 array of ``shape``."""
    model = np.zeros(shape, np.float32)
    b1, b2, v1, v2 = _terms(sizes_um, sigma_vox=sigma_vox, spacing=spacing, ratio=ratio)
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
        unit = (a1 * e1[0][at[0]] * e1[1][at[1]] * e1[2][at[2]]
                - a2 * e2[0][at[0]] * e2[1][at[1]] * e2[2][at[2]])
        if unit <= 0:
            continue
        scale = h / unit
        block = (a1 * scale) * np.einsum("i,j,k->ijk", *e1) - (a2 * scale) * np.einsum("i,j,k->ijk", *e2)
        model[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += block.astype(np.float32)
    return model
