"""Local displacement between two aligned stacks, block by block (piecewise-rigid registration).

The reference field is cut into overlapping lateral blocks spanning the stack's depth; each
block of the (already globally aligned) moving stack is phase-correlated with the reference's.
A block's shift is kept only when its correlation peak is clear and it agrees with its
neighbours; the others are filled from the kept ones by normalised convolution, so that the
field holds where no block saw anything (it does not fall back to zero at the edge of the
evidence).  The result is a displacement per block centre, in um, on a regular lateral grid.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from .noise import MAD_TO_SD


def _prepared(block: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean-free block with cosine tapers at its lateral edges (no edge for phase correlation
    to lock onto).  With a lateral ``mask`` (y, x), only the pixels inside count: the mean is
    theirs and the rest is zero, so the mask's own edge carries no step."""
    if mask is None:
        out = block - block.mean()
    else:
        inside = mask.astype(bool)
        out = np.where(inside, block - block[:, inside].mean(), 0).astype(block.dtype)
    for ax in (1, 2):
        n = out.shape[ax]
        w = np.hanning(n + 2)[1:-1].astype(np.float32)
        out = out * w.reshape([-1 if i == ax else 1 for i in range(out.ndim)])
    return out


def block_shift(reference: np.ndarray, moving: np.ndarray,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Shift (voxels, z y x) with ``reference[p] ~ moving[p - shift]`` of two (c, z, y, x)
    blocks, and the height of the normalised phase-correlation peak (channels averaged).
    ``mask`` (y, x): the part of the block both images cover (the rest is ignored in both)."""
    shape = [reference.shape[1]] + [sfft.next_fast_len(int(n * 1.5), real=True)
                                    for n in reference.shape[2:]]
    cross = None
    for r, m in zip(reference, moving):
        c = (sfft.rfftn(_prepared(r, mask), shape)
             * np.conj(sfft.rfftn(_prepared(m, mask), shape)))
        c /= np.abs(c) + np.float32(1e-9) * (np.abs(c).max() + 1e-30)
        cross = c if cross is None else cross + c
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape[:-1]], np.fft.rfftfreq(shape[-1]),
                        indexing="ij", sparse=True)
    cross *= np.exp(-2 * np.pi ** 2 * sum(f * f for f in freqs))      # 1-voxel smoothing
    corr = sfft.irfftn(cross, shape)
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape))
    sub = np.zeros(3)
    for ax in range(3):
        step = np.zeros(3, int)
        step[ax] = 1
        fm, f0, fp = (corr[tuple((peak + k * step) % shape)] for k in (-1, 0, 1))
        denom = fm - 2 * f0 + fp
        sub[ax] = float(np.clip(0.5 * (fm - fp) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    shift = peak + sub
    shape_arr = np.array(shape)
    shift = np.where(shift > shape_arr / 2, shift - shape_arr, shift)
    height = float(corr.max() / (np.sqrt(np.square(corr, dtype=np.float64).sum()) + 1e-12))
    return shift, height


def _fill(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: a weighted Gaussian average of the kept values at every node."""
    num = np.stack([ndimage.gaussian_filter(values[..., k] * weights, sigma, mode="nearest")
                    for k in range(values.shape[-1])], -1)
    den = ndimage.gaussian_filter(weights, sigma, mode="nearest")
    return num / np.maximum(den, 1e-12)[..., None], den


def block_lattice(ny: int, nx: int, block_vox: int) -> tuple[int, int, list, list]:
    """Lateral blocks of ``block_vox`` pixels (at most the field) overlapping by half:
    ``(size, step, y starts, x starts)``."""
    b = int(min(block_vox, ny, nx))
    step = max(b // 2, 1)
    return (b, step, list(range(0, max(ny - b, 0) + 1, step)),
            list(range(0, max(nx - b, 0) + 1, step)))


def lattice_origin(b: int, step: int, ys: list, xs: list) -> dict:
    """``origin_vox`` (y, x of the first block's centre) and ``step_vox`` of a
    :func:`block_lattice`."""
    return {"origin_vox": [ys[0] + (b - 1) / 2, xs[0] + (b - 1) / 2], "step_vox": [step, step]}


def agreeing_blocks(shifts: np.ndarray, kept: np.ndarray, *,
                    max_disagreement_um: float = 0.3) -> np.ndarray:
    """Which of the ``kept`` blocks (ny, nx) agree with their kept neighbours: a block whose
    shift (``shifts``, ny x nx x 3, um) departs from the median of the kept blocks around it
    (itself included) by more than ``max_disagreement_um`` or 3 robust SDs of theirs locked
    onto something else.  The neighbours are the 3 x 3 blocks around it, or the 5 x 5 when
    fewer than two of those are kept: a lone block of a PSD-95 channel alone locked onto
    puncta born or lost beside it (0.7 um in a field otherwise within 0.05 um) and, left
    unjudged, moved every synapse around it.  Blocks are judged in order, each against the
    blocks still kept."""
    ok = np.asarray(kept, bool).copy()
    if ok.sum() < 3:
        return ok
    for i, j in zip(*np.nonzero(ok)):
        for reach in (1, 2):
            box = (slice(max(i - reach, 0), i + reach + 1), slice(max(j - reach, 0), j + reach + 1))
            vals = shifts[box][ok[box]]
            if len(vals) >= 3:
                break
        if len(vals) >= 3:
            med = np.median(vals, axis=0)
            spread = MAD_TO_SD * np.median(np.linalg.norm(vals - med, axis=1))
            if np.linalg.norm(shifts[i, j] - med) > max(max_disagreement_um, 3 * spread):
                ok[i, j] = False
    return ok


def local_shifts(reference: np.ndarray, moving: np.ndarray, footprint: np.ndarray, *,
                 spacing, block_vox: int, min_peak: float = 0.08, max_shift_um: float = 1.5,
                 max_disagreement_um: float = 0.3, min_inside: float = 0.5) -> dict:
    """Displacement field of ``moving`` against ``reference``, both (c, z, y, x) on the same
    grid (``moving`` already resampled into the reference frame; ``footprint`` (y, x) says
    where it has data at every depth), from blocks of ``block_vox`` pixels laterally,
    overlapping by half.  A block cut by the edge of the moving field is correlated over the
    part both cover when that is at least ``min_inside`` of it (the far end of a dendrite
    after a large shift is still measured, not extrapolated to).

    Returns a dict with ``origin_vox`` and ``step_vox`` (y, x of the first block centre and the
    spacing of centres), ``displacement_um`` (ny, nx, 3: the shift to add to a globally aligned
    point so that it lands on its reference position), ``kept`` (ny, nx: blocks whose own
    correlation decided their value) and ``peak`` (ny, nx).
    """
    spacing = np.asarray(spacing, float)
    _, nz, ny, nx = reference.shape
    b, step, ys, xs = block_lattice(ny, nx, block_vox)
    shifts = np.zeros((len(ys), len(xs), 3))
    peaks = np.zeros((len(ys), len(xs)))
    ok = np.zeros((len(ys), len(xs)), bool)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            cover = footprint[y:y + b, x:x + b]
            share = float(cover.mean())
            if share < min_inside:
                continue
            s, h = block_shift(reference[:, :, y:y + b, x:x + b], moving[:, :, y:y + b, x:x + b],
                               None if share == 1.0 else cover)
            um = s * spacing
            peaks[i, j] = h
            if h >= min_peak and np.linalg.norm(um) <= max_shift_um:
                shifts[i, j], ok[i, j] = um, True
    ok = agreeing_blocks(shifts, ok, max_disagreement_um=max_disagreement_um)
    weights = np.where(ok, peaks, 0.0)
    field = np.zeros_like(shifts)
    if ok.any():
        near, den = _fill(shifts, weights, 1.0)
        far, _ = _fill(shifts, weights, 3.0 * max(len(ys), len(xs)))
        blend = np.clip(den / (weights[ok].mean() * 0.2), 0, 1)[..., None]
        field = blend * near + (1 - blend) * far
    return {**lattice_origin(b, step, ys, xs), "displacement_um": field, "kept": ok,
            "peak": peaks}
