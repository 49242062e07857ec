"""Synthetic longitudinal two-photon stacks with known synapses, weights and motion.

Everything is generated in a tissue frame (micrometres, axes z, y, x) which is also the
frame of the first session: session 0's transform is the identity, so the ground-truth
positions in the reference frame are the tissue positions.  Each later session sees the
tissue through a rigid transform (shift, rotation about z, tilt) about the field centre.

Images are rendered from points: dendrite centre lines, spine necks and heads are splatted
(trilinear) and blurred by the point-spread function; puncta are anisotropic Gaussians whose
integral is ``weight * photons_per_weight * brightness``.  Photon noise is Poisson, then gain,
read noise and offset are applied.

Weights evolve every interval by the Kesten process
``w' = w + a*w + c + sqrt(b*w**2 + d) * xi`` with xi ~ N(0, 1), conditioned on w' staying
above ``min_weight``; a synapse is lost with a probability that falls with log weight
(logistic in ln w), and new synapses are born with small log-normal weights.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core.optics import FWHM_TO_SIGMA, PSF_FWHM_UM
from .render import (affine_about, apply_affine, red_blob, render_puncta, rotation_matrix,
                     shaft_texture, smooth_warp, splat)

KESTEN_DEFAULTS = {  # a, c, b, d per 4-day interval (Melander et al. 2021 fits)
    "pyr": (-0.05, 0.04, 0.07, 0.11),
    "PV": (-0.17, 0.17, 0.04, 0.04),
}
WEIGHT_DEFAULTS = {"pyr": (0.0, 0.92), "PV": (0.0, 0.45)}  # ln-weight mu, sigma at day 0
# logit p_loss = alpha + beta ln w; calibrated so that ~5 % (pyr) and ~1.7 % (PV) of synapses
# are lost per interval, i.e. survival to day 28 of about 0.70 (the reference pyramidal data
# give 0.71) and 0.89 (PV, published ~0.93 at day 24); births replace them at the same rate
LOSS_DEFAULTS = {"pyr": (-3.3, -1.0), "PV": (-4.3, -1.0)}
BIRTH_DEFAULTS = {"pyr": 0.05, "PV": 0.017}


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of one simulated cell (imaged field)."""

    cell_type: str = "pyr"
    shape: tuple[int, int, int] = (34, 512, 512)
    spacing: tuple[float, float, float] = (0.8, 0.0887, 0.0887)
    n_sessions: int = 8
    interval_days: float = 4.0
    # geometry
    n_dendrites: int = 2
    synapse_density_per_um: float = 1.0
    dendrite_radius_um: tuple[float, float] = (0.3, 0.6)
    spine_length_um: tuple[float, float] = (0.5, 1.5)
    # synapses closer than this (um, z scaled down by z_anisotropy) are not generated: real
    # spines and puncta do not overlap
    min_separation_um: float = 0.8
    z_anisotropy: float = 4.0
    punctum_fwhm_um: tuple[float, float] = (0.2, 0.7)
    # optics
    psf_fwhm_um: tuple[float, float, float] = PSF_FWHM_UM
    # signal (photons)
    photons_per_weight: float = 1500.0
    background_photons: float = 2.0
    morphology_peak_photons: float = 40.0
    diffuse_psd95: float = 0.03
    bleedthrough: float = 0.02
    gain: float = 1.0
    read_noise: float = 1.0
    offset: float = 10.0
    brightness_sd: float = 0.1
    bleach_per_session: float = 0.98
    # motion (session 0 is the reference; others get a random rigid transform)
    shift_sd_um: tuple[float, float, float] = (0.8, 2.0, 2.0)
    rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    warp_um: float = 0.0          # RMS of a smooth non-rigid displacement per session
    warp_wavelength_um: float = 30.0
    # |rotation about z| drawn between rotation_min_deg and rotation_deg (remounting often
    # turns the field by several degrees: the search bound must not clip it)
    rotation_min_deg: float = 0.0
    # layout: a part of the field (this fraction of the dendrites' span, at one end) where
    # synapses are sparse_density_factor times as dense, so that some puncta lie several um
    # beyond every other (registration must not extrapolate a fit made elsewhere)
    sparse_fraction: float = 0.0
    sparse_density_factor: float = 1.0
    # close pairs (issue 24): this share of the first session's synapses are members of a
    # pair close_pair_um apart laterally, closer than the optics resolve (two synapses on one
    # spine head, neighbours on a shaft); each member has its own weight, loss and birth
    close_pair_fraction: float = 0.0
    close_pair_um: tuple[float, float] = (0.3, 0.4)
    # acquisition: sessions imaged with fewer planes (a shallower stack), the kept planes
    # starting at crop_depth_offset of the planes left out (0: the top ones, 1: the bottom ones)
    crop_sessions: tuple[int, ...] = ()
    crop_depth_fraction: float = 1.0
    crop_depth_offset: float = 0.0
    # channels: non-synaptic PSD-95 in the shaft is patchy (clusters ~1 um apart), not a copy
    # of the cell fill: its density along the shaft varies by this coefficient of variation
    shaft_texture: float = 0.0
    # sessions whose morphology share of the PSD-95 channel (diffuse PSD-95 plus
    # bleed-through) is channel_share_factor times the cell's (a gain or filter change, a
    # session with more diffuse PSD-95): a session that departs from its siblings
    channel_share_sessions: tuple[int, ...] = ()
    channel_share_factor: float = 1.0
    # sessions with a bright object in the morphology channel only (red autofluorescence, a
    # vessel, another cell's soma brought in by a shift): it is not in the PSD-95 channel, and
    # an estimate of the morphology share made on the brightest voxels collapses
    red_blob_sessions: tuple[int, ...] = ()
    red_blob_brightness: float = 3.0   # its peak, in units of the fill's peak photons
    # what the lab's files hold: no morphology channel (PSD-95 alone), and 8-bit stacks each
    # scaled to its own range (0 to its 99.99th percentile), as many acquisition programs save
    single_channel: bool = False
    bit_depth: int = 16
    # False: each stack records its expected counts (gain and offset, no photon or read
    # noise; the random draws still made, so the truth is the same): what a detector finds
    # when noise is not what limits it (benchmarks/spine_errors.py --noise-free)
    photon_noise: bool = True
    # spines (issue 26): the lab images a cell fill alone and follows spines.  The one channel
    # is the fill; every synapse is a spine whose head holds fill in proportion to its weight
    # (head volume tracks synaptic strength), FWHM that volume's diameter clipped to
    # spine_head_um; necks spine_neck_um long from the shaft's surface, a stubby_fraction of
    # spines with none (the head on the shaft); a lost spine takes its neck with it
    spines: bool = False
    spine_neck_um: tuple[float, float] = (0.5, 2.0)
    spine_head_um: tuple[float, float] = (0.4, 1.0)
    stubby_fraction: float = 0.2
    # fill per um^3 of spine head (the shaft's own concentration, in the splat's units: a
    # 0.45 um radius shaft holds 20 per um of length) and the head volume of weight 1, um^3
    fill_per_um3: float = 20.0 / (np.pi * 0.45 ** 2)
    head_um3_per_weight: float = 0.14
    # a second session on the first day ("s00r", listed after s00, the synapses and weights of
    # s00 seen through a new motion and new noise): the repeat imaging that the statistics'
    # measurement-noise estimate rests on (issue 27)
    repeat_first_session: bool = False
    # dynamics
    kesten: tuple[float, float, float, float] | None = None
    weight_lognormal: tuple[float, float] | None = None
    loss_logit: tuple[float, float] | None = None
    min_weight: float = 0.05
    birth_rate: float | None = None
    birth_lognormal: tuple[float, float] = (np.log(0.4), 0.5)
    seed: int = 0

    def resolved(self) -> "SimulationParams":
        """Fill cell-type defaults for the dynamics left unset."""
        ct = self.cell_type if self.cell_type in KESTEN_DEFAULTS else "pyr"
        kesten = self.kesten or KESTEN_DEFAULTS[ct]
        loss = self.loss_logit or LOSS_DEFAULTS[ct]
        birth = self.birth_rate if self.birth_rate is not None else BIRTH_DEFAULTS[ct]
        return replace(self, kesten=tuple(kesten), loss_logit=tuple(loss), birth_rate=birth,
                       weight_lognormal=self.weight_lognormal or WEIGHT_DEFAULTS[ct])


