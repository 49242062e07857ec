"""How far to trust a registration across the field: the register stage's estimate of its own
error, from the puncta it matched and those it did not (:func:`error_map`)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .frames import fit_warp, to_reference, warp_displacement


def _loo_errors(transform, src: np.ndarray, dst: np.ndarray, *, z_weight: float = 0.5):
    """Leave-one-out prediction error (um, z weighted by ``z_weight``) of matched pairs: the
    point warp, the only part fitted to the pairs themselves, refitted without each."""
    w = np.array([z_weight, 1.0, 1.0])
    warp = transform.get("warp")
    base = {**transform, "warp": None}
    mapped = to_reference(base, src)
    if not warp or not warp.get("points_um"):
        return np.linalg.norm((mapped - dst) * w, axis=1)
    out = np.empty(len(src))
    for k in range(len(src)):
        keep = np.arange(len(src)) != k
        wk = fit_warp(mapped[keep], dst[keep] - mapped[keep], length_um=warp["length_um"])
        out[k] = np.linalg.norm((mapped[k] + warp_displacement(wk, mapped[k:k + 1])[0]
                                 - dst[k]) * w)
    return out


def agreed_shifts(reference_um, mapped_um, *, radius_um: float = 2.5, partner_um: float = 1.2,
                  sigma_um: float = 0.12, z_weight: float = 0.5, min_votes: float = 3.0,
                  max_voters: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Per reference punctum, the offset (um, mapped minus reference) on which the mapped
    session puncta around it agree: ``(offsets, decided)``, (n, 3) and (n,); the offset is 0
    where no shift has the votes, and ``decided`` says where enough puncta voted at all.

    The reference puncta within ``radius_um`` (laterally; the nearest ``max_voters``, so that a
    stack crowded with puncta costs no more per punctum) vote, each for every candidate
    offset with its mapped partner nearest that offset (a Gaussian of ``sigma_um``, z
    weighted by ``z_weight``; partners within ``partner_um``, matched or not); the candidates
    are the offsets of those partners and zero.  The winner counts when it has at least
    ``min_votes`` and one vote more than zero.  A patch that the transform moved off as a
    whole shows as many puncta agreeing on one offset, whichever partners the pairing took:
    in a dense cluster the nearest partner may be a neighbour, but only the true offset is
    shared by them all."""
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    mapped = np.asarray(mapped_um, float).reshape(-1, 3)
    offsets, decided = np.zeros((len(ref), 3)), np.zeros(len(ref), bool)
    if len(ref) == 0 or len(mapped) == 0:
        return offsets, decided
    w = np.array([z_weight, 1.0, 1.0])
    partners = cKDTree(mapped * w).query_ball_point(ref * w, partner_um)
    each = [(mapped[n] - ref[k]) * w for k, n in enumerate(partners)]
    k_near = min(max_voters, len(ref))
    _, around = cKDTree(ref[:, 1:]).query(ref[:, 1:], k=k_near, distance_upper_bound=radius_um)
    for k, near in enumerate(np.asarray(around).reshape(len(ref), k_near)):
        voters = [each[a] for a in near[near < len(ref)] if len(each[a])]
        if len(voters) < min_votes:
            continue
        decided[k] = True
        # every voter's partner nearest each candidate, all candidates at once
        cast = np.vstack(voters)
        candidates = np.vstack([cast, np.zeros((1, 3))])
        d2 = ((candidates[:, None, :] - cast[None]) ** 2).sum(-1)
        starts = np.cumsum([0] + [len(v) for v in voters[:-1]])
        votes = np.exp(-np.minimum.reduceat(d2, starts, axis=1) / (2 * sigma_um ** 2)).sum(1)
        best = int(np.argmax(votes))
        if votes[best] >= min_votes and votes[best] >= votes[-1] + 1.0:
            offsets[k] = candidates[best] / w
    return offsets, decided


def local_shifts(reference_um, mapped_um, *, z_weight: float = 0.5, **options) -> np.ndarray:
    """Per reference punctum, the size (um, z weighted by ``z_weight``) of the offset its
    neighbours agree on (:func:`agreed_shifts`, which takes ``options``); 0 where none."""
    offsets, _ = agreed_shifts(reference_um, mapped_um, z_weight=z_weight, **options)
    return np.linalg.norm(offsets * [z_weight, 1.0, 1.0], axis=1)


