"""Dendrite length from the morphology channel: the denominator of synapse density per um.

The stack is smoothed and projected along z (maximum), its spines removed by a median along the
dendrite's direction, thresholded (robust SDs above the field's background, with hysteresis;
within it each dendrite's own half width, or for a dim dendrite beside a bright one, its own
continuous ridge), thinned to a skeleton, and spurs shorter than ``prune_um`` (spines: neck plus
head) are removed.  Length sums the skeleton's steps (corner steps counted once), each projected
on the skeleton's local direction (so that a digital line's staircase measures its true length
at any angle), lengthened by the change in depth of the dendrite (the z of the brightest plane
under the skeleton, smoothed along it).  The mask is
mirrored beyond the field's edge before thinning, so that a dendrite leaving the field is
measured to the edge.  Where two dendrites cross, the few um about the
crossing are lost (the skeleton there is a junction whose short arms are pruned).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import hessian_matrix, hessian_matrix_eigvals
from skimage.filters import apply_hysteresis_threshold
from skimage.morphology import remove_small_holes, remove_small_objects, skeletonize

from .spines import shaft_estimate

_OFFSETS = [(0, 1), (1, 0), (1, 1), (1, -1)]          # each 8-neighbour pair once


def _edges(skel: np.ndarray):
    """(first pixels, second pixels) of the skeleton's 8-neighbour steps, a diagonal step left
    out where the two pixels are also joined through an orthogonal corner pixel."""
    pad = np.pad(skel, 1)
    a_list, b_list = [], []
    ys, xs = np.nonzero(skel)
    for dy, dx in _OFFSETS:
        ok = pad[ys + 1 + dy, xs + 1 + dx]
        if dy and dx:   # a corner pixel makes this diagonal step redundant
            ok &= ~(pad[ys + 1 + dy, xs + 1] | pad[ys + 1, xs + 1 + dx])
        a_list.append(np.stack([ys[ok], xs[ok]], 1))
        b_list.append(np.stack([ys[ok] + dy, xs[ok] + dx], 1))
    return np.concatenate(a_list), np.concatenate(b_list)


def _neighbours(skel: np.ndarray) -> np.ndarray:
    return ndimage.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1


def _prune(skel: np.ndarray, spur_px: int) -> np.ndarray:
    """Remove spurs up to ``spur_px`` pixels long: end points are peeled ``spur_px`` times, then
    the branches that survived grow back along the original skeleton from their own end points
    (so the main branches keep their full length and the spurs stay gone)."""
    core = skel.copy()
    for _ in range(spur_px):
        ends = core & (_neighbours(core) <= 1)
        if not ends.any():
            break
        core &= ~ends
    grown = core & (_neighbours(core) <= 1)
    for _ in range(spur_px):
        grown = ndimage.binary_dilation(grown, np.ones((3, 3), bool)) & skel & ~core
    return core | grown


def _beside_brighter(projection: np.ndarray, spine_free: np.ndarray, background: float, *,
                     ridge_px: float, continuous_share: float) -> np.ndarray:
    """Where a dendrite too dim for the half-of-nearby rule lies: the spine-free projection
    curves down across it (negative Laplacian: on a ridge, not in the dip between two), and
    the projection before the spines' removal keeps ``continuous_share`` of it (a dendrite is
    continuous; the median turns a row of spine heads beside a shaft into a ridge as well, but
    the gaps between the heads are dark there)."""
    hessian = hessian_matrix(spine_free, sigma=ridge_px, order="rc",
                             use_gaussian_derivatives=True)
    laplacian = np.sum(hessian_matrix_eigvals(hessian), axis=0)
    return (laplacian < 0) & (projection - background
                              >= continuous_share * (spine_free - background))


def dendrite_skeleton(morphology: np.ndarray, *, spacing, smooth_um: float, line_um: float,
                      directions: int, orientation_um: float, threshold: float,
                      prune_um: float, min_area_um2: float, ridge_sigma_um: float,
                      continuous_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(skeleton in y, x; depth in planes under it) of a morphology stack (z, y, x)."""
    sz, sy, sx = (float(s) for s in spacing)
    vol = ndimage.gaussian_filter(np.asarray(morphology, np.float32),
                                  (0.5, smooth_um / sy, smooth_um / sx))
    depth = vol.argmax(axis=0).astype(float)
    # spines removed: the median along the dendrite's own direction (a spine is shorter than
    # the line, the shaft longer), so that they neither bend nor branch the skeleton
    raw = vol.max(axis=0)
    proj = shaft_estimate(raw, pixel_um=sy, line_um=line_um, directions=directions,
                          orientation_um=orientation_um)
    # dendrite: above the field's background (its median: dendrites cover a small part of a
    # field) by `threshold` robust SDs, grown from parts above twice that (hysteresis; a
    # threshold between the classes, Otsu's, loses a dim dendrite beside a bright one), and
    # within it the part above half the largest value nearby (each dendrite's own half width,
    # whatever its brightness, without the spines' remains beside it)
    background = np.median(proj)
    spread = 1.4826 * np.median(np.abs(proj - background)) or 1.0
    fg = apply_hysteresis_threshold(proj, background + threshold * spread,
                                    background + 2 * threshold * spread)
    nearby = ndimage.maximum_filter(proj, size=2 * int(round(line_um / 2 / sy)) + 1)
    own_half = proj - background >= 0.5 * (nearby - background)
    if ridge_sigma_um > 0:
        # ... which drops a dim dendrite crossing or running beside a bright one: kept where
        # it is a continuous ridge of its own
        own_half |= _beside_brighter(raw, proj, background, ridge_px=ridge_sigma_um / sy,
                                     continuous_share=continuous_share)
    fg &= own_half
    fg = remove_small_objects(fg, max_size=max(int(min_area_um2 / (sy * sx)), 1))
    # a loop around a small hole (spine heads beside the shaft joined by the mask) is no
    # dendrite: filled before thinning
    fg = remove_small_holes(fg, max_size=int(4 * min_area_um2 / (sy * sx)))
    # thinned with the mask mirrored beyond the field's edge, so that a dendrite leaving the
    # field is thinned to its edge (not forked toward the corners of its cut end, nor short)
    pad = int(round(prune_um / sy))
    skel = skeletonize(np.pad(fg, pad, mode="reflect"))
    skel = _prune(skel, int(round(prune_um / min(sy, sx))))[pad:-pad, pad:-pad]
    return skel, depth