@dataclass
class _Dendrite:
    points: np.ndarray  # (n, 3) um, centre line
    tangents: np.ndarray
    radius: float
    length: float


@dataclass
class SimulatedCell:
    """Rendered sessions and the ground truth of one cell."""

    images: list[np.ndarray]              # per session (2, z, y, x) uint16: psd95, morphology
    truth: pd.DataFrame                   # one row per synapse per session
    transforms: list[np.ndarray]          # per session 4x4, session um -> reference um (rigid part)
    params: SimulationParams
    days: list[float] = field(default_factory=list)
    warps: list = field(default_factory=list)  # per session: the warp's plane waves (after the rigid part)
    sessions: list[str] = field(default_factory=list)  # per session its name
    dendrite_um: list[float] = field(default_factory=list)  # per session, dendrite length in view


def _make_dendrites(p: SimulationParams, rng) -> list[_Dendrite]:
    extent = np.array(p.shape) * np.array(p.spacing)
    centre = (np.array(p.shape) - 1) / 2 * np.array(p.spacing)
    lateral = extent[1:].min()
    base_angle = rng.uniform(0, np.pi)
    dendrites = []
    for k in range(p.n_dendrites):
        angle = base_angle + rng.normal(0, 0.25)
        u = np.array([0.0, np.sin(angle), np.cos(angle)])
        n = np.array([0.0, np.cos(angle), -np.sin(angle)])
        # spread dendrites across the field, perpendicular to their direction
        off = (k - (p.n_dendrites - 1) / 2) * lateral / (p.n_dendrites + 0.5) + rng.normal(0, 0.5)
        length = np.linalg.norm(extent[1:]) * 1.1
        s = np.arange(-length / 2, length / 2, 0.05)
        bend = rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * s / rng.uniform(15, 40) + rng.uniform(0, 6))
        zc = rng.uniform(0.4, 0.6) * extent[0]
        z = zc + rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * s / rng.uniform(20, 50) + rng.uniform(0, 6))
        pts = centre + s[:, None] * u + (off + bend)[:, None] * n
        pts[:, 0] = z
        tang = np.gradient(pts, axis=0)
        tang /= np.linalg.norm(tang, axis=1, keepdims=True)
        dendrites.append(_Dendrite(pts, tang, rng.uniform(*p.dendrite_radius_um), length))
    return dendrites


