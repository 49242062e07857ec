"""Frames and transforms: a session's stack (um) <-> its cell's reference session (um).

A transform is the register stage's JSON dict (a 4x4 ``matrix`` on (z, y, x, 1) in um, then an
optional ``grid`` of local displacements measured on the images, then an optional smooth
``warp`` fitted to matched puncta, then an optional ``patch``, a short-range field of the same
form that moves the patches whose puncta agree on an offset) or a bare 4x4 matrix.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

#: recorded in every transform the register stage writes
FRAME_CONVENTION = ("matrix maps (z, y, x, 1) in um of this session's stack to the reference "
                    "session's stack; then grid (if any) adds the displacement interpolated at "
                    "the mapped (y, x), warp (if any) a smooth displacement and patch (if any) "
                    "a short-range one (pipeline.core.frames.to_reference)")


def transform_points(matrix, points_um: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (n, 3) points in um."""
    m = np.asarray(matrix, float)
    pts = np.asarray(points_um, float).reshape(-1, 3)
    return pts @ m[:3, :3].T + m[:3, 3]


def warp_displacement(warp: dict | None, points_um: np.ndarray) -> np.ndarray:
    pts = np.asarray(points_um, float).reshape(-1, 3)
    if not warp or not warp["points_um"]:
        return np.zeros_like(pts)
    xs, rs = np.asarray(warp["points_um"]), np.asarray(warp["residuals_um"])
    out = np.empty_like(pts)
    # bounded memory for many points on either side: about 2**20 point pairs at a time
    step = int(np.clip(2 ** 20 // len(xs), 64, 4096))
    for lo in range(0, len(pts), step):
        d2 = ((pts[lo:lo + step, None, :] - xs[None]) ** 2).sum(-1)
        k = np.exp(-d2 / (2 * warp["length_um"] ** 2))
        out[lo:lo + step] = (k @ rs) / (k.sum(1)[:, None] + warp["shrink"])
    return out


def _on_grid(grid: dict, key: str, points_um: np.ndarray) -> np.ndarray:
    """``grid[key]`` (ny, nx[, k]) on a lateral lattice (``origin_um``, ``step_um`` in y, x)
    at reference-frame points: bilinear between nodes, constant beyond the outer ones."""
    pts = np.asarray(points_um, float).reshape(-1, 3)
    values = np.asarray(grid[key], float)
    origin, step = np.asarray(grid["origin_um"], float), np.asarray(grid["step_um"], float)
    coords = [(pts[:, 1] - origin[0]) / step[0], (pts[:, 2] - origin[1]) / step[1]]
    if values.ndim == 2:
        return ndimage.map_coordinates(values, coords, order=1, mode="nearest")
    return np.stack([ndimage.map_coordinates(values[..., k], coords, order=1, mode="nearest")
                     for k in range(values.shape[-1])], axis=1)


def grid_displacement(grid: dict | None, points_um: np.ndarray) -> np.ndarray:
    """Displacement (um) of a ``grid`` (``origin_um`` and ``step_um`` of its nodes in y, x;
    ``displacement_um`` (ny, nx, 3)) at reference-frame points."""
    if not grid:
        return np.zeros_like(np.asarray(points_um, float).reshape(-1, 3))
    return _on_grid(grid, "displacement_um", points_um)


def registration_error_at(transform, points_um: np.ndarray) -> np.ndarray:
    """The register stage's estimate of its own error (um) at reference-frame points: its
    ``error`` map (``error_um`` on a lateral lattice; one node of 0 for the reference session),
    NaN for a transform without one (older results, a session registered without puncta)."""
    pts = np.asarray(points_um, float).reshape(-1, 3)
    error = transform.get("error") if isinstance(transform, dict) else None
    if error:
        return _on_grid(error, "error_um", pts)
    return np.full(len(pts), np.nan)


def _parts(transform):
    """(matrix, grid, warp, patch) of a transform; a bare matrix has no local parts."""
    if isinstance(transform, dict):
        return (np.asarray(transform["matrix"], float), transform.get("grid"),
                transform.get("warp"), transform.get("patch"))
    return np.asarray(transform, float), None, None, None


def to_reference(transform, points_um: np.ndarray) -> np.ndarray:
    """Session um -> reference um with a transform (a register stage JSON dict or a 4x4)."""
    matrix, grid, warp, patch = _parts(transform)
    mapped = transform_points(matrix, points_um)
    mapped = mapped + grid_displacement(grid, mapped)
    mapped = mapped + warp_displacement(warp, mapped)
    return mapped + warp_displacement(patch, mapped)


def to_session(transform, points_um: np.ndarray, iterations: int = 8) -> np.ndarray:
    """Reference um -> session um: the inverse of :func:`to_reference` (the patch, the warp
    and the grid inverted in turn by fixed-point iteration; it converges because the fields
    are smooth and small)."""
    matrix, grid, warp, patch = _parts(transform)
    q = np.asarray(points_um, float).reshape(-1, 3)
    for field in (patch, warp):     # the kernel fields, last applied first undone
        if field and field["points_um"]:
            target = q.copy()
            for _ in range(iterations):
                q = target - warp_displacement(field, q)
    if grid:
        target = q.copy()
        for _ in range(iterations):
            q = target - grid_displacement(grid, q)
    return transform_points(np.linalg.inv(matrix), q)


def track_positions(tracks: pd.DataFrame) -> pd.DataFrame:
    """Mean reference-frame position of each synapse (index ``synapse_id``)."""
    return tracks.groupby("synapse_id")[["z_um", "y_um", "x_um"]].mean()


def fit_warp(points_um: np.ndarray, residuals_um: np.ndarray, *, length_um: float,
             shrink: float = 1.0) -> dict:
    """A smooth displacement field from residuals at matched points (Gaussian kernel
    regression): d(p) = sum_i K(p, x_i) r_i / (sum_i K(p, x_i) + shrink).  ``shrink`` (in
    units of one point's kernel weight) pulls the field to zero where there are few points."""
    return {"points_um": np.asarray(points_um, float).tolist(),
            "residuals_um": np.asarray(residuals_um, float).tolist(),
            "length_um": float(length_um), "shrink": float(shrink)}
