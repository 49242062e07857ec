"""Synapse weights: background-subtracted integrated PSD-95 fluorescence and its normalisation.

The measurement itself is :func:`pipeline.core.photometry.aperture_photometry`; this stage
chooses where to measure (every synapse in every session, and null places on the cell),
which positions are sources of light of their own, the quality flags and the normalisation.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..contract import WEIGHTS_TABLE, chosen_for
from ..core.channels import cell_mask, morphology_coefficient, remove_bleedthrough
from ..core.frames import registration_error_at, to_session, track_positions
from ..core.normalise import normalise_cell_weights
from ..core.optics import PSF_FWHM_UM, Z_SCALE
from ..core.photometry import aperture_photometry
from ..core.shaft import dendrite_mask, line_background
from ..core.smooth_at import gaussian_at
from ..core.spines import head_maps, head_over_shaft, maps_core, on_found_necks, spine_zone
from ..params import SpinesParams, WeightsParams


#: two puncta closer than this (um, z distances times Z_SCALE) cannot be measured apart
SAME_PUNCTUM_UM = 0.5


def distinct_puncta(positions: np.ndarray, detected, *, spacing, same_um: float = SAME_PUNCTUM_UM,
                    z_scale: float = Z_SCALE, priority=None) -> np.ndarray:
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


#: the morphology channel is smoothed over about a punctum's aperture before it is read: the
#: shaft's brightness there, not one voxel's photon count
MORPHOLOGY_SMOOTHING_UM = (0.6, 0.25, 0.25)


def morphology_level(morphology: np.ndarray, positions: np.ndarray, *, null_count: int,
                     spacing) -> np.ndarray:
    """The morphology channel, smoothed (:data:`MORPHOLOGY_SMOOTHING_UM`), at each voxel
    position (the nearest voxel, clipped into the stack), over its median at the last
    ``null_count`` positions (the session's null places: the cell away from synapses), so
    that sessions of different brightness share a scale.  NaN without null places."""
    positions = np.asarray(positions, float).reshape(-1, 3)
    if null_count == 0 or len(positions) == 0:
        return np.full(len(positions), np.nan)
    at = np.clip(np.round(positions).astype(int), 0, np.array(morphology.shape) - 1)
    value = gaussian_at(morphology, at,
                        sigma=np.asarray(MORPHOLOGY_SMOOTHING_UM) / np.asarray(spacing))
    reference = float(np.median(value[len(value) - null_count:]))
    return value / reference if reference > 0 else np.full(len(value), np.nan)


QUALITY_FLAGS = ("saturated", "edge", "neighbour", "low_snr", "misregistered",
                 "channel_departs")


def shadowed_by_detection(positions: np.ndarray, detected, *, spacing,
                          same_um: float = SAME_PUNCTUM_UM,
                          z_scale: float = Z_SCALE) -> np.ndarray:
    """Which undetected positions lie within ``same_um`` (z distances times ``z_scale``) of
    another synapse's detection in the same session.

    Such a synapse cannot be measured apart from the detected one: :func:`distinct_puncta`
    gives their light to the detection, so its own measurement is ~0 whether it is there or
    not.  Called absent, it would be a loss and a rebirth (in a dense PV cluster, a detection
    linked to the neighbouring track for a session); it is not observed there instead.  Pieces
    of one track this close are merged by the presence stage, which keeps the detected row.
    """
    from scipy.spatial import cKDTree

    pos = np.asarray(positions, float).reshape(-1, 3) * np.asarray(spacing) * [z_scale, 1, 1]
    detected = np.asarray(detected, bool)
    out = np.zeros(len(pos), bool)
    if detected.any() and (~detected).any():
        dist = cKDTree(pos[detected]).query(pos[~detected])[0]
        out[~detected] = dist < same_um
    return out


def bright_undetected(snr: np.ndarray, detected, *, min_snr: float) -> np.ndarray:
    """Which undetected spines measure at least ``min_snr`` (``spines.shadow_snr``, an
    option): a head that bright would have been detected, so the light may not be its own.

    A spine's measurement is the brightest head light within a quarter um of its place
    (:func:`~pipeline.core.spines.head_over_shaft`).  Beside a found head, or on a neck, that
    light is not the spine's: on the simulated ``spines`` regime such places were called
    present session after session (false tracks of one or two detections; true spines after
    their loss), and survival to the last session came out 0.08 above the truth (0.798
    against 0.718).  Not observing them brings it to 0.734, but also hides the spines merged
    with a brighter neighbour there (present, and stable), so turnover's denominators shrink
    and the fractions added and lost rise (BENCHMARKS_SPINES.md): off by default.
    """
    return ~np.asarray(detected, bool) & (np.nan_to_num(np.asarray(snr, float)) >= min_snr)


def quality_flags(phot: pd.DataFrame, positions: np.ndarray, present, *, spacing,
                  radius_um=WeightsParams.aperture_um, min_snr: float = WeightsParams.min_snr,
                  spread_um=(1.3, 0.3, 0.3), misregistered=None,
                  channel_departs: bool = False, shadowed=None) -> pd.Series:
    """Why a synapse-session's weight may be off: ';'-joined flags, '' when none.

    ``saturated``: a voxel of its aperture at the detector's full scale (the weight is
    clipped); ``edge``: part of the aperture outside the stack (the weight is low, or the
    synapse is out of view); ``neighbour``: another synapse close enough for some of its
    light to fall in this one's aperture (its centre within the aperture grown by
    ``spread_um``, 1.5 SDs of a blurred punctum: then 7 % of its light or more falls
    inside); ``low_snr``: called present at an SNR below
    ``min_snr``; ``misregistered``: where the register stage estimates its own error above its
    limit (``misregistered``, a boolean per row: the position, and so the weight, may belong
    to another place); ``channel_departs``: the session's own estimate of the morphology
    share departed from its cell's, and the channels stage chose another (every row of the
    session; :mod:`pipeline.stages.channels`); ``shadowed``: not detected, at another
    synapse's detection (:func:`shadowed_by_detection`), a spine not detected on the neck of
    one found (:func:`~pipeline.core.spines.on_found_necks`, ``spines.shadow_necks``), or one
    not detected yet measuring a detectable head (:func:`bright_undetected`): not observed.
    ``phot`` is :func:`aperture_photometry`'s output at ``positions`` (all synapses of one
    session, voxel units).
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
             "low_snr": (np.asarray(present) == 1) & (phot["snr"].to_numpy() < min_snr),
             "misregistered": (np.zeros(len(pos), bool) if misregistered is None
                               else np.asarray(misregistered, bool)),
             "channel_departs": np.full(len(pos), bool(channel_departs)),
             "shadowed": (np.zeros(len(pos), bool) if shadowed is None
                          else np.asarray(shadowed, bool))}
    rows = zip(*(np.where(v, k, "") for k, v in flags.items()))
    return pd.Series([";".join(f for f in r if f) for r in rows], index=phot.index, dtype=object)


