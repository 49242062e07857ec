"""Linking puncta across sessions into synapse tracks (in the reference frame).

Sessions are linked in order.  Each open track is represented by the mean reference-frame
position of its puncta so far; a session's puncta are assigned to open tracks by optimal
assignment (Hungarian) on distance with a gate, so no punctum is claimed by two tracks.
A track stays open for ``max_gap`` sessions without a punctum, so a synapse missed once
keeps its id.  Unassigned puncta start new tracks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

COORDS = ["z_um", "y_um", "x_um"]


def link_sessions(puncta: pd.DataFrame, *, max_distance_um: float = 1.0,
                  z_scale: float = 0.5, max_gap: int = 1) -> pd.DataFrame:
    """Add a ``synapse_id`` column (1, 2, ...) linking puncta across sessions.

    Parameters
    ----------
    puncta : DataFrame with ``session_index`` (0, 1, ... in time order) and ``z_um, y_um,
        x_um`` in the reference frame
    max_distance_um : gate on the (z-scaled) distance between a punctum and a track
    z_scale : factor on z differences (z is localised and registered less precisely)
    max_gap : number of consecutive sessions a track may miss and still be continued

    Returns
    -------
    Copy of ``puncta`` with ``synapse_id`` and ``link_distance_um`` (distance to the track it
    joined; NaN for a track's first punctum).
    """
    out = puncta.copy()
    out["synapse_id"] = 0
    out["link_distance_um"] = np.nan
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
        if open_tracks and len(rows):
            centres = np.array([sums[t] / counts[t] for t in open_tracks])
            d = cdist(pos * scale, centres * scale)
            cost = np.where(d <= max_distance_um, d, 1e6)
            ri, ci = linear_sum_assignment(cost)
            ok = d[ri, ci] <= max_distance_um
            assigned[ri[ok]] = np.array(open_tracks)[ci[ok]]
            dist[ri[ok]] = d[ri[ok], ci[ok]]
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
    return out


def track_positions(tracks: pd.DataFrame) -> pd.DataFrame:
    """Mean reference-frame position of each synapse (index ``synapse_id``)."""
    return tracks.groupby("synapse_id")[COORDS].mean()
