"""How alike two aligned stacks look, patch by patch: the image half of the register stage's
quality map (the puncta half is :mod:`pipeline.core.regerror`).

A registration can be right where it matched puncta and wrong a few micrometres away; the
morphology channel shows it there too, as a patch where the registered session no longer
looks like the reference.  :func:`local_similarity` is the correlation of the two stacks block
by block; :func:`resample_to_reference` puts a session's stack into the reference frame
through a whole transform (matrix, grid and warp).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .blockmatch import block_lattice, lattice_origin
from .channels import block_average_yx
from .frames import to_session, transform_points
from .noise import robust_noise


def high_pass(channel: np.ndarray, spacing, background_um: float = 2.0) -> np.ndarray:
    """The channel without its smooth background (a box mean of about ``background_um``:
    the dendrite's glow would otherwise pull blocks towards the shaft), bright outliers
    clipped, unit SD."""
    size = np.maximum(np.round(2 * background_um / np.asarray(spacing)).astype(int) | 1, 1)
    img = channel - ndimage.uniform_filter(channel, size, mode="nearest")
    sample = img.ravel()[::7]
    img = np.minimum(img, np.percentile(sample, 99.9))
    return (img - sample.mean()) / (sample.std() + 1e-9)


def resample_to_reference(image: np.ndarray, transform, *, shape, spacing,
                          reference_spacing, offset_um=(0.0, 0.0, 0.0), node_um: float = 2.5,
                          with_cover: bool = False):
    """A session's (z, y, x) ``image`` resampled onto the reference's voxel grid of ``shape``
    through ``transform`` (a register stage dict or a 4x4: session um -> reference um; voxels
    outside the session's stack are 0).  ``offset_um``: where voxel (0, 0, 0)'s centre lies in
    um of both frames (nonzero for stacks binned from the full-resolution ones).  The grid and
    the warp are smooth over micrometres (the grid's nodes are 4 um apart, the warp's length
    8 um): their inverse is computed on nodes about ``node_um`` apart and interpolated
    linearly between.  With
    ``with_cover``, also returns where the session's stack has data (boolean, same shape)."""
    spacing = np.asarray(spacing, float)
    ref_sp = np.asarray(reference_spacing, float)
    offset = np.asarray(offset_um, float)
    image = np.asarray(image, np.float32)
    steps = np.maximum(np.round(node_um / ref_sp).astype(int), 1)
    lattice = [np.unique(np.r_[np.arange(0, n, step), n - 1]) for n, step in zip(shape, steps)]
    nodes = np.stack(np.meshgrid(*lattice, indexing="ij"), -1).reshape(-1, 3) * ref_sp + offset
    if _is_local(transform):
        back = to_session(transform, nodes)
    else:   # exact: an affine map is linear between nodes
        matrix = np.asarray(transform["matrix"] if isinstance(transform, dict) else transform,
                            float)
        back = transform_points(np.linalg.inv(matrix), nodes)
    back = ((back - offset) / spacing).reshape(*[len(v) for v in lattice], 3)
    weights = [_node_weights(axis_nodes, n) for axis_nodes, n in zip(lattice, shape)]
    hi = np.asarray(image.shape, np.float32)[:, None, None, None] - 1
    out = np.empty(tuple(shape), np.float32)
    cover = np.empty(tuple(shape), bool)
    # a few planes at a time: the coordinates of every voxel at once (3 float32 per voxel,
    # with float64 on the way) were the register job's largest allocation
    for z0 in range(0, shape[0], SLAB_PLANES):
        rows = [weights[0][z0:z0 + SLAB_PLANES], *weights[1:]]
        coords = np.stack([_between_nodes(back[..., k], rows) for k in range(3)])
        # inside the session's stack, up to rounding (a point on its last plane stays on it)
        inside = np.all((coords >= -1e-3) & (coords <= hi + 1e-3), axis=0)
        slab = ndimage.map_coordinates(image, coords, order=1, mode="nearest")
        slab[~inside] = 0.0
        out[z0:z0 + len(rows[0])], cover[z0:z0 + len(rows[0])] = slab, inside
    return (out, cover) if with_cover else out


#: planes of the reference grid resampled at once by :func:`resample_to_reference`
SLAB_PLANES = 8


def _is_local(transform) -> bool:
    return isinstance(transform, dict) and bool(transform.get("grid") or transform.get("warp")
                                                or transform.get("patch"))


def _node_weights(nodes: np.ndarray, n: int) -> np.ndarray:
    """(n, len(nodes)) weights of linear interpolation between ``nodes`` (indices along an
    axis of n voxels) at every voxel of that axis."""
    weights = np.zeros((n, len(nodes)), np.float32)
    pos = np.interp(np.arange(n), nodes, np.arange(len(nodes)))
    lo = np.minimum(np.floor(pos).astype(int), len(nodes) - 1)
    hi = np.minimum(lo + 1, len(nodes) - 1)
    frac = (pos - lo).astype(np.float32)
    weights[np.arange(n), lo] += 1 - frac
    weights[np.arange(n), hi] += frac
    return weights


def _between_nodes(values: np.ndarray, weights) -> np.ndarray:
    """Values on a node lattice at voxels: linear along each axis, one small matrix product
    per axis with that axis's :func:`_node_weights` (or some of its rows)."""
    out = values
    for axis, w in enumerate(weights):
        out = np.moveaxis(np.tensordot(w, out, axes=(1, axis)), 0, axis)
    return out.astype(np.float32)


def local_similarity(reference: np.ndarray, moving: np.ndarray, valid: np.ndarray, *,
                     block_vox: int, smooth_vox: float = 1.0,
                     min_inside: float = 0.5) -> dict:
    """Correlation of two aligned (z, y, x) stacks in overlapping lateral blocks (``moving``
    and ``valid`` may hold several, as lists or (k, z, y, x), each compared with the one
    reference).

    Both are smoothed by ``smooth_vox`` (sigma in y and x, half that in z, voxels: noise is
    independent between sessions and would pull every correlation down alike); a block counts
    the voxels where ``valid`` (where ``moving`` has data) and is measured when at least
    ``min_inside`` of it is.  Blocks of ``block_vox`` pixels overlap by half, as
    :func:`pipeline.core.blockmatch.local_shifts` lays them.

    Returns a dict with ``origin_vox`` and ``step_vox`` (y, x of the first block centre and
    the spacing of centres), ``similarity`` ((k,) ny, nx: Pearson r, NaN where not measured)
    and ``contrast`` (ny, nx: the reference block's SD over the SD its noise alone would give,
    how much there is to see; a block of background alone correlates poorly however well
    registered).  The noise is estimated from differences of neighbouring voxels along x
    (structure is smooth over a voxel, noise is not) and carried through the smoothing.
    """
    sigma = (smooth_vox / 2, smooth_vox, smooth_vox)
    ref = ndimage.gaussian_filter(np.asarray(reference, np.float32), sigma)
    # several as a list (or a 4-D array) are compared one by one, not stacked into a copy
    several = isinstance(moving, (list, tuple)) or np.ndim(moving) == 4
    movs = [np.asarray(m, np.float32) for m in (moving if several else [moving])]
    valids = [np.asarray(v, bool) for v in (valid if several else [valid])]
    _, ny, nx = ref.shape
    b, step, ys, xs = block_lattice(ny, nx, block_vox)
    sim = np.full((len(movs), len(ys), len(xs)), np.nan)
    contrast = np.full((len(ys), len(xs)), np.nan)
    noise_sd = _smoothed_noise_sd(np.asarray(reference, np.float32), sigma)
    for k, (mov, ok) in enumerate(zip(movs, valids)):
        mov = ndimage.gaussian_filter(mov, sigma)
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                cover = ok[:, y:y + b, x:x + b]
                if cover.mean() < min_inside:
                    continue
                r = ref[:, y:y + b, x:x + b][cover]
                m = mov[:, y:y + b, x:x + b][cover]
                r, m = r - r.mean(), m - m.mean()
                den = np.sqrt((r @ r) * (m @ m))
                sim[k, i, j] = float(r @ m / den) if den > 0 else 0.0
                if np.isnan(contrast[i, j]):
                    contrast[i, j] = float(r.std()) / noise_sd
    return {**lattice_origin(b, step, ys, xs), "similarity": sim if several else sim[0],
            "contrast": np.nan_to_num(contrast)}


def similarity_map(reference: np.ndarray, moving: np.ndarray, transforms: dict, *, spacing,
                   block_um: float, factor: int = 2, edge_um: float = 2.0) -> dict:
    """Local similarity of the morphology channel (the last of (c, z, y, x) stacks; the only
    one of a single-channel stack) after each of ``transforms`` (name -> transform), both
    stacks on the same voxel grid of ``spacing``.

    The stacks are binned by ``factor`` laterally and high-passed (:func:`high_pass`), the
    session resampled into the reference frame (:func:`resample_to_reference`) and compared
    block by block (:func:`local_similarity`, blocks of about ``block_um``), leaving out a band
    of ``edge_um`` along the session field's edge (its high-pass sees a border there).

    Returns ``channel`` (``morphology``, or ``psd95`` for single-channel stacks),
    ``origin_um`` and ``step_um`` (y, x of the block centres, reference frame), ``contrast``
    and one (ny, nx) ``similarity`` per transform name (None: not measured).
    """
    spacing = np.asarray(spacing, float)
    sp_b = spacing * [1, factor, factor]
    offset = np.r_[0.0, (factor - 1) / 2 * spacing[1:]]
    ref = high_pass(block_average_yx(reference[-1:], factor)[0].astype(np.float32), sp_b)
    mov = high_pass(block_average_yx(moving[-1:], factor)[0].astype(np.float32), sp_b)
    block = max(int(round(block_um / sp_b[1])), 8)
    band = np.ones((1, 3, 3), bool)
    out = {"channel": "morphology" if min(len(reference), len(moving)) > 1 else "psd95"}
    warped, valid = [], []
    for transform in transforms.values():
        image, cover = resample_to_reference(mov, transform, shape=ref.shape, spacing=sp_b,
                                             reference_spacing=sp_b, offset_um=offset,
                                             with_cover=True)
        warped.append(image)
        valid.append(ndimage.binary_erosion(cover, band, border_value=1,
                                            iterations=int(np.ceil(edge_um / sp_b[1]))))
    del mov
    result = local_similarity(ref, warped, valid, block_vox=block)
    for name, sim in zip(transforms, result["similarity"]):
        out[name] = _json_grid(sim)
    out["contrast"] = _json_grid(result["contrast"])
    out["origin_um"] = (np.asarray(result["origin_vox"]) * sp_b[1:] + offset[1:]).tolist()
    out["step_um"] = (np.asarray(result["step_vox"]) * sp_b[1:]).tolist()
    return out


def _json_grid(values: np.ndarray) -> list:
    """A 2-D array as nested lists for JSON, NaN as None (JSON has no NaN)."""
    return [[None if np.isnan(v) else round(float(v), 3) for v in row] for row in values]


def _smoothed_noise_sd(image: np.ndarray, sigma) -> float:
    """SD that the image's noise keeps after Gaussian smoothing by ``sigma`` (voxels): the
    noise's SD from the median absolute difference of neighbours along x, times the SD that
    smoothing leaves of unit white noise: the root of the sum of the kernel's squared weights
    (scipy's kernel, truncated at 4 SDs; it is separable, so a product over axes)."""
    step = np.diff(image, axis=-1)
    sd = robust_noise(step) / np.sqrt(2)
    gain = 1.0
    for s in np.atleast_1d(sigma):
        if s > 0:
            x = np.arange(-int(4.0 * s + 0.5), int(4.0 * s + 0.5) + 1)
            w = np.exp(-0.5 * (x / s) ** 2)
            gain *= float(np.sqrt(((w / w.sum()) ** 2).sum()))
    return max(sd * gain, 1e-12)


def dissimilar_regions(similarity: dict, *, min_similarity: float, key: str = "final",
                       min_contrast: float = 3.0) -> list[dict]:
    """Connected groups of blocks of a :func:`similarity_map` of the morphology channel whose
    similarity under ``key`` is below ``min_similarity`` where the reference has structure to
    compare (``contrast`` at least ``min_contrast``: on the benchmark's two-channel regimes
    blocks of background alone correlate near 0 however well registered).  A one-channel map
    (``channel`` ``psd95``) gives none: puncta come, go and change between sessions, so a
    patch of PSD-95 is rightly unlike its reference.  One dict per group: ``y_um`` and
    ``x_um`` ranges (reference frame) and the lowest ``similarity``."""
    if similarity.get("channel") == "psd95":
        return []
    sim = np.array(similarity[key], dtype=float)          # None -> NaN
    contrast = np.array(similarity["contrast"], dtype=float)
    low = (sim < min_similarity) & (contrast >= min_contrast)
    labels, n = ndimage.label(low, structure=np.ones((3, 3)))
    origin, step = np.asarray(similarity["origin_um"]), np.asarray(similarity["step_um"])
    regions = []
    for k in range(1, n + 1):
        yy, xx = np.nonzero(labels == k)
        regions.append({"y_um": [float(origin[0] + (yy.min() - 1) * step[0]),
                                 float(origin[0] + (yy.max() + 1) * step[0])],
                        "x_um": [float(origin[1] + (xx.min() - 1) * step[1]),
                                 float(origin[1] + (xx.max() + 1) * step[1])],
                        "similarity": float(np.nanmin(sim[labels == k]))})
    return regions


def median_similarity(result: dict, key: str = "final") -> float:
    """Median over the measured patches of a register stage result's similarity map
    (NaN without one)."""
    values = [v for row in (result.get("similarity") or {}).get(key) or [] for v in row
              if v is not None]
    return float(np.median(values)) if values else float("nan")
