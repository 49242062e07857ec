"""Linking puncta across sessions into synapse tracks (in the reference frame).

Sessions are first linked in order.  Each open track is represented by the mean reference-frame
position of its puncta so far; a session's puncta are assigned to open tracks by optimal
assignment (Hungarian) on distance with a gate, so no punctum is claimed by two tracks.
A track stays open for ``max_gap`` sessions without a punctum, so a synapse missed once
keeps its id.  Unassigned puncta start new tracks.

Linking in order alone lets a synapse take its neighbour's track in a session where the
neighbour was missed: the neighbour's track is then the nearest open one, and the two
synapses' detections alternate between two tracks (a dense PV shaft: most of the missed links
of make bench's hard_registration regime).  So each session is then re-linked, in turn,
against every track's mean position over all *other* sessions, until no assignment changes
(``relink_passes`` at most); a track left with a longer gap than ``max_gap`` is split there.
A synapse lost beside a neighbour born within the gate hands its track to the neighbour, so a
track is then split where a punctum lies more than ``max_jump_sd`` SDs (the cell's link width
and the registration error there) from the mean of the track's puncta before it.

Each link gets a confidence: the posterior probability that it is right against its nearest
competitor (the punctum's next-nearest open track or the track's next-nearest punctum) and
against "no link" at the gate, under a Gaussian model of the link distance whose width is
estimated from all the cell's links (median link distance / 1.538, the median of a 3D
Gaussian's radius in units of its per-axis SD).  Link distances and competitors are those of
the final tracks, measured as in the first pass: to each track's mean position over the
sessions before.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..core.frames import registration_error_at, to_reference
from ..params import TrackParams

COORDS = ["z_um", "y_um", "x_um"]


def link_sessions(puncta: pd.DataFrame, *, max_distance_um: float = TrackParams.max_distance_um,
                  z_scale: float = TrackParams.z_scale, max_gap: int = TrackParams.max_gap,
                  relink_passes: int = TrackParams.relink_passes,
                  max_gap_jump_um: float | None = TrackParams.max_gap_jump_um,
                  max_jump_sd: float | None = TrackParams.max_jump_sd) -> pd.DataFrame:
    """Add a ``synapse_id`` column (1, 2, ...) linking puncta across sessions.

    Parameters
    ----------
    puncta : DataFrame with ``session_index`` (0, 1, ... in time order) and ``z_um, y_um,
        x_um`` in the reference frame; an optional ``registration_error_um`` (the register
        stage's error estimate at each punctum) widens its link's uncertainty
    max_distance_um : gate on the (z-scaled) distance between a punctum and a track
    z_scale : factor on z differences (z is localised and registered less precisely)
    max_gap : number of consecutive sessions a track may miss and still be continued
    relink_passes : at most this many passes re-linking each session against the tracks'
        positions in all other sessions (0: the links of the first, in-order pass)
    max_gap_jump_um : where a track misses a session, split it there if the mean (z-scaled)
        positions of its puncta before and after the gap are further apart than this (a lost
        synapse and a neighbour born beside it); None: never
    max_jump_sd : split a track where a punctum lies more than this many SDs from the mean
        position of the track's puncta before it (since its start or its last split); the SD
        is :func:`link_width` of the cell's link distances and the punctum's registration
        error in quadrature (a lost synapse whose track a neighbour born beside it took
        over); None: never

    Returns
    -------
    Copy of ``puncta`` with ``synapse_id`` (numbered by first appearance),
    ``link_distance_um`` (distance to the track's mean position over the sessions before; NaN
    for a track's first punctum), ``link_competitor_um`` (distance of the nearest competing
    candidate; NaN when there is none) and ``link_confidence`` (0-1, see above).
    """
    out = puncta.copy()
    if out.empty:
        return out.assign(synapse_id=0, link_distance_um=np.nan, link_competitor_um=np.nan,
                          link_confidence=np.nan)
    pos = out[COORDS].to_numpy(float) * np.array([z_scale, 1.0, 1.0])
    session = out["session_index"].to_numpy()
    track = _link_in_order(pos, session, gate=max_distance_um, max_gap=max_gap)
    if relink_passes > 0:
        track = _relink(pos, session, track, gate=max_distance_um, max_gap=max_gap,
                        passes=relink_passes)
    track = _split_at_gaps(session, track, max_gap)
    extra = (out["registration_error_um"].to_numpy() if "registration_error_um" in out.columns
             else None)
    if max_jump_sd is not None:
        width = link_width(_link_distances(pos, session, track, max_gap=max_gap)[0],
                           gate_um=max_distance_um, extra_sd_um=extra)
        track = _split_at_outliers(pos, session, track, max_jump_sd * width)
    if max_gap_jump_um is not None:
        track = _split_at_jumps(pos, session, track, max_gap_jump_um)
    track = _number_by_first_appearance(session, track)
    distance, competitor = _link_distances(pos, session, track, max_gap=max_gap)
    out["synapse_id"] = track + 1
    out["link_distance_um"] = distance
    out["link_competitor_um"] = competitor
    out["link_confidence"] = link_confidence(out["link_distance_um"], out["link_competitor_um"],
                                             gate_um=max_distance_um, extra_sd_um=extra)
    return out


def _link_in_order(pos: np.ndarray, session: np.ndarray, *, gate: float,
                   max_gap: int) -> np.ndarray:
    """Track index (0, 1, ...) of each punctum, linking sessions in order to the open tracks'
    mean positions so far."""
    track = np.full(len(pos), -1)
    sums = np.zeros((len(pos), 3))
    counts = np.zeros(len(pos), int)
    last_seen = np.zeros(len(pos), int)
    n_tracks = 0
    for s in np.unique(session):
        rows = np.flatnonzero(session == s)
        open_tracks = np.flatnonzero(s - last_seen[:n_tracks] - 1 <= max_gap)
        col = _assign(pos[rows], sums[open_tracks] / counts[open_tracks, None], gate)
        ids = _tracks_of(col, open_tracks)
        new = ids < 0
        ids[new] = n_tracks + np.arange(new.sum())
        n_tracks += int(new.sum())
        track[rows] = ids
        sums[ids] += pos[rows]
        counts[ids] += 1
        last_seen[ids] = s
    return track


def _relink(pos: np.ndarray, session: np.ndarray, track: np.ndarray, *, gate: float,
            max_gap: int, passes: int) -> np.ndarray:
    """Re-link each session's puncta to the tracks' mean positions over all other sessions
    (tracks with a punctum within ``max_gap + 1`` sessions of it), until nothing changes."""
    track = track.copy()
    sessions = np.unique(session)
    for _ in range(passes):
        changed = False
        for s in sessions:
            n_tracks = int(track.max()) + 1
            rows = np.flatnonzero(session == s)
            others = session != s
            counts = np.bincount(track[others], minlength=n_tracks)
            sums = np.stack([np.bincount(track[others], weights=pos[others, a],
                                         minlength=n_tracks) for a in range(3)], -1)
            near = others & (np.abs(session - s) <= max_gap + 1)
            candidates = np.flatnonzero(np.isin(np.arange(n_tracks), track[near]) & (counts > 0))
            col = _assign(pos[rows], sums[candidates] / counts[candidates, None], gate)
            ids = _tracks_of(col, candidates)
            # a punctum left without a track keeps its own if no other session has it
            alone = (ids < 0) & (counts[track[rows]] == 0)
            ids[alone] = track[rows][alone]
            fresh = ids < 0
            ids[fresh] = n_tracks + np.arange(fresh.sum())
            if (ids != track[rows]).any():
                changed = True
                track[rows] = ids
        if not changed:
            break
    return track


def _tracks_of(col: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """The track of each linked column (``tracks[col]``), -1 where ``col`` is -1."""
    ids = np.full(len(col), -1)
    ids[col >= 0] = tracks[col[col >= 0]]
    return ids


def _split_at_gaps(session: np.ndarray, track: np.ndarray, max_gap: int) -> np.ndarray:
    """Start a new track wherever a track misses more than ``max_gap`` sessions in a row."""
    order = np.lexsort((session, track))
    t, s = track[order], session[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (t[1:] != t[:-1]) | (s[1:] - s[:-1] - 1 > max_gap)
    out = np.empty_like(track)
    out[order] = np.cumsum(starts) - 1
    return out


def _split_at_jumps(pos: np.ndarray, session: np.ndarray, track: np.ndarray,
                    max_jump: float) -> np.ndarray:
    """Start a new track at a missed session where the track's puncta since its start (or its
    last split) and those after the gap lie, on average, more than ``max_jump`` apart.

    Why: gap closing links a synapse's last punctum before it was lost to a neighbour born
    within the gate a session later; the track then holds two synapses, and a presence model
    in which the lost do not return reads it as one synapse present throughout (a loss and a
    birth missed).  Within one synapse the piece means agree to about the registration's
    error; what a split at 0.6 um does on the presence benchmark's cells: BENCHMARKS_FLOOR.md,
    last section."""
    order = np.lexsort((session, track))
    t, s, p = track[order], session[order], pos[order]
    starts = np.ones(len(order), bool)
    starts[1:] = t[1:] != t[:-1]
    gaps = np.flatnonzero(~starts[1:] & (s[1:] - s[:-1] > 1)) + 1
    bounds = np.append(np.flatnonzero(starts), len(order))     # each track's rows
    piece = 0                                                  # first row since the last split
    for g in gaps:
        k = np.searchsorted(bounds, g, side="right")
        piece = max(piece, bounds[k - 1])
        if np.linalg.norm(p[piece:g].mean(0) - p[g:bounds[k]].mean(0)) > max_jump:
            starts[g] = True
            piece = g
    out = np.empty_like(track)
    out[order] = np.cumsum(starts) - 1
    return out


def _split_at_outliers(pos: np.ndarray, session: np.ndarray, track: np.ndarray,
                       max_distance: np.ndarray) -> np.ndarray:
    """Start a new track at a punctum farther than its ``max_distance`` from the mean position
    of its track's puncta since the track's start or last split.

    Why: a synapse lost beside a neighbour born within the gate (the same or the next
    session) hands its track to the neighbour, and the track holds two synapses: a loss and a
    birth missed.  Within one synapse the puncta scatter by the localisation and registration
    errors, which the link width measures; the neighbour lies many of those away."""
    order = np.lexsort((session, track))
    t, p = track[order], pos[order]
    limit = np.broadcast_to(max_distance, track.shape)[order]
    starts = np.ones(len(order), bool)
    starts[1:] = t[1:] != t[:-1]
    total, count = p[0].copy(), 1
    for k in range(1, len(order)):
        if not starts[k] and np.linalg.norm(p[k] - total / count) > limit[k]:
            starts[k] = True
        if starts[k]:
            total, count = p[k].copy(), 1
        else:
            total += p[k]
            count += 1
    out = np.empty_like(track)
    out[order] = np.cumsum(starts) - 1
    return out


def _number_by_first_appearance(session: np.ndarray, track: np.ndarray) -> np.ndarray:
    """Renumber tracks 0, 1, ... by their first session, then by the table row of their first
    punctum (the order in which the in-order pass creates them)."""
    order = np.lexsort((np.arange(len(track)), session))
    _, first = np.unique(track[order], return_index=True)
    rank = np.empty(len(first), int)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[np.unique(track, return_inverse=True)[1]]


def _link_distances(pos: np.ndarray, session: np.ndarray, track: np.ndarray, *,
                    max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Per punctum: the distance to its track's mean position over the sessions before (NaN
    for a track's first punctum) and the nearest competing candidate's: the nearest other
    open track to the punctum, or the nearest other punctum of the session to the track's
    position (inf when there is none)."""
    n_tracks = int(track.max()) + 1 if len(track) else 0
    sums = np.zeros((n_tracks, 3))
    counts = np.zeros(n_tracks, int)
    last_seen = np.zeros(n_tracks, int)
    distance = np.full(len(pos), np.nan)
    competitor = np.full(len(pos), np.nan)
    for s in np.unique(session):
        rows = np.flatnonzero(session == s)
        open_tracks = np.flatnonzero((counts > 0) & (s - last_seen - 1 <= max_gap))
        ids = track[rows]
        linked = np.isin(ids, open_tracks)
        if linked.any():
            centres = sums[open_tracks] / counts[open_tracks, None]
            own = np.searchsorted(open_tracks, ids[linked])
            p = pos[rows[linked]]
            distance[rows[linked]] = np.linalg.norm(p - centres[own], axis=1)
            competitor[rows[linked]] = np.minimum(
                _nearest_other(centres, p, own),
                _nearest_other(pos[rows], centres[own], np.flatnonzero(linked)))
        sums[ids] += pos[rows]
        counts[ids] += 1
        last_seen[ids] = s
    return distance, competitor


