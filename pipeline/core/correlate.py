"""Phase correlation of stacks: the global translation and rotation about z between two
sessions of a field, from the images alone (the register stage's coarse step).

A point at ``q`` in the moving stack lies at ``q + shift`` in the reference stack; rotations
are about z (in the y-x plane), 4x4 matrices on (z, y, x, 1) in um.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from .channels import block_average_yx


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
    shift, peak = _correlate(block_average_yx(reference, factor), block_average_yx(moving, factor),
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


def translation_matrix(shift_um) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = shift_um
    return m


def rotation_z_matrix(deg: float, centre_um) -> np.ndarray:
    """4x4 rotation by ``deg`` in the y-x plane (about z) about ``centre_um`` (z, y, x)."""
    a = np.deg2rad(deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = np.asarray(centre_um, float) - rot @ np.asarray(centre_um, float)
    return m


def _taper(img: np.ndarray) -> np.ndarray:
    """Cosine ramps over the outer eighth of each axis (no edges for the correlation to find)."""
    for ax, n in enumerate(img.shape):
        w = np.ones(n, np.float32)
        edge = max(n // 8, 1)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge + 2, dtype=np.float32)[1:-1])
        w[:edge], w[n - edge:] = ramp, ramp[::-1]
        img = img * w.reshape([-1 if i == ax else 1 for i in range(img.ndim)])
    return img


def _projection(stack: np.ndarray, spacing) -> np.ndarray:
    """Max projection of a (c, z, y, x) stack without its smooth background, channels summed
    after scaling each to unit SD, bright outliers clipped."""
    out = np.float32(0)
    for ch in stack:
        p = ch.max(axis=0).astype(np.float32)
        p = p - ndimage.gaussian_filter(p, 3.0 / np.asarray(spacing)[1:], mode="nearest")
        p = np.clip(p, 0, np.percentile(p, 99.9))
        out = out + p / (p.std() + 1e-9)
    return out


def _peak_2d(reference: np.ndarray, moving: np.ndarray) -> float:
    """Height of the normalised phase-correlation peak of two tapered 2D images."""
    shape = [int(n * 1.5) for n in reference.shape]
    a = sfft.rfft2(_taper(reference - reference.mean()), shape)
    c = a * np.conj(sfft.rfft2(_taper(moving - moving.mean()), shape))
    c /= np.abs(c) + 1e-12 * np.abs(c).max() + 1e-30
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    c *= np.exp(-2 * np.pi ** 2 * (fy ** 2 + fx ** 2))        # 1-pixel Gaussian smoothing
    corr = sfft.irfft2(c, shape)
    return float(corr.max() / (np.sqrt(np.square(corr, dtype=np.float64).sum()) + 1e-12))


def estimate_rotation_z(reference: np.ndarray, moving: np.ndarray, *, spacing,
                        max_deg: float = 6.0, step_deg: float = 1.0,
                        coarse_pixel_um: float = 0.35,
                        limit_deg: float = 20.0) -> tuple[float, float]:
    """Rotation about z (degrees, about the moving stack's centre) that best aligns
    ``moving`` with ``reference``: the angle whose rotated max projection phase-correlates best.

    Angles from ``-max_deg`` to ``max_deg`` every ``step_deg`` are tried; when the best lies at
    an end of that grid the search goes on outward while the peak still rises (up to
    ``limit_deg``: remounting can turn a field by more than the usual bound, and a clipped
    angle leaves the rest to the fine fit).  The best angle is then refined on a grid of a
    quarter step around it, and a parabola through the best three gives the final fraction.

    Both are (c, z, y, x) stacks on the same voxel grid.  Returns ``(angle_deg, peak)``.
    """
    factor = max(1, int(round(coarse_pixel_um / spacing[1])))
    sp = np.asarray(spacing) * [1, factor, factor]
    ref = _projection(block_average_yx(reference, factor), sp)
    mov = _projection(block_average_yx(moving, factor), sp)
    heights: dict[float, float] = {}

    def height(a: float) -> float:
        a = round(float(a), 6)
        if a not in heights:
            # ndimage.rotate(img, a) moves the picture's points as rotation_z_matrix(a) moves points
            heights[a] = _peak_2d(ref, ndimage.rotate(mov, a, reshape=False, order=1)
                                  if a else mov)
        return heights[a]

    grid = list(np.arange(-max_deg, max_deg + step_deg / 2, step_deg))
    for a in grid:
        height(a)
    while True:
        best = max(heights, key=heights.get)
        lo, hi = min(heights), max(heights)
        if best == hi and hi + step_deg <= limit_deg:
            height(hi + step_deg)
        elif best == lo and lo - step_deg >= -limit_deg:
            height(lo - step_deg)
        else:
            break
        if max(heights, key=heights.get) == best:   # the peak fell: best is inside now
            break
    best = max(heights, key=heights.get)
    fine = step_deg / 4
    for a in (best - 2 * fine, best - fine, best + fine, best + 2 * fine):
        height(a)
    best = max(heights, key=heights.get)
    fm, f0, fp = height(best - fine), heights[round(best, 6)], height(best + fine)
    denom = fm - 2 * f0 + fp
    angle = best
    if denom < 0:
        angle += fine * float(np.clip(0.5 * (fm - fp) / denom, -0.5, 0.5))
    return float(angle), float(f0)
