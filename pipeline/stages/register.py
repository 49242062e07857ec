"""Cross-session registration: a transform from each session's stack into the reference frame.

Coordinates are micrometres on (z, y, x) with the origin at the centre of voxel (0, 0, 0);
a transform maps a point of the session's own frame to the reference session's frame.

Coarse (:mod:`pipeline.core.correlate`): the rotation about z whose rotated max projection
phase-correlates best, then the 3D translation by phase correlation of the whole stacks binned
to ~0.3 um pixels.  Fine: iterative closest points on the detected puncta, then the simplest of
translation / rotation about z / regularised affine that predicts left-out puncta as well as
the best.  Local: block-wise phase correlation of the images after that transform
(:func:`refine_on_images`, :mod:`pipeline.core.blockmatch`), so that the correction holds over
the whole field, then a point warp where it predicts left-out puncta better.  A transform is
the JSON dict the register stage writes: ``matrix``, an optional ``grid`` and an optional
``warp`` (:func:`pipeline.core.frames.to_reference`, :func:`~pipeline.core.frames.to_session`).
Each result says how far to trust it: matched puncta against those expected in the common
field, their residual, the field overlap, and an error map over the field
(:func:`pipeline.core.regerror.error_map`) with the regions above ``misregistered_um``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..core.blockmatch import local_shifts
from ..core.channels import block_average_yx
from ..core.correlate import (estimate_rotation_z, phase_correlate, rotation_z_matrix,
                              translation_matrix)
from ..core.frames import (FRAME_CONVENTION, fit_warp, to_reference, transform_points,
                           warp_displacement)
from ..core.regerror import error_map, patch_correction
from ..core.similarity import high_pass as _high_pass
from ..core.similarity import dissimilar_regions, similarity_map
from ..core.noise import MAD_TO_SD
from ..core.optics import Z_SCALE
from ..params import RegisterParams


def fit_rigid(source: np.ndarray, target: np.ndarray, *, affine: bool = False,
              tilt: bool = True, strain_sd: float = 0.01, noise_um: float = 0.2) -> np.ndarray:
    """Least-squares 4x4 transform with ``target ~ M source``.

    Rigid: Kabsch in 3D, or with ``tilt=False`` a rotation about z only (Kabsch on y, x; the
    z offset is the mean).  Affine: the rotation about z, then a linear correction with a
    Gaussian prior of SD ``strain_sd`` on each element's departure from the identity (ridge
    regression with penalty (noise_um / strain_sd)^2): tilt, shear and scale are fitted only
    as far as the puncta support them, and a few puncta along a dendrite cannot produce a wild
    shear where there are none (z, localised worst, decides the tilt terms).
    """
    src, dst = np.asarray(source, float), np.asarray(target, float)
    cs, cd = src.mean(0), dst.mean(0)
    h = (src - cs).T @ (dst - cd)
    if tilt and not affine:
        u, _, vt = np.linalg.svd(h)
        rot = vt.T @ np.diag([1, 1, np.sign(np.linalg.det(vt.T @ u.T))]) @ u.T
    else:   # rotation in the y-x plane only
        u, _, vt = np.linalg.svd(h[1:, 1:])
        rot = np.eye(3)
        rot[1:, 1:] = vt.T @ np.diag([1, np.sign(np.linalg.det(vt.T @ u.T))]) @ u.T
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, cd - rot @ cs
    if not affine:
        return m
    x = src @ rot.T + m[:3, 3]          # after the rotation about z
    cx = x.mean(0)
    xc, yc = x - cx, dst - cd
    lam = (noise_um / strain_sd) ** 2
    a_t = np.linalg.solve(xc.T @ xc + lam * np.eye(3), xc.T @ yc + lam * np.eye(3))
    corr = np.eye(4)
    corr[:3, :3], corr[:3, 3] = a_t.T, cd - a_t.T @ cx
    return corr @ m


def _mutual_pairs(tree_ref, ref_scaled, mapped_scaled, gate):
    d, j = tree_ref.query(mapped_scaled, distance_upper_bound=gate)
    ok = np.flatnonzero(np.isfinite(d))
    if not len(ok):
        return ok, ok
    back = cKDTree(mapped_scaled).query(ref_scaled[j[ok]])[1]
    keep = ok[back == ok]
    return keep, j[keep]


def _trimmed(i, j, ref, mapped):
    """Pairs (mapped[i], ref[j]) without those beyond 3 robust SDs of the median residual."""
    resid = np.linalg.norm(ref[j] - mapped[i], axis=1)
    med = np.median(resid)
    keep = resid <= med + 3 * MAD_TO_SD * np.median(np.abs(resid - med)) + 1e-9
    return i[keep], j[keep]


def refine_on_puncta(reference_um: np.ndarray, moving_um: np.ndarray, matrix, *,
                     model: str = "rigid", gates_um=(2.0, 1.2, 0.8, 0.6),
                     z_scale: float = Z_SCALE, iterations: int = 3,
                     min_matches: int = RegisterParams.min_matches,
                     max_rotation_deg: float = 10.0):
    """Refine an initial transform on matched puncta (iterative closest points).

    Pairs are mutual nearest neighbours within a shrinking gate (z distances times
    ``z_scale``); each round refits the transform on pairs within 3 robust SDs of the median
    residual.  ``model`` is ``translation`` (median displacement), ``rotation`` (about z, +
    translation), ``rigid`` (3D rotation + translation) or ``affine`` (:func:`fit_rigid`).
    A fit on too few pairs, or one that turns by more than ``max_rotation_deg``, falls back to
    translation.

    Returns ``(matrix, n_matches, median_residual_um, pairs)`` with ``pairs`` the
    (moving index, reference index) of the final matches.
    """
    m = np.asarray(matrix, float).copy()
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    mov = np.asarray(moving_um, float).reshape(-1, 3)
    scale = np.array([z_scale, 1.0, 1.0])
    empty = (np.zeros(0, int), np.zeros(0, int))
    if len(ref) < 3 or len(mov) < 3:
        return m, 0, float("nan"), empty
    tree = cKDTree(ref * scale)
    pairs = empty
    for gate in gates_um:
        for _ in range(iterations):
            mapped = transform_points(m, mov)
            i, j = _mutual_pairs(tree, ref * scale, mapped * scale, gate)
            if len(i) < 3:
                break
            i, j = _trimmed(i, j, ref, mapped)
            pairs = (i, j)
            fitted = None
            if model in ("rigid", "rotation", "affine") and len(i) >= min_matches:
                fitted = fit_rigid(mov[i], ref[j], affine=model == "affine",
                                   tilt=model == "rigid")
                lin = fitted[:3, :3]
                turn = np.degrees(np.arccos(np.clip((np.trace(lin / np.cbrt(max(
                    abs(np.linalg.det(lin)), 1e-9))) - 1) / 2, -1, 1)))
                if turn > max_rotation_deg:
                    fitted = None
            if fitted is None:   # translation: the median displacement on top of m
                fitted = translation_matrix(np.median(ref[j] - mapped[i], axis=0)) @ m
            m = fitted
    if not len(pairs[0]):
        return m, 0, float("nan"), empty
    i, j = pairs
    resid = float(np.median(np.linalg.norm(ref[j] - transform_points(m, mov[i]), axis=1)))
    return m, int(len(i)), resid, pairs


def _fit_model(name: str, src, dst, warp_length_um: float):
    """(matrix, warp) of one candidate model fitted to pairs ``dst ~ model(src)``."""
    if name == "translation":
        return translation_matrix(np.median(dst - src, axis=0)), None
    m = fit_rigid(src, dst, affine=name.startswith("affine"), tilt=name == "rigid")
    if name == "affine+warp":
        mapped = transform_points(m, src)
        return m, fit_warp(mapped, dst - mapped, length_um=warp_length_um)
    return m, None


def select_model(src: np.ndarray, dst: np.ndarray, *, candidates,
                 warp_length_um: float = RegisterParams.warp_length_um, tolerance: float = 0.05,
                 z_scale: float = Z_SCALE):
    """Choose among fine models by leave-one-out error on matched pairs.

    Each candidate (``translation``, ``rotation``, ``rigid``, ``affine``, ``affine+warp``) is
    fitted without one pair and scored on it, for every pair; the simplest candidate whose mean
    left-out error is within ``tolerance`` (relative) of the best wins, so that a rotation or a
    warp is fitted only when the puncta show one.  Errors weigh z by ``z_scale``: puncta are
    localised worse in z, and a tilt fitted to that noise would look like an improvement.
    Returns ``(name, matrix, warp, errors)`` with ``errors`` the mean left-out error (um) of
    each candidate.
    """
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    n = len(src)
    errors = {}
    for name in candidates:
        e = np.empty(n)
        for k in range(n):
            keep = np.arange(n) != k
            m, w = _fit_model(name, src[keep], dst[keep], warp_length_um)
            d = to_reference({"matrix": m, "warp": w}, src[k:k + 1])[0] - dst[k]
            e[k] = np.linalg.norm(d * [z_scale, 1.0, 1.0])
        errors[name] = float(e.mean())
    best = min(errors.values())
    name = next(c for c in candidates if errors[c] <= best * (1 + tolerance))
    m, w = _fit_model(name, src, dst, warp_length_um)
    return name, m, w, errors


def _image_transform(reference, moving, *, spacing, angle, centre_um,
                     full_resolution, coarse_pixel_um: float = 0.3):
    """(4x4 matrix, peak) from the images alone: the rotation about z by ``angle`` about
    ``centre_um``, then the phase-correlation translation of the turned stacks: on stacks
    block-averaged to about ``coarse_pixel_um``, or with ``full_resolution`` refined on a
    full-resolution window (:func:`phase_correlate`)."""
    if full_resolution:
        ref, mov, sp = reference, moving, spacing
    else:
        factor = max(1, int(round(coarse_pixel_um / spacing[1])))
        ref, mov = block_average_yx(reference, factor), block_average_yx(moving, factor)
        sp = spacing * [1, factor, factor]
    if angle:
        # turning the binned stack about its own centre instead of the full stack's moves the
        # result by under (1 - cos a, sin a) x half a block: < 0.01 um for 6 degrees
        mov = np.stack([ndimage.rotate(m, angle, axes=(1, 2), reshape=False, order=1)
                        for m in mov])
    shift_vox, peak = phase_correlate(ref, mov, spacing=sp,
                                      coarse_pixel_um=coarse_pixel_um if full_resolution else 0)
    return translation_matrix(shift_vox * sp) @ rotation_z_matrix(angle, centre_um), peak


def _binned_to_um(spacing, factor: int) -> np.ndarray:
    """4x4 from voxel indices of a stack binned by ``factor`` in y and x to um of the
    full-resolution stack (a binned pixel's centre is the centre of its block)."""
    m = np.diag([spacing[0], spacing[1] * factor, spacing[2] * factor, 1.0])
    m[1:3, 3] = (factor - 1) / 2 * np.asarray(spacing[1:])
    return m


EDGE_BAND_UM = 1.0


def refine_on_images(reference: np.ndarray, moving: np.ndarray, matrix, *, spacing,
                     block_um: float = RegisterParams.block_um, factor: int = 2) -> dict | None:
    """Local corrections to a global transform, measured on the images themselves: the moving
    stack is resampled into the reference frame through ``matrix`` (both (c, z, y, x) on the
    same voxel grid, binned by ``factor`` in y and x), and blocks of about ``block_um`` are
    phase-correlated (:func:`pipeline.core.blockmatch.local_shifts`).  Unlike a warp fitted
    to matched puncta, the field holds across the whole overlapping field: the dendrites'
    outline and the puncta that were not matched carry it where matched puncta are few.

    Returns the transform's ``grid`` (:func:`pipeline.core.frames.grid_displacement`) with the
    blocks that decided it (``kept``) and their peaks, or None when no block decided.
    """
    spacing = np.asarray(spacing, float)
    ref_b = block_average_yx(reference, factor).astype(np.float32)
    mov_b = block_average_yx(moving, factor).astype(np.float32)
    to_um = _binned_to_um(spacing, factor)
    # reference binned voxel -> moving binned voxel
    a = np.linalg.inv(to_um) @ np.linalg.inv(np.asarray(matrix, float)) @ to_um
    shape = ref_b.shape[1:]
    sp_b = spacing * [1, factor, factor]
    warped = np.stack([ndimage.affine_transform(_high_pass(m, sp_b), a[:3, :3], offset=a[:3, 3],
                                                output_shape=shape, order=1, cval=0.0)
                       for m in mov_b])
    # where the moving stack has data at its top and bottom planes (so at every depth: planes
    # beyond a shallower session's are empty in both and say nothing)
    hi = np.array(mov_b.shape[1:]) - 1
    yy, xx = np.mgrid[0:shape[1], 0:shape[2]].astype(float)
    footprint = np.ones(shape[1:], bool)
    for z in (0, shape[0] - 1):
        q = [a[k, 0] * z + a[k, 1] * yy + a[k, 2] * xx + a[k, 3] for k in (1, 2)]
        footprint &= (q[0] >= -0.5) & (q[0] <= hi[1] + 0.5) & (q[1] >= -0.5) & (q[1] <= hi[2] + 0.5)
    # a band along the moving field's edge is unlike the same place seen inside the reference
    # field (what lies beyond the edge is not blurred into it; scan edges): leave it out
    footprint = ndimage.binary_erosion(footprint, iterations=int(np.ceil(EDGE_BAND_UM / sp_b[1])),
                                       border_value=1)

    ref_c = np.stack([_high_pass(c, sp_b) for c in ref_b])
    field = local_shifts(ref_c, warped, footprint, spacing=sp_b,
                         block_vox=max(int(round(block_um / sp_b[1])), 8))
    if not field["kept"].any():
        return None
    origin = to_um[1:3, 1:3] @ np.asarray(field["origin_vox"]) + to_um[1:3, 3]
    step = np.asarray(field["step_vox"]) * sp_b[1:]
    return {"origin_um": origin.tolist(), "step_um": step.tolist(),
            "displacement_um": np.round(field["displacement_um"], 4).tolist(),
            "kept": field["kept"].tolist(), "peak": np.round(field["peak"], 4).tolist()}


def _matched(transform, reference_um, moving_um, *, gate_um: float = 0.6,
             z_scale: float = Z_SCALE):
    """(moving index, reference index) of mutual nearest puncta within ``gate_um`` after
    ``transform``, without pairs beyond 3 robust SDs of the median residual."""
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    mov = np.asarray(moving_um, float).reshape(-1, 3)
    scale = np.array([z_scale, 1.0, 1.0])
    if len(ref) < 3 or len(mov) < 3:
        return np.zeros(0, int), np.zeros(0, int)
    mapped = to_reference(transform, mov)
    i, j = _mutual_pairs(cKDTree(ref * scale), ref * scale, mapped * scale, gate_um)
    if len(i) < 3:
        return i, j
    return _trimmed(i, j, ref, mapped)


def _warp_helps(mapped: np.ndarray, dst: np.ndarray, *, length_um: float,
                tolerance: float = 0.05, z_scale: float = Z_SCALE) -> bool:
    """Whether a point warp on top of ``mapped`` predicts left-out pairs better (by more than
    ``tolerance``, relative) than no warp."""
    n = len(mapped)
    w = np.array([1.0 / z_scale, 1.0, 1.0])   # z weighs less: localised worse
    base = np.linalg.norm((dst - mapped) * w, axis=1).mean()
    err = np.empty(n)
    for k in range(n):
        keep = np.arange(n) != k
        warp = fit_warp(mapped[keep], dst[keep] - mapped[keep], length_um=length_um)
        d = mapped[k] + warp_displacement(warp, mapped[k:k + 1])[0] - dst[k]
        err[k] = np.linalg.norm(d * w)
    return bool(err.mean() < base * (1 - tolerance))


def register_session(reference: np.ndarray, moving: np.ndarray, *, spacing,
                     reference_spacing=None, reference_points_um=None, moving_points_um=None,
                     min_peak: float = 0.03, model: str = RegisterParams.model,
                     max_rotation_deg: float = RegisterParams.max_rotation_deg,
                     min_matches: int = RegisterParams.min_matches,
                     warp_length_um: float = 0.0, block_um: float = 0.0,
                     misregistered_um: float = RegisterParams.misregistered_um,
                     min_similarity: float = RegisterParams.min_similarity,
                     patch_length_um: float = 0.0) -> dict:
    """Estimate the transform of one session into the reference session's frame.

    Parameters
    ----------
    reference, moving : (z, y, x) or (c, z, y, x) stacks (channels are correlated jointly)
    spacing : voxel size of ``moving`` (um); ``reference_spacing`` defaults to the same
    reference_points_um, moving_points_um : optional (n, 3) puncta positions in um, each in
        its own stack's frame, used to refine the transform
    model : the fine fit on matched puncta: ``auto`` (default: the simplest of translation,
        rotation about z, affine and affine + warp that predicts left-out puncta as well as the
        best, :func:`select_model`), or one of ``translation``, ``rotation``, ``rigid``,
        ``affine``
    max_rotation_deg : rotation about z searched for on the images (0: none); the search
        goes on beyond it while the match still improves (:func:`estimate_rotation_z`)
    min_matches : fewer matched puncta and the session is flagged unreliable unless the
        correlation peak is high
    warp_length_um : when > 0, a smooth non-rigid correction (:func:`fit_warp`) of this
        length scale is a candidate (``auto``) or fitted after the chosen model
    block_um : when > 0, local corrections measured on the images in blocks of this size
        (:func:`refine_on_images`) follow the chosen model over the whole field; the puncta are
        then matched again and a point warp is added only where it predicts left-out puncta
        better
    patch_length_um : when > 0, the patches whose puncta agree on an offset after the rest
        of the transform (:func:`pipeline.core.regerror.agreed_shifts`) are moved by it, a
        field of this length (``patch``, :func:`pipeline.core.regerror.patch_correction`)
    misregistered_um : the error (:func:`error_map`) above which a region of the field is
        reported in ``misregistered_regions``
    min_similarity : the local similarity of the morphology channel after registration
        (:func:`similarity_map`) below which a patch with structure is reported in
        ``dissimilar_regions``

    Returns
    -------
    dict with ``matrix`` (4x4, moving um -> reference um), ``warp`` (None or the non-rigid
    correction applied after the matrix; use :func:`to_reference` / :func:`to_session`),
    ``shift_um`` (the matrix's translation),
    ``rotation_deg`` (the image search's angle about z), ``coarse_shift_um``, ``peak``
    (phase-correlation peak height), ``n_matches``, ``residual_um`` (median distance of matched
    puncta after the fit), ``expected_matches`` (puncta of the sparser set inside the common
    field), ``overlap`` (fraction of the moving stack's field that lands inside the
    reference's) and ``reliable`` (False when the fields hardly overlap, or when fewer than a
    quarter of the expected puncta found a partner, or, without puncta, when the correlation
    peak is weak); and how far to trust it across the field: ``error`` and
    ``misregistered_regions`` (:func:`error_map`, from the puncta), ``similarity`` and
    ``dissimilar_regions`` (:func:`similarity_map`, from the images).
    """
    spacing = np.asarray(spacing, float)
    ref_spacing = np.asarray(spacing if reference_spacing is None else reference_spacing, float)
    mov = moving if moving.ndim == 4 else moving[np.newaxis]
    reference = reference if reference.ndim == 4 else reference[np.newaxis]
    if not np.allclose(spacing, ref_spacing, rtol=0.01):
        # resample the moving stack onto the reference voxel grid before correlating
        mov = np.stack([ndimage.zoom(m.astype(np.float32), spacing / ref_spacing, order=1)
                        for m in mov])
    angle = 0.0
    if max_rotation_deg > 0:
        angle, _ = estimate_rotation_z(reference, mov, spacing=ref_spacing,
                                       max_deg=max_rotation_deg)
    if abs(angle) < 0.25:
        angle = 0.0
    centre = (np.array(mov.shape[1:]) - 1) / 2 * ref_spacing
    use_puncta = reference_points_um is not None and moving_points_um is not None
    # the puncta refine the transform to a fraction of a voxel, so the image correlation need
    # only land within their first gate: binned stacks do; the full-resolution pass (3-4 s
    # per session) runs only when the puncta cannot decide
    matrix, peak = _image_transform(reference, mov, spacing=ref_spacing, angle=angle,
                                    centre_um=centre, full_resolution=not use_puncta)
    coarse = matrix[:3, 3].copy()
    n, resid, warp, chosen, loo = 0, float("nan"), None, "translation", {}
    if use_puncta:
        refine = dict(model="affine" if model == "auto" else model, min_matches=min_matches,
                      max_rotation_deg=max(max_rotation_deg, abs(angle)) + 4)
        matrix, n, resid, (i, j) = refine_on_puncta(reference_points_um, moving_points_um,
                                                    matrix, **refine)
        if n < min_matches:
            matrix, peak = _image_transform(reference, mov, spacing=ref_spacing, angle=angle,
                                            centre_um=centre, full_resolution=True)
            coarse = matrix[:3, 3].copy()
            matrix, n, resid, (i, j) = refine_on_puncta(reference_points_um, moving_points_um,
                                                        matrix, **refine)
        chosen = model if model != "auto" else "translation"
        if n >= min_matches:
            src = np.asarray(moving_points_um, float)[i]
            dst = np.asarray(reference_points_um, float)[j]
            if model == "auto":
                # a 3D rigid fit is not a candidate: it tilts to fit z localisation noise;
                # the regularised affine carries the tilt as far as the puncta support it
                candidates = ["translation", "rotation", "affine"] + (
                    ["affine+warp"] if warp_length_um > 0 else [])
                chosen, matrix, warp, loo = select_model(src, dst, candidates=candidates,
                                                         warp_length_um=warp_length_um)
            elif warp_length_um > 0:
                mapped = transform_points(matrix, src)
                warp = fit_warp(mapped, dst - mapped, length_um=warp_length_um)
                chosen = f"{model}+warp"
            resid = float(np.median(np.linalg.norm(
                to_reference({"matrix": matrix, "warp": warp}, src) - dst, axis=1)))
    grid = None
    if block_um > 0:
        grid = refine_on_images(reference, mov, matrix, spacing=ref_spacing, block_um=block_um)
    if grid is not None and use_puncta:
        local = {"matrix": matrix, "grid": grid}
        i2, j2 = _matched(local, reference_points_um, moving_points_um)
        if len(i2) >= min_matches:
            src = np.asarray(moving_points_um, float)[i2]
            dst = np.asarray(reference_points_um, float)[j2]
            mapped = to_reference(local, src)
            warp = None
            if warp_length_um > 0 and _warp_helps(mapped, dst, length_um=warp_length_um):
                warp = fit_warp(mapped, dst - mapped, length_um=warp_length_um)
            n = len(i2)
            chosen = chosen.replace("+warp", "") + "+grid" + ("+warp" if warp else "")
            resid = float(np.median(np.linalg.norm(
                to_reference({**local, "warp": warp}, src) - dst, axis=1)))
    final = {"matrix": matrix, "grid": grid, "warp": warp}
    patch = None
    if use_puncta and n >= min_matches and patch_length_um > 0:
        # a dense cluster moved off as a whole: its pairs went to neighbours, or to none, so
        # the warp and the grid above could not see it; its puncta still agree on the offset
        patch = patch_correction(reference_points_um, to_reference(final, moving_points_um),
                                 length_um=patch_length_um)
        if patch is not None:
            final["patch"] = patch
            chosen += "+patch"
    error, regions = None, []
    if use_puncta and n >= min_matches:
        # the support is what the smooth parts were fitted on: a patch moved back does not
        # carry the fit further out (a punctum it brings into the gate 4 um from a synapse
        # 6 um beyond the rest took that synapse's extrapolation estimate from 0.50 to 0.20)
        pairs = _matched({**final, "patch": None}, reference_points_um, moving_points_um)
        field = (np.array(reference.shape[2:]) - 1) * ref_spacing[1:]
        error, regions = error_map(final, reference_points_um, moving_points_um, pairs,
                                   field_um=field, limit_um=misregistered_um)
    # the images' own say, patch by patch: the morphology after the global transform alone
    # and after the whole one (the local correction is measured on the same images, so a
    # patch it could not fix stays unlike the reference); without a local part the two are
    # one transform, resampled once
    corrected = grid is not None or warp is not None
    similarity = similarity_map(reference, mov,
                                {"global": matrix, **({"final": final} if corrected else {})},
                                spacing=ref_spacing, block_um=block_um or RegisterParams.block_um)
    similarity.setdefault("final", similarity["global"])
    dissimilar = dissimilar_regions(similarity, min_similarity=min_similarity)
    overlap = field_overlap(matrix, mov.shape[1:], reference.shape[1:], ref_spacing)
    expected = 0
    if reference_points_um is not None and moving_points_um is not None:
        # puncta that should find a partner: the fewer of the two sets inside the common field
        mapped = transform_points(matrix, moving_points_um)
        back = transform_points(np.linalg.inv(matrix), reference_points_um)
        expected = int(min(_inside(mapped, reference.shape[1:], ref_spacing).sum(),
                           _inside(back, mov.shape[1:], ref_spacing).sum()))
    if expected >= 4:   # the puncta decide: a real alignment pairs a good part of them
        reliable = bool(n >= max(3, 0.25 * expected) and overlap >= 0.2)
    else:
        reliable = bool(peak >= min_peak and overlap >= 0.2)
    return {"matrix": matrix.tolist(), "grid": grid, "warp": warp, "patch": patch,
            "shift_um": list(map(float, matrix[:3, 3])),
            "rotation_deg": angle, "coarse_shift_um": list(map(float, coarse)), "peak": peak,
            "model": chosen, "loo_error_um": loo, "error": error,
            "misregistered_regions": regions, "similarity": similarity,
            "dissimilar_regions": dissimilar,
            "n_matches": int(n), "expected_matches": expected, "residual_um": resid,
            "overlap": overlap, "reliable": reliable}


def field_overlap(matrix, moving_shape, reference_shape, spacing, n: int = 9) -> float:
    """Fraction of the moving stack's volume that the transform puts inside the reference's
    (sampled on an n^3 grid of points)."""
    axes = [np.linspace(0, (s - 1) * sp, n) for s, sp in zip(moving_shape, spacing)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    mapped = transform_points(matrix, pts)
    return float(np.mean(_inside(mapped, reference_shape, spacing,
                                 margin=np.asarray(spacing) * 0.5)))


def _inside(points_um: np.ndarray, shape, spacing, margin=0.0) -> np.ndarray:
    """Which points (um) lie within a stack of ``shape`` voxels (z, y, x), plus ``margin``."""
    hi = (np.asarray(shape) - 1) * np.asarray(spacing)
    return np.all((points_um >= -margin) & (points_um <= hi + margin), axis=1)


def register_to_reference(reference: np.ndarray, moving: np.ndarray, *, spacing,
                          reference_spacing, cell: str, session: str, reference_session: str,
                          reference_points_um=None, moving_points_um=None,
                          params: RegisterParams = RegisterParams()) -> dict:
    """The register stage on one session of a cell: (c, z, y, x) stacks of the session and of
    its cell's reference session (the channels both have are correlated), and, with
    ``params.use_puncta``, their detected puncta (um).  The reference session itself gets the
    identity.  Returns :func:`register_session`'s dict with the names of the cell, the session
    and the reference, the channels used and the transform's convention."""
    n_ch = min(reference.shape[0], moving.shape[0])
    if session == reference_session:
        result = {"matrix": np.eye(4).tolist(), "warp": None, "shift_um": [0.0, 0.0, 0.0],
                  "rotation_deg": 0.0, "coarse_shift_um": [0.0, 0.0, 0.0], "peak": 1.0,
                  "n_matches": 0, "residual_um": 0.0, "overlap": 1.0, "reliable": True,
                  "error": {"origin_um": [0.0, 0.0], "step_um": [1.0, 1.0], "error_um": [[0.0]],
                            "limit_um": params.misregistered_um},
                  "misregistered_regions": [], "dissimilar_regions": []}
    else:
        points = {}
        if params.use_puncta:
            points = {"reference_points_um": reference_points_um,
                      "moving_points_um": moving_points_um}
        result = register_session(reference[:n_ch], moving[:n_ch], spacing=spacing,
                                  reference_spacing=reference_spacing, **points,
                                  model=params.model, max_rotation_deg=params.max_rotation_deg,
                                  min_matches=params.min_matches,
                                  warp_length_um=params.warp_length_um,
                                  block_um=params.block_um,
                                  misregistered_um=params.misregistered_um,
                                  min_similarity=params.min_similarity,
                                  patch_length_um=params.patch_length_um)
    result.update({"cell": cell, "session": session, "reference_session": reference_session,
                   "channels": ["psd95", "morphology"][:n_ch], "convention": FRAME_CONVENTION})
    return result
