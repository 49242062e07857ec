"""Synapse weights: background-subtracted integrated PSD-95 fluorescence and its normalisation.

The aperture is an ellipsoid around the (sub-voxel) position; the local background is the
median of a surrounding shell, and the shell's spread (MAD) gives the noise used for the SNR.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MAD_TO_SD = 1.4826


def _ellipsoid_offsets(spacing, outer_um):
    half = np.ceil(np.asarray(outer_um) / np.asarray(spacing)).astype(int)
    grid = np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij")
    return np.stack(grid, -1).reshape(-1, 3)


def aperture_photometry(image: np.ndarray, positions: np.ndarray, *, spacing,
                        radius_um=(1.6, 0.6, 0.6), shell=(1.5, 2.5)) -> pd.DataFrame:
    """Integrated, background-subtracted intensity at sub-voxel positions.

    Parameters
    ----------
    image : (z, y, x) array
    positions : (n, 3) array of (z, y, x) voxel coordinates (may be fractional)
    spacing : voxel size (z, y, x) in um
    radius_um : semi-axes of the ellipsoidal aperture in um
    shell : inner and outer edge of the background shell, in units of the aperture radius

    Returns
    -------
    DataFrame with ``intensity`` (sum over the aperture minus its size times the background),
    ``background`` (median per voxel in the shell), ``noise`` (robust per-voxel SD in the
    shell), ``snr`` (intensity over the noise of the sum) and ``in_view`` (position inside the
    stack).  Voxels outside the stack are left out of both sums.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    n = len(pos)
    cols = ["intensity", "background", "noise", "snr", "in_view"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    spacing = np.asarray(spacing, float)
    radius = np.asarray(radius_um, float)
    offs = _ellipsoid_offsets(spacing, radius * shell[1])
    shape = np.array(image.shape)
    idx = np.round(pos).astype(np.int64)[:, None, :] + offs[None]          # (n, k, 3)
    r = np.sqrt((((idx - pos[:, None, :]) * spacing / radius) ** 2).sum(-1))  # aperture units
    inside = np.all((idx >= 0) & (idx < shape), axis=2)
    vals = image[tuple(np.clip(idx, 0, shape - 1).transpose(2, 0, 1))].astype(np.float64)
    ap = (r <= 1.0) & inside
    sh = (r > shell[0]) & (r <= shell[1]) & inside
    shell_vals = np.where(sh, vals, np.nan)
    with warnings.catch_warnings():  # a position far outside the stack has an empty shell
        warnings.simplefilter("ignore", RuntimeWarning)
        bg = np.nanmedian(shell_vals, axis=1)
        noise = MAD_TO_SD * np.nanmedian(np.abs(shell_vals - bg[:, None]), axis=1)
    n_ap = ap.sum(1)
    intensity = np.where(ap, vals, 0).sum(1) - n_ap * bg
    noise = np.maximum(noise, 1e-6 * np.maximum(np.abs(bg), 1))
    snr = intensity / (noise * np.sqrt(np.maximum(n_ap, 1)))
    in_view = np.all((pos >= -0.5) & (pos <= shape - 0.5), axis=1)
    return pd.DataFrame({"intensity": intensity, "background": bg, "noise": noise,
                         "snr": snr, "in_view": in_view.astype(int)})


def normalise_weights(intensity: pd.Series, present: pd.Series, *, groups: pd.Series,
                      method: str = "percentile_40_60") -> pd.Series:
    """Divide intensities by a per-group (cell and session) scale.

    ``percentile_40_60`` (the published definition): the mean of the present synapses'
    intensities between the 40th and 60th percentile of that session.
    """
    if method != "percentile_40_60":
        raise ValueError(f"unknown normalisation method {method!r}")

    def scale(df):
        w = df.loc[df["present"] == 1, "intensity"]
        if len(w) == 0:
            return np.nan
        lo, hi = np.percentile(w, [40, 60])
        sel = w[(w >= lo) & (w <= hi)]
        return sel.mean() if len(sel) else w.median()

    df = pd.DataFrame({"intensity": intensity, "present": present, "g": groups})
    scales = df.groupby("g")[["intensity", "present"]].apply(scale)
    return intensity / groups.map(scales)