def _tangents(skel: np.ndarray, *, window_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(t_y, t_x) unit tangent of the skeleton at each pixel: the principal direction of the
    skeleton pixels within ``window_px`` (their second moments, by box filters)."""
    yy, xx = np.indices(skel.shape, dtype=float)
    w = skel.astype(float)
    box = lambda a: ndimage.uniform_filter(a, 2 * window_px + 1, mode="constant")  # noqa: E731
    n = np.maximum(box(w), 1e-12)
    my, mx = box(w * yy) / n, box(w * xx) / n
    cyy = box(w * yy * yy) / n - my * my
    cxx = box(w * xx * xx) / n - mx * mx
    cxy = box(w * yy * xx) / n - my * mx
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    return np.sin(theta), np.cos(theta)


def skeleton_length_um(skel: np.ndarray, depth: np.ndarray, *, spacing,
                       depth_smooth_um: float) -> float:
    """Length (um) of a skeleton with the dendrite's depth (planes) under each pixel.

    Each step of the 8-neighbour chain counts by its projection on the local tangent: the
    steps of a digital line sum to its displacement, so a straight line of any angle measures
    its true length, and the chain's zigzags add nothing."""
    sz, sy, sx = (float(s) for s in spacing)
    if not skel.any():
        return 0.0
    # depth smoothed along the skeleton: a normalised convolution over skeleton pixels
    sig = (depth_smooth_um / sy, depth_smooth_um / sx)
    wsum = ndimage.gaussian_filter(skel.astype(float), sig)
    zs = ndimage.gaussian_filter(np.where(skel, depth, 0.0), sig) / np.maximum(wsum, 1e-9)
    ty, tx = _tangents(skel, window_px=max(int(round(depth_smooth_um / 2 / sy)), 2))
    a, b = _edges(skel)
    ay, ax, by, bx = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    uy, ux = ty[ay, ax] + ty[by, bx], tx[ay, ax] + tx[by, bx]
    flip = (ty[ay, ax] * ty[by, bx] + tx[ay, ax] * tx[by, bx]) < 0   # tangents are axial
    uy, ux = np.where(flip, ty[ay, ax] - ty[by, bx], uy), np.where(flip, tx[ay, ax] - tx[by, bx], ux)
    norm = np.maximum(np.hypot(uy, ux), 1e-12)
    along = np.abs((ay - by) * sy * uy / norm + (ax - bx) * sx * ux / norm)
    dz = (zs[ay, ax] - zs[by, bx]) * sz
    return float(np.sum(np.sqrt(along ** 2 + dz ** 2)))


def dendrite_length(morphology: np.ndarray, *, spacing, smooth_um: float, line_um: float,
                    directions: int, orientation_um: float, threshold: float, prune_um: float,
                    min_area_um2: float, ridge_sigma_um: float, continuous_share: float,
                    depth_smooth_um: float) -> dict:
    """Length of dendrite (um) in a morphology stack, and of each connected piece (the
    settings' defaults and meanings: :class:`pipeline.params.DendriteParams`).

    Returns ``{"length_um", "pieces_um": [longest first], "skeleton": (y, x) bool}``.
    """
    skel, depth = dendrite_skeleton(morphology, spacing=spacing, smooth_um=smooth_um,
                                    line_um=line_um, directions=directions,
                                    orientation_um=orientation_um, threshold=threshold,
                                    prune_um=prune_um, min_area_um2=min_area_um2,
                                    ridge_sigma_um=ridge_sigma_um,
                                    continuous_share=continuous_share)
    lab, n = ndimage.label(skel, np.ones((3, 3), bool))
    lengths = {i: skeleton_length_um(lab == i, depth, spacing=spacing,
                                     depth_smooth_um=depth_smooth_um) for i in range(1, n + 1)}
    # a piece shorter than a spine is a spine head's ring or a speck, not dendrite
    keep = {i: v for i, v in lengths.items() if v >= prune_um}
    pieces = sorted(keep.values(), reverse=True)
    return {"length_um": float(sum(pieces)), "pieces_um": pieces,
            "skeleton": np.isin(lab, list(keep))}
