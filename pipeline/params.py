"""Every parameter of the pipeline: one frozen dataclass per section of ``config.yaml``.

This module is the only home of defaults.  ``config.yaml`` repeats them for the user to read and
edit, the JSON schema (``pipeline/schemas/config.schema.yaml``) validates them; a test checks
that both agree with the dataclasses here.  Science functions with a keyword of the same meaning
take their default from the field (``threshold: float = DetectParams.threshold``).

A stage receives its section as one object, built from the config's JSON with
:func:`from_options`; unknown keys are an error that names the section and the known keys.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .core.errors import InputError
from .core.optics import APERTURE_UM, PSF_FWHM_UM, Z_SCALE


def _p(default, doc: str):
    """A field with its description (``metadata['doc']``): what it is, its unit, its effect."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class IngestParams:
    max_saturated_fraction: float = _p(
        0.01, "a PSD-95 channel with more voxels at full scale fails (weights would be clipped)")
    swapped_channels: str = _p(
        "warn", "the 'morphology' channel looks punctate and the 'PSD-95' channel filled: "
                "warn | error | off")


@dataclass(frozen=True)
class DetectParams:
    psf_fwhm_um: tuple[float, float, float] = _p(
        PSF_FWHM_UM, "two-photon point-spread function FWHM (z, y, x), um")
    punctum_fwhm_um: float = _p(
        0.0, "typical punctum size (FWHM, um) added to the PSF for the matched filter")
    threshold: float = _p(4.5, "peak response in units of the filtered image's noise SD")
    surround_ratios: tuple[float, ...] = _p(
        (1.6, 3.0), "background Gaussians, times the matched one; detections pooled")
    subtract_morphology: bool = _p(
        True, "remove the morphology channel's share of PSD-95 (estimated per session)")
    cell_distance_um: float | None = _p(
        0.5, "keep puncta this close to the labelled cell (morphology channel); None: anywhere")
    cell_threshold: float = _p(
        5.0, "cell mask: smoothed morphology above its median plus this many noise SDs")
    shaft_line_um: float | None = _p(
        2.5, "without a morphology channel, the shaft's diffuse PSD-95 is estimated from the "
             "PSD-95 channel (openings by lines this long, um) and subtracted; None: not")
    shaft_distance_um: float | None = _p(
        2.0, "without a morphology channel, keep puncta this close to the dendrite its diffuse "
             "PSD-95 outlines (spine heads lie up to ~2 um from the shaft); None: anywhere")
    local_noise: str = _p(
        "auto", "threshold in units of the noise around each peak (the shaft is noisier than "
                "the neuropil): auto (without a morphology channel) | always | cell (that "
                "noise measured on the labelled cell only, at threshold) | never")
    local_threshold: float | None = _p(
        6.0, "... and then the threshold, in those units (the shaft's texture is not "
             "Gaussian noise: its peaks passed for puncta at 4.5; not for cell); None: "
             "threshold")
    local_flanks_um: tuple[float, float, float] | None = _p(
        (1.6, 0.45, 0.45), "... measured without the voxels this close (z, y, x, um) to a "
                           "punctum: its flanks are not noise; None: with them")
    photon_noise_shaft_snr: float | None = _p(
        3.0, "without a morphology channel, in a session whose subtracted shaft stands this "
             "many noise SDs or more (shaft_snr): each peak's noise is at least the photon "
             "noise the image's voxel-to-voxel differences show there, which the leftover "
             "ridge along a bright shaft hides from the neighbourhood's SD, and a peak that "
             "is a bump on that ridge (core.shaft.ridge_like) is dropped; None: never")
    brightness_noise: bool = _p(
        True, "with a morphology channel (and local_noise not by neighbourhood): each peak's "
              "noise scaled by how much noisier the filtered PSD-95 is on the cell's voxels "
              "as bright as the peak's than on its dim 70 % (a patchy diffuse PSD-95 in a "
              "bright shaft passed its bumps for puncta)")
    min_separation_um: tuple[float, float, float] = _p(
        (0.8, 0.25, 0.25), "smallest distance (z, y, x) between two peaks, um")
    close_separation_um: tuple[float, float, float] = _p(
        (0.8, 0.15, 0.15), "a peak that tops only this smaller neighbourhood (z, y, x), um "
                           "(two puncta a plane apart, a few pixels aside) is kept ...")
    close_min_snr: float = _p(
        10.0, "... when its SNR is at least this (a weaker one is more often noise on a "
              "punctum's flank); so is a peak of the narrower filter (fine_scale)")
    fine_scale: float | None = _p(
        0.6, "lateral SD of a second, narrower matched filter, times the first's: its peaks "
             "(at close_min_snr or more) are dim puncta beside bright ones; None: not run (nor "
             "where the shaft's line openings were subtracted: they notch large heads)")
    fine_apart_sd: float = _p(
        2.5, "... kept when farther than this from every other detection, in punctum SDs "
             "per axis")
    shoulder_snr: float | None = _p(
        6.0, "puncta on a brighter neighbour's flank: the response with every detection's "
             "own (a blob of its measured size) taken out is searched again for peaks of "
             "this SNR; None: not run (nor where the shaft's line openings were subtracted)")
    shoulder_apart_sd: float = _p(
        4.0, "... farther than this from every detection, in punctum SDs per axis")
    shoulder_near_sd: float = _p(
        3.5, "... and from this distance on (punctum SDs) at shoulder_near_snr")
    shoulder_near_snr: float | None = _p(
        None, "... the SNR a residual peak that near needs; None: none kept that near")
    aperture_um: tuple[float, float, float] = _p(
        APERTURE_UM, "semi-axes (z, y, x) of the photometry aperture, um")
    share_departure: float = _p(
        1.5, "a session's morphology share departs from its cell's (median of the sessions) "
             "when more than this factor above or below it")
    departing_share: str = _p(
        "pool", "a departing session's share: pool (use the cell's), keep (its own) or error")