def _sample_sites(p: SimulationParams, dendrites, n: int, rng) -> pd.DataFrame:
    """Synapse sites: spine heads (pyr) or shaft surface (other types)."""
    lengths = np.array([d.length for d in dendrites])
    which = rng.choice(len(dendrites), size=n, p=lengths / lengths.sum())
    rows = []
    for k in range(n):
        d = dendrites[which[k]]
        i = rng.integers(len(d.points))
        c, t = d.points[i], d.tangents[i]
        perp = np.cross(t, rng.normal(size=3))
        perp /= np.linalg.norm(perp)
        if p.cell_type == "pyr" or p.spines:
            side = np.array([0.0, -t[2], t[1]]) * rng.choice([-1, 1])  # lateral, in y-x
            side = side / np.linalg.norm(side) + 0.25 * perp
            side /= np.linalg.norm(side)
            if not p.spines:
                dist = d.radius + rng.uniform(*p.spine_length_um)
            elif rng.uniform() < p.stubby_fraction:   # the head sits on the shaft's surface
                dist = d.radius + 0.5 * np.mean(p.spine_head_um)
            else:
                dist = d.radius + rng.uniform(*p.spine_neck_um)
            head = c + dist * side
            rows.append((*head, *c, d.radius, "spine"))
        else:
            pos = c + d.radius * perp
            rows.append((*pos, *c, d.radius, "shaft"))
    cols = ["z_um", "y_um", "x_um", "base_z", "base_y", "base_x", "radius", "kind"]
    return pd.DataFrame(rows, columns=cols).astype({c: float for c in cols[:-1]})


