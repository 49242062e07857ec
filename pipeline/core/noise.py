"""Robust noise: the spread of a channel from its median absolute deviation."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

#: SD of a normal distribution per unit of its median absolute deviation
MAD_TO_SD = 1.4826


def subsample(values: np.ndarray) -> np.ndarray:
    """A regular subsample of about a million values: plenty for a median."""
    v = values.ravel()
    return v[:: v.size // 1_000_000] if v.size > 2_000_000 else v


def robust_noise(values: np.ndarray) -> float:
    """SD of the noise from the median absolute deviation (puncta are a small minority)."""
    v = subsample(values)
    med = np.median(v)
    return float(MAD_TO_SD * np.median(np.abs(v - med)))


def puncta_and_flanks(response: np.ndarray, level: float, *, spacing,
                      flanks_um) -> np.ndarray:
    """Voxels of ``response`` above ``level`` and within ``flanks_um`` (z, y, x) of one: the
    puncta and their flanks, which a measurement of the noise leaves out."""
    reach = 2 * np.round(np.asarray(flanks_um, float) / np.asarray(spacing, float)).astype(int) + 1
    return ndimage.maximum_filter(response > level, size=tuple(reach))
