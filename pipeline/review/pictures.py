"""Pictures for the review pages: max projections in the reference frame and per-synapse crops.

Pure array functions (no file I/O); `pipeline.review.pages` turns them and the per-synapse table
into HTML.  Images are 8-bit RGB: PSD-95 green, morphology magenta.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

GREEN = np.array([0.0, 1.0, 0.0])
MAGENTA = np.array([1.0, 0.0, 1.0])


def reference_projection(image: np.ndarray, matrix, *, spacing, reference_spacing,
                         reference_shape) -> np.ndarray:
    """Maximum projection along z of one channel resampled into the reference session's grid.

    Parameters
    ----------
    image : (z, y, x) array of one session
    matrix : 4x4 transform, session um -> reference um (as written by the register stage)
    spacing, reference_spacing : voxel sizes (z, y, x) in um of the session and of the reference
    reference_shape : (z, y, x) shape of the reference stack

    Returns
    -------
    (y, x) float32 array on the reference grid; 0 where the session has no data.
    """
    inv = np.linalg.inv(np.asarray(matrix, float))
    # reference voxel -> reference um -> session um -> session voxel
    lin = np.diag(1 / np.asarray(spacing, float)) @ inv[:3, :3] @ np.diag(reference_spacing)
    offset = inv[:3, 3] / np.asarray(spacing, float)
    if (np.allclose(lin, np.eye(3), atol=1e-6)
            and all(a <= b for a, b in zip(image.shape[1:], reference_shape[1:]))):
        # a translation on the same grid, session no wider than the reference (the usual case):
        # project the planes that land inside the reference's depth, then shift in y and x --
        # 30x less work than resampling in 3D
        z = np.arange(image.shape[0]) - offset[0]
        keep = (z > -0.5) & (z < reference_shape[0] - 0.5)
        out = np.zeros(tuple(reference_shape[1:]), np.float32)
        if keep.any():
            out[:image.shape[1], :image.shape[2]] = image[keep].max(axis=0)
        return ndimage.shift(out, -offset[1:], order=1, cval=0.0)
    if np.allclose(lin, np.diag(np.diag(lin))):
        lin = np.diag(lin)          # axis-aligned: scipy's faster separable path
    moved = ndimage.affine_transform(image.astype(np.float32, copy=False), lin, offset=offset,
                                     output_shape=tuple(reference_shape), order=1, cval=0.0)
    return moved.max(axis=0)


def display_range(image: np.ndarray, *, low: float = 1.0, high: float = 99.7) -> tuple[float, float]:
    """Robust black and white levels (percentiles) of an image or stack."""
    lo, hi = np.percentile(image, [low, high])
    return float(lo), float(max(hi, lo + 1e-9))


def colour(image: np.ndarray, rgb, *, levels) -> np.ndarray:
    """One channel scaled to ``levels`` (black, white) and coloured: (..., 3) float in [0, 1]."""
    lo, hi = levels
    scaled = np.clip((np.asarray(image, np.float32) - lo) / (hi - lo), 0, 1)
    return scaled[..., None] * np.asarray(rgb, np.float32)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def synapse_crops(image: np.ndarray, positions, *, half_xy: int, half_z: int):
    """Small views around many positions of one stack at once.

    Parameters
    ----------
    image : (z, y, x) array
    positions : (n, 3) voxel coordinates (z, y, x), rounded to the nearest voxel
    half_xy, half_z : half-widths of the crops in voxels

    Returns
    -------
    xy : (n, 2*half_xy+1, 2*half_xy+1) the plane at each position's z
    xz : (n, 2*half_z+1, 2*half_xy+1) the x-z section at each position's y
    Voxels outside the stack are 0.
    """
    c = np.round(np.asarray(positions, float).reshape(-1, 3)).astype(np.int64)
    d = np.arange(-half_xy, half_xy + 1)
    dz = np.arange(-half_z, half_z + 1)
    n = len(c)

    def take(zi, yi, xi):
        zi, yi, xi = np.broadcast_arrays(zi, yi, xi)
        ok = ((zi >= 0) & (zi < image.shape[0]) & (yi >= 0) & (yi < image.shape[1])
              & (xi >= 0) & (xi < image.shape[2]))
        vals = image[np.clip(zi, 0, image.shape[0] - 1), np.clip(yi, 0, image.shape[1] - 1),
                     np.clip(xi, 0, image.shape[2] - 1)].astype(np.float32)
        vals[~ok] = 0
        return vals

    xy = take(c[:, 0, None, None], c[:, 1, None, None] + d[None, :, None],
              c[:, 2, None, None] + d[None, None, :])
    xz = take(c[:, 0, None, None] + dz[None, :, None], c[:, 1, None, None],
              c[:, 2, None, None] + d[None, None, :])
    return xy.reshape(n, len(d), len(d)), xz.reshape(n, len(dz), len(d))


def strip_image(tiles: list[np.ndarray], *, gap: int = 3) -> np.ndarray:
    """Tiles (h, w, 3) side by side, separated by ``gap`` grey columns."""
    h = max(t.shape[0] for t in tiles)
    parts = []
    for k, t in enumerate(tiles):
        if k:
            parts.append(np.full((h, gap, 3), 0.35, np.float32))
        pad = np.full((h, t.shape[1], 3), 0.35, np.float32)
        pad[:t.shape[0]] = t
        parts.append(pad)
    return np.concatenate(parts, axis=1)


def session_tile(xy_rgb: np.ndarray, xz_rgb: np.ndarray, *, z_stretch: float,
                 gap: int = 2) -> np.ndarray:
    """One session's tile: the xy crop above its xz section, z stretched to square pixels."""
    # linear in z: the few planes of an x-z section, stretched ~9x, read as blocks otherwise
    xz = np.clip(ndimage.zoom(xz_rgb, (max(z_stretch, 1.0), 1, 1), order=1), 0, 1)
    sep = np.full((gap, xy_rgb.shape[1], 3), 0.35, np.float32)
    return np.concatenate([xy_rgb, sep, xz], axis=0)


