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
                        radius_um=(1.6, 0.6, 0.6), shell=(1.5, 2.5),
                        saturation: float | None = None, raw: np.ndarray | None = None
                        ) -> pd.DataFrame:
    """Integrated, background-subtracted intensity at sub-voxel positions.

    Parameters
    ----------
    image : (z, y, x) array
    positions : (n, 3) array of (z, y, x) voxel coordinates (may be fractional)
    spacing : voxel size (z, y, x) in um
    radius_um : semi-axes of the ellipsoidal aperture in um
    shell : inner and outer edge of the background shell, in units of the aperture radius
    saturation : the detector's full-scale value; aperture voxels of ``raw`` (or ``image``)
        at or above it are counted in ``n_saturated``
    raw : the recorded channel when ``image`` was derived from it (bleed-through removed)

    Returns
    -------
    DataFrame with ``intensity`` (sum over the aperture minus its size times the background),
    ``background`` (median per voxel in the shell), ``noise`` (robust per-voxel SD in the
    shell), ``snr`` (intensity over the noise of the sum), ``in_view`` (position inside the
    stack), ``aperture_inside`` (share of the aperture's voxels inside the stack) and
    ``n_saturated``.  Voxels outside the stack are left out of both sums.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    n = len(pos)
    cols = ["intensity", "background", "noise", "snr", "in_view", "aperture_inside", "n_saturated"]
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
    whole = r <= 1.0
    n_sat = np.zeros(n, int)
    if saturation is not None and np.isfinite(saturation):
        src = image if raw is None else raw
        top = src[tuple(np.clip(idx, 0, shape - 1).transpose(2, 0, 1))] >= saturation
        n_sat = (top & ap).sum(1)
    return pd.DataFrame({"intensity": intensity, "background": bg, "noise": noise,
                         "snr": snr, "in_view": in_view.astype(int),
                         "aperture_inside": n_ap / np.maximum(whole.sum(1), 1),
                         "n_saturated": n_sat})


def subsample(values: np.ndarray) -> np.ndarray:
    """A regular subsample of about a million values: plenty for a median."""
    v = values.ravel()
    return v[:: v.size // 1_000_000] if v.size > 2_000_000 else v


def remove_bleedthrough(psd95: np.ndarray, morphology: np.ndarray, coefficient: float) -> np.ndarray:
    """PSD-95 minus ``coefficient`` times the morphology channel above its median (float32).

    The median is the channels' common dark level, which must not be subtracted twice;
    :func:`pipeline.detect.morphology_coefficient` estimates the coefficient from the data.
    """
    base = np.float32(np.median(subsample(morphology)))
    return psd95.astype(np.float32) - np.float32(coefficient) * (morphology.astype(np.float32) - base)


QUALITY_FLAGS = ("saturated", "edge", "neighbour", "low_snr")


def quality_flags(phot: pd.DataFrame, positions: np.ndarray, present, *, spacing,
                  radius_um=(1.6, 0.6, 0.6), min_snr: float = 3.0,
                  spread_um=(1.3, 0.3, 0.3)) -> pd.Series:
    """Why a synapse-session's weight may be off: ';'-joined flags, '' when none.

    ``saturated``: a voxel of its aperture at the detector's full scale (the weight is
    clipped); ``edge``: part of the aperture outside the stack (the weight is low, or the
    synapse is out of view); ``neighbour``: another synapse close enough for some of its
    light to fall in this one's aperture (its centre within the aperture grown by
    ``spread_um``, 1.5 SDs of a blurred punctum: then 7 % of its light or more falls
    inside); ``low_snr``: called present at an SNR below
    ``min_snr``.  ``phot`` is :func:`aperture_photometry`'s output at ``positions`` (all
    synapses of one session, voxel units).
    """
    from scipy.spatial import cKDTree

    reach = np.asarray(radius_um, float) + np.asarray(spread_um, float)
    pos = np.asarray(positions, float).reshape(-1, 3) * np.asarray(spacing) / reach
    crowded = np.zeros(len(pos), bool)
    if len(pos) > 1:
        for i, j in cKDTree(pos).query_pairs(1.0):
            crowded[i] = crowded[j] = True
    flags = {"saturated": phot["n_saturated"].to_numpy() > 0,
             "edge": phot["aperture_inside"].to_numpy() < 1.0,
             "neighbour": crowded,
             "low_snr": (np.asarray(present) == 1) & (phot["snr"].to_numpy() < min_snr)}
    rows = zip(*(np.where(v, k, "") for k, v in flags.items()))
    return pd.Series([";".join(f for f in r if f) for r in rows], index=phot.index, dtype=object)


NORMALISATIONS = ("percentile_40_60", "median_ratio")


def _percentile_scale(w: np.ndarray) -> float:
    if len(w) == 0:
        return np.nan
    lo, hi = np.percentile(w, [40, 60])
    sel = w[(w >= lo) & (w <= hi)]
    return sel.mean() if len(sel) else np.median(w)


def normalise_cell_weights(table: pd.DataFrame, method: str) -> pd.Series:
    """:func:`normalise_weights` of one cell's per-synapse-session table (columns
    ``intensity, present, session, day, synapse_id``), the earliest session being the
    reference of the median_ratio method."""
    first = str(table.loc[table["day"].idxmin(), "session"])
    return normalise_weights(table["intensity"], table["present"],
                             groups=table["session"].astype(str), method=method,
                             synapse_ids=table["synapse_id"], reference=first)


def normalise_weights(intensity: pd.Series, present: pd.Series, *, groups: pd.Series,
                      method: str = "percentile_40_60", synapse_ids: pd.Series | None = None,
                      reference=None, min_shared: int = 5) -> pd.Series:
    """Divide intensities by a per-group (one cell's session) scale.

    ``percentile_40_60`` (the published definition): the mean of the present synapses'
    intensities between the 40th and 60th percentile of that session.  It moves when the
    population does (many new small synapses lower it).

    ``median_ratio``: each session's brightness relative to the ``reference`` group (default:
    the first), as the median ratio of intensities over the synapses present (with positive
    intensity) in both; the reference's scale is its percentile_40_60 scale, so the two
    methods agree there.  Births and losses do not move it.  A group sharing fewer than
    ``min_shared`` synapses with the reference keeps its own percentile scale.  Needs
    ``synapse_ids``.
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation method {method!r}; use one of {NORMALISATIONS}")
    df = pd.DataFrame({"intensity": intensity, "present": present, "g": groups})
    ok = df[(df["present"] == 1)]
    scales = ok.groupby("g", sort=False)["intensity"].apply(lambda w: _percentile_scale(w.to_numpy()))
    scales = scales.reindex(pd.unique(df["g"]))
    if method == "median_ratio":
        if synapse_ids is None:
            raise ValueError("median_ratio normalisation needs synapse_ids")
        df["id"] = synapse_ids
        pos = df[(df["present"] == 1) & (df["intensity"] > 0)]
        wide = pos.pivot_table(index="id", columns="g", values="intensity", aggfunc="first")
        first = scales.index[0] if reference is None else reference
        for g in scales.index.drop(first):
            both = wide[[first, g]].dropna() if first in wide and g in wide else wide.iloc[:0]
            if len(both) >= min_shared:
                scales[g] = scales[first] * float(np.exp(np.median(np.log(both[g] / both[first]))))
    return intensity / groups.map(scales)
