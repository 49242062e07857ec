"""Synapse weights: background-subtracted integrated PSD-95 fluorescence and its normalisation.

The aperture is an ellipsoid around the (sub-voxel) position; the local background is the
median of a surrounding shell, and the shell's spread (MAD) gives the noise used for the SNR.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MAD_TO_SD = 1.4826


def _half_widths(spacing, outer_um):
    return np.ceil(np.asarray(outer_um) / np.asarray(spacing)).astype(int)


def _axis_distances(base, centres, half, spacing, scale):
    """Per axis, (p, 2h+1) distances (in units of ``scale``) from the voxels of the offset
    grid around ``base[p]`` to ``centres[p]``: the grid is separable, so a function of the
    distance that factorises over axes costs sums of short vectors, not p x k voxels."""
    return [((base[:, ax, None] + np.arange(-h, h + 1)[None]) - centres[:, ax, None])
            * spacing[ax] / scale[ax] for ax, h in enumerate(half)]


def _near_neighbours(pos, neighbours, shape_k, half, spacing, radius, outer):
    """(n, k) bool over each position's offset grid: the voxel lies inside the aperture of one
    of the ``neighbours`` (other than a neighbour at ``pos[i]`` itself)."""
    from scipy.spatial import cKDTree

    out = np.zeros((len(pos), shape_k), bool)
    near = cKDTree(neighbours * spacing / (outer + radius)).query_ball_point(
        pos * spacing / (outer + radius), 1.0)
    pairs = np.array([(i, j) for i, js in enumerate(near) for j in js
                      if np.any(np.abs(neighbours[j] - pos[i]) > 1e-6)], int).reshape(-1, 2)
    base = np.round(pos).astype(np.int64)
    for lo in range(0, len(pairs), 256):       # bounded memory: 256 pairs x shell voxels
        i, j = pairs[lo:lo + 256, 0], pairs[lo:lo + 256, 1]
        dz, dy, dx = (d.astype(np.float32) ** 2 for d in
                      _axis_distances(base[i], neighbours[j], half, spacing, radius))
        d = (dz[:, :, None, None] + dy[:, None, :, None] + dx[:, None, None, :]) <= 1.0
        np.logical_or.at(out, i, d.reshape(len(i), -1))
    return out


def _subtract_shell(vals, ap, sh, n_ap):
    """(background, noise, intensity, snr) from the aperture and shell voxel values."""
    shell_vals = np.where(sh, vals, np.nan)
    with warnings.catch_warnings():  # a position far outside the stack has an empty shell
        warnings.simplefilter("ignore", RuntimeWarning)
        bg = np.nanmedian(shell_vals, axis=1)
        noise = MAD_TO_SD * np.nanmedian(np.abs(shell_vals - bg[:, None]), axis=1)
    intensity = np.where(ap, vals, 0).sum(1) - n_ap * bg
    noise = np.maximum(noise, 1e-6 * np.maximum(np.abs(bg), 1))
    return bg, noise, intensity, intensity / (noise * np.sqrt(np.maximum(n_ap, 1)))


def aperture_photometry(image: np.ndarray, positions: np.ndarray, *, spacing,
                        radius_um=(1.6, 0.6, 0.6), shell=(1.5, 2.5),
                        saturation: float | None = None, raw: np.ndarray | None = None,
                        sources=None, template_fwhm_um=None, mask_snr: float = 10.0
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
    sources, template_fwhm_um : deblending (off unless both are given).  ``sources`` (bool
        per position) marks the puncta whose light is modelled (:func:`distinct_puncta`);
        the apertures of those brighter than ``mask_snr`` are left out of the other
        positions' background shells, and each
        sum is corrected for their light (:func:`deblend`) with Gaussian puncta of
        ``template_fwhm_um`` (z, y, x; the PSF and a typical punctum together).  What a
        neighbour puts in an aperture is not the synapse's weight, and would make an absent
        synapse look present.  ``aperture_intensity`` keeps the plain sum.

    Returns
    -------
    DataFrame with ``intensity`` (sum over the aperture minus its size times the background),
    ``background`` (median per voxel in the shell), ``noise`` (robust per-voxel SD in the
    shell), ``snr`` (intensity over the noise of the sum), ``in_view`` (position inside the
    stack), ``aperture_inside`` (share of the aperture's voxels inside the stack),
    ``n_saturated`` and ``aperture_intensity`` (the plain sum, before any deblending).  Voxels outside the stack are left out of both sums.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    n = len(pos)
    cols = ["intensity", "background", "noise", "snr", "in_view", "aperture_inside",
            "n_saturated", "aperture_intensity"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    spacing = np.asarray(spacing, float)
    radius = np.asarray(radius_um, float)
    half = _half_widths(spacing, radius * shell[1])
    shape = np.array(image.shape)
    # each position's grid of voxels around it, axis by axis (separable: cheap to build)
    base = np.round(pos).astype(np.int64)
    coords = [base[:, ax, None] + np.arange(-h, h + 1)[None] for ax, h in enumerate(half)]
    dz, dy, dx = (d ** 2 for d in _axis_distances(base, pos, half, spacing, radius))
    r2 = (dz[:, :, None, None] + dy[:, None, :, None] + dx[:, None, None, :]).reshape(n, -1)
    iz, iy, ix = ((c >= 0) & (c < shape[ax]) for ax, c in enumerate(coords))
    inside = (iz[:, :, None, None] & iy[:, None, :, None] & ix[:, None, None, :]).reshape(n, -1)
    cz, cy, cx = (np.clip(c, 0, shape[ax] - 1) for ax, c in enumerate(coords))
    flat = ((cz[:, :, None, None] * shape[1] + cy[:, None, :, None]) * shape[2]
            + cx[:, None, None, :]).reshape(n, -1)                           # (n, k)
    vals = image.reshape(-1)[flat].astype(np.float64)
    ap = (r2 <= 1.0) & inside
    sh = (r2 > shell[0] ** 2) & (r2 <= shell[1] ** 2) & inside
    n_ap = ap.sum(1)
    bg, noise, intensity, snr = _subtract_shell(vals, ap, sh, n_ap)
    deblending = sources is not None and template_fwhm_um is not None
    if deblending:
        # a bright source's core in a neighbour's shell raises its median: left out; dim ones
        # are not (they move the median little, and the shells of crowded dim synapses would
        # shrink to a noisy few voxels)
        sources = np.asarray(sources, bool)
        bright = sources & (snr >= mask_snr)
        if bright.any():
            sh &= ~_near_neighbours(pos, pos[bright], sh.shape[1], half, spacing, radius,
                                    radius * shell[1])
            bg, noise, intensity, snr = _subtract_shell(vals, ap, sh, n_ap)
    in_view = np.all((pos >= -0.5) & (pos <= shape - 0.5), axis=1)
    whole = r2 <= 1.0
    n_sat = np.zeros(n, int)
    if saturation is not None and np.isfinite(saturation):
        src = image if raw is None else raw
        n_sat = ((src.reshape(-1)[flat] >= saturation) & ap).sum(1)
    plain = intensity
    if deblending:
        w = _light_fractions(ap, sh, pos, half, spacing, radius, template_fwhm_um)
        intensity, sd = deblend(intensity, noise * np.sqrt(np.maximum(n_ap, 1)), w, sources)
        snr = intensity / sd
    return pd.DataFrame({"intensity": intensity, "background": bg, "noise": noise,
                         "snr": snr, "in_view": in_view.astype(int),
                         "aperture_inside": n_ap / np.maximum(whole.sum(1), 1),
                         "n_saturated": n_sat, "aperture_intensity": plain})


FWHM_TO_SD = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _light_fractions(ap, sh, pos, half, spacing, radius, template_fwhm_um):
    """Sparse (n, n) ``W``: ``W[i, j]`` is what a Gaussian punctum of unit light and
    ``template_fwhm_um`` at ``pos[j]`` adds to position ``i``'s background-subtracted sum:
    its light in ``i``'s aperture ``ap[i]`` (over the offset grid of half-widths ``half``
    around ``pos[i]``) minus the aperture's size times its mean over ``i``'s shell ``sh[i]``
    (for small additions to a noisy shell the median moves by their mean).  Only pairs close
    enough to share light are computed."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    n = len(pos)
    sd = np.asarray(template_fwhm_um, float) * FWHM_TO_SD
    reach = radius * 2.5 + 3 * sd                # the shell's edge plus 3 SDs of a punctum
    pairs = (cKDTree(pos * spacing / reach).query_pairs(1.0, output_type="ndarray")
             if n > 1 else np.zeros((0, 2), int))
    rows = np.r_[np.arange(n), pairs[:, 0], pairs[:, 1]]
    cols = np.r_[np.arange(n), pairs[:, 1], pairs[:, 0]]
    norm = np.prod(spacing) / ((2 * np.pi) ** 1.5 * np.prod(sd))
    n_ap, n_sh = ap.sum(1), np.maximum(sh.sum(1), 1)
    base = np.round(pos).astype(np.int64)
    grid = tuple(2 * half + 1)
    vals = np.empty(len(rows))
    for lo in range(0, len(rows), 256):           # bounded memory: 256 pairs x shell voxels
        i, j = rows[lo:lo + 256], cols[lo:lo + 256]
        gz, gy, gx = (np.exp(-0.5 * d ** 2) for d in
                      _axis_distances(base[i], pos[j], half, spacing, sd))
        sums = []
        for m in (ap[i], sh[i]):               # the Gaussian factorises: contract axis by axis
            t = np.einsum("pabc,pc->pab", m.reshape(len(i), *grid).astype(np.float64), gx)
            sums.append(np.einsum("pab,pb,pa->p", t, gy, gz))
        vals[lo:lo + 256] = norm * (sums[0] - n_ap[i] * sums[1] / n_sh[i])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def deblend(intensity: np.ndarray, noise_of_sum: np.ndarray, fractions,
            sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aperture sums with the neighbours' light taken out.

    The neighbours are the ``sources``: the puncta detected in this session.  Their sums are
    ``I_S = W_SS a_S`` with ``a`` each punctum's total light and ``W`` the
    light fractions (``_light_fractions``), solved group by group of sources that share light; every other
    position (a synapse not detected here) keeps what is left of its sum after the sources'
    light.  A position that is not a source adds no light of its own to the model: two
    pieces of one synapse's track measured at one place must not split its light.  Returns
    ``(W_ii a_i, its SD)`` for sources and ``(I_i - W_iS a_S, its SD)`` for the others: an
    isolated punctum keeps its sum and noise.  ``noise_of_sum`` is the SD of each ``I``
    (independent per aperture).  A position with no aperture voxels in the stack keeps its
    values.
    """
    from scipy.sparse.csgraph import connected_components

    intensity = np.asarray(intensity, float)
    noise = np.asarray(noise_of_sum, float)
    out, var = intensity.copy(), noise ** 2
    w = fractions.tocsr()
    diag = w.diagonal()
    src = np.flatnonzero(np.asarray(sources, bool) & (diag > 0))
    a, var_a = np.zeros(len(intensity)), np.zeros(len(intensity))
    a[src], var_a[src] = intensity[src] / diag[src], var[src] / diag[src] ** 2
    n_groups, label = connected_components(w[src][:, src], directed=False)
    for g in np.flatnonzero(np.bincount(label, minlength=n_groups) > 1):
        k = src[label == g]
        inv = np.linalg.inv(w[k][:, k].toarray())
        a[k] = inv @ intensity[k]
        var_a[k] = ((inv * noise[k][None, :]) ** 2).sum(1)
    out[src], var[src] = diag[src] * a[src], diag[src] ** 2 * var_a[src]
    rest = np.setdiff1d(np.flatnonzero(diag > 0), src)
    w_rs = w[rest][:, src]
    out[rest] = intensity[rest] - w_rs @ a[src]
    var[rest] = noise[rest] ** 2 + w_rs.power(2) @ var_a[src]
    return out, np.sqrt(var)


def distinct_puncta(positions: np.ndarray, detected, *, spacing, same_um: float = 0.5,
                    z_scale: float = 0.5, priority=None) -> np.ndarray:
    """Which positions stand for a punctum of their own: all but those within ``same_um``
    (z distances times ``z_scale``) of one already taken, detected positions taken first,
    then by decreasing ``priority`` (e.g. the track's number of detections; ties in order).

    Two tracks this close that were not both detected are pieces of one synapse (the presence
    stage merges them): as two sources they would split its light between them.  The piece
    taken is the one the merge keeps (the most detections), so the merged synapse's row in a
    session without detection carries the light, not the residual beside it.
    """
    from scipy.spatial import cKDTree

    pos = np.asarray(positions, float).reshape(-1, 3) * np.asarray(spacing) * [z_scale, 1, 1]
    detected = np.asarray(detected, bool)
    keep = np.ones(len(pos), bool)
    if len(pos) < 2:
        return keep
    prio = np.zeros(len(pos)) if priority is None else np.asarray(priority, float)
    order = np.lexsort((np.arange(len(pos)), -prio, ~detected))
    rank = np.empty(len(pos), int)
    rank[order] = np.arange(len(pos))
    pairs = cKDTree(pos).query_pairs(same_um, output_type="ndarray")
    pairs = pairs[~(detected[pairs[:, 0]] & detected[pairs[:, 1]])]   # both detected: two puncta
    later = np.where(rank[pairs[:, 0]] > rank[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    earlier = pairs[:, 0] + pairs[:, 1] - later
    for e, l in sorted(zip(earlier, later), key=lambda p: rank[p[1]]):
        if keep[e]:
            keep[l] = False
    return keep


def null_positions(mask: np.ndarray, avoid_vox: np.ndarray, *, spacing, n: int = 300,
                   min_distance_um: float = 1.5, seed: int = 0) -> np.ndarray:
    """Up to ``n`` voxel positions on ``mask`` (the labelled cell) at least
    ``min_distance_um`` from every position in ``avoid_vox`` (the tracked synapses): places
    where a synapse could be but none is.  Measured like the synapses, they show what an
    absent synapse measures -- the dendrite under the aperture, leftover light of neighbours
    -- which is not zero on average."""
    from scipy.spatial import cKDTree

    spacing = np.asarray(spacing, float)
    rng = np.random.default_rng(seed)
    cand = np.argwhere(mask)
    if len(cand) == 0:
        return np.zeros((0, 3))
    cand = cand[rng.choice(len(cand), min(len(cand), 20 * n), replace=False)].astype(float)
    avoid = np.asarray(avoid_vox, float).reshape(-1, 3)
    if len(avoid):
        far = cKDTree(avoid * spacing).query(cand * spacing)[0] >= min_distance_um
        cand = cand[far]
    keep = []          # and apart from each other, so that no two share most of an aperture
    tree_pts = cand * spacing
    taken = np.zeros(len(cand), bool)
    tree = cKDTree(tree_pts)
    for k in range(len(cand)):
        if len(keep) >= n:
            break
        if taken[k]:
            continue
        keep.append(k)
        taken[tree.query_ball_point(tree_pts[k], min_distance_um)] = True
    return cand[keep]


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