# --------------------------------------------------------------------------- rendering
def _morphology_points(dendrites, sites: pd.DataFrame, *, heads: bool = True):
    """Points (um) and weights describing shafts, spine necks and (``heads``) heads."""
    pts, wts = [], []
    for d in dendrites:
        pts.append(d.points)
        wts.append(np.full(len(d.points), (d.radius / 0.45) ** 2))
    for s in sites[sites["kind"] == "spine"].itertuples():
        head = np.array([s.z_um, s.y_um, s.x_um])
        base = np.array([s.base_z, s.base_y, s.base_x])
        t = np.linspace(0, 1, max(int(np.linalg.norm(head - base) / 0.05), 2))[:, None]
        pts.append(base + t * (head - base))
        wts.append(np.full(len(t), 0.15))
        if heads:
            pts.append(head[None])
            wts.append(np.array([6.0]))  # a head ~0.6 um across
    return np.concatenate(pts), np.concatenate(wts)


def spine_heads(p: SimulationParams, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fill in the head, in the splat's units; the head's FWHM, um) of spines of these
    weights: volume ``head_um3_per_weight * weight``, FWHM the diameter of a sphere of that
    volume clipped to ``spine_head_um`` (the fill is in proportion to the volume either way)."""
    volume = p.head_um3_per_weight * np.asarray(weights, float)
    diameter = np.clip((6 * volume / np.pi) ** (1 / 3), *p.spine_head_um)
    return volume * p.fill_per_um3, diameter


def fill_blur_um(p: SimulationParams) -> np.ndarray:
    """SD (z, y, x), um, of the blur of the fill (and of spine heads): the PSF widened by a
    tube's cross-section (0.2 um)."""
    return np.sqrt((np.array(p.psf_fwhm_um) * FWHM_TO_SIGMA) ** 2 + 0.2 ** 2)


def _render_session(p: SimulationParams, to_session, morph_pts, morph_w,
                    punct_um, weights, sizes_um, brightness, rng, *, share_factor: float = 1.0,
                    texture=None, red_blob=None) -> np.ndarray:
    spacing = np.array(p.spacing)
    psf_sigma = np.array(p.psf_fwhm_um) * FWHM_TO_SIGMA
    # morphology: splat centre lines, blur by the PSF widened by the tube cross-section
    mvox = to_session(morph_pts) / spacing
    morph = splat(p.shape, mvox, morph_w)
    blur_um = fill_blur_um(p)
    # the scale is set on the shafts and necks (a session's heads do not change it)
    scale = p.morphology_peak_photons / max(np.percentile(
        ndimage.gaussian_filter(morph, blur_um / spacing, mode="constant"), 99.95), 1e-12)
    if p.spines:     # spine heads, sized and filled by their weights, then the same blur
        fill, diameter = spine_heads(p, weights)
        morph += render_puncta(p.shape, spacing, to_session(punct_um) / spacing, fill,
                               (diameter * FWHM_TO_SIGMA)[:, None] * np.ones(3))
    morph = ndimage.gaussian_filter(morph, blur_um / spacing, mode="constant")
    morph *= scale * brightness
    if red_blob is not None:    # after the PSD-95 channel's share of the fill is taken
        red_only = red_blob * p.morphology_peak_photons * p.red_blob_brightness * brightness
    else:
        red_only = 0.0
    if p.spines:
        morph += p.background_photons * brightness
        return _recorded(p, (morph,), rng)
    # PSD-95: puncta + diffuse PSD-95 in the dendrite + bleed-through + background
    pvox = to_session(punct_um) / spacing
    sig = np.sqrt(psf_sigma[None] ** 2 + (sizes_um[:, None] * FWHM_TO_SIGMA) ** 2)
    psd = render_puncta(p.shape, spacing, pvox, weights * p.photons_per_weight * brightness, sig)
    if texture is None:
        psd += share_factor * (p.diffuse_psd95 + p.bleedthrough) * morph
    else:   # the diffuse PSD-95 follows its own patchy density, the bleed-through the fill
        diffuse = ndimage.gaussian_filter(splat(p.shape, mvox, morph_w * texture),
                                          blur_um / spacing, mode="constant")
        psd += share_factor * (p.diffuse_psd95 * scale * brightness * diffuse
                               + p.bleedthrough * morph)
    psd += p.background_photons * brightness
    morph += red_only + p.background_photons * brightness
    out = _recorded(p, (psd, morph), rng)    # both drawn: the same random stream either way
    return out[:1] if p.single_channel else out


