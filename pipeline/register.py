"""Cross-session registration: a transform from each session's stack into the reference frame.

Coordinates are micrometres on (z, y, x) with the origin at the centre of voxel (0, 0, 0);
a transform is a 4x4 matrix acting on (z, y, x, 1) that maps a point of the session's own
frame to the reference session's frame.

Translation is estimated in two steps: phase correlation of the whole stacks (coarse, robust
to large shifts), then refinement on matched puncta (mutual nearest neighbours within a
shrinking gate, median displacement), which reaches the puncta's sub-voxel precision.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage
from scipy.spatial import cKDTree


def _prepare(image: np.ndarray, spacing) -> np.ndarray:
    """Remove the smooth background, compress bright outliers and taper the edges."""
    img = image.astype(np.float32, copy=False)
    bg = ndimage.gaussian_filter(img, 3.0 / np.asarray(spacing), mode="nearest")
    img = img - bg
    img = np.clip(img, 0, np.percentile(img, 99.9))
    for ax, n in enumerate(img.shape):
        w = np.ones(n, np.float32)
        edge = max(n // 8, 1)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge, dtype=np.float32))
        w[:edge], w[n - edge:] = ramp, ramp[::-1]
        img = img * w.reshape([-1 if i == ax else 1 for i in range(img.ndim)])
    return img - img.mean()


def bin_yx(image: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the last two (y, x) axes by ``factor`` (partial blocks dropped), float32."""
    if factor <= 1:
        return image.astype(np.float32, copy=False)
    *lead, y, x = image.shape
    y, x = y // factor * factor, x // factor * factor
    v = image[..., :y, :x].astype(np.float32, copy=False)
    return v.reshape(*lead, y // factor, factor, x // factor, factor).mean(axis=(-3, -1))


def _correlate(reference, moving, spacing, smooth_vox):
    """Phase correlation of (c, z, y, x) stacks: (shift in voxels, normalised peak height).

    Each channel's cross-power spectrum is normalised to unit magnitude and the channels are
    averaged, so sharp puncta and the morphology's outline vote together.
    """
    shape = [int(max(a, b) * 1.5) for a, b in zip(reference.shape[1:], moving.shape[1:])]
    axes = (0, 1, 2)
    cross = None
    for ref_c, mov_c in zip(reference, moving):
        fr = sfft.rfftn(_prepare(ref_c, spacing), shape, axes=axes, workers=-1)
        c = fr * np.conj(sfft.rfftn(_prepare(mov_c, spacing), shape, axes=axes, workers=-1))
        del fr
        c /= np.abs(c) + np.float32(1e-12) * np.abs(c).max()
        cross = c if cross is None else cross + c
    cross /= len(reference)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape[:-1]], np.fft.rfftfreq(shape[-1]),
                        indexing="ij", sparse=True)
    cross *= np.exp(-2 * (np.pi * smooth_vox) ** 2 * sum(f * f for f in freqs)).astype(np.float32)
    corr = sfft.irfftn(cross, shape, axes=axes, workers=-1)
    del cross
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape))
    sub = np.zeros(3)
    for ax in range(3):
        step = np.zeros(3, int)
        step[ax] = 1
        fm1 = corr[tuple((peak - step) % shape)]
        f0 = corr[tuple(peak)]
        fp1 = corr[tuple((peak + step) % shape)]
        denom = fm1 - 2 * f0 + fp1
        sub[ax] = 0.5 * (fm1 - fp1) / denom if denom < 0 else 0.0
    shift = peak + np.clip(sub, -0.5, 0.5)
    shape_arr = np.array(shape)
    shift = np.where(shift > shape_arr / 2, shift - shape_arr, shift)
    height = float(corr.max() / (np.sqrt(np.square(corr, dtype=np.float64).sum()) + 1e-12))
    return shift, height