@dataclass(frozen=True)
class SpinesParams:
    """A cell whose sheet says ``target: spines``: spine heads in its fill (one channel)."""
    head_fwhm_um: float = _p(
        0.4, "spine head diameter the matched filter assumes, um (smaller than a typical head: "
             "two heads 1 um apart stay two peaks)")
    threshold: float = _p(
        6.0, "head response over the noise there (the neuropil's, scaled by photon noise)")
    surround_ratio: float = _p(2.0, "background Gaussian, times the matched one (lateral)")
    line_um: float = _p(
        3.0, "the shaft is the median along a line this long in its own direction, um "
             "(longer than twice a head)")
    directions: int = _p(16, "orientations of that line")
    orientation_um: float = _p(
        1.5, "the shaft's direction is taken from the image's structure over this, um")
    core_share: float = _p(
        0.5, "heads where the shaft estimate exceeds this share of its nearby largest value "
             "are on the shaft's core: dropped")
    core_window_um: float = _p(
        3.0, "'nearby' for core_share, um; a head's weight is its intensity over the shaft's "
             "largest value within twice this")
    min_separation_um: float = _p(0.3, "a head tops its neighbours within this distance, um")
    shoulder_snr: float | None = _p(
        None, "a head on a brighter one's flank: the response with every head's own (a blob "
              "of its measured size) taken out is searched again for peaks of this SNR; None: "
              "not")
    shoulder_apart_um: float = _p(0.6, "... farther than this from every head, um")
    neck_ratio: float | None = _p(
        0.8, "a peak below this share of a head's response, between the head and the shaft "
             "(the head's nearest core), is its neck: dropped; None: kept")
    neck_width_um: float = _p(0.35, "... within this of the line from the head to the shaft, um")
    inner_reach_um: float | None = _p(
        0.9, "a peak within this of a head of higher SNR and nearer the shaft's core than it "
             "(the neck's base, or the shaft's edge under a head) is dropped; None: kept")
    inner_depth_um: float = _p(0.8, "... if it lies within this of the core, um")
    fine_fwhm_um: float | None = _p(
        None, "a head merged with a brighter neighbour: the fill filtered for heads this wide "
              "(um; e.g. 0.2) is searched near the heads found, off the shaft and their necks; "
              "None: not")
    fine_snr: float = _p(4.0, "... for peaks of this response over its noise")
    fine_reach_um: tuple[float, float] = _p(
        (0.55, 1.4), "... this near and this far from the nearest head, um")
    shadow_snr: float | None = _p(
        None, "a spine not detected in a session but measuring at least this head SNR there is "
              "not observed in it (a head that bright would have been found: the light may be "
              "a neighbour's); survival nearer the truth, turnover further from it; None: off")
    shadow_necks: bool = _p(
        True, "a spine not detected in a session, on the neck of one found there (between "
              "its head and the shaft, below neck_ratio of its head SNR, within "
              "neck_width_um of the line) is not observed in it: the light measured there is "
              "that spine's neck; false: observed")