def single_channel_psd(image: np.ndarray, *, spacing,
                       shaft_line_um: float = WeightsParams.shaft_line_um,
                       outline: bool = True, outline_line_um: float | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """A PSD-95 channel imaged alone, ready to measure: the shaft's diffuse PSD-95
    (:func:`~pipeline.core.shaft.line_background` by lines ``shaft_line_um`` long)
    subtracted, and the dendrite the shaft outlines (:func:`~pipeline.core.shaft.dendrite_mask`
    of the line background by ``outline_line_um``, None: the same; None when none is seen, or
    not asked for: ``outline`` False), where the absent state is measured.

    The two lengths differ by default (``weights.weight_shaft_line_um``): detection's 2.5 um
    lines find the dendrite, but their opening takes the light of puncta that stand 1-1.5 um
    apart along the shaft with it (together they are a line that long), so what is measured,
    at synapses and null places alike, is over the shaft of 6 um lines.

    Why: left in, the diffuse shaft signal is light above the aperture's local background
    wherever a synapse sits on the shaft, so a lost synapse there still measured as present
    (on the simulated single-channel regime the joint calls found 0.1 % lost per interval
    against 5.1 % true, survival 1.00 against 0.74), and each weight carried the shaft's light.
    """
    shaft = line_background(image, spacing=spacing, length_um=shaft_line_um)
    psd = image.astype(np.float32)
    psd -= shaft
    if not outline:
        return psd, None
    if outline_line_um not in (None, shaft_line_um):
        shaft = line_background(image, spacing=spacing, length_um=outline_line_um)
    return psd, dendrite_mask(shaft, spacing=spacing)


#: a detection's size counts towards its synapse's own size only with no other detection of
#: its session this near (um, z distances times Z_SCALE): a neighbour's light in the detect
#: stage's estimate moves it (on make bench's dense hard-registration shaft its sizes
#: correlated with the true ones at 0.47; `benchmarks/size_templates.py`)
OWN_SIZE_CLEAR_UM = 0.7


def sizes_clear_of_neighbours(tracks: pd.DataFrame, *, clear_um: float = OWN_SIZE_CLEAR_UM,
                              z_scale: float = Z_SCALE) -> np.ndarray:
    """Each row's ``size_um`` (a tracks table's detections), NaN where another detection of
    the same session lies within ``clear_um`` (reference positions, z times ``z_scale``) or
    the table has no sizes."""
    from scipy.spatial import cKDTree

    out = np.full(len(tracks), np.nan)
    if "size_um" not in tracks.columns:
        return out
    size = tracks["size_um"].to_numpy(float)
    pos = tracks[["z_um", "y_um", "x_um"]].to_numpy(float) * [z_scale, 1, 1]
    for rows in tracks.groupby(tracks["session"].astype(str)).indices.values():
        nearest = cKDTree(pos[rows]).query(pos[rows], k=2)[0][:, 1]   # inf: alone
        out[rows] = np.where(nearest >= clear_um, size[rows], np.nan)
    return out


#: a detection's size counts towards its synapse's as its SNR squared, up to this SNR
SIZE_WEIGHT_SNR = 60.0


def snr_weighted_sizes(size, snr, ids) -> pd.Series:
    """Per id of ``ids``, the mean of ``size`` (NaN: left out) weighted by ``snr`` squared,
    capped at ``SIZE_WEIGHT_SNR`` (``snr`` None: equal weights); NaN for an id with none."""
    size = np.asarray(size, float)
    snr = np.ones(len(size)) if snr is None else np.asarray(snr, float)
    weight = np.where(np.isfinite(size) & np.isfinite(snr),
                      np.clip(np.nan_to_num(snr), 1e-3, SIZE_WEIGHT_SNR) ** 2, 0.0)
    by = pd.Series(np.asarray(ids))
    total = pd.Series(weight).groupby(by).sum()
    summed = pd.Series(weight * np.nan_to_num(size)).groupby(by).sum()
    return (summed / total.where(total > 0)).rename("size_um")


def pooled_sizes(tracks: pd.DataFrame) -> pd.Series:
    """Each synapse's lateral size (um): the mean of its detections' sizes clear of
    neighbours (:func:`sizes_clear_of_neighbours`), each weighted by its SNR squared (capped
    at ``SIZE_WEIGHT_SNR``; equal weights without an ``snr`` column); NaN where it has none.
    A dim detection's size is noisy and reads small (noise bumps as narrow as the filter sharpen
    its peak: on make bench's PV cell -34 % below SNR 8, -4 % at 20-40), so the bright
    sessions set it."""
    return snr_weighted_sizes(sizes_clear_of_neighbours(tracks),
                              tracks["snr"] if "snr" in tracks.columns else None,
                              tracks["synapse_id"])


def _per_synapse(tracks: pd.DataFrame):
    """(mean reference position, curated flag, number of detections, own size) of each
    synapse: its size from its detections clear of neighbours (:func:`pooled_sizes`), NaN
    where it has none."""
    centres = track_positions(tracks)
    ids = centres.index.to_numpy()
    curated = (tracks.groupby("synapse_id")["curated"].max() if "curated" in tracks.columns
               else pd.Series(0, index=ids))
    size = pooled_sizes(tracks).reindex(ids).to_numpy()
    return centres, curated, tracks.groupby("synapse_id").size().reindex(ids).to_numpy(), size


#: lateral sizes (um, image FWHM) a synapse's own template is kept within: the PSF's width at
#: least, and no wider than a punctum on a neighbour's flank measures
OWN_SIZE_RANGE_UM = (PSF_FWHM_UM[1], 1.0)


def own_templates(size_um: np.ndarray, typical_fwhm_um) -> np.ndarray:
    """(n, 3) template FWHM (z, y, x) of puncta of lateral image size ``size_um`` (NaN: the
    typical one): the punctum's own extent adds to the typical template in every axis as its
    lateral size does (in quadrature), so z widens by as much as y and x."""
    typical = np.asarray(typical_fwhm_um, float)
    lateral = np.clip(np.where(np.isfinite(size_um), size_um, typical[1]), *OWN_SIZE_RANGE_UM)
    extra = lateral ** 2 - typical[1] ** 2
    return np.sqrt(np.maximum(typical[None] ** 2 + extra[:, None], 1e-6))


def measure_session(stack: np.ndarray, meta: dict, transform: dict, tracks: pd.DataFrame, *,
                    params: WeightsParams = WeightsParams(), per_synapse=None,
                    share: float | None = None, share_departs: bool = False,
                    spines: SpinesParams = SpinesParams()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every synapse of a cell measured in one session's (c, z, y, x) ``stack`` (``meta``: its
    ingest metadata; ``transform``: its register dict), where it was detected at its own
    position, elsewhere at its track's centre; and the null places on the cell.  Returns the
    session's rows (unnormalised) and the null measurements.  ``per_synapse``: what
    ``_per_synapse(tracks)`` gives, when the caller measures several sessions; ``share``: the
    morphology share the channels stage chose for this session (with ``bleedthrough`` 'auto';
    None estimates it here), ``share_departs``: its own estimate departed from its cell's
    (every row gets the quality flag ``channel_departs``).  A cell with ``target`` spines in
    ``meta``: ``intensity`` is each spine's head over its shaft
    (:func:`~pipeline.core.spines.head_over_shaft`, settings ``spines``), ``snr`` the head
    over the noise, ``background`` the shaft, and the null places lie beside the shaft where a
    head could be (:func:`~pipeline.core.spines.spine_zone`), measured the same way."""
    centres, curated, n_detected, size = per_synapse or _per_synapse(tracks)
    ids = centres.index.to_numpy()
    spacing = np.asarray(meta["voxel_um"])
    det = tracks[tracks["session"].astype(str) == str(meta["session"])].set_index("synapse_id")
    # where the synapse was detected use its own position, elsewhere the track's centre
    ref_um = centres.to_numpy().copy()
    vox = to_session(transform, ref_um) / spacing
    found = np.isin(ids, det.index)
    vox[found] = det.loc[ids[found], ["z", "y", "x"]].to_numpy()
    ref_um[found] = det.loc[ids[found], ["z_um", "y_um", "x_um"]].to_numpy()
    psd, k_morph, cell, maps = stack[0], 0.0, None, None
    if stack.shape[0] > 1:
        cell = cell_mask(stack[1], spacing=spacing)
        if params.bleedthrough != 0:
            k_morph = params.bleedthrough
            if k_morph == "auto":  # as the channels stage chose it, else estimated here
                k_morph = (share if share is not None
                           else morphology_coefficient(stack[0], stack[1]))
            psd = remove_bleedthrough(stack[0], stack[1], k_morph, spacing=spacing)
    elif meta.get("target") == "spines":   # places beside the shaft: an absent spine
        maps = head_maps(stack[0], spacing=spacing, **{     # once, for the zone and the heads
            k: getattr(spines, k) for k in ("head_fwhm_um", "surround_ratio", "line_um",
                                            "directions", "orientation_um", "core_window_um")})
        maps = (*maps[:2], None, *maps[3:])      # the filtered stack: neither reads it
        # the shaft's core, once: for the zone and for the necks of the spines found
        core = maps_core(maps, pixel_um=spacing[1], core_share=spines.core_share,
                         threshold=spines.threshold, line_um=spines.line_um)
        cell = spine_zone(stack[0], spacing=spacing, maps=maps, core=core, **{
            k: getattr(spines, k) for k in ("head_fwhm_um", "surround_ratio", "line_um",
                                            "directions", "orientation_um", "core_share",
                                            "core_window_um", "threshold")})
    elif params.shaft_line_um:
        # measured over the longer lines' shaft; the dendrite (the null places) from the
        # shorter lines', as detection sees it
        psd, cell = single_channel_psd(
            stack[0], spacing=spacing,
            shaft_line_um=params.weight_shaft_line_um or params.shaft_line_um,
            outline_line_um=params.shaft_line_um)
    aperture = list(params.aperture_um)
    null = np.zeros((0, 3))
    if cell is not None:   # places on the cell without a synapse: the absent state
        null = null_positions(cell, vox, spacing=spacing)
    both = np.vstack([vox, null])
    sources = np.r_[distinct_puncta(vox, found, spacing=spacing, priority=n_detected),
                    np.zeros(len(null), bool)]
    template = None if params.deblend_fwhm_um is None else list(params.deblend_fwhm_um)
    own = params.own_size and template is not None
    if own:      # each synapse its own size; the null places the typical one
        template = own_templates(np.r_[size, np.full(len(null), np.nan)], template)
    phot = aperture_photometry(psd, both, spacing=spacing, radius_um=aperture,
                               saturation=meta.get("psd95_saturation_level"), raw=stack[0],
                               sources=sources, template_fwhm_um=template,
                               aperture_correction=own)
    null_snr = phot["snr"].to_numpy()[len(vox):]
    phot = phot.iloc[:len(vox)]
    if meta.get("target") == "spines":
        spine = head_over_shaft(stack[0], both, spacing=spacing, maps=maps, **{
            k: getattr(spines, k) for k in ("head_fwhm_um", "line_um", "directions",
                                            "orientation_um", "core_window_um")})
        null_snr = spine["snr"].to_numpy()[len(vox):]
        spine = spine.iloc[:len(vox)]
        phot = phot.assign(intensity=spine["weight"].to_numpy(), snr=spine["snr"].to_numpy(),
                           background=spine["shaft"].to_numpy())
    level = (morphology_level(stack[1], both, null_count=len(null), spacing=spacing)
             if stack.shape[0] > 1 else np.full(len(both), np.nan))
    nulls = pd.DataFrame({"session": meta["session"], "day": meta["day"],
                          "z": null[:, 0], "y": null[:, 1], "x": null[:, 2], "snr": null_snr,
                          "morphology_level": level[len(vox):]})
    link = det["link_distance_um"].reindex(ids).to_numpy()
    confidence, competitor = (det[c].reindex(ids).to_numpy() if c in det.columns
                              else np.full(len(ids), np.nan)
                              for c in ("link_confidence", "link_competitor_um"))
    reg_error = registration_error_at(transform, ref_um)
    misregistered = reg_error > (transform.get("error") or {}).get("limit_um", np.inf)
    # observed: inside the stack with most of its aperture, in a session registered reliably,
    # and not at another synapse's detection (its light is that one's); elsewhere no call is
    # made (a synapse at the stack's face measures cut off, not absent).  With
    # censor_misregistered also not where the registration may be off (the aperture may sit
    # beside the synapse, whose detection then starts a track of its own: a false loss and a
    # false gain); off by default, as a lost synapse can raise that estimate itself
    shadowed = shadowed_by_detection(vox, found, spacing=spacing)
    if meta.get("target") == "spines" and spines.shadow_snr is not None:
        shadowed |= bright_undetected(phot["snr"].to_numpy(), found,
                                      min_snr=spines.shadow_snr)
    # a spine not found here, on the line from a found head to the shaft, measures that
    # spine's neck: the light says nothing of its own (pre-birth places, tracks of no spine)
    if maps is not None and spines.shadow_necks and spines.neck_ratio is not None:
        shadowed |= on_found_necks(vox, found, phot["snr"].to_numpy(), core,
                                   pixel_um=spacing[1], ratio=spines.neck_ratio,
                                   width_um=spines.neck_width_um, max_length_px=maps[7])
    observed = ((phot["in_view"].to_numpy() == 1)
                & (phot["aperture_inside"].to_numpy() >= params.min_aperture_inside)
                & bool(transform.get("reliable", True)) & ~shadowed)
    if params.censor_misregistered:
        observed &= ~misregistered
    # a detection with no signal above its local background is not a credible punctum
    present = np.where(observed, found & (phot["intensity"].to_numpy() > 0), np.nan)
    flags = quality_flags(phot, vox, present, spacing=spacing, radius_um=aperture,
                          min_snr=params.min_snr, misregistered=misregistered,
                          channel_departs=share_departs, shadowed=shadowed)
    rows = pd.DataFrame({
        "cell": meta["cell"], "cell_type": meta["cell_type"], "synapse_id": ids,
        "session": meta["session"], "day": meta["day"], "present": present,
        "z": vox[:, 0], "y": vox[:, 1], "x": vox[:, 2], "z_um": ref_um[:, 0],
        "y_um": ref_um[:, 1], "x_um": ref_um[:, 2], "intensity": phot["intensity"],
        "snr": phot["snr"], "background": phot["background"], "in_view": phot["in_view"],
        "detected": found.astype(int), "link_distance_um": link,
        "link_confidence": confidence,
        "link_competitor_um": np.where(np.isfinite(competitor), competitor, np.nan),
        "animal": meta.get("animal", ""), "observed": observed.astype(int),
        "bleedthrough": k_morph,
        "curated": curated.reindex(ids).to_numpy(), "quality_flags": flags.to_numpy(),
        "registration_error_um": np.round(reg_error, 3),
        "morphology_level": level[:len(vox)]})
    return rows, nulls


def measure_cell(sessions: Iterable[tuple[np.ndarray, dict, dict]], tracks: pd.DataFrame, *,
                 params: WeightsParams = WeightsParams(), channels: dict | None = None,
                 spines: SpinesParams = SpinesParams()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The weights stage on one cell: ``sessions`` yields each session's ``(stack, meta,
    transform)`` (a generator keeps one stack in memory at a time); ``channels``: the channels
    stage's result (each session's morphology share, used when ``bleedthrough`` is 'auto').
    Returns the cell's table (every synapse in every session, normalised per session; columns
    :data:`pipeline.contract.WEIGHTS_TABLE`) and the null measurements."""
    rows, nulls = [], []
    per_synapse = _per_synapse(tracks)
    for stack, meta, transform in sessions:
        entry = chosen_for(channels, meta["session"])
        r, n = measure_session(stack, meta, transform, tracks, params=params,
                               per_synapse=per_synapse, share=entry.get("used"),
                               share_departs=bool(entry.get("departs")), spines=spines)
        rows.append(r)
        nulls.append(n)
    table = pd.concat(rows, ignore_index=True)
    table["weight"] = normalise_cell_weights(table, params.normalisation)
    table["normalisation"] = params.normalisation
    table = table.sort_values(["synapse_id", "day"], ignore_index=True)
    return table[WEIGHTS_TABLE], pd.concat(nulls, ignore_index=True)