def _recorded(p: SimulationParams, channels, rng) -> np.ndarray:
    """The (c, z, y, x) stack the microscope saves of these expected photon counts: photon
    and read noise, gain and offset, and with ``bit_depth`` 8 each channel scaled to its own
    range (0 to its 99.99th percentile)."""
    out = np.empty((2,) + tuple(p.shape), dtype=np.uint16)
    for c, lam in enumerate(channels):
        counts = rng.poisson(lam).astype(np.float64)
        val = counts * p.gain + rng.normal(0, p.read_noise, lam.shape) + p.offset
        if not p.photon_noise:     # the draws above still made: the same random stream
            val = lam * p.gain + p.offset
        out[c] = np.clip(np.round(val), 0, 65535).astype(np.uint16)
    out = out[:len(channels)]
    if p.bit_depth == 8:       # each channel of the stack scaled to its own range
        scaled = np.empty(out.shape, np.uint8)
        for c in range(out.shape[0]):
            lo, hi = float(out[c].min()), float(np.percentile(out[c], 99.99))
            scaled[c] = np.clip(np.round((out[c] - lo) / max(hi - lo, 1) * 255), 0, 255)
        out = scaled
    return out


# --------------------------------------------------------------------------- dynamics
def kesten_step(w: np.ndarray, a, c, b, d, rng, *, floor: float | None = None) -> np.ndarray:
    """One interval of w' = w + a*w + c + sqrt(b*w^2 + d)*xi.

    With ``floor``, xi is redrawn where w' would fall below it (the step conditioned on the
    synapse keeping a weight; losses are drawn separately), and clipped after 50 tries.
    """
    w = np.asarray(w, float)
    sd = np.sqrt(b * w ** 2 + d)
    nxt = w + a * w + c + sd * rng.normal(size=w.shape)
    if floor is not None:
        for _ in range(50):
            bad = nxt < floor
            if not bad.any():
                break
            nxt[bad] = w[bad] + a * w[bad] + c + sd[bad] * rng.normal(size=bad.sum())
        nxt = np.maximum(nxt, floor)
    return nxt


