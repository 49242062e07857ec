"""A Gaussian-smoothed image read at a few points, without smoothing the whole image.

The weights stage reads the smoothed morphology channel at a few hundred places per session;
filtering the whole stack for that cost a fifth of the stage and a float copy of the stack.
:func:`gaussian_at` sums each point's own window with the weights
:func:`scipy.ndimage.gaussian_filter` uses (truncated at 4 SDs, ``mode="nearest"``), so it
gives the filtered value at those voxels, up to float rounding.
"""
from __future__ import annotations

import numpy as np

#: kernel half-width in SDs, as scipy.ndimage.gaussian_filter's default ``truncate``
TRUNCATE = 4.0
#: points whose windows are gathered at once (memory: POINTS_PER_CHUNK x window voxels x 8 bytes)
POINTS_PER_CHUNK = 256


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian weights of ``sigma`` (samples), radius ``int(4 sigma + 0.5)``
    (:func:`scipy.ndimage.gaussian_filter1d`'s kernel; a single 1 for ``sigma`` 0)."""
    radius = int(TRUNCATE * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return w / w.sum()


def gaussian_at(image: np.ndarray, points: np.ndarray, *, sigma) -> np.ndarray:
    """The image smoothed by a Gaussian of SD ``sigma`` (per axis, voxels), at each of
    ``points`` ((n, ndim) integer voxels inside the image).

    Equal, up to float rounding, to ``scipy.ndimage.gaussian_filter(image, sigma,
    mode="nearest")[tuple(points.T)]``; costs the points' windows, not the image.
    """
    image = np.asarray(image)
    points = np.asarray(points, int).reshape(-1, image.ndim)
    sigma = np.broadcast_to(np.asarray(sigma, float), (image.ndim,))
    kernels = [gaussian_kernel(s) for s in sigma]
    offsets = [np.arange(len(k)) - len(k) // 2 for k in kernels]
    out = np.empty(len(points))
    for a in range(0, len(points), POINTS_PER_CHUNK):
        chunk = points[a:a + POINTS_PER_CHUNK]
        # per axis, the window's indices clipped into the image: mode "nearest"
        index = [np.clip(chunk[:, ax, None] + offsets[ax], 0, image.shape[ax] - 1)
                 for ax in range(image.ndim)]
        grid = np.ix_(np.arange(len(chunk)), *[np.arange(len(o)) for o in offsets])
        window = image[tuple(ix[grid[0], g] for ix, g in zip(index, grid[1:]))]
        value = window.astype(float)
        for k in reversed(kernels):      # contract the last axis, then the next
            value = value @ k
        out[a:a + POINTS_PER_CHUNK] = value
    return out
