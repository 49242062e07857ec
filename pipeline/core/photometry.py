"""Aperture photometry: background-subtracted integrated fluorescence at given positions.

The aperture is an ellipsoid around the (sub-voxel) position; the local background is the
mean of a surrounding shell's voxels within a few noise SDs of its median, and their SD the
noise used for the SNR (:func:`clipped_mean_and_sd`: bright neighbours' cores left out, and
no snapping to whole counts, as the median and MAD of an integer-valued stack do).
Neighbours' light is taken out with Gaussian templates (:func:`deblend`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .noise import MAD_TO_SD
from .optics import APERTURE_UM, FWHM_TO_SIGMA
from .threads import thread_map


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


#: positions measured at once (bounds the memory of a crowded stack's photometry)
PHOTOMETRY_CHUNK = 256
#: the background is the mean of the shell's voxels within this many noise SDs of its median
BACKGROUND_CLIP_SD = 5.0
#: largest group of sources sharing light that :func:`deblend` inverts densely (cubic cost)
DENSE_GROUP = 1500


def _offset_grid(pos, half, spacing, radius, shape):
    """For each position, over its grid of voxels (half-widths ``half``): squared distance
    in aperture radii ``(p, k)``, whether the voxel is inside the stack, and its flat index
    (clipped into the stack)."""
    n = len(pos)
    base = np.round(pos).astype(np.int64)
    coords = [base[:, ax, None] + np.arange(-h, h + 1)[None] for ax, h in enumerate(half)]
    dz, dy, dx = (d ** 2 for d in _axis_distances(base, pos, half, spacing, radius))
    r2 = (dz[:, :, None, None] + dy[:, None, :, None] + dx[:, None, None, :]).reshape(n, -1)
    iz, iy, ix = ((c >= 0) & (c < shape[ax]) for ax, c in enumerate(coords))
    inside = (iz[:, :, None, None] & iy[:, None, :, None] & ix[:, None, None, :]).reshape(n, -1)
    cz, cy, cx = (np.clip(c, 0, shape[ax] - 1) for ax, c in enumerate(coords))
    flat = ((cz[:, :, None, None] * shape[1] + cy[:, None, :, None]) * shape[2]
            + cx[:, None, None, :]).reshape(n, -1)
    return r2, inside, flat


def _row_median(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median of each row's ``values`` where ``keep`` (NaN for a row with none): what
    ``np.nanmedian(np.where(keep, values, nan), axis=1)`` gives, with one sort of the whole
    array instead of a median per row (10x faster on thousands of rows)."""
    return _median_and_mad(values, keep)[0]


