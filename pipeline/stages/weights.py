"""Synapse weights: background-subtracted integrated PSD-95 fluorescence and its normalisation.

The measurement itself is :func:`pipeline.core.photometry.aperture_photometry`; this stage
chooses where to measure (every synapse in every session, and null places on the cell),
which positions are sources of light of their own, the quality flags and the normalisation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def distinct_puncta(positions: np.ndarray, detected, *, spacing, same_um: float = 0.5,
                    z_scale: float = 0.5, priority=None) -> np.ndarray:
    """Which positions stand for a punctum of their own: all but those within ``same_um``
    (z distances times ``z_scale``) of one already taken, detected positions taken first,
    then by decreasing ``priority`` (e.g. the track's number of detections; ties in order).

    Two tracks this close that were not both detected are pieces of one synapse (the presence
    stage merges them): as two sources they would split its light between them.  The piece
    taken is the one the merge keeps (the most detections), so the merged synapse's row in a
    session without detection carries the light, not the residual beside it.
    """
    from scipy.spatial import cKDTree

    pos = np.asarray(positions, float).reshape(-1, 3) * np.asarray(spacing) * [z_scale, 1, 1]
    detected = np.asarray(detected, bool)
    keep = np.ones(len(pos), bool)
    if len(pos) < 2:
        return keep
    prio = np.zeros(len(pos)) if priority is None else np.asarray(priority, float)
    order = np.lexsort((np.arange(len(pos)), -prio, ~detected))
    rank = np.empty(len(pos), int)
    rank[order] = np.arange(len(pos))
    pairs = cKDTree(pos).query_pairs(same_um, output_type="ndarray")
    pairs = pairs[~(detected[pairs[:, 0]] & detected[pairs[:, 1]])]   # both detected: two puncta
    later = np.where(rank[pairs[:, 0]] > rank[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    earlier = pairs[:, 0] + pairs[:, 1] - later
    for e, l in sorted(zip(earlier, later), key=lambda p: rank[p[1]]):
        if keep[e]:
            keep[l] = False
    return keep


def null_positions(mask: np.ndarray, avoid_vox: np.ndarray, *, spacing, n: int = 300,
                   min_distance_um: float = 1.5, seed: int = 0) -> np.ndarray:
    """Up to ``n`` voxel positions on ``mask`` (the labelled cell) at least
    ``min_distance_um`` from every position in ``avoid_vox`` (the tracked synapses): places
    where a synapse could be but none is.  Measured like the synapses, they show what an
    absent synapse measures -- the dendrite under the aperture, leftover light of neighbours
    -- which is not zero on average."""
    from scipy.spatial import cKDTree

    spacing = np.asarray(spacing, float)
    rng = np.random.default_rng(seed)
    cand = np.argwhere(mask)
    if len(cand) == 0:
        return np.zeros((0, 3))
    cand = cand[rng.choice(len(cand), min(len(cand), 20 * n), replace=False)].astype(float)
    avoid = np.asarray(avoid_vox, float).reshape(-1, 3)
    if len(avoid):
        far = cKDTree(avoid * spacing).query(cand * spacing)[0] >= min_distance_um
        cand = cand[far]
    keep = []          # and apart from each other, so that no two share most of an aperture
    tree_pts = cand * spacing
    taken = np.zeros(len(cand), bool)
    tree = cKDTree(tree_pts)
    for k in range(len(cand)):
        if len(keep) >= n:
            break
        if taken[k]:
            continue
        keep.append(k)
        taken[tree.query_ball_point(tree_pts[k], min_distance_um)] = True
    return cand[keep]


QUALITY_FLAGS = ("saturated", "edge", "neighbour", "low_snr")


def quality_flags(phot: pd.DataFrame, positions: np.ndarray, present, *, spacing,
                  radius_um=(1.6, 0.6, 0.6), min_snr: float = 3.0,
                  spread_um=(1.3, 0.3, 0.3)) -> pd.Series:
    """Why a synapse-session's weight may be off: ';'-joined flags, '' when none.

    ``saturated``: a voxel of its aperture at the detector's full scale (the weight is
    clipped); ``edge``: part of the aperture outside the stack (the weight is low, or the
    synapse is out of view); ``neighbour``: another synapse close enough for some of its
    light to fall in this one's aperture (its centre within the aperture grown by
    ``spread_um``, 1.5 SDs of a blurred punctum: then 7 % of its light or more falls
    inside); ``low_snr``: called present at an SNR below
    ``min_snr``.  ``phot`` is :func:`aperture_photometry`'s output at ``positions`` (all
    synapses of one session, voxel units).
    """
    from scipy.spatial import cKDTree

    reach = np.asarray(radius_um, float) + np.asarray(spread_um, float)
    pos = np.asarray(positions, float).reshape(-1, 3) * np.asarray(spacing) / reach
    crowded = np.zeros(len(pos), bool)
    if len(pos) > 1:
        for i, j in cKDTree(pos).query_pairs(1.0):
            crowded[i] = crowded[j] = True
    flags = {"saturated": phot["n_saturated"].to_numpy() > 0,
             "edge": phot["aperture_inside"].to_numpy() < 1.0,
             "neighbour": crowded,
             "low_snr": (np.asarray(present) == 1) & (phot["snr"].to_numpy() < min_snr)}
    rows = zip(*(np.where(v, k, "") for k, v in flags.items()))
    return pd.Series([";".join(f for f in r if f) for r in rows], index=phot.index, dtype=object)


NORMALISATIONS = ("percentile_40_60", "median_ratio")


def _percentile_scale(w: np.ndarray) -> float:
    if len(w) == 0:
        return np.nan
    lo, hi = np.percentile(w, [40, 60])
    sel = w[(w >= lo) & (w <= hi)]
    return sel.mean() if len(sel) else np.median(w)


def normalise_cell_weights(table: pd.DataFrame, method: str) -> pd.Series:
    """:func:`normalise_weights` of one cell's per-synapse-session table (columns
    ``intensity, present, session, day, synapse_id``), the earliest session being the
    reference of the median_ratio method."""
    first = str(table.loc[table["day"].idxmin(), "session"])
    return normalise_weights(table["intensity"], table["present"],
                             groups=table["session"].astype(str), method=method,
                             synapse_ids=table["synapse_id"], reference=first)


def normalise_weights(intensity: pd.Series, present: pd.Series, *, groups: pd.Series,
                      method: str = "percentile_40_60", synapse_ids: pd.Series | None = None,
                      reference=None, min_shared: int = 5) -> pd.Series:
    """Divide intensities by a per-group (one cell's session) scale.

    ``percentile_40_60`` (the published definition): the mean of the present synapses'
    intensities between the 40th and 60th percentile of that session.  It moves when the
    population does (many new small synapses lower it).

    ``median_ratio``: each session's brightness relative to the ``reference`` group (default:
    the first), as the median ratio of intensities over the synapses present (with positive
    intensity) in both; the reference's scale is its percentile_40_60 scale, so the two
    methods agree there.  Births and losses do not move it.  A group sharing fewer than
    ``min_shared`` synapses with the reference keeps its own percentile scale.  Needs
    ``synapse_ids``.
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation method {method!r}; use one of {NORMALISATIONS}")
    df = pd.DataFrame({"intensity": intensity, "present": present, "g": groups})
    ok = df[(df["present"] == 1)]
    scales = ok.groupby("g", sort=False)["intensity"].apply(lambda w: _percentile_scale(w.to_numpy()))
    scales = scales.reindex(pd.unique(df["g"]))
    if method == "median_ratio":
        if synapse_ids is None:
            raise ValueError("median_ratio normalisation needs synapse_ids")
        df["id"] = synapse_ids
        pos = df[(df["present"] == 1) & (df["intensity"] > 0)]
        wide = pos.pivot_table(index="id", columns="g", values="intensity", aggfunc="first")
        first = scales.index[0] if reference is None else reference
        for g in scales.index.drop(first):
            both = wide[[first, g]].dropna() if first in wide and g in wide else wide.iloc[:0]
            if len(both) >= min_shared:
                scales[g] = scales[first] * float(np.exp(np.median(np.log(both[g] / both[first]))))
    return intensity / groups.map(scales)