def simulate_cell(params: SimulationParams, *, cell: str = "cell01") -> SimulatedCell:
    """Simulate one imaged field over ``n_sessions`` sessions with its ground truth."""
    p = params.resolved()
    rng = np.random.default_rng(p.seed)
    spacing = np.array(p.spacing)
    shape = np.array(p.shape)
    centre = (shape - 1) / 2 * spacing
    dendrites = _make_dendrites(p, rng)

    # session transforms: tissue (= reference) um -> session um: rigid, then a smooth warp
    to_session, warps, warp_desc = [np.eye(4)], [lambda pts: np.asarray(pts, float)], [[]]
    # the repeat session's motion is drawn last, so that cells without one are unchanged
    for _ in range(1, p.n_sessions + int(p.repeat_first_session)):
        u = rng.uniform(-1, 1)      # one draw, as before rotation_min_deg existed
        angle = np.sign(u) * (p.rotation_min_deg + abs(u) * (p.rotation_deg - p.rotation_min_deg))
        rot = rotation_matrix(angle,
                              rng.uniform(-1, 1) * p.tilt_deg, rng.uniform(-1, 1) * p.tilt_deg)
        to_session.append(affine_about(rot, rng.normal(0, p.shift_sd_um), centre))
        fn, desc = smooth_warp(rng, p.warp_um, p.warp_wavelength_um)
        warps.append(fn)
        warp_desc.append(desc)

    def session_um(s, pts):
        return warps[s](apply_affine(to_session[s], pts))

    def visible(pos_um):
        """Sites that stay well inside the stack in every session."""
        margin = np.array([1.5 * p.psf_fwhm_um[0], 1.0, 1.0])
        ok = np.ones(len(pos_um), bool)
        for s in range(len(to_session)):
            q = session_um(s, pos_um)
            ok &= np.all((q >= margin) & (q <= (shape - 1) * spacing - margin), axis=1)
        return ok

    scale = np.array([1 / p.z_anisotropy, 1.0, 1.0])
    taken = np.empty((0, 3))
    along = np.mean([d.tangents.mean(0) for d in dendrites], axis=0)
    along /= np.linalg.norm(along)
    span = np.abs(((np.array(list(np.ndindex(2, 2, 2))) * (shape - 1) * spacing) - centre)
                  @ along).max()

    def thinned(xyz):
        """Which candidate sites survive the sparse region's lower density."""
        if p.sparse_fraction <= 0:
            return np.ones(len(xyz), bool)
        sparse = (xyz - centre) @ along > span * (1 - 2 * p.sparse_fraction)
        return ~sparse | (rng.uniform(size=len(xyz)) < p.sparse_density_factor)

    def new_sites(n):
        """n sites inside every session's view, none too close to an earlier site."""
        nonlocal taken
        out = [_sample_sites(p, dendrites, 0, rng)]
        for _ in range(50):
            if sum(len(o) for o in out) >= n:
                break
            cand = _sample_sites(p, dendrites, 2 * n + 10, rng)
            xyz = cand[["z_um", "y_um", "x_um"]].to_numpy()
            keep = np.flatnonzero(visible(xyz) & thinned(xyz))
            chosen = []
            for i in keep:
                if len(chosen) + sum(len(o) for o in out) >= n:
                    break
                q = xyz[i] * scale
                if len(taken) == 0 or np.min(np.linalg.norm(taken - q, axis=1)) >= p.min_separation_um:
                    taken = np.vstack([taken, q])
                    chosen.append(i)
            out.append(cand.iloc[chosen])
        return pd.concat(out, ignore_index=True)

    line = np.concatenate([d.points for d in dendrites])
    on_line = visible(line)
    if p.sparse_fraction > 0:   # expected sites after thinning (no random draws here)
        sparse = (line - centre) @ along > span * (1 - 2 * p.sparse_fraction)
        on_line = on_line * np.where(sparse, p.sparse_density_factor, 1.0)
    visible_len = sum(d.length for d in dendrites) * np.mean(on_line)
    n0 = rng.poisson(p.synapse_density_per_um * visible_len)
    sites = new_sites(n0)
    partner = np.full(len(sites), -1)
    if p.close_pair_fraction > 0:
        sites, partner = _with_close_partners(sites, p, rng, visible)
        taken = np.vstack([taken, sites[["z_um", "y_um", "x_um"]].to_numpy()[n0:] * scale])
    mu, sigma = p.weight_lognormal
    sites["weight0"] = np.exp(rng.normal(mu, sigma, len(sites)))
    sites["born"] = 0
    a, c, b, d = p.kesten
    alpha, beta = p.loss_logit

    # weight trajectories: one column per session, NaN = absent; births append rows
    cols = [sites["weight0"].to_numpy()]
    for s in range(1, p.n_sessions):
        prev = cols[-1]
        alive = np.flatnonzero(~np.isnan(prev))
        nxt = kesten_step(prev[alive], a, c, b, d, rng, floor=p.min_weight)
        p_loss = 1 / (1 + np.exp(-(alpha + beta * np.log(prev[alive]))))
        lost = rng.uniform(size=len(alive)) < p_loss
        col = np.full(len(prev), np.nan)
        col[alive[~lost]] = nxt[~lost]
        born = new_sites(rng.poisson(p.birth_rate * len(alive)))
        born["weight0"] = np.exp(rng.normal(*p.birth_lognormal, len(born)))
        born["born"] = s
        sites = pd.concat([sites, born], ignore_index=True)
        partner = np.concatenate([partner, np.full(len(born), -1)])
        cols.append(np.concatenate([col, born["weight0"].to_numpy()]))
    w = np.full((len(sites), p.n_sessions), np.nan)
    for s, col in enumerate(cols):
        w[:len(col), s] = col

    sizes = rng.uniform(*p.punctum_fwhm_um, len(sites))
    morph_pts, morph_w = _morphology_points(dendrites, sites)
    texture = (shaft_texture(morph_pts, cv=p.shaft_texture, seed=p.seed)
               if p.shaft_texture > 0 else None)
    pos_ref = sites[["z_um", "y_um", "x_um"]].to_numpy()
    # (motion index, weight column, name, day) of every session rendered
    rendered = [(s, s, f"s{s:02d}", s * p.interval_days) for s in range(p.n_sessions)]
    if p.repeat_first_session:
        rendered.append((p.n_sessions, 0, "s00r", 0.0))
    images, rows, to_ref, dendrite_um = [], [], [], []
    for s, col, name, day in rendered:
        brightness = np.exp(rng.normal(0, p.brightness_sd)) * p.bleach_per_session ** col if s else 1.0
        present = ~np.isnan(w[:, col])
        if p.spines:    # the session's anatomy: shafts and the necks of the spines it has
            morph_pts, morph_w = _morphology_points(dendrites, sites[present], heads=False)
        images.append(_render_session(p, lambda pts, s=s: session_um(s, pts), morph_pts, morph_w,
                                      pos_ref[present], w[present, col], sizes[present],
                                      brightness, rng, texture=texture,
                                      share_factor=(p.channel_share_factor
                                                    if s in p.channel_share_sessions else 1.0),
                                      red_blob=(red_blob(shape, spacing, seed=p.seed)
                                                if s in p.red_blob_sessions else None)))
        vox = session_um(s, pos_ref) / spacing
        z0, n_planes = _crop_planes(p, s)
        if z0 or n_planes < shape[0]:
            # rendered whole (the same random numbers as uncropped), then cut to fewer planes
            images[-1] = images[-1][:, z0:z0 + n_planes].copy()
            vox[:, 0] -= z0
        in_view = np.all((vox >= -0.5) & (vox <= np.array([n_planes, *shape[1:]]) - 0.5), axis=1)
        dendrite_um.append(_length_in_view(dendrites, lambda pts, s=s: session_um(s, pts),
                                           spacing, z0, [n_planes, *shape[1:]]))
        to_ref.append(np.linalg.inv(to_session[s]) @ affine_about(np.eye(3), [z0 * spacing[0], 0, 0],
                                                                 np.zeros(3)))
        rows.append(pd.DataFrame({
            "cell": cell, "cell_type": p.cell_type, "synapse_id": np.arange(1, len(sites) + 1),
            "session": name, "day": day, "present": present.astype(int),
            "weight": np.where(present, w[:, col], 0.0),
            "z": vox[:, 0], "y": vox[:, 1], "x": vox[:, 2],
            "z_um": pos_ref[:, 0], "y_um": pos_ref[:, 1], "x_um": pos_ref[:, 2],
            "kind": sites["kind"].to_numpy(),
            "size_um": (np.where(present, spine_heads(p, np.nan_to_num(w[:, col]))[1], np.nan)
                        if p.spines else sizes), "brightness": brightness,
            "in_view": in_view.astype(int),
            **({"partner_id": np.where(partner >= 0, partner + 1, 0)}
               if p.close_pair_fraction > 0 else {})}))
    truth = pd.concat(rows, ignore_index=True)
    return SimulatedCell(images, truth, to_ref, p, [r[3] for r in rendered], warp_desc,
                         [r[2] for r in rendered], dendrite_um)