@dataclass(frozen=True)
class DendriteParams:
    """Dendrite length from the morphology channel (or a spines cell's fill): the
    denominator of synapse density per um (:mod:`pipeline.core.dendrite`)."""
    smooth_um: float = _p(0.15, "Gaussian smoothing of the stack before the projection, um")
    line_um: float = _p(
        3.0, "spines are removed by the median along a line this long in the dendrite's own "
             "direction, um (longer than a spine)")
    directions: int = _p(16, "orientations of that line")
    orientation_um: float = _p(1.5, "the dendrite's direction from the image's structure "
                                    "over this, um")
    threshold: float = _p(4.0, "dendrite: above the field's background by this many robust "
                                "SDs, joined to parts above twice this")
    prune_um: float = _p(3.0, "skeleton branches ending within this of a junction (spines "
                              "the median left) are removed, um")
    min_area_um2: float = _p(1.0, "bright specks smaller than this are not dendrite, um^2")
    ridge_sigma_um: float = _p(
        0.3, "a dendrite dimmer than half a brighter one nearby is kept where the spine-free "
             "projection curves down across it at this scale, um (0: dropped)")
    continuous_share: float = _p(
        0.75, "... and where the projection before the spines' removal keeps this share of "
              "the spine-free one (a row of spine heads beside a shaft does not)")
    depth_smooth_um: float = _p(1.0, "the dendrite's depth is smoothed along it over this, um")


@dataclass(frozen=True)
class RegisterParams:
    reference: str = _p("first", "'first' (earliest day) or a session name")
    use_puncta: bool = _p(True, "refine the image registration on matched puncta")
    model: str = _p("auto", "fit on matched puncta: auto | translation | rotation | rigid | "
                            "affine (auto: the simplest that predicts left-out puncta as well)")
    max_rotation_deg: float = _p(6.0, "rotation about z searched on the images (0: none); "
                                 "beyond it while the match improves, up to 20")
    min_matches: int = _p(8, "fewer matched puncta: translation only, maybe unreliable")
    warp_length_um: float = _p(8.0, "length scale of the smooth non-rigid correction (0: off)")
    block_um: float = _p(8.0, "block size of the local correction measured on the images, "
                              "um (0: off)")
    misregistered_um: float = _p(0.5, "estimated local registration error above which rows "
                                      "are flagged misregistered and the region reported, um")
    min_similarity: float = _p(0.5, "local correlation of the morphology channel with the "
                                    "reference's, after registration, below which a patch "
                                    "with structure is reported as unlike the reference")
    patch_length_um: float = _p(1.0, "length of the short-range correction of patches whose "
                                     "puncta agree on an offset after the rest of the "
                                     "transform, um (0: off)")


