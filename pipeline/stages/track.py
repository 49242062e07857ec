"""Linking puncta across sessions into synapse tracks (in the reference frame).

Sessions are linked in order.  Each open track is represented by the mean reference-frame
position of its puncta so far; a session's puncta are assigned to open tracks by optimal
assignment (Hungarian) on distance with a gate, so no punctum is claimed by two tracks.
A track stays open for ``max_gap`` sessions without a punctum, so a synapse missed once
keeps its id.  Unassigned puncta start new tracks.

Each link gets a confidence: the posterior probability that it is right against its nearest
competitor (the punctum's next-nearest open track or the track's next-nearest punctum) and
against "no link" at the gate, under a Gaussian model of the link distance whose width is
estimated from all the cell's links (median link distance / 1.538, the median of a 3D
Gaussian's radius in units of its per-axis SD).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..core.frames import registration_error_at, to_reference
from ..params import TrackParams

COORDS = ["z_um", "y_um", "x_um"]


def link_sessions(puncta: pd.DataFrame, *, max_distance_um: float = TrackParams.max_distance_um,
                  z_scale: float = TrackParams.z_scale,
                  max_gap: int = TrackParams.max_gap) -> pd.DataFrame:
    """Add a ``synapse_id`` column (1, 2, ...) linking puncta across sessions.

    Parameters
    ----------
    puncta : DataFrame with ``session_index`` (0, 1, ... in time order) and ``z_um, y_um,
        x_um`` in the reference frame; an optional ``registration_error_um`` (the register
        stage's error estimate at each punctum) widens its link's uncertainty
    max_distance_um : gate on the (z-scaled) distance between a punctum and a track
    z_scale : factor on z differences (z is localised and registered less precisely)
    max_gap : number of consecutive sessions a track may miss and still be continued

    Returns
    -------
    Copy of ``puncta`` with ``synapse_id``, ``link_distance_um`` (distance to the track it
    joined; NaN for a track's first punctum), ``link_competitor_um`` (distance of the nearest
    competing candidate; NaN when there is none) and ``link_confidence`` (0-1, see above).
    """
    out = puncta.copy()
    out["synapse_id"] = 0
    out["link_distance_um"] = np.nan
    out["link_competitor_um"] = np.nan
    scale = np.array([z_scale, 1.0, 1.0])
    sums: list[np.ndarray] = []     # per track: sum of positions
    counts: list[int] = []
    last_seen: list[int] = []
    for s in sorted(out["session_index"].unique()):
        rows = np.flatnonzero(out["session_index"].to_numpy() == s)
        pos = out.iloc[rows][COORDS].to_numpy(float)
        open_tracks = [t for t in range(len(sums)) if s - last_seen[t] - 1 <= max_gap]
        assigned = np.full(len(rows), -1)
        dist = np.full(len(rows), np.nan)
        rival = np.full(len(rows), np.nan)
        if open_tracks and len(rows):
            centres = np.array([sums[t] / counts[t] for t in open_tracks])
            d = cdist(pos * scale, centres * scale)
            ri, ci = _assign(d, max_distance_um)
            ok = ci >= 0
            assigned[ri[ok]] = np.array(open_tracks)[ci[ok]]
            dist[ri[ok]] = d[ri[ok], ci[ok]]
            rival[ri[ok]] = _nearest_rival(d, ri[ok], ci[ok])
        for k, t in enumerate(assigned):
            if t < 0:
                sums.append(pos[k].copy())
                counts.append(1)
                last_seen.append(s)
                assigned[k] = len(sums) - 1
            else:
                sums[t] = sums[t] + pos[k]
                counts[t] += 1
                last_seen[t] = s
        out.iloc[rows, out.columns.get_loc("synapse_id")] = assigned + 1
        out.iloc[rows, out.columns.get_loc("link_distance_um")] = dist
        out.iloc[rows, out.columns.get_loc("link_competitor_um")] = rival
    extra = (out["registration_error_um"].to_numpy() if "registration_error_um" in out.columns
             else None)
    out["link_confidence"] = link_confidence(out["link_distance_um"], out["link_competitor_um"],
                                             gate_um=max_distance_um, extra_sd_um=extra)
    return out


def _assign(d: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost links between puncta (rows of ``d``) and tracks (columns) within ``gate``.

    Each punctum may instead start a new track at the cost of the gate.  Without that option
    a rectangular assignment links as many pairs as it can and then minimises their sum, so a
    new punctum near a track whose own punctum is present pushes that punctum onto a
    neighbour's track (a chain of long links instead of one short link and a birth).
    Returns row indices and the linked column per row (-1: new track).
    """
    n, m = d.shape
    cost = np.full((n, m + n), 1e6)
    cost[:, :m] = np.where(d <= gate, d, 1e6)
    cost[np.arange(n), m + np.arange(n)] = gate
    ri, ci = linear_sum_assignment(cost)
    return ri, np.where(ci < m, ci, -1)    # a pair beyond the gate never beats the new track


def _nearest_rival(d: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For links (rows[k], cols[k]) of distance matrix ``d``: the smallest distance of another
    track to the punctum or of another punctum to the track (inf when there is none)."""
    out = np.full(len(rows), np.inf)
    for k, (i, j) in enumerate(zip(rows, cols)):
        others = np.concatenate([np.delete(d[i], j), np.delete(d[:, j], i)])
        if len(others):
            out[k] = others.min()
    return out


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
    if sigma_um is None:
        linked = d[np.isfinite(d)]
        sigma_um = np.median(linked) / 1.538 if len(linked) else gate_um / 3
    sigma_um = max(float(sigma_um), 0.05)    # below the localisation precision of puncta
    if extra_sd_um is not None:
        sigma_um = np.sqrt(sigma_um ** 2 + np.nan_to_num(np.asarray(extra_sd_um, float)) ** 2)
    log_norm = -1.5 * np.log(2 * np.pi * sigma_um ** 2)
    log_uniform = np.log(p_outlier) - np.log(4 / 3 * np.pi * gate_um ** 3) - np.log1p(-p_outlier)
    with np.errstate(over="ignore", invalid="ignore"):
        own = log_norm - d ** 2 / (2 * sigma_um ** 2)
        rival = log_norm - c ** 2 / (2 * sigma_um ** 2)
        top = np.maximum(np.maximum(own, rival), log_uniform)
        conf = np.exp(own - top) / (np.exp(own - top) + np.exp(rival - top)
                                    + np.exp(log_uniform - top))
    return np.where(np.isfinite(d), conf, np.nan)


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
            "reliable_registration": bool(tr.get("reliable", True)),
            "registration_error_um": reg_error}))
    found = pd.concat(frames, ignore_index=True)
    unreliable = list(found.loc[~found["reliable_registration"], "session"].unique())
    if unreliable:
        found = found[found["reliable_registration"]]
    return link_sessions(found, max_distance_um=params.max_distance_um, z_scale=params.z_scale,
                         max_gap=params.max_gap), unreliable


def detection_counts(counts, metas: list[dict], *, unreliable=(),
                     max_per_1000um3: float = TrackParams.max_detections_per_1000um3,
                     departure: float = TrackParams.detections_departure) -> dict:
    """Is each session's number of detections plausible for its volume and its cell?

    ``counts``: detections per session (in the order of ``metas``, the ingest metadata with
    ``session``, ``shape_czyx`` and ``voxel_um``); ``unreliable``: sessions whose registration
    failed.  A session is implausible above ``max_per_1000um3`` detections per 1000 um3 of
    stack, or above ``departure`` times the cell's median or below its inverse (with 3
    sessions or more: an empty or a noise-filled session).  Returns
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
    return {"cell": cell, "median_detections": median, "sessions": rows, "warnings": warnings}