def _nearest_other(points: np.ndarray, queries: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Distance from each query to the nearest of ``points`` other than ``points[own[k]]``."""
    if len(points) < 2:
        return np.full(len(queries), np.inf)
    d, i = cKDTree(points).query(queries, k=2)
    return np.where(i[:, 0] == own, d[:, 1], d[:, 0])


def _assign(points: np.ndarray, centres: np.ndarray, gate: float) -> np.ndarray:
    """Minimum-cost links between puncta (``points``) and tracks (``centres``) within ``gate``:
    the linked centre per punctum (-1: a new track).

    Each punctum may instead start a new track at the cost of the gate.  Without that option
    a rectangular assignment links as many pairs as it can and then minimises their sum, so a
    new punctum near a track whose own punctum is present pushes that punctum onto a
    neighbour's track (a chain of long links instead of one short link and a birth).  Solved
    separately on each group of puncta and tracks joined by distances within the gate, so the
    cost grows with the number of puncta and the size of the groups, not with their square.
    """
    col = np.full(len(points), -1)
    if not len(points) or not len(centres):
        return col
    pairs = cKDTree(points).sparse_distance_matrix(cKDTree(centres), gate,
                                                   output_type="coo_matrix")
    n, m = len(points), len(centres)
    graph = coo_matrix((np.ones(pairs.nnz), (pairs.row, n + pairs.col)), shape=(n + m, n + m))
    _, group = connected_components(graph, directed=False)
    n_rows = np.bincount(group[:n], minlength=group.max() + 1)
    n_cols = np.bincount(group[n:], minlength=group.max() + 1)
    # most groups are one punctum and one track within the gate: linked without a solve
    single = (n_rows[group[pairs.row]] == 1) & (n_cols[group[pairs.row]] == 1)
    col[pairs.row[single]] = pairs.col[single]
    larger = np.flatnonzero((n_rows > 0) & (n_cols > 0) & ~((n_rows == 1) & (n_cols == 1)))
    if not len(larger):
        return col
    # the remaining groups: one assignment each, from their own edges (local indices)
    row_groups, row_local = _local_index(group[:n], larger)
    col_groups, col_local = _local_index(group[n:], larger)
    edge_groups, _ = _local_index(group[pairs.row], larger)
    for r, c, e in zip(row_groups, col_groups, edge_groups):
        cost = np.full((len(r), len(c) + len(r)), 1e6)
        cost[row_local[pairs.row[e]], col_local[pairs.col[e]]] = pairs.data[e]
        cost[np.arange(len(r)), len(c) + np.arange(len(r))] = gate
        ri, ci = linear_sum_assignment(cost)
        linked = ci < len(c)       # a pair beyond the gate never beats the new track
        col[r[ri[linked]]] = c[ci[linked]]
    return col


def _local_index(group: np.ndarray, groups: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """For each of ``groups`` (sorted): its members' indices; and each member's position
    within its group (-1 outside ``groups``)."""
    local = np.full(len(group), -1)
    members = np.flatnonzero(np.isin(group, groups))
    members = members[np.argsort(group[members], kind="stable")]
    starts = np.searchsorted(group[members], groups)
    ends = np.searchsorted(group[members], groups, side="right")
    sizes = ends - starts
    local[members] = np.arange(len(members)) - np.repeat(starts, sizes)
    return [members[a:b] for a, b in zip(starts, ends)], local


def link_confidence(distance, competitor, *, gate_um: float, sigma_um: float | None = None,
                    p_outlier: float = 0.05, extra_sd_um=None):
    """Posterior probability of each link against its nearest competitor and against no link.

    A right link's distance follows a 3D Gaussian of per-axis SD ``sigma_um``; a wrong one
    (a different synapse, prior ``p_outlier``) is uniform within the gate.  The competitor is
    scored as another right link at its distance.

    Parameters
    ----------
    distance : link distances (NaN: no link, gives NaN)
    competitor : distance of the nearest competing candidate (NaN or inf: none)
    gate_um : the linking gate (radius of the uniform "wrong link" density)
    sigma_um : per-axis SD of a right link's distance; default from ``distance`` (median / 1.538)
    p_outlier : prior probability that a link within the gate is wrong
    extra_sd_um : per link, a further SD (um) added in quadrature to ``sigma_um``: the
        register stage's estimate of its own error where the punctum lies (NaN: none), so a
        link in a badly registered region is less sure

    Returns
    -------
    array of confidences in [0, 1]
    """
    d = np.asarray(distance, float)
    c = np.nan_to_num(np.asarray(competitor, float), nan=np.inf)
    sigma_um = link_width(d, gate_um=gate_um, sigma_um=sigma_um, extra_sd_um=extra_sd_um)
    log_norm = -1.5 * np.log(2 * np.pi * sigma_um ** 2)
    log_uniform = np.log(p_outlier) - np.log(4 / 3 * np.pi * gate_um ** 3) - np.log1p(-p_outlier)
    with np.errstate(over="ignore", invalid="ignore"):
        own = log_norm - d ** 2 / (2 * sigma_um ** 2)
        rival = log_norm - c ** 2 / (2 * sigma_um ** 2)
        top = np.maximum(np.maximum(own, rival), log_uniform)
        conf = np.exp(own - top) / (np.exp(own - top) + np.exp(rival - top)
                                    + np.exp(log_uniform - top))
    return np.where(np.isfinite(d), conf, np.nan)


def link_width(distance, *, gate_um: float, sigma_um: float | None = None, extra_sd_um=None):
    """Per-axis SD (um) of a right link's distance: ``sigma_um``, by default the median of the
    finite ``distance`` / 1.538 (the median radius of a 3D Gaussian in units of its per-axis
    SD; ``gate_um`` / 3 without links), at least 0.05 um (the localisation precision of
    puncta), with ``extra_sd_um`` (per link; NaN: none) added in quadrature.  A scalar, or an
    array when ``extra_sd_um`` is given."""
    if sigma_um is None:
        d = np.asarray(distance, float)
        linked = d[np.isfinite(d)]
        sigma_um = np.median(linked) / 1.538 if len(linked) else gate_um / 3
    sigma_um = max(float(sigma_um), 0.05)
    if extra_sd_um is None:
        return sigma_um
    return np.sqrt(sigma_um ** 2 + np.nan_to_num(np.asarray(extra_sd_um, float)) ** 2)


def track_cell(puncta: list[pd.DataFrame], transforms: list[dict], metas: list[dict], *,
               params: TrackParams = TrackParams()) -> tuple[pd.DataFrame, list[str]]:
    """The track stage on one cell: each session's puncta (the detect stage's tables), its
    transform into the reference (the register stage's dicts) and its ingest metadata
    (``session``, ``day``), in any order.  Sessions whose registration is unreliable are left
    out.  Returns the tracks and the names of the sessions left out."""
    order = np.argsort([m["day"] for m in metas], kind="stable")
    frames = []
    for k, i in enumerate(order):
        tr, p = transforms[i], puncta[i]
        ref_um = to_reference(tr, p[["z_um", "y_um", "x_um"]].to_numpy())
        reg_error = registration_error_at(tr, ref_um)
        frames.append(pd.DataFrame({
            "session": metas[i]["session"], "day": metas[i]["day"], "session_index": k,
            "z": p["z"], "y": p["y"], "x": p["x"], "z_um": ref_um[:, 0], "y_um": ref_um[:, 1],
            "x_um": ref_um[:, 2], "snr": p["snr"], "intensity": p["intensity"],
            "size_um": p["size_um"] if "size_um" in p else np.nan,
            "reliable_registration": bool(tr.get("reliable", True)),
            "registration_error_um": reg_error}))
    found = pd.concat(frames, ignore_index=True)
    unreliable = list(found.loc[~found["reliable_registration"], "session"].unique())
    if unreliable:
        found = found[found["reliable_registration"]]
    return link_sessions(found, max_distance_um=params.max_distance_um, z_scale=params.z_scale,
                         max_gap=params.max_gap, relink_passes=params.relink_passes,
                         max_gap_jump_um=params.max_gap_jump_um,
                         max_jump_sd=params.max_jump_sd), unreliable


def detection_counts(counts, metas: list[dict], *, unreliable=(), textures=None,
                     shaft_snrs=None,
                     max_per_1000um3: float = TrackParams.max_detections_per_1000um3,
                     departure: float = TrackParams.detections_departure,
                     warn_texture: float | None = TrackParams.warn_texture_factor,
                     warn_shaft: float | None = TrackParams.warn_shaft_snr) -> dict:
    """Is each session's number of detections plausible for its volume and its cell?

    ``counts``: detections per session (in the order of ``metas``, the ingest metadata with
    ``session``, ``shape_czyx`` and ``voxel_um``); ``unreliable``: sessions whose registration
    failed.  A session is implausible above ``max_per_1000um3`` detections per 1000 um3 of
    stack, or above ``departure`` times the cell's median or below its inverse (with 3
    sessions or more: an empty or a noise-filled session).  ``textures``: each session's
    detect-table ``texture_factor`` (NaN: not measured); the sessions at ``warn_texture`` or
    above are named in one warning for the cell (:func:`texture_warning`); ``shaft_snrs``
    likewise each session's ``shaft_snr`` (PSD-95 alone), those at ``warn_shaft`` or above
    in another (:func:`shaft_warning`).  Returns
    ``{"sessions": [...], "warnings": [...]}``; each warning names the session, the numbers and
    the fix, and says when the failed registration is likely the detections' doing.
    """
    cell = metas[0].get("cell", "") if metas else ""
    counts = np.asarray(counts, float)
    median = float(np.median(counts)) if len(counts) else np.nan
    rows, warnings = [], []
    for n, meta in zip(counts, metas):
        volume = float(np.prod(meta["shape_czyx"][1:]) * np.prod(meta["voxel_um"]))
        density = 1000 * n / volume if volume > 0 else np.nan
        ratio = n / median if median > 0 else np.nan
        reasons = []
        if density > max_per_1000um3:
            reasons.append(f"{density:.1f} per 1000 um3 (bound {max_per_1000um3:g}, "
                           "track.max_detections_per_1000um3)")
        if len(counts) >= 3 and ratio > departure:
            reasons.append(f"{ratio:.1f}x the cell's median of {median:.0f} (bound "
                           f"{departure:g}x, track.detections_departure)")
        few = len(counts) >= 3 and ratio < 1 / departure
        if few:
            reasons.append(f"{ratio:.2f}x the cell's median of {median:.0f} (bound "
                           f"1/{departure:g}, track.detections_departure)")
        session = str(meta["session"])
        rows.append({"session": session, "detections": int(n), "volume_um3": round(volume, 1),
                     "per_1000um3": round(density, 3), "ratio_to_median": round(ratio, 3),
                     "implausible": bool(reasons)})
        for name, values in (("texture_factor", textures), ("shaft_snr", shaft_snrs)):
            if values is not None:
                value = float(values[len(rows) - 1])
                rows[-1][name] = round(value, 3) if np.isfinite(value) else None
        if reasons:
            what, cause = (
                ("implausibly few: no signal, out of focus, or the wrong channel as PSD-95",
                 "as its detections are too few") if few else
                ("implausibly many, likely noise taken for puncta (a low detect.threshold, data "
                 "without a morphology channel, or the wrong channel as PSD-95)",
                 "most likely because its detections are mostly noise"))
            failed = (f" Its registration failed (too few puncta matched), {cause}: its puncta "
                      "are not tracked." if session in unreliable else "")
            warnings.append(f"cell {cell}, session {session}: {int(n)} detections, "
                            f"{'; '.join(reasons)}: {what}.{failed}")
    warnings += texture_warning(rows, cell=cell, limit=warn_texture)
    warnings += shaft_warning(rows, cell=cell, limit=warn_shaft)
    return {"cell": cell, "median_detections": median, "sessions": rows, "warnings": warnings}


def session_texture(puncta: pd.DataFrame, column: str = "texture_factor") -> float:
    """A session's ``texture_factor`` (or another of the detect table's per-session columns,
    ``column``: ``shaft_snr``) from its detect table (NaN: none measured, no detections, or
    a table written before the column)."""
    if column not in puncta or not len(puncta):
        return float("nan")
    return float(puncta[column].iloc[0])


def shaft_warning(sessions: list[dict], *, cell: str,
                  limit: float | None = TrackParams.warn_shaft_snr) -> list[str]:
    """One warning (in a list; empty when none) naming the sessions of ``cell`` (PSD-95
    alone) whose subtracted shaft stands ``limit`` noise SDs or more (``shaft_snr``): the line
    openings miss 6-15 % of a noisy shaft, and noise on what they leave passes for puncta
    along it (``benchmarks/bright_shaft.py``: at 2 SDs up to 1.4, at 4.4 SDs 1.8-6.0 false
    per 10 um of shaft; make bench's single_channel_bright_shaft, at 4.3 SDs, detection
    precision 0.54)."""
    found = [(s["session"], s["shaft_snr"]) for s in sessions
             if s.get("shaft_snr") is not None and limit is not None
             and s["shaft_snr"] >= limit]
    if not found:
        return []
    measured = [s for s in sessions if s.get("shaft_snr") is not None]
    worst = max(found, key=lambda f: f[1])
    return [f"cell {cell}: a bright shaft in {len(found)} of {len(measured)} sessions imaged "
            f"without a morphology channel ({', '.join(f'{s} {v:.1f}' for s, v in found)} "
            f"noise SDs; bound {limit:g}, track.warn_shaft_snr): the line openings that take "
            "the shaft's diffuse PSD-95 out leave a ridge of it, and noise on that ridge passes "
            f"for puncta along the shaft, most in {worst[0]} (benchmarks/bright_shaft.py); "
            "check the detections on the shaft in the review pages, and read turnover and the "
            "number of synapses there with care"]


def texture_warning(sessions: list[dict], *, cell: str,
                    limit: float | None = TrackParams.warn_texture_factor) -> list[str]:
    """One warning (in a list; empty when none) naming the sessions of ``cell`` whose
    ``texture_factor`` is ``limit`` or more: the PSD-95 channel is patchy along the bright
    shaft (diffuse PSD-95 or bleed-through that the morphology share leaves), and the detect
    stage's threshold rose there by that factor, so a dim punctum on the bright shaft needs
    that much more signal to be found; where the factor differs between sessions, so does
    the sensitivity there (a dim synapse seen in one session and missed in the next)."""
    found = [(s["session"], s["texture_factor"]) for s in sessions
             if s.get("texture_factor") is not None and limit is not None
             and s["texture_factor"] >= limit]
    if not found:
        return []
    measured = [s["texture_factor"] for s in sessions if s.get("texture_factor") is not None]
    worst = max(found, key=lambda f: f[1])
    return [f"cell {cell}: a textured bright shaft in {len(found)} of {len(measured)} sessions "
            f"({', '.join(f'{s} {t:.1f}x' for s, t in found)}; bound {limit:g}x, "
            "track.warn_texture_factor): the detection threshold on the cell's brightest 10 % "
            "rose that many times (detect.brightness_noise), so dim puncta on the bright shaft "
            f"are missed there, most in {worst[0]}, and their weights carry the texture; check "
            "the bleed-through share (channels stage) and that session's morphology channel, "
            "and read turnover on the shaft with care"]