@dataclass(frozen=True)
class TrackParams:
    max_distance_um: float = _p(1.0, "gate on the z-scaled distance to a track's mean position")
    z_scale: float = _p(Z_SCALE, "factor on z differences (z is localised less precisely)")
    max_gap: int = _p(1, "sessions a synapse may be missed and keep its id")
    relink_passes: int = _p(
        10, "passes re-linking each session against the tracks' positions in all other sessions "
            "(a synapse no longer takes a missed neighbour's track); 0: link in session order only")
    max_gap_jump_um: float | None = _p(
        None, "where a track misses a session, split it if its puncta's mean positions before and "
              "after the gap are further apart than this, um (z-scaled; a lost synapse and a "
              "neighbour born beside it); null: never")
    max_jump_sd: float | None = _p(
        6.0, "split a track where a punctum lies more than this many SDs from the mean position "
              "of the track's puncta before it (SD: the cell's link width and the register "
              "stage's error estimate there, in quadrature): a lost synapse whose track a "
              "neighbour born beside it took over; null: never")
    max_detections_per_1000um3: float = _p(
        20.0, "a session with more detections per 1000 um3 of stack is named as implausible "
              "(sparsely labelled cells give a few; noise taken for puncta gives tens)")
    detections_departure: float = _p(
        2.0, "a session with more than this many times its cell's median number of detections "
             "is named as implausible")
    warn_texture_factor: float | None = _p(
        1.5, "a session whose detection threshold rose this many times or more on its cell's "
             "brightest 10 % (the detect table's texture_factor: a textured bright shaft, "
             "detect.brightness_noise) is named: dim puncta there are missed; null: never")
    warn_shaft_snr: float | None = _p(
        3.0, "PSD-95 alone: a session whose subtracted shaft stands this many noise SDs or "
             "more (the detect table's shaft_snr) is named: noise on the part of the shaft the "
             "line openings leave passes for puncta (benchmarks/bright_shaft.py); null: never")


@dataclass(frozen=True)
class WeightsParams:
    aperture_um: tuple[float, float, float] = _p(
        APERTURE_UM, "semi-axes (z, y, x) of the integration ellipsoid, um")
    bleedthrough: float | str = _p(
        "auto", "share of the morphology channel subtracted from PSD-95: 'auto' estimates it "
                "per session, a number fixes it, 0 = off")
    normalisation: str = _p(
        "percentile_40_60", "per-session scale: percentile_40_60 (published) or median_ratio")
    min_snr: float = _p(3.0, "present at a lower SNR: quality flag low_snr")
    min_aperture_inside: float = _p(
        0.75, "a synapse-session is observed only when this share of its aperture lies inside "
              "the stack (nearer the stack's faces the measurement is cut off: not observed)")
    censor_misregistered: bool = _p(
        False, "a row flagged misregistered is not observed (censored) instead of called; off: "
               "where puncta are lost the error estimate rises and losses were censored "
               "(bench-science null study, seed 17: PV survival 0.78 -> 0.81, truth 0.74)")
    shaft_line_um: float | None = _p(
        DetectParams.shaft_line_um,
        "without a morphology channel, the shaft's diffuse PSD-95 (line openings this long, um, "
        "as detection estimates it) outlines the dendrite whose places are the absent state, "
        "and is subtracted before measuring unless weight_shaft_line_um says other lines; "
        "None: nothing subtracted, no absent places")
    weight_shaft_line_um: float | None = _p(
        6.0, "with shaft_line_um, what is measured (the weight and the snr, at synapses and at "
             "the null places) is over the shaft estimated with lines this long instead (um): "
             "shorter lines take the light of puncta that stand close along the shaft with it; "
             "the dendrite where the null places lie keeps shaft_line_um.  None: shaft_line_um "
             "for both")
    deblend_fwhm_um: tuple[float, float, float] | None = _p(
        (2.05, 0.6, 0.6), "FWHM (z, y, x) of a typical punctum in the image, um, used to take "
                          "neighbours' light out of each aperture; None: plain aperture sums")
    own_size: bool = _p(
        True, "with deblend_fwhm_um, each synapse's template has its own lateral size (the "
               "mean of its detections' size_um weighted by their SNR squared, those with no "
               "other detection of their session within 0.7 um; the typical one where it has none, wider "
               "or narrower by as much in z) and its weight is the whole light of a punctum of "
               "that size (the share its aperture keeps divided out); false: one template for "
               "all, the light inside the aperture")