def _with_close_partners(sites: pd.DataFrame, p: SimulationParams, rng, visible):
    """``sites`` with a mate added to some of them, ``close_pair_um`` away in a random lateral
    direction, so that ``close_pair_fraction`` of all are pair members (sites are tried in a
    random order; a mate that would leave the view or come within ``min_separation_um`` of a
    third site is not added).  Returns the sites and, per site, the row of its mate (-1:
    none)."""
    f = p.close_pair_fraction
    n = len(sites)
    wanted = int(round(n * f / (2 - f)))
    order = rng.permutation(n)
    angle = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(*p.close_pair_um, n)
    xyz = sites[["z_um", "y_um", "x_um"]].to_numpy()
    mates = xyz[order] + np.c_[np.zeros(n), dist * np.sin(angle), dist * np.cos(angle)]
    inside = visible(mates)
    scale = np.array([1 / p.z_anisotropy, 1.0, 1.0])
    taken = xyz * scale
    chosen, placed = [], []         # the site given a mate, and which of ``mates`` it got
    for k, i in enumerate(order):
        if len(chosen) >= wanted:
            break
        if not inside[k]:
            continue
        d = np.linalg.norm(taken - mates[k] * scale, axis=1)
        d[i] = np.inf
        if d.min() >= p.min_separation_um:
            chosen.append(i)
            placed.append(k)
            taken = np.vstack([taken, mates[k] * scale])
    chosen = np.asarray(chosen, int)
    rows = sites.iloc[chosen].copy()
    rows[["z_um", "y_um", "x_um"]] = mates[placed]
    partner = np.full(n + len(chosen), -1)
    partner[chosen] = n + np.arange(len(chosen))
    partner[n:] = chosen
    return pd.concat([sites, rows], ignore_index=True), partner