def patch_correction(reference_um, mapped_um, *, length_um: float = 1.0,
                     anchor_um: float = 2.5) -> dict | None:
    """A local correction for the patches a transform moved off as a whole: a displacement
    field in :func:`pipeline.core.frames.fit_warp`'s form, minus each agreed offset
    (:func:`agreed_shifts`) at the place the mapped puncta land (reference punctum plus
    offset), with zeros at the decided puncta within ``anchor_um`` of those (the patch ends
    where its neighbours agree on no shift); ``length_um`` short, so that a patch of a few
    puncta moves and its neighbours do not.  None where no patch is found."""
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    offsets, decided = agreed_shifts(ref, mapped_um)
    moved = np.any(offsets != 0, axis=1)
    if not moved.any():
        return None
    near = decided & ~moved
    if near.any():
        near[near] = cKDTree(ref[moved][:, 1:]).query(ref[near][:, 1:])[0] <= anchor_um
    points = np.vstack([ref[moved] + offsets[moved], ref[near]])
    residuals = np.vstack([-offsets[moved], np.zeros((near.sum(), 3))])
    return fit_warp(points, residuals, length_um=length_um, shrink=0.1)


def _at_nodes_near(nodes: np.ndarray, points_yx: np.ndarray, values: np.ndarray,
                   radius_um: float) -> np.ndarray:
    """Per lattice node, the largest of ``values`` at the points within ``radius_um`` of it
    (0 where none)."""
    out = np.zeros(len(nodes))
    if len(points_yx):
        for value, near in zip(values, cKDTree(nodes).query_ball_point(points_yx, radius_um)):
            out[near] = np.maximum(out[near], value)
    return out