def phase_correlate(reference: np.ndarray, moving: np.ndarray, *, spacing,
                    coarse_pixel_um: float = 0.3, smooth_vox: float = 1.0,
                    refine_crop: int = 256) -> tuple[np.ndarray, float]:
    """Translation (voxels) that maps ``moving`` onto ``reference``.

    ``reference`` and ``moving`` are (z, y, x) stacks or (c, z, y, x) stacks whose channels
    are correlated jointly.  Coarse: both stacks are block-averaged in y and x to pixels of about
    ``coarse_pixel_um``, zero-padded with room for shifts of half the stack (so the
    correlation is linear, not circular), and phase-correlated; the correlation is smoothed by
    a Gaussian of ``smooth_vox`` voxels so that its peak can be located to sub-voxel precision
    by a parabola on each axis.  Fine: the overlapping parts (at most ``refine_crop`` pixels
    across, from the centre of the overlap) are correlated again at full resolution.

    Returns
    -------
    shift : (3,) array such that ``reference[p] ~ moving[p - shift]``, i.e. a point at ``q``
        in the moving stack lies at ``q + shift`` in the reference stack.
    peak : height of the normalised coarse correlation peak (low values mean unreliable).
    """
    spacing = np.asarray(spacing, float)
    if reference.ndim == 3:
        reference, moving = reference[np.newaxis], moving[np.newaxis]
    factor = max(1, int(round(coarse_pixel_um / spacing[1])))
    coarse_spacing = spacing * [1, factor, factor]
    shift, peak = _correlate(bin_yx(reference, factor), bin_yx(moving, factor),
                             coarse_spacing, smooth_vox)
    shift = shift * [1, factor, factor]
    if factor > 1 and refine_crop:
        s = np.round(shift).astype(int)
        # reference window r and moving window r - s, both inside their stacks
        lo = np.maximum(0, s)
        hi = np.minimum(reference.shape[1:], np.array(moving.shape[1:]) + s)
        if np.all(hi - lo >= [3, 32, 32]):
            centre = (lo + hi) // 2
            half = np.array([(hi[0] - lo[0]) // 2, refine_crop // 2, refine_crop // 2])
            lo = np.maximum(lo, centre - half)
            hi = np.minimum(hi, centre + half)
            ref_win = reference[:, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            mov_win = moving[:, lo[0] - s[0]:hi[0] - s[0], lo[1] - s[1]:hi[1] - s[1],
                             lo[2] - s[2]:hi[2] - s[2]]
            residual, _ = _correlate(ref_win, mov_win, spacing, smooth_vox)
            if np.all(np.abs(residual) <= [1.5, 1.5 * factor, 1.5 * factor]):
                shift = s + residual
    return shift, peak


def refine_translation(reference_um: np.ndarray, moving_um: np.ndarray, shift_um, *,
                       gates_um=(2.0, 1.0, 0.6), z_scale: float = 0.5, min_matches: int = 3):
    """Refine a translation on matched points (mutual nearest neighbours within a gate).

    Distances are computed after multiplying z by ``z_scale`` (z is localised less precisely).
    Returns ``(shift_um, n_matches, median_residual_um)``; the shift is left unchanged when
    fewer than ``min_matches`` pairs are found.
    """
    shift = np.asarray(shift_um, float).copy()
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    mov = np.asarray(moving_um, float).reshape(-1, 3)
    scale = np.array([z_scale, 1.0, 1.0])
    n, resid = 0, float("nan")
    if len(ref) < min_matches or len(mov) < min_matches:
        return shift, n, resid
    tree = cKDTree(ref * scale)
    for gate in gates_um:
        mapped = mov + shift
        d, j = tree.query(mapped * scale, distance_upper_bound=gate)
        ok = np.isfinite(d)
        back = cKDTree(mapped * scale).query(ref[j[ok]] * scale)[1]
        mutual = np.flatnonzero(ok)[back == np.flatnonzero(ok)]
        if len(mutual) < min_matches:
            break
        shift = shift + np.median(ref[j[mutual]] - mapped[mutual], axis=0)
        n = len(mutual)
        resid = float(np.median(np.linalg.norm((ref[j[mutual]] - mov[mutual] - shift), axis=1)))
    return shift, n, resid


def translation_matrix(shift_um) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = shift_um
    return m


def register_session(reference: np.ndarray, moving: np.ndarray, *, spacing,
                     reference_spacing=None, reference_points_um=None, moving_points_um=None,
                     min_peak: float = 0.03) -> dict:
    """Estimate the transform of one session into the reference session's frame.

    Parameters
    ----------
    reference, moving : (z, y, x) or (c, z, y, x) stacks (channels are correlated jointly)
    spacing : voxel size of ``moving`` (um); ``reference_spacing`` defaults to the same
    reference_points_um, moving_points_um : optional (n, 3) puncta positions in um, each in
        its own stack's frame, used to refine the translation

    Returns
    -------
    dict with ``matrix`` (4x4, moving um -> reference um), ``shift_um``, ``coarse_shift_um``,
    ``peak`` (phase-correlation peak height), ``n_matches``, ``residual_um`` and
    ``reliable`` (False when the correlation peak is weak and no puncta confirm it).
    """
    spacing = np.asarray(spacing, float)
    ref_spacing = np.asarray(spacing if reference_spacing is None else reference_spacing, float)
    mov = moving if moving.ndim == 4 else moving[np.newaxis]
    reference = reference if reference.ndim == 4 else reference[np.newaxis]
    if not np.allclose(spacing, ref_spacing, rtol=0.01):
        # resample the moving stack onto the reference voxel grid before correlating
        mov = np.stack([ndimage.zoom(m.astype(np.float32), spacing / ref_spacing, order=1)
                        for m in mov])
    shift_vox, peak = phase_correlate(reference, mov, spacing=ref_spacing)
    coarse = shift_vox * ref_spacing
    shift, n, resid = coarse, 0, float("nan")
    if reference_points_um is not None and moving_points_um is not None:
        shift, n, resid = refine_translation(reference_points_um, moving_points_um, coarse)
    reliable = bool(peak >= min_peak or n >= 10)
    return {"matrix": translation_matrix(shift).tolist(), "shift_um": list(map(float, shift)),
            "coarse_shift_um": list(map(float, coarse)), "peak": peak, "n_matches": int(n),
            "residual_um": resid, "reliable": reliable}


def transform_points(matrix, points_um: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (n, 3) points in um."""
    m = np.asarray(matrix, float)
    pts = np.asarray(points_um, float).reshape(-1, 3)
    return pts @ m[:3, :3].T + m[:3, 3]
