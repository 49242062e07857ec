"""The simulator's primitives: rigid motion and smooth warps of points, and rendering of
points and Gaussians into a volume (axes z, y, x; positions in voxels or um as named).

:mod:`pipeline.truth.simulate` builds cells, their dynamics and sessions from these.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- geometry
def rotation_matrix(rot_z_deg: float, tilt_y_deg: float = 0.0, tilt_x_deg: float = 0.0):
    """Rotation acting on (z, y, x) vectors: about z (in the y-x plane), then tilts."""
    a, b, g = np.deg2rad([rot_z_deg, tilt_y_deg, tilt_x_deg])
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])  # z-x
    rx = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])  # z-y
    return rx @ ry @ rz


def affine_about(rot: np.ndarray, shift, centre) -> np.ndarray:
    """4x4 matrix of p -> rot @ (p - centre) + centre + shift on (z, y, x, 1)."""
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = np.asarray(centre) + np.asarray(shift) - rot @ np.asarray(centre)
    return m


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    return pts @ matrix[:3, :3].T + matrix[:3, 3]


#: random plane waves vary slowly along z: their wave vectors' z part is scaled by this
WAVE_Z_SHARE = np.array([0.3, 1.0, 1.0])


def smooth_warp(rng, amplitude_um: float, wavelength_um: float, n_waves: int = 3):
    """A smooth random displacement field (sum of plane waves), RMS ``amplitude_um``.

    Returns ``(function, description)``; the function maps (n, 3) points (um) to displaced
    points.  z displacements are kept at a third of the lateral ones (tissue is stiffer along
    the optical axis over a field this thin).
    """
    if amplitude_um <= 0:
        return (lambda pts: np.asarray(pts, float)), []
    waves = []
    for _ in range(n_waves):
        k = rng.normal(size=3) * WAVE_Z_SHARE
        k /= np.linalg.norm(k) * wavelength_um
        direction = rng.normal(size=3) * [0.33, 1, 1]
        direction /= np.linalg.norm(direction)
        waves.append((k, direction, rng.uniform(0, 2 * np.pi)))
    amp = amplitude_um * np.sqrt(2.0 / n_waves)  # RMS of a sum of n sines of amplitude amp

    def warp(pts):
        pts = np.asarray(pts, float).reshape(-1, 3)
        out = pts.copy()
        for k, direction, phase in waves:
            out += amp * np.sin(2 * np.pi * pts @ k + phase)[:, None] * direction
        return out

    desc = [{"k_per_um": k.tolist(), "direction": d.tolist(), "phase": ph, "amplitude_um": amp}
            for k, d, ph in waves]
    return warp, desc


# --------------------------------------------------------------------------- rendering
def splat(shape, points_vox: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Trilinear splatting of weighted points into a zero volume (mass and centroid exact)."""
    vol = np.zeros(int(np.prod(shape)), dtype=np.float64)
    pts = np.asarray(points_vox, dtype=float)
    base = np.floor(pts).astype(np.int64)
    frac = pts - base
    for corner in np.ndindex(2, 2, 2):
        idx = base + np.array(corner)
        w = np.prod(np.where(np.array(corner), frac, 1 - frac), axis=1) * weights
        ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
        vol += np.bincount(flat, weights=w[ok], minlength=vol.size)
    return vol.reshape(shape)


def render_puncta(shape, spacing, centres_vox, integrals, sigmas_um) -> np.ndarray:
    """Sum of anisotropic Gaussians, each integrating to its ``integrals`` value."""
    vol = np.zeros(int(np.prod(shape)))
    if len(centres_vox) == 0:
        return vol.reshape(shape)
    spacing = np.asarray(spacing)
    sig_vox = np.asarray(sigmas_um) / spacing  # (n, 3)
    half = np.ceil(3.5 * sig_vox.max(axis=0)).astype(int)
    offs = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1).reshape(-1, 3)
    centre_int = np.round(centres_vox).astype(int)
    idx = centre_int[:, None, :] + offs[None]                       # (n, k, 3)
    d = (idx - centres_vox[:, None, :]) / sig_vox[:, None, :]
    g = np.exp(-0.5 * np.sum(d * d, axis=2))
    g *= (np.asarray(integrals) / g.sum(axis=1))[:, None]
    ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=2)
    flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
    vol += np.bincount(flat, weights=g[ok], minlength=vol.size)
    return vol.reshape(shape)


def straight_shaft(shape, spacing, *, peak: float, angle_deg: float,
                   width_sd_um=(1.0, 0.35, 0.35)) -> np.ndarray:
    """A straight tube through the middle plane of a (z, y, x) stack at ``angle_deg`` from
    the x axis, Gaussian across (SDs ``width_sd_um``), ``peak`` at its core."""
    from scipy import ndimage

    a = np.deg2rad(angle_deg)
    reach = np.hypot(*shape[1:])
    t = np.linspace(-reach / 2, reach / 2, int(8 * reach))
    cy, cx = shape[1] / 2 + t * np.sin(a), shape[2] / 2 + t * np.cos(a)
    inside = (cy >= 0) & (cy < shape[1]) & (cx >= 0) & (cx < shape[2])
    line = np.zeros(shape, np.float32)
    line[shape[0] // 2, cy[inside].astype(int), cx[inside].astype(int)] = 1
    tube = ndimage.gaussian_filter(line, np.asarray(width_sd_um) / np.asarray(spacing))
    return tube * (peak / tube.max())


def shaft_texture(points_um: np.ndarray, *, cv: float, seed: int, wavelength_um: float = 1.5,
                  n_waves: int = 24) -> np.ndarray:
    """Relative density (mean 1, SD about ``cv``, never below 0) of non-synaptic PSD-95 at
    ``points_um``: a sum of random plane waves of ``wavelength_um``, fixed for the cell (its
    own random stream: the cell's other draws do not change with it)."""
    pts = np.asarray(points_um, float).reshape(-1, 3)
    if cv <= 0:
        return np.ones(len(pts))
    rng = np.random.default_rng([seed, 7919])
    k = rng.normal(size=(n_waves, 3)) * WAVE_Z_SHARE
    k *= 2 * np.pi / (np.linalg.norm(k, axis=1, keepdims=True) * wavelength_um)
    phase = rng.uniform(0, 2 * np.pi, n_waves)
    field = np.sqrt(2.0 / n_waves) * np.cos(pts @ k.T + phase).sum(1)
    return np.maximum(1.0 + cv * field, 0.0)


def red_blob(shape, spacing, *, seed: int, radius_um: float = 3.0) -> np.ndarray:
    """A smooth ellipsoidal object (peak 1) at a random place of the field (its own random
    stream), ``radius_um`` across laterally, half that axially."""
    rng = np.random.default_rng([seed, 104729])
    centre = rng.uniform(0.2, 0.8, 3) * np.asarray(shape) * np.asarray(spacing)
    grids = np.meshgrid(*[np.arange(n) * d for n, d in zip(shape, spacing)], indexing="ij",
                        sparse=True)
    r2 = sum(((g - c) / (radius_um * f)) ** 2 for g, c, f in zip(grids, centre, (0.5, 1, 1)))
    return np.exp(-0.5 * r2 ** 2)     # flat-topped, smooth edges