def error_map(transform, reference_um, moving_um, pairs, *, field_um, step_um: float = 4.0,
              length_um: float = 3.0, limit_um: float, z_weight: float = 0.5,
              partner_um: float = 1.2, support_um: float = 4.0,
              growth: float = 0.25) -> tuple[dict, list[dict]]:
    """How far to trust a transform across the reference field: an error estimate (um) on a
    lateral lattice every ``step_um``, and the regions where it exceeds ``limit_um``.

    Five local measures, three over the puncta around a node (Gaussian weights of
    ``length_um``); the largest wins:

    * the leave-one-out prediction error of matched puncta (:func:`_loo_errors`);
    * the offset of the session's puncta: for every reference punctum, the distance to the
      nearest mapped punctum of the session, matched or not; the weighted median over those
      with a candidate partner (within ``partner_um``; a synapse lost, born or missed by
      detection has none and says nothing) is how far the transform is off here;
    * a local collapse of pairing: where the share of reference puncta with a partner within
      ``limit_um`` falls below a third of the session's share, the transform is off by more
      than the partner distance, and the node gets ``2 * limit_um``;
    * extrapolation: beyond ``support_um`` from every matched punctum the transform is a guess
      (a shear or warp fitted elsewhere, blocks of shaft alone that cannot tell a shift along
      it), and the estimate grows by ``growth`` um per um.  On the hard_registration regime
      every true synapse registered worse than 0.5 um lay 6.6-12 um from the nearest matched
      punctum, and none nearer (``benchmarks/registration_benchmark.py``).  Each reference
      punctum that far from the matched ones raises the nodes within ``step_um`` of it (an
      empty corner is no region of concern).
    * a patch moved off as a whole: the shift on which the session's puncta around a reference
      punctum agree (:func:`local_shifts`), at the nodes within ``step_um`` of it.  Where a
      dense cluster was registered about 0.6 um off, the three measures above read 0.35-0.45
      um (their neighbours' distances and the smoothing dilute it); the agreed shift read
      0.49-0.71 at true residuals of 0.51-0.77 (hard_registration, held-out cells).

    Where a measure has too few puncta nearby, the session's typical error stands in.
    Returns ``(error, regions)``: ``error`` with ``origin_um``, ``step_um`` and ``error_um``
    (ny, nx) for :func:`pipeline.core.frames.registration_error_at`; ``regions`` one dict per
    connected group of nodes above ``limit_um`` (``y_um``, ``x_um`` ranges and the largest
    ``error_um``).
    """
    ref = np.asarray(reference_um, float).reshape(-1, 3)
    mov = np.asarray(moving_um, float).reshape(-1, 3)
    i, j = pairs
    w = np.array([z_weight, 1.0, 1.0])
    loo = _loo_errors(transform, mov[i], ref[j], z_weight=z_weight) if len(i) else np.zeros(0)
    mapped = to_reference(transform, mov)
    nearest = cKDTree(mapped * w).query(ref * w)[0] if len(mapped) else np.full(len(ref), np.inf)
    ys = np.arange(0.0, field_um[0] + step_um / 2, step_um)
    xs = np.arange(0.0, field_um[1] + step_um / 2, step_um)
    nodes = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    typical = float(np.median(loo)) if len(loo) else 0.0

    def weights(points_yx):
        d2 = ((nodes[:, None, :] - points_yx[None]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * length_um ** 2))

    # leave-one-out error of matched puncta, shrunk towards the typical where they are few
    k = weights(ref[j][:, 1:]) if len(j) else np.zeros((len(nodes), 0))
    e_loo = np.sqrt((k @ loo ** 2 + 0.5 * typical ** 2) / (k.sum(1) + 0.5))
    # offset of candidate partners: a weighted median
    cand = nearest < partner_um
    e_off = np.full(len(nodes), typical)
    if cand.sum():
        kc = weights(ref[cand][:, 1:])
        order = np.argsort(nearest[cand])
        cum = np.cumsum(kc[:, order], axis=1)
        total = cum[:, -1]
        pick = nearest[cand][order][np.minimum((cum < total[:, None] / 2).sum(1),
                                               cand.sum() - 1)]
        e_off = np.where(total >= 2.0, pick, typical)
    # collapse of pairing
    e_collapse = np.zeros(len(nodes))
    if len(ref):
        ka = weights(ref[:, 1:])
        share = (ka @ (nearest < limit_um)) / np.maximum(ka.sum(1), 1e-12)
        session_share = float(np.mean(nearest < limit_um))
        e_collapse = np.where((ka.sum(1) >= 3.0) & (share < session_share / 3), 2 * limit_um, 0.0)
    # extrapolation: each reference punctum's distance from the matched ones (0 for a matched
    # one), beyond the support, counted at the nodes within a lattice step of it (an empty
    # corner of the field is no region of concern)
    e_far = np.zeros(len(nodes))
    if len(j) and len(ref):
        reach = cKDTree(ref[j][:, 1:]).query(ref[:, 1:])[0]
        far = reach > support_um
        e_far = _at_nodes_near(nodes, ref[far][:, 1:], growth * (reach[far] - support_um),
                               step_um)
    # a patch moved off as a whole
    e_shift = np.zeros(len(nodes))
    if len(ref) and len(mapped):
        shift = local_shifts(ref, mapped, partner_um=partner_um, z_weight=z_weight)
        e_shift = _at_nodes_near(nodes, ref[shift > 0][:, 1:], shift[shift > 0], step_um)
    err = np.maximum.reduce([e_loo, e_off, e_collapse, e_far, e_shift]).reshape(len(ys), len(xs))
    labels, n = ndimage.label(err > limit_um, structure=np.ones((3, 3)))
    regions = []
    for k in range(1, n + 1):
        yy, xx = np.nonzero(labels == k)
        regions.append({"y_um": [float(ys[yy.min()] - step_um / 2), float(ys[yy.max()] + step_um / 2)],
                        "x_um": [float(xs[xx.min()] - step_um / 2), float(xs[xx.max()] + step_um / 2)],
                        "error_um": float(err[labels == k].max())})
    error = {"origin_um": [0.0, 0.0], "step_um": [step_um, step_um],
             "error_um": np.round(err, 3).tolist(), "limit_um": limit_um}
    return error, regions