def _length_in_view(dendrites, to_session, spacing, z0: int, shape) -> float:
    """Length (um, along the tissue's centre lines) of dendrite whose centre line lies inside a
    session's stack (``shape`` planes from plane ``z0``)."""
    total = 0.0
    for d in dendrites:
        vox = to_session(d.points) / spacing
        vox[:, 0] -= z0
        inside = np.all((vox >= -0.5) & (vox <= np.asarray(shape) - 0.5), axis=1)
        step = np.linalg.norm(np.diff(d.points, axis=0), axis=1)
        total += float(step[inside[:-1] & inside[1:]].sum())
    return total


def _crop_planes(p: SimulationParams, session: int) -> tuple[int, int]:
    """(first plane, number of planes) of a session's stack."""
    nz = p.shape[0]
    if session not in p.crop_sessions:
        return 0, nz
    keep = max(int(round(nz * p.crop_depth_fraction)), 1)
    return int(round(p.crop_depth_offset * (nz - keep))), keep


# --------------------------------------------------------------------------- dataset on disk
def write_dataset(out: str | Path, cells: list[tuple[str, SimulationParams]]) -> Path:
    """Write an imaging directory (sessions.tsv, images/, truth/) for several cells."""
    import tifffile

    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    sheet, truths, transforms, params, lengths = [], [], {}, {}, []
    for cell, prm in cells:
        sim = simulate_cell(prm, cell=cell)
        (out / "images" / cell).mkdir(parents=True, exist_ok=True)
        transforms[cell] = {}
        for s, img in enumerate(sim.images):
            name = sim.sessions[s]
            rel = f"images/{cell}/{name}.tif"
            tifffile.imwrite(out / rel, img.transpose(1, 0, 2, 3), imagej=True,
                             resolution=(1 / prm.spacing[2], 1 / prm.spacing[1]),
                             metadata={"spacing": prm.spacing[0], "unit": "um", "axes": "ZCYX"},
                             compression="zlib")
            sheet.append({"cell": cell, "cell_type": prm.cell_type, "session": name,
                          "day": _day(sim.days[s]), "path": rel, "psd95_channel": 0,
                          "morphology_channel": "" if img.shape[0] == 1 else 1,
                          **({"target": "spines"} if prm.spines else {})})
            transforms[cell][name] = {"matrix": sim.transforms[s].tolist(),
                                      "warp_after_rigid": sim.warps[s]}
        truths.append(sim.truth)
        lengths += [{"cell": cell, "session": n, "day": _day(d), "dendrite_length_um": L}
                    for n, d, L in zip(sim.sessions, sim.days, sim.dendrite_um)]
        params[cell] = _jsonable(asdict(sim.params))
    pd.DataFrame(sheet).to_csv(out / "sessions.tsv", sep="\t", index=False)
    pd.concat(truths, ignore_index=True).to_csv(out / "truth" / "synapses.csv", index=False,
                                                float_format="%.5f")
    (out / "truth" / "transforms.json").write_text(json.dumps(
        {"convention": "matrix: 4x4 on (z, y, x, 1) in um, session frame -> reference frame (the "
                       "first session's frame), the inverse of the rigid part; each session's "
                       "stack also carries a smooth warp applied after the rigid motion "
                       "(warp_after_rigid, plane waves); truth/synapses.csv holds the exact "
                       "positions", "cells": transforms}, indent=1))
    pd.DataFrame(lengths).to_csv(out / "truth" / "dendrites.csv", index=False, float_format="%.4f")
    (out / "truth" / "params.json").write_text(json.dumps(params, indent=1))
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _day(d: float):
    return int(d) if float(d).is_integer() else float(d)
