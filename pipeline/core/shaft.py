"""What a PSD-95 channel alone shows of the dendrite, and how noisy it is where it shows it.

Without a morphology channel nothing says where the shaft is, yet its diffuse (non-synaptic)
PSD-95 is there in the PSD-95 channel: a line a punctum wide, brighter and noisier (photon
noise) than the empty neuropil.  A punctum-matched filter answers to it all along its length,
and with a threshold set on the neuropil's noise its noise peaks pass for puncta (measured on
the single-channel regime: 60 % of the detections).  Three things answer that here:

- :func:`line_background`: the grey opening of each plane by line segments longer than a
  punctum, the largest over several orientations.  A line survives the opening along its own
  direction, a punctum (on the shaft or off it) along none, so this is the shaft without its
  puncta, to subtract;
- :func:`dendrite_mask`: where that line stands clear of its noise, the dendrite a PSD-95
  channel outlines by itself; puncta far from it are noise of the empty neuropil;
- :func:`local_noise_factor`: the response's noise SD around each peak over the stack's, from
  the voxels near it that are neither punctum nor its surround (a truncated-normal estimate),
  so a threshold in noise units means the same on the shaft as in the neuropil;
- :func:`photon_noise_map`: the same from the image's voxel-to-voxel noise, which the
  shaft's leftover ridge (next) does not hide; used where the shaft is bright;
- :func:`shaft_snr`: how bright the shaft is in units of the stack's noise.  The openings
  miss 6-15 % of a noisy shaft (more where it runs between their directions), and on a shaft
  several noise SDs bright, noise on that leftover ridge passes for puncta
  (``benchmarks/bright_shaft.py``): the track stage names such sessions.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage, special

from .channels import block_average_yx
from .noise import puncta_and_flanks, robust_noise
from .threads import thread_map


def line_footprint(length_px: int, angle: float) -> np.ndarray:
    """(1, n, n) boolean footprint of a line segment ``length_px`` long (odd) at ``angle``
    (radians, from the x axis), for a per-plane filter of a (z, y, x) array."""
    r = length_px // 2
    fp = np.zeros((2 * r + 1, 2 * r + 1), bool)
    s = np.linspace(-r, r, 4 * r + 1)
    fp[np.round(r + s * np.sin(angle)).astype(int), np.round(r + s * np.cos(angle)).astype(int)] = True
    return fp[None]


def _extreme_along(image: np.ndarray, offsets: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` (np.minimum or np.maximum) of ``image`` over in-plane ``offsets`` (dy, dx)
    of each voxel, the planes extended by reflection (scipy's ``mode='reflect'``): one
    whole-array operation per offset, ~2x faster than scipy's footprint filter here."""
    if not offsets[:, 0].any() or not offsets[:, 1].any():     # along an axis: van Herk
        axis = 2 if not offsets[:, 0].any() else 1
        size = len(offsets)
        if np.array_equal(np.sort(offsets[:, axis - 1]), np.arange(size) - size // 2):
            filt = ndimage.minimum_filter1d if reduce is np.minimum else ndimage.maximum_filter1d
            return filt(image, size, axis=axis, mode="reflect")
    r = int(np.abs(offsets).max())
    padded = np.pad(image, ((0, 0), (r, r), (r, r)), mode="symmetric")
    ny, nx = image.shape[1:]
    out = None
    for dy, dx in offsets:
        view = padded[:, r + dy:r + dy + ny, r + dx:r + dx + nx]
        out = view.copy() if out is None else reduce(out, view, out=out)
    return out


def _opening_by_line(image: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.grey_opening(image, footprint=footprint)`` for a (1, n, n) footprint
    symmetric about its centre (:func:`line_footprint`), the same values."""
    offsets = np.argwhere(footprint[0]) - footprint.shape[1] // 2
    return _extreme_along(_extreme_along(image, offsets, np.minimum), offsets, np.maximum)


def line_background(image: np.ndarray, *, spacing, length_um: float = 2.5,
                    directions: int = 8, bin_yx: int = 2, average_um: float = 1.0,
                    workers: int = 1) -> np.ndarray:
    """The line-like part of a (z, y, x) image above its median: the largest, over
    ``directions`` orientations, of the grey opening of each plane by a line ``length_um``
    long, of the image block-averaged ``bin_yx`` times in y and x (an estimate that varies over
    microns needs no finer grid; smoothing across the line as well made the shaft it found
    wider and lower than the real one).  Structures shorter than the line in every in-plane direction (puncta) are
    not in it; a dendrite's shaft, running in the plane, is.  Along each direction the image is
    first averaged over ``average_um`` (a minimum over noisy values lies below their mean: on
    a noisy shaft the opening alone fell ~30 % short).  Float32, full size, >= 0.
    ``workers`` threads share the directions (the result does not depend on it).
    """
    spacing = np.asarray(spacing, float)
    small = block_average_yx(image.astype(np.float32, copy=False), bin_yx)
    length_px = max(int(round(length_um / (spacing[1] * bin_yx))) | 1, 3)
    average_px = max(int(round(average_um / (spacing[1] * bin_yx))) | 1, 1)

    def largest_opening(ks):
        best = None
        for k in ks:
            angle = np.pi * k / directions
            line = small
            if average_px > 1:    # the opening's minimum is biased low by the noise: average first
                kernel = line_footprint(average_px, angle).astype(np.float32)
                line = ndimage.convolve(small, kernel / kernel.sum(), mode="nearest")
            opened = _opening_by_line(line, line_footprint(length_px, angle))
            best = opened if best is None else np.maximum(best, opened, out=best)
        return best

    groups = max(min(workers, directions), 1)          # directions i, i + groups, ...
    best, *more = thread_map(largest_opening, [range(i, directions, groups) for i in range(groups)])
    for part in more:
        np.maximum(best, part, out=best)
    best -= np.median(best)
    np.maximum(best, 0, out=best)
    out = np.zeros(image.shape, np.float32)
    up = best.repeat(bin_yx, axis=1).repeat(bin_yx, axis=2)
    out[:, :up.shape[1], :up.shape[2]] = up
    # rows and columns a partial block left out take their neighbour's value
    out[:, up.shape[1]:] = out[:, up.shape[1] - 1:up.shape[1]]
    out[:, :, up.shape[2]:] = out[:, :, up.shape[2] - 1:up.shape[2]]
    # the blocks' steps would be edges to a punctum filter
    return ndimage.gaussian_filter(out, (0, bin_yx / 2, bin_yx / 2))


def _truncated_sd_ratio(a: np.ndarray) -> np.ndarray:
    """SD of a normal variable kept within +-a of its SDs, over its SD."""
    phi = np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi)
    inside = special.erf(a / np.sqrt(2))
    return np.sqrt(np.clip(1 - 2 * a * phi / np.maximum(inside, 1e-12), 1e-12, None))


def local_noise_factor(response: np.ndarray, noise: float, points: np.ndarray, *, spacing,
                       window_um=(2.0, 1.0, 1.0), keep_within: float = 4.0,
                       flanks_um=None, where: np.ndarray | None = None, bin_yx: int = 2,
                       workers: int = 1) -> np.ndarray:
    """The noise SD of ``response`` around each integer (z, y, x) of ``points``, over
    ``noise`` (the stack's), at least 1.

    The local SD is taken from the voxels whose response lies within ``keep_within`` stack
    noise SDs of zero (puncta left out), weighted by a Gaussian window of SDs ``window_um``;
    what the truncation removes of the noise itself is put back by inverting the SD of a
    truncated normal (a region twice as noisy as the stack loses more of its noise to the cut
    than the stack does).  With ``flanks_um`` (z, y, x), the voxels within that distance of
    one above ``keep_within`` are left out too: a punctum's flanks fall under the cut and,
    on a shaft crowded with puncta, raised what was measured there above the noise's own.
    With ``workers`` > 1 the two smoothings run in two threads.
    """
    pts = np.asarray(points, int).reshape(-1, 3)
    if len(pts) == 0 or noise <= 0:
        return np.ones(len(pts))
    # a window of microns needs no finer grid than 2x2 voxels in the plane: 4x less work
    sigma = np.asarray(window_um, float) / (np.asarray(spacing, float) * [1, bin_yx, bin_yx])
    kept = np.abs(response) < keep_within * noise
    if flanks_um is not None:
        kept &= ~puncta_and_flanks(response, keep_within * noise, spacing=spacing,
                                   flanks_um=flanks_um)
    if where is not None:
        kept &= where
    square = np.square(response, dtype=np.float32)     # in place below: no more copies
    square[~kept] = 0
    at = tuple(np.minimum(pts // [1, bin_yx, bin_yx],
                          np.array(response.shape) // [1, bin_yx, bin_yx] - 1).T)

    def smoothed_at_points(values):
        return ndimage.gaussian_filter(block_average_yx(values, bin_yx), sigma)[at]

    weight, sums = thread_map(smoothed_at_points, [kept.astype(np.float32), square],
                               workers=workers)
    measured = np.sqrt(sums / np.maximum(weight, 1e-6)) / noise
    # measured = s * ratio(keep_within / s) for true local SD s: solve on a grid (monotone)
    s = np.linspace(0.5, 8.0, 600)
    seen = s * _truncated_sd_ratio(keep_within / s)
    factor = np.interp(measured, seen, s)
    factor /= float(np.interp(_truncated_sd_ratio(np.array(keep_within)), seen, s))
    return np.where(weight > 0.05, np.maximum(factor, 1.0), 1.0)


def photon_noise_map(image: np.ndarray, *, sigma_vox) -> np.ndarray:
    """How many times noisier than the stack's median voxel a filter of SDs ``sigma_vox``
    (z, y, x, voxels) answers at each voxel, from the image's own voxel-to-voxel noise.

    The squared second differences along y and x (each carrying 6 times the variance of
    white noise) estimate each voxel's noise variance whatever smooth structure lies under
    it: a shaft's ridge that the line openings left behind adds nothing, a punctum a few
    voxels wide ~10 % of its photon variance.  They are smoothed as the filter's square is
    (SDs ``sigma_vox / sqrt 2``) and divided by their median; the square root, float32.  A
    neighbourhood's SD (:func:`local_noise_factor`) leaves such a ridge out as puncta and
    measures the neuropil's noise beside it; this does not.
    """
    im = np.asarray(image, np.float32)
    var = np.zeros(im.shape, np.float32)
    for axis in (1, 2):
        n = im.shape[axis]
        if n < 3:
            continue
        lo, mid, hi = (tuple(slice(None) if a != axis else slice(i, n - 2 + i) for a in range(3))
                       for i in (0, 1, 2))
        d2 = im[lo] + im[hi] - 2 * im[mid]
        np.square(d2, out=d2)
        d2 *= np.float32(1 / 12)         # two axes, each 6 times the variance
        var[mid] += d2
    smooth = ndimage.gaussian_filter(var, np.asarray(sigma_vox, float) / np.sqrt(2),
                                     mode="nearest")
    ref = float(np.median(smooth))
    if ref <= 0:
        return np.ones(im.shape, np.float32)
    smooth *= np.float32(1 / ref)
    return np.sqrt(np.maximum(smooth, 0, out=smooth), out=smooth)


def ridge_like(response: np.ndarray, points: np.ndarray, *, spacing, noise: float,
               along_um: float = 0.5, flat_ratio: float = 0.4,
               contrast_snr: float = 6.0) -> np.ndarray:
    """Which sub-voxel (z, y, x) ``points`` (peaks of ``response``) are bumps on a ridge
    rather than puncta: boolean, one per point.

    At each peak the in-plane Hessian of ``response`` (central differences of central
    differences) gives the direction the response curves least; a ridge runs that way.  A
    peak is ridge-like where it curves less than ``flat_ratio`` times as much along that
    direction as across it, and stands less than ``contrast_snr`` noise SDs (``noise``, the
    response's) above the higher of the response ``along_um`` either way along it.  A
    punctum, on a ridge or not, falls off along it by most of its own height; noise on the
    ridge the line openings left along a bright shaft does not.
    """
    pos = np.asarray(points, float).reshape(-1, 3)
    if len(pos) == 0:
        return np.zeros(0, bool)
    shape = np.array(response.shape)
    at = np.clip(np.round(pos).astype(int), [0, 2, 2], shape - [1, 3, 3])
    z, y, x = at.T

    def r(dy, dx):
        return response[z, y + dy, x + dx].astype(float)

    centre = r(0, 0)
    hyy = (r(2, 0) + r(-2, 0) - 2 * centre) / 4
    hxx = (r(0, 2) + r(0, -2) - 2 * centre) / 4
    hxy = (r(1, 1) - r(1, -1) - r(-1, 1) + r(-1, -1)) / 4
    values, vectors = np.linalg.eigh(np.stack([np.stack([hyy, hxy], -1),
                                               np.stack([hxy, hxx], -1)], -2))
    flat = values[:, 1] / np.where(values[:, 0] < 0, values[:, 0], -np.inf) < flat_ratio
    step = np.zeros_like(pos)
    step[:, 1:] = vectors[:, :, 1] * along_um / np.asarray(spacing, float)[1:]
    here, ahead, behind = (ndimage.map_coordinates(response, p.T, order=1, mode="nearest")
                           for p in (pos, pos + step, pos - step))
    low = here - np.maximum(ahead, behind) < contrast_snr * noise
    return flat & low


def dendrite_mask(background: np.ndarray, *, spacing, sds: float = 8.0,
                  min_length_um: float = 4.0, min_total_um3: float = 20.0) -> np.ndarray | None:
    """Where :func:`line_background` stands more than ``sds`` of its own robust noise SDs
    above zero, in connected parts that span ``min_length_um`` or more in the plane (the
    opening of noise leaves short streaks, a bright punctum a remnant a micron across).  None
    when the parts add up to less than ``min_total_um3``: no dendrite is seen, and nothing can
    be said to be far from it."""
    noise = robust_noise(background)
    if noise <= 0:
        return None
    mask = background > sds * noise
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    spacing = np.asarray(spacing, float)
    voxel_um3 = float(np.prod(spacing))
    volume = np.bincount(labels.ravel(), minlength=n + 1) * voxel_um3
    long = np.zeros(n + 1, bool)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        span = [(sl.stop - sl.start) * d for sl, d in zip(box[1:], spacing[1:])]
        long[k] = np.hypot(*span) >= min_length_um
    if volume[long].sum() < min_total_um3:
        return None
    return long[labels]


def shaft_brightness(shaft: np.ndarray, *, top_percent: float = 0.1) -> float:
    """A shaft's brightness: the top ``top_percent`` percent of :func:`line_background`'s
    voxels (above its median; the stack's top 0.1 % lies within a dendrite's core, which fills
    a few tenths of a percent of a field), on a y, x grid of every other voxel (the estimate
    varies over microns)."""
    return float(np.percentile(shaft[:, ::2, ::2], 100 - top_percent))


def shaft_snr(level: float, image: np.ndarray) -> float:
    """A shaft's brightness ``level`` (:func:`shaft_brightness`) in units of the stack's noise
    SD: twice the robust SD of ``image`` averaged over 2 x 2 voxel blocks in y and x (whole
    counts of a dim background snap its MAD to a count; a block's mean has a quarter of a
    voxel's variance where the noise is independent from voxel to voxel)."""
    noise = 2.0 * robust_noise(block_average_yx(np.asarray(image, np.float32), 2))
    return level / noise if noise > 0 else float("nan")