@dataclass(frozen=True)
class PresenceParams:
    model: str = _p("hmm", "'hmm': joint call over all sessions of a track; 'detection': "
                           "present = detected in that session")
    uncertain: tuple[float, float] = _p(
        (0.2, 0.8), "p_present between these bounds is flagged presence_uncertain")
    gaps: str = _p("keep", "'keep': one synapse with a gap; 'split': the published rule")
    merge_distance_um: float = _p(
        0.5, "join track pieces this close that were detected together in at most one session")
    warn_not_observed: float = _p(
        0.2, "warn about a session whose stack leaves this share of its cell's synapses "
             "unobserved (censored)")
    warn_absent_departure: float = _p(
        1.0, "warn about a session whose places without a synapse measure, in median, this "
             "many absent-state SDs away from those of the cell's other sessions")
    warn_spines_undetected: float | None = _p(
        0.25, "warn about a cell of spines where more than this share of the rows called "
              "present were not detected there (calls on the measured light alone: on the "
              "simulated cells survival then came out 0.07-0.21 above the truth); None: never")
    own_signal_reach: int = _p(
        0, "0: a present synapse's signal is scored against the log-normal of the cell's "
           "present synapses; N > 0: against the synapse's own signal in its clearly present "
           "sessions within N sessions, so one dim session of a bright synapse is not called "
           "absent")
    dim_present: bool = _p(
        False, "the present state's signal is the cell's log-normal mixed with a dim component "
               "(uniform from 0 to its 2.5th percentile, share fitted): a present synapse may "
               "measure as low as an absent one in a session next to one where it was clearly "
               "seen")
    signal_memory: bool = _p(
        False, "the present state carries the synapse's signal, which drifts from session to "
               "session by a multiplicative Markov step fitted to the cell, and its loss "
               "probability depends on it (pipeline.core.signal_markov): a dim session is judged "
               "against the synapse's own last signal, not the whole cell's")
    lost_for_good: bool | str = _p(
        "puncta", "a synapse called lost does not come back in its track (two absent states: not "
                  "yet born, lost); a dim session between two where it was seen is then read as "
                  "present, and a track's present sessions are one run. 'puncta': in cells of "
                  "target puncta only (spines, which return to the same place, keep the "
                  "two-state calls); true: every cell; false: none")
    absent_by_brightness: bool = _p(
        True, "the absent state is as wide at each synapse's place as the cell's places without "
              "a synapse scatter at that brightness of the morphology channel (a bright textured "
              "shaft's places scatter about twice as widely): each row's absent SD, and the noise "
              "of its measurement when present, are widened by that factor (absent_sd_factor); "
              "false: one width for the cell")
    detection_evidence: float | str | None = _p(
        "auto", "whether the detector found a punctum in each session is evidence too: a number "
                "is P(detected | absent) at a tracked place (texture, a neighbour's flank), in "
                "every cell; P(detected | present) follows each row's signal, calibrated on the "
                "sessions between a track's first and last detection "
                "(pipeline.core.detection_evidence). 'auto': on (P 0.02) in cells of puncta "
                "without a morphology channel (it calls present the dim synapses the detector "
                "still finds) and in cells with a textured bright shaft (a session at "
                "track.warn_texture_factor or more: the texture it never finds is absent); "
                "'one_channel': the first only; null: off")

    def __post_init__(self):
        # settings that cannot hold together: named when the config is read, not by the
        # presence jobs after every stage before them has run
        grid = [k for k in ("lost_for_good", "signal_memory") if getattr(self, k)]
        two_state = [k for k, on in (("own_signal_reach", self.own_signal_reach > 0),
                                     ("dim_present", self.dim_present)) if on]
        if grid and two_state:
            raise InputError(
                f"presence: the two-state model's refinements ({', '.join(two_state)}) cannot "
                f"be combined with the model that replaces it ({', '.join(grid)}; "
                "lost_for_good is on by default for puncta): set presence.lost_for_good: false and "
                "presence.signal_memory: false with them")
        evidence = self.detection_evidence
        if not (evidence is None or evidence in ("auto", "one_channel")
                or (isinstance(evidence, (int, float)) and not isinstance(evidence, bool)
                    and 0 < evidence < 1)):
            raise InputError(f"presence: detection_evidence is a number between 0 and 1 "
                             f"(P(detected | absent)), auto, one_channel or null, not {evidence!r}")
        if self.lost_for_good not in (True, False, "puncta"):
            raise InputError(f"presence: lost_for_good is true, false or puncta, not "
                             f"{self.lost_for_good!r}")
        if self.gaps == "split" and self.lost_for_good:
            raise InputError(
                "presence: gaps: split (the published rule: a synapse absent for a session and "
                "back later is two synapses) needs presence.lost_for_good: false; with "
                "lost_for_good on (the default for puncta) a synapse seen clearly has no gaps to "
                "split")