def summarise_synapses(table: pd.DataFrame) -> pd.DataFrame:
    """One row per synapse of a per-synapse-session table (``synapses.csv`` columns).

    ``certainty`` is the least sure presence call of the synapse, min over sessions of
    max(p_present, 1 - p_present): sorting on it puts the synapses a person should look at
    first on top.  ``min_link_confidence`` is its least sure link (pipeline.stages.track).
    ``flags`` lists: uncertain (a call between the presence stage's bounds), imputed (a weight
    not measured), at_noise (present, measured within the noise of none), edge (outside the
    stack in a session), not_observed (no call in a session: outside the stack or badly
    registered), gap (absent between two present sessions), curated,
    and any ``quality_flags`` of the table.  ``pattern``: one mark per session, present
    (filled), absent (hollow) or not observed (a dot); ``present``: sessions present of those
    observed.
    """
    t = table.sort_values(["cell", "synapse_id", "day"])
    p = t["p_present"] if "p_present" in t.columns else t["present"].astype(float)
    t = t.assign(_sure=np.maximum(p, 1 - p), _wp=t["weight"].where(t["present"] == 1))
    rows = []
    for (cell, sid), g in t.groupby(["cell", "synapse_id"], sort=True):
        calls = g["present"].to_numpy(float)                 # NaN: not observed
        pattern = np.nan_to_num(calls, nan=-1).astype(int)
        on = np.flatnonzero(pattern == 1)
        flags = []
        if g.get("presence_uncertain", pd.Series(0)).astype(int).any():
            flags.append("uncertain")
        if g.get("weight_imputed", pd.Series(0)).astype(int).any():
            flags.append("imputed")
        if g.get("weight_at_noise", pd.Series(0)).astype(int).any():
            flags.append("at_noise")
        if (g.get("in_view", pd.Series(1)).astype(int) == 0).any():
            flags.append("edge")
        if np.isnan(calls).any():
            flags.append("not_observed")
        if len(on) and (pattern[on[0]:on[-1] + 1] == 0).any():
            flags.append("gap")
        if g.get("curated", pd.Series(0)).astype(int).any():
            flags.append("curated")
        if "quality_flags" in g.columns:
            flags += sorted({f for v in g["quality_flags"].dropna().astype(str)
                             for f in v.split(";") if f})
        rows.append({
            "cell": cell, "cell_type": g["cell_type"].iloc[0], "synapse_id": int(sid),
            "track_ids": "+".join(str(int(v)) for v in
                                  pd.unique(g.get("track_id", g["synapse_id"]))),
            "present": f"{int((pattern == 1).sum())}/{int((pattern >= 0).sum())}",
            "pattern": "".join({1: "\u25cf", 0: "\u25cb"}.get(v, "\u00b7") for v in pattern),
            "certainty": float(g["_sure"].min()),
            "max_link_um": float(g["link_distance_um"].max()) if g["link_distance_um"].notna().any()
            else np.nan,
            "median_weight": float(g["_wp"].median()) if g["_wp"].notna().any() else np.nan,
            "min_link_confidence": float(g["link_confidence"].min())
            if "link_confidence" in g.columns and g["link_confidence"].notna().any() else np.nan,
            "max_snr": float(g["snr"].max()),
            "flags": " ".join(dict.fromkeys(flags)),   # once each, in order
        })
    cols = ["cell", "cell_type", "synapse_id", "track_ids", "present", "pattern", "certainty",
            "max_link_um", "min_link_confidence", "median_weight", "max_snr", "flags"]
    return pd.DataFrame(rows, columns=cols)