def _median_and_mad(values: np.ndarray, keep: np.ndarray, *, mad: bool = False):
    """(median, median absolute deviation from it) of each row's ``values`` where ``keep``
    (NaN for a row with none; the deviation only with ``mad``, else None), from one sort.

    The deviations of sorted values from their median fall, then rise: two sorted runs
    (below the median, read backwards, and from it on), so their median is found by a
    binary search for how many of the smallest deviations each run holds, not a second
    sort.  The values are those of ``|values - median|``, to the bit."""
    keep = keep & ~np.isnan(values)          # as nanmedian: a NaN voxel is no value
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    count = keep.sum(1)
    rows = np.arange(len(values))
    last = values.shape[1] - 1
    lo, hi = np.maximum((count - 1) // 2, 0), np.minimum(count // 2, last)
    with np.errstate(invalid="ignore"):
        median = np.where(count > 0, (ordered[rows, lo] + ordered[rows, hi]) / 2, np.nan)
    if not mad:
        return median, None
    below = (ordered < median[:, None]).sum(1)      # run L: median - ordered[below-1-i]
    n_left, n_right = below, count - below           # run R: ordered[below+i] - median

    def left(i):
        return median - ordered[rows, np.clip(below - 1 - i, 0, last)]

    def right(i):
        return ordered[rows, np.clip(below + i, 0, last)] - median

    def kth(k):                                      # the k-th smallest (0-based) of L and R
        a_lo, a_hi = np.maximum(0, k + 1 - n_right), np.minimum(k + 1, n_left)
        while (a_lo < a_hi).any():
            mid = (a_lo + a_hi) // 2
            go_up = (a_lo < a_hi) & (left(mid) < right(k - mid))
            a_lo = np.where(go_up, mid + 1, a_lo)
            a_hi = np.where((a_lo < a_hi) & ~go_up, mid, a_hi)
        b = k + 1 - a_lo
        return np.maximum(np.where(a_lo > 0, left(a_lo - 1), -np.inf),
                          np.where(b > 0, right(b - 1), -np.inf))

    with np.errstate(invalid="ignore"):
        spread = np.where(count > 0, (kth(lo) + kth(hi)) / 2, np.nan)
    return median, spread


def clipped_mean_and_sd(values: np.ndarray, keep: np.ndarray, *, centre, sd,
                        clip_sd: float = BACKGROUND_CLIP_SD) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each row's ``values`` where ``keep``, leaving out those more than
    ``clip_sd`` SDs away: first from ``centre`` in units of ``sd`` (per row; a row's plain SD
    where ``sd`` is 0), then from the mean of what is left in units of its SD.  NaN for a row
    with none.

    The background under a punctum is what an average voxel of the shell holds, and its noise
    the spread of those voxels: a median and MAD are not, on whole-count (low-photon)
    stacks.  A stack of integers has a whole-count median, up to half a count per voxel off
    the mean, which a 365-voxel aperture turns into 180 counts of signal; its MAD is a whole
    count too (0 with more than half the voxels equal, 1.5 count SDs at 1 to 4.5 photons, 3 at
    5 photons), so the SNR of a session would jump with its brightness.  The first window
    (robust ``centre`` and ``sd``: the median and MAD) keeps a bright neighbour's core out; the
    second, about the mean, gives back the long side of a skewed (few-photon) distribution,
    which a window about its median cuts."""
    keep = keep & np.isfinite(values)
    count = keep.sum(1)

    def moments(values, inside):
        n_in = inside.sum(1)
        mean = np.where(inside, values, 0).sum(1) / n_in
        var = np.where(inside, (values - mean[:, None]) ** 2, 0).sum(1)
        return mean, np.sqrt(var / np.maximum(n_in - 1, 1))

    with np.errstate(invalid="ignore", divide="ignore"):
        width = clip_sd * np.asarray(sd, float)
        tied = ~(width > 0)               # the plain SD only where the MAD gives none
        if tied.any():
            width[tied] = clip_sd * moments(values[tied], keep[tied])[1]
        mean, spread = moments(values, keep & (np.abs(values - np.asarray(centre)[:, None])
                                               <= width[:, None]))
        # (a row of one value keeps it: its SD is 0, its mean that value to rounding)
        tolerance = clip_sd * spread + 1e-9 * np.maximum(np.abs(mean), 1)
        mean, spread = moments(values, keep & (np.abs(values - mean[:, None])
                                               <= tolerance[:, None]))
        return mean, np.where(count > 0, spread, np.nan)


def _subtract_shell(vals, ap, sh, n_ap):
    """(background, noise, intensity, snr) from the aperture and shell voxel values."""
    median, spread = _median_and_mad(vals, sh, mad=True)
    bg, noise = clipped_mean_and_sd(vals, sh, centre=median, sd=MAD_TO_SD * spread)
    intensity = np.where(ap, vals, 0).sum(1) - n_ap * bg
    noise = np.maximum(noise, 1e-6 * np.maximum(np.abs(bg), 1))
    return bg, noise, intensity, intensity / (noise * np.sqrt(np.maximum(n_ap, 1)))


def aperture_photometry(image: np.ndarray, positions: np.ndarray, *, spacing,
                        radius_um=APERTURE_UM, shell=(1.5, 2.5),
                        saturation: float | None = None, raw: np.ndarray | None = None,
                        sources=None, template_fwhm_um=None, mask_snr: float = 10.0,
                        aperture_correction: bool = False, workers: int = 1) -> pd.DataFrame:
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
        ``template_fwhm_um`` (z, y, x; the PSF and a typical punctum together; or one row
        per position, each punctum its own size).  What a
        neighbour puts in an aperture is not the synapse's weight, and would make an absent
        synapse look present.  ``aperture_intensity`` keeps the plain sum.
    aperture_correction : with deblending, each intensity is divided by the share of its own
        template's light the aperture keeps (less the shell's): the whole light of a punctum
        of that size, not the part of it inside the aperture (``snr`` is unchanged)
    workers : threads measuring chunks of positions at once (numpy's gathers and sorts
        release the GIL); the values do not depend on it

    Returns
    -------
    DataFrame with ``intensity`` (sum over the aperture minus its size times the background),
    ``background`` and ``noise`` (the clipped mean and SD per voxel in the shell,
    :func:`clipped_mean_and_sd`), ``snr`` (intensity over the noise of the sum), ``in_view``
    (position inside the stack), ``aperture_inside`` (share of the aperture's voxels inside
    the stack), ``n_saturated`` and ``aperture_intensity`` (the plain sum, before any
    deblending).  Voxels outside the stack are left out of both sums.
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
    k = int(np.prod(2 * half + 1))
    ap, sh = np.zeros((n, k), bool), np.zeros((n, k), bool)
    whole = np.zeros(n, int)
    bg, noise, intensity, snr = (np.zeros(n) for _ in range(4))
    n_sat = np.zeros(n, int)
    src = image if raw is None else raw
    count_saturated = saturation is not None and np.isfinite(saturation)
    # positions a chunk at a time: the (positions x grid voxels) arrays of a crowded stack
    # (10,000 puncta) would otherwise take gigabytes
    def measure(lo):
        part = slice(lo, lo + PHOTOMETRY_CHUNK)
        r2, inside, flat = _offset_grid(pos[part], half, spacing, radius, shape)
        ap[part] = (r2 <= 1.0) & inside
        sh[part] = (r2 > shell[0] ** 2) & (r2 <= shell[1] ** 2) & inside
        whole[part] = (r2 <= 1.0).sum(1)
        vals = image.reshape(-1)[flat].astype(np.float64)
        bg[part], noise[part], intensity[part], snr[part] = _subtract_shell(
            vals, ap[part], sh[part], ap[part].sum(1))
        if count_saturated:
            n_sat[part] = ((src.reshape(-1)[flat] >= saturation) & ap[part]).sum(1)

    thread_map(measure, range(0, n, PHOTOMETRY_CHUNK), workers=workers)
    n_ap = ap.sum(1)
    deblending = sources is not None and template_fwhm_um is not None
    if deblending:
        # a bright source's core in a neighbour's shell raises its background: left out; dim
        # ones are not (deblending takes out what they add to the mean, and the shells of
        # crowded dim synapses would shrink to a noisy few voxels)
        sources = np.asarray(sources, bool)
        bright = sources & (snr >= mask_snr)
        if bright.any():
            near = _near_neighbours(pos, pos[bright], k, half, spacing, radius,
                                    radius * shell[1])
            changed = np.flatnonzero((near & sh).any(1))   # only their shells change
            sh &= ~near

            def remeasure(lo):
                rows = changed[lo:lo + PHOTOMETRY_CHUNK]
                _, _, flat = _offset_grid(pos[rows], half, spacing, radius, shape)
                vals = image.reshape(-1)[flat].astype(np.float64)
                bg[rows], noise[rows], intensity[rows], snr[rows] = _subtract_shell(
                    vals, ap[rows], sh[rows], n_ap[rows])

            thread_map(remeasure, range(0, len(changed), PHOTOMETRY_CHUNK), workers=workers)
    in_view = np.all((pos >= -0.5) & (pos <= shape - 0.5), axis=1)
    plain = intensity
    if deblending:
        w = _light_fractions(ap, sh, pos, half, spacing, radius, template_fwhm_um)
        intensity, sd = deblend(intensity, noise * np.sqrt(np.maximum(n_ap, 1)), w, sources)
        snr = intensity / sd
        if aperture_correction:      # the snr is unchanged: both divided by the same share
            own = w.diagonal()
            share = np.where(own > 0, own, 1.0)
            intensity = intensity / share
    return pd.DataFrame({"intensity": intensity, "background": bg, "noise": noise,
                         "snr": snr, "in_view": in_view.astype(int),
                         "aperture_inside": n_ap / np.maximum(whole, 1),
                         "n_saturated": n_sat, "aperture_intensity": plain})


def _light_fractions(ap, sh, pos, half, spacing, radius, template_fwhm_um):
    """Sparse (n, n) ``W``: ``W[i, j]`` is what a Gaussian punctum of unit light and
    ``template_fwhm_um`` (one for all, or row ``j`` of an (n, 3) array) at ``pos[j]`` adds
    to position ``i``'s background-subtracted sum:
    its light in ``i``'s aperture ``ap[i]`` (over the offset grid of half-widths ``half``
    around ``pos[i]``) minus the aperture's size times its mean over ``i``'s shell ``sh[i]``
    (the clipped mean moves by their mean).  Only pairs close
    enough to share light are computed."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    n = len(pos)
    sd = np.broadcast_to(np.asarray(template_fwhm_um, float) * FWHM_TO_SIGMA, (n, 3))
    reach = radius * 2.5 + 3 * sd.max(0, initial=0)   # the shell's edge plus 3 SDs of a punctum
    pairs = (cKDTree(pos * spacing / reach).query_pairs(1.0, output_type="ndarray")
             if n > 1 else np.zeros((0, 2), int))
    rows = np.r_[np.arange(n), pairs[:, 0], pairs[:, 1]]
    cols = np.r_[np.arange(n), pairs[:, 1], pairs[:, 0]]
    norm = np.prod(spacing) / ((2 * np.pi) ** 1.5 * np.prod(sd, axis=1))
    n_ap, n_sh = ap.sum(1), np.maximum(sh.sum(1), 1)
    base = np.round(pos).astype(np.int64)
    grid = tuple(2 * half + 1)
    vals = np.empty(len(rows))
    for lo in range(0, len(rows), 256):           # bounded memory: 256 pairs x shell voxels
        i, j = rows[lo:lo + 256], cols[lo:lo + 256]
        gz, gy, gx = (np.exp(-0.5 * d ** 2) for d in
                      _axis_distances(base[i], pos[j], half, spacing, sd[j].T[:, :, None]))
        sums = []
        for m in (ap[i], sh[i]):               # the Gaussian factorises: contract axis by axis
            t = np.einsum("pabc,pc->pab", m.reshape(len(i), *grid).astype(np.float64), gx)
            sums.append(np.einsum("pab,pb,pa->p", t, gy, gz))
        vals[lo:lo + 256] = norm[j] * (sums[0] - n_ap[i] * sums[1] / n_sh[i])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _local_variances(w, noise: np.ndarray) -> np.ndarray:
    """Variance of each solved light ``a = W^-1 I`` (``I`` independent with SD ``noise``),
    ``sum_j (W^-1)_ij^2 noise_j^2``, from the inverse of the block of ``W`` (sparse csr) over
    the source and the sources within two steps of it (sharing light with one that shares
    light with it).  The inverse falls off within a step or two, so this is close to the whole
    inverse's row at a cost linear in the group's size (``tests/test_crowded.py``: within
    10 %, 1 % for the median punctum, at a knock-in's 70 puncta per 1000 um3; one step alone
    was off by up to 70 % and an exact sparse solve for every row took minutes at twice that
    density)."""
    pattern = (w != 0).astype(np.float32)
    pattern = (pattern @ pattern).tocsr()
    out = np.empty(w.shape[0])
    for i in range(w.shape[0]):
        nb = pattern.indices[pattern.indptr[i]:pattern.indptr[i + 1]]
        row = np.linalg.inv(w[nb][:, nb].toarray())[np.flatnonzero(nb == i)[0]]
        out[i] = ((row * noise[nb]) ** 2).sum()
    return out


def deblend(intensity: np.ndarray, noise_of_sum: np.ndarray, fractions,
            sources: np.ndarray, *, dense_group: int = DENSE_GROUP
            ) -> tuple[np.ndarray, np.ndarray]:
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
    values.  A group of more than ``dense_group`` sources (a crowded stack joins thousands)
    is solved sparsely, its variances from each source's neighbourhood
    (:func:`_local_variances`).
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve

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
        if len(k) > dense_group:
            w_kk = w[k][:, k].tocsr()
            a[k] = spsolve(w_kk.tocsc(), intensity[k])
            var_a[k] = _local_variances(w_kk, noise[k])
            continue
        inv = np.linalg.inv(w[k][:, k].toarray())
        a[k] = inv @ intensity[k]
        var_a[k] = ((inv * noise[k][None, :]) ** 2).sum(1)
    out[src], var[src] = diag[src] * a[src], diag[src] ** 2 * var_a[src]
    rest = np.setdiff1d(np.flatnonzero(diag > 0), src)
    w_rs = w[rest][:, src]
    out[rest] = intensity[rest] - w_rs @ a[src]
    var[rest] = noise[rest] ** 2 + w_rs.power(2) @ var_a[src]
    return out, np.sqrt(var)