#: stats.type_test's choices: where animals hold cells of both types, compare the types within
#: animals (cells the units, each animal a block), or over the animals' means of each type
TYPE_TESTS = ("within_animals", "animal_means")


@dataclass(frozen=True)
class StatsParams:
    drop_uncertain: bool = _p(False, "leave out synapses with any presence_uncertain row")
    kesten_bins: int = _p(20, "bins of the published binned-moment Kesten fit")
    markov_bins: int = _p(5, "weight bins of the Markov chain (plus the absent state)")
    n_boot: int = _p(500, "bootstrap resamples for the CIs")
    seed: int = _p(0, "seed for resampling: same seed, same CIs")
    min_cells_per_type: int = _p(
        3, "cell-type comparisons report p-values only with at least this many cells per type")
    min_animals_per_type: int = _p(
        2, "where cells share animals, at least this many animals per type")
    type_test: str = _p(
        "within_animals",
        "where animals hold cells of both types: 'within_animals' compares the types over "
        "cells with each animal a block (a random-intercept model's answer; assumes the "
        "difference is the same in every animal, p_type_by_animal tests it); 'animal_means': "
        "Welch's t on each type's animal means (valid when it differs between animals, less "
        "power)")


@dataclass(frozen=True)
class ReviewParams:
    crop_um: float = _p(1.5, "half-width of the review crops, um")
    crop_depth_um: float = _p(2.4, "half-depth of the x-z review crops, um")
    check_tile_um: float = _p(10.0, "side of a sample-check tile (review/check.html), um")
    check_tiles: int = _p(60, "tiles drawn for the sample check; check them in order, as many "
                              "as time allows")
    check_seed: int = _p(0, "seed of the sample check's draw (the same seed draws the same tiles)")


#: config section -> its parameters
SECTIONS: dict[str, type] = {
    "ingest": IngestParams, "detect": DetectParams, "spines": SpinesParams,
    "dendrite": DendriteParams,
    "register": RegisterParams,
    "track": TrackParams, "weights": WeightsParams, "presence": PresenceParams,
    "stats": StatsParams,
}


def _coerce(value: Any) -> Any:
    # JSON and YAML give lists; the dataclasses hold tuples (hashable, immutable)
    return tuple(value) if isinstance(value, list) else value


def from_options(cls, options: dict | str | None = None):
    """``cls`` from a config section (a dict, or its JSON), defaults for what it leaves out."""
    if isinstance(options, str):
        options = json.loads(options) if options.strip() else {}
    options = dict(options or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"{cls.__name__}: unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    return cls(**{k: _coerce(v) for k, v in options.items()})


def defaults(cls) -> dict:
    """The defaults of ``cls`` as plain JSON values (tuples as lists)."""
    out = {}
    for f in fields(cls):
        value = f.default if f.default is not MISSING else f.default_factory()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def as_options(params) -> dict:
    """The dataclass as the JSON-able dict a config section would be."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params).items()}
