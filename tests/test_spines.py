"""Spines from a cell fill (issue 26): the simulator's spiny dendrite, and spine heads found
beside the shaft."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import pipeline_run

from pipeline.truth.simulate import SimulationParams, simulate_cell, spine_heads


@pytest.fixture(scope="module")
def spiny():
    return simulate_cell(SimulationParams(cell_type="pyr", shape=(16, 192, 192), n_sessions=3,
                                          seed=11, spines=True, bit_depth=8,
                                          synapse_density_per_um=1.2))


def test_simulated_fill_is_one_channel_of_shafts_and_spine_heads(spiny):
    assert all(im.shape[0] == 1 and im.dtype == np.uint8 for im in spiny.images)
    truth = spiny.truth
    assert (truth["kind"] == "spine").all()
    # a head is brighter than the neuropil around it: the fill at present heads' positions
    s0 = truth[(truth.session == "s00") & (truth.present == 1) & (truth.in_view == 1)]
    image = spiny.images[0][0].astype(float)
    at = tuple(np.round(s0[["z", "y", "x"]].to_numpy()).astype(int).T)
    assert np.median(image[at]) > np.percentile(image, 90)


def test_a_lost_spine_leaves_the_fill():
    """A spine present in one session and lost in the next: its head's place goes dark."""
    prm = SimulationParams(cell_type="pyr", shape=(16, 192, 192), n_sessions=2, seed=5,
                           spines=True, loss_logit=(1.5, 0.0), birth_rate=0.0,
                           shift_sd_um=(0.0, 0.0, 0.0), brightness_sd=0.0,
                           bleach_per_session=1.0)
    sim = simulate_cell(prm)
    t = sim.truth.pivot(index="synapse_id", columns="session", values="present")
    lost = t[(t["s00"] == 1) & (t["s01"] == 0)].index
    kept = t[(t["s00"] == 1) & (t["s01"] == 1)].index
    assert len(lost) >= 3 and len(kept) >= 3
    pos = sim.truth[sim.truth.session == "s00"].set_index("synapse_id")[["z", "y", "x"]]

    def fill(session, ids):     # above the neuropil (offset and background)
        image = sim.images[session][0].astype(float)
        at = tuple(np.round(pos.loc[ids].to_numpy()).astype(int).T)
        return np.median(image[at]) - np.median(image)

    assert fill(0, lost) > 5 and fill(1, lost) < 0.25 * fill(0, lost)
    assert fill(1, kept) > 0.5 * fill(0, kept)


def test_head_fill_follows_weight_and_size_is_clipped():
    prm = SimulationParams(spines=True)
    fill, diameter = spine_heads(prm, np.array([0.01, 0.5, 1.0, 2.0, 100.0]))
    np.testing.assert_allclose(fill / fill[2], [0.01, 0.5, 1.0, 2.0, 100.0])
    assert diameter[0] == prm.spine_head_um[0] and diameter[-1] == prm.spine_head_um[1]
    assert prm.spine_head_um[0] < diameter[2] < prm.spine_head_um[1]


def test_a_noise_free_simulation_has_the_same_truth_and_no_noise():
    """``photon_noise=False`` records the expected counts (spine_errors.py --noise-free): the
    same cell (truth, brightness), and a background without noise."""
    prm = SimulationParams(cell_type="pyr", shape=(8, 96, 96), n_sessions=2, seed=3,
                           spines=True)
    noisy = simulate_cell(prm)
    clean = simulate_cell(replace(prm, photon_noise=False))
    pd.testing.assert_frame_equal(noisy.truth, clean.truth)
    corner = (slice(None), slice(None), slice(0, 8), slice(0, 8))   # neuropil only
    assert np.ptp(clean.images[1][corner]) <= 1 < np.ptp(noisy.images[1][corner])
    # the mean image is the same: noise is all that differs
    assert abs(clean.images[1].mean() - noisy.images[1].mean()) < 0.01 * noisy.images[1].mean()


SPACING = np.array([0.8, 0.0887, 0.0887])


def _fill(heads_um, *, seed=0, photons=40.0, shape=(12, 128, 320), neck_radius_um=0.0):
    """A straight shaft along x (radius 0.45 um, in plane z 6) and spherical heads at
    ``heads_um`` ((y offset from the axis, x[, radius]) in um, in the shaft's plane; radius
    0.3 um unless given), each on a neck of ``neck_radius_um`` from the shaft's axis (0: none),
    blurred by the PSF, with photon noise."""
    from scipy import ndimage

    from pipeline.core.optics import FWHM_TO_SIGMA, PSF_FWHM_UM

    z, y, x = np.meshgrid(*[np.arange(n) * d for n, d in zip(shape, SPACING)], indexing="ij")
    axis_y, axis_z = shape[1] // 2 * SPACING[1], 6 * SPACING[0]
    tube = ((y - axis_y) ** 2 + (z - axis_z) ** 2 <= 0.45 ** 2).astype(float)
    for dy, hx, *radius in heads_um:
        tube += ((y - axis_y - dy) ** 2 + (x - hx) ** 2 + (z - axis_z) ** 2
                 <= (radius[0] if radius else 0.3) ** 2)
        tube += ((np.abs(y - axis_y - dy / 2) <= abs(dy) / 2)
                 & ((x - hx) ** 2 + (z - axis_z) ** 2 <= neck_radius_um ** 2))
    sigma = np.asarray(PSF_FWHM_UM) * FWHM_TO_SIGMA / SPACING
    lam = ndimage.gaussian_filter(np.minimum(tube, 1.0), sigma)
    lam = 2.0 + photons * lam / lam.max()
    rng = np.random.default_rng(seed)
    heads_vox = np.array([[6, (axis_y + h[0]) / SPACING[1], h[1] / SPACING[2]] for h in heads_um])
    return rng.poisson(lam).astype(np.float32)[None], heads_vox


def test_spine_heads_are_found_and_the_shaft_gives_none():
    """Heads 1-2 um from a bright shaft, and a stubby one on its surface, each found once; no
    detection along the shaft between them (the puncta detector fired all along it until it
    held a bright shaft's peaks to its photon noise and dropped bumps on its ridge)."""
    from dataclasses import replace

    from pipeline.params import DetectParams
    from pipeline.stages.detect import detect_session, detect_spine_session
    from pipeline.truth.evaluate import match_points

    heads = [(1.5, 4.0), (-1.2, 8.0), (2.0, 12.0), (-1.8, 16.0), (1.1, 20.0), (-0.8, 24.0)]
    stack, truth = _fill(heads)
    found = detect_spine_session(stack, spacing=SPACING)
    pos = found[["z", "y", "x"]].to_numpy()
    ia, ib = match_points(pos * SPACING, truth * SPACING, gate_um=0.5, z_scale=0.25)
    assert len(ib) == len(heads), (found[["y", "x", "snr"]], truth)
    assert len(found) == len(heads), found[["y", "x", "snr", "core_ratio"]]
    stubby = len(heads) - 1          # 0.8 um from the axis: its head touches the shaft
    assert stubby in ib
    # equal heads 0.8-2 um from the same shaft: equal weights (head over shaft intensity)
    assert found["weight"].std() < 0.15 * found["weight"].mean(), found["weight"]
    # the puncta detector on the same fill, with the neighbourhood's noise alone: detections
    # on the shaft, far from every head; with a bright shaft's photon noise and the ridge
    # test (detect.photon_noise_shaft_snr, the default: the fill's shaft reads far above it)
    # none of them
    for option, false_at_least, false_at_most in ((None, 3, None), (3.0, 0, 1)):
        puncta = detect_session(
            stack, spacing=SPACING,
            params=replace(DetectParams(), photon_noise_shaft_snr=option))
        far = np.min(np.linalg.norm((puncta[["y", "x"]].to_numpy()[:, None]
                                     - truth[None, :, 1:]) * SPACING[1:], axis=2), axis=1) > 1.0
        assert far.sum() >= false_at_least, (option, far.sum())
        if false_at_most is not None:
            assert far.sum() <= false_at_most and puncta["shaft_snr"].iloc[0] >= 3.0, (option, far.sum())


def test_a_head_merged_with_a_brighter_neighbour_is_found_by_the_fine_search():
    """Two heads 0.8 um apart (spheres of 0.8 and 0.6 um) are one blob to the head filter; with
    ``fine_fwhm_um`` the second is found too, in each of 4 draws.  Beside lone heads (the fill
    of the test above) the search adds at most one peak in 5 draws (there: a bump on the
    shaft's edge at 4.5 SDs)."""
    from pipeline.params import SpinesParams
    from pipeline.stages.detect import detect_spine_session
    from pipeline.truth.evaluate import match_points

    fine = SpinesParams(fine_fwhm_um=0.2)
    pair = [(1.5, 4.0, 0.4), (1.5, 4.8, 0.3), (-1.2, 9.0), (1.4, 14.0, 0.45), (-1.5, 19.0),
            (1.2, 24.0)]
    for seed in range(4):
        stack, truth = _fill(pair, seed=seed)
        for params, n in ((SpinesParams(), len(pair) - 1), (fine, len(pair))):
            found = detect_spine_session(stack, spacing=SPACING, params=params)
            _, ib = match_points(found[["z", "y", "x"]].to_numpy() * SPACING, truth * SPACING,
                                 gate_um=0.4, z_scale=0.25)
            assert len(found) == len(ib) == n, (seed, params.fine_fwhm_um, found[["y", "x"]])
    lone = [(1.5, 4.0), (-1.2, 8.0), (2.0, 12.0), (-1.8, 16.0), (1.1, 20.0), (-0.8, 24.0)]
    extra = [len(detect_spine_session(_fill(lone, seed=seed)[0], spacing=SPACING, params=fine))
             - len(lone) for seed in range(5)]
    assert min(extra) >= 0 and sum(extra) <= 1, extra


def test_neck_peaks_are_dimmer_peaks_between_a_head_and_its_shaft():
    """Known geometry: a shaft along row 10; a head at row 40.  Dimmer peaks on the line
    between them are its neck; off the line, beyond the head, as bright, or no head: kept."""
    from pipeline.core.spines import neck_peaks

    core = np.zeros((60, 60), bool)
    core[8:13] = True
    peaks = np.array([[40, 30],     # the head
                      [25, 30],     # on its neck, half as bright: dropped
                      [25, 38],     # 8 px off the line: a second spine
                      [50, 30],     # beyond the head, away from the shaft
                      [20, 31],     # on the line but as bright as the head
                      [30, 50]])    # a lone peak elsewhere
    response = np.array([10.0, 5.0, 5.0, 5.0, 9.0, 4.0])
    on = neck_peaks(peaks, response, core, ratio=0.8, width_px=3.0, max_length_px=40)
    np.testing.assert_array_equal(on, [False, True, False, False, False, False])
    assert not neck_peaks(peaks, response, np.zeros_like(core), ratio=0.8, width_px=3.0,
                          max_length_px=40).any()
    # a head farther from the shaft than the reach is not judged (nor searched around)
    assert not neck_peaks(peaks, response, core, ratio=0.8, width_px=3.0,
                          max_length_px=20).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_neck_gives_no_detection_and_a_dim_head_beside_one_is_kept(seed):
    """Heads on necks 1.6-2.2 um long (0.2 um across, the shaft's fill): the filters also peak
    on the necks (the rule off: extra detections), which are dropped as the necks of the
    heads they lead to; a dim head 1.3 um beside a neck, off its line, is a spine and kept."""
    from pipeline.params import SpinesParams
    from pipeline.stages.detect import detect_spine_session
    from pipeline.truth.evaluate import match_points

    heads = [(2.0, 4.0), (-1.8, 8.0), (2.2, 12.0), (-2.0, 16.0), (1.6, 20.0), (-2.2, 24.0),
             (1.2, 21.3, 0.22)]
    stack, truth = _fill(heads, seed=seed, neck_radius_um=0.1)
    without = detect_spine_session(stack, spacing=SPACING, params=SpinesParams(neck_ratio=None))
    assert len(without) > len(heads), without[["y", "x", "peak"]]
    found = detect_spine_session(stack, spacing=SPACING)
    ia, ib = match_points(found[["z", "y", "x"]].to_numpy() * SPACING, truth * SPACING,
                          gate_um=0.5, z_scale=0.25)
    assert len(found) == len(heads) and sorted(ib) == list(range(len(heads))), \
        found[["y", "x", "peak"]]


def test_inner_peaks_are_weaker_peaks_at_a_head_s_foot_by_the_shaft():
    """Known geometry: the shaft's core rows 8-12; a head 13 px (1.2 um at 0.09 um) beyond
    it.  A weaker peak 9 px from the head and 5 px from the core (the neck's base, off the
    head's line to the shaft) is dropped; a weaker second head beside the first, as far from
    the shaft, is kept, as are a stronger peak at the foot and a weak one far from any head."""
    from pipeline.core.spines import inner_peaks

    core = np.zeros((60, 80), bool)
    core[8:13] = True
    peaks = np.array([[25, 30],     # the head, 13 px beyond the core
                      [17, 34],     # at its foot, 5 px from the core: dropped
                      [25, 38],     # a second head beside it, as far out: kept
                      [15, 60],     # a weak peak at the shaft, no head near: kept
                      [17, 26]])    # at the foot too, but stronger than the head: kept
    snr = np.array([20.0, 9.0, 12.0, 8.0, 25.0])
    options = dict(reach_px=10.0, margin_px=2.0, depth_px=9.0)
    np.testing.assert_array_equal(inner_peaks(peaks, snr, core, **options),
                                  [False, True, False, False, False])
    # deeper than depth_px from the core, the same peak is kept
    assert not inner_peaks(peaks, snr, core, **{**options, "depth_px": 2.0}).any()
    # without a core (no shaft found) nothing is judged
    assert not inner_peaks(peaks, snr, np.zeros_like(core), **options).any()


def test_inner_rule_drops_detections_at_necks_bases_and_keeps_the_heads():
    """On a simulated spiny dendrite the rule (on by default) takes out detections and keeps
    at least as large a share of them matched to true spines, losing at most one of those:
    what it drops is mostly false."""
    from pipeline.params import SpinesParams
    from pipeline.stages.detect import detect_spine_session
    from pipeline.truth.evaluate import SPINE_GATE_UM, match_points
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    sim = simulate_cell(SimulationParams(cell_type="pyr", shape=(20, 320, 320), n_sessions=2,
                                         seed=707, spines=True, bit_depth=8,
                                         synapse_density_per_um=1.2))
    spacing = np.asarray(sim.params.spacing)
    t = sim.truth[(sim.truth.session == "s00") & (sim.truth.present == 1)
                  & (sim.truth.in_view == 1)][["z", "y", "x"]].to_numpy(float)
    scores = []
    for prm in (SpinesParams(inner_reach_um=None), SpinesParams()):
        det = detect_spine_session(sim.images[0].astype(np.float32), spacing=spacing, params=prm)
        i, _ = match_points(det[["z", "y", "x"]].to_numpy(float) * spacing, t * spacing,
                            gate_um=SPINE_GATE_UM)
        scores.append((len(det), len(i)))
    (n0, tp0), (n1, tp1) = scores
    assert n1 < n0 and tp1 / n1 >= tp0 / n0 and tp1 >= tp0 - 1, scores


def test_spine_null_places_lie_beside_the_shaft_and_measure_an_absent_head():
    """The weights stage's null places of a spines cell (the presence model's absent state):
    beside the shaft where a head could be, and there the head over the shaft measures about
    nothing, while the heads measure far above it (without them the absent state was fitted
    to the synapses' own rows, 6.7 SDs wide on the spines regime, and spines of 6-15 SDs were
    called absent)."""
    from pipeline.core.spines import head_over_shaft, spine_zone
    from pipeline.params import SpinesParams, as_options
    from pipeline.stages.weights import null_positions

    heads = [(1.5, 4.0), (-1.2, 8.0), (2.0, 12.0), (-1.8, 16.0), (1.1, 20.0), (-0.8, 24.0)]
    stack, truth = _fill(heads, neck_radius_um=0.1)
    opts = as_options(SpinesParams())
    zone = spine_zone(stack[0], spacing=SPACING, **{k: opts[k] for k in (
        "head_fwhm_um", "surround_ratio", "line_um", "directions", "orientation_um",
        "core_share", "core_window_um", "threshold")})
    off_axis = np.abs(np.argwhere(zone)[:, 1] - stack.shape[2] // 2) * SPACING[1]
    assert len(off_axis) > 1000 and off_axis.min() > 0.45 and off_axis.max() < 3.5
    assert (np.argwhere(zone)[:, 1] > stack.shape[2] // 2).mean() > 0.3   # both sides
    null = null_positions(zone, truth, spacing=SPACING)
    assert len(null) >= 50
    settings = {k: opts[k] for k in ("head_fwhm_um", "line_um", "directions", "orientation_um",
                                     "core_window_um")}
    at_null = head_over_shaft(stack[0], null, spacing=SPACING, **settings)["snr"]
    at_heads = head_over_shaft(stack[0], truth, spacing=SPACING, **settings)["snr"]
    assert abs(at_null.median()) < 2 and at_heads.min() > 5 * at_null.abs().median()
    # the weights stage computes the projection and shaft once and hands them to both
    from pipeline.core.spines import head_maps

    maps = head_maps(stack[0], spacing=SPACING, **{k: opts[k] for k in (
        "head_fwhm_um", "surround_ratio", "line_um", "directions", "orientation_um",
        "core_window_um")})
    np.testing.assert_array_equal(zone, spine_zone(stack[0], spacing=SPACING, maps=maps, **{
        k: opts[k] for k in ("head_fwhm_um", "surround_ratio", "line_um", "directions",
                             "orientation_um", "core_share", "core_window_um", "threshold")}))
    pd.testing.assert_frame_equal(
        head_over_shaft(stack[0], truth, spacing=SPACING, **settings),
        head_over_shaft(stack[0], truth, spacing=SPACING, maps=maps, **settings))


def _measured_in_s01(stack, positions, spines):
    """The weights stage's rows of session s01 for tracks at ``positions`` (voxels): the
    first four detected there, the others only in s00."""
    from pipeline.stages.weights import measure_session

    um = positions * SPACING
    n = len(positions)
    tracks = pd.DataFrame({"synapse_id": np.arange(1, n + 1),
                           "session": ["s01"] * 4 + ["s00"] * (n - 4),
                           "z": positions[:, 0], "y": positions[:, 1], "x": positions[:, 2],
                           "z_um": um[:, 0], "y_um": um[:, 1], "x_um": um[:, 2],
                           "link_distance_um": np.nan})
    meta = {"cell": "c", "cell_type": "pyr", "session": "s01", "day": 4.0, "target": "spines",
            "voxel_um": SPACING.tolist()}
    transform = {"matrix": np.eye(4).tolist(), "reliable": True}
    return measure_session(stack, meta, transform, tracks,
                           spines=spines)[0].set_index("synapse_id")


def test_with_shadow_snr_an_undetected_spine_on_a_found_heads_flank_is_not_observed():
    """``spines.shadow_snr`` (an option, off): a track not detected in this session whose
    place lies 0.7 um from a head found in it measures that head's light (its flank); by
    default it is observed, and the presence stage calls it on that light.  With the option
    it is not observed (flag ``shadowed``); an undetected track where no head is measures
    nothing and stays observed (an absence), and the detected heads are observed."""
    from pipeline.params import SpinesParams

    heads = [(1.5, 4.0, 0.45), (-1.2, 10.0), (2.0, 16.0), (-1.8, 22.0)]
    stack, truth = _fill(heads, seed=4, photons=80.0)
    flank = truth[0] + [0, 0, 0.7 / SPACING[2]]        # 0.7 um along x from a large head
    empty = truth[2] + [0, 0, 3.0 / SPACING[2]]        # beside the shaft, 3 um from any head
    positions = np.vstack([truth, flank, empty])
    bright = 12.0
    rows = _measured_in_s01(stack, positions, SpinesParams(shadow_snr=bright))
    default = _measured_in_s01(stack, positions, SpinesParams())
    # by default the flank measures a detectable head, and is observed
    assert default.loc[5, "observed"] == 1 and default.loc[5, "snr"] >= bright
    assert rows.loc[5, "observed"] == 0 and "shadowed" in rows.loc[5, "quality_flags"]
    assert rows.loc[6, "observed"] == 1 and rows.loc[6, "snr"] < 3, rows.loc[6]
    assert (rows.loc[1:4, "observed"] == 1).all() and (rows.loc[1:4, "present"] == 1).all()
    assert (rows.loc[1:4, "snr"] > 2 * bright).all(), rows["snr"]
    pd.testing.assert_frame_equal(rows.drop(columns=["observed", "present", "quality_flags"]),
                                  default.drop(columns=["observed", "present", "quality_flags"]))


def test_on_found_necks_are_undetected_places_between_a_found_head_and_its_shaft():
    """Known geometry: a shaft along rows 8-12, a head found at row 40.  A spine not found this
    session on the line between them, measuring less than the head, is on its neck; beside
    the line, as bright as the head, on the line of a head not found, or found itself: not."""
    from pipeline.core.spines import on_found_necks

    core = np.zeros((60, 60), bool)
    core[8:13] = True
    points = np.array([[0, 40, 30],     # the head, found
                       [0, 25, 30],     # on its neck, not found, dimmer: on the neck
                       [0, 25, 38],     # 8 px off the line: a spine of its own
                       [0, 20, 31],     # on the line, not found, as bright as the head
                       [0, 22, 29],     # on the line but found this session: a head
                       [0, 45, 50],     # a head not found this session
                       [0, 30, 50]])    # on that one's line: no found head there
    found = np.array([True, False, False, False, True, False, False])
    snr = np.array([40.0, 12.0, 12.0, 38.0, 20.0, 30.0, 10.0])
    kw = dict(pixel_um=0.1, ratio=0.8, width_um=0.3, max_length_px=40)
    on = on_found_necks(points, found, snr, core, **kw)
    np.testing.assert_array_equal(on, [False, True, False, False, False, False, False])
    assert not on_found_necks(points, np.zeros(7, bool), snr, core, **kw).any()
    assert not on_found_necks(points, found, snr, np.zeros_like(core), **kw).any()


def test_with_shadow_necks_an_undetected_spine_on_a_found_spine_s_neck_is_not_observed():
    """``spines.shadow_necks``: heads on necks 1.6-2.2 um long, all found this session; a
    track not found here whose place lies halfway along one of their necks measures that
    neck's light (without the setting observed, at several noise units: called present on
    it).  With the setting it is not observed (flag ``shadowed``); a track not found where
    there is nothing, beside the shaft 2 um from any neck, stays observed, and so do the
    heads."""
    from pipeline.params import SpinesParams

    heads = [(2.0, 4.0), (-1.8, 8.0), (2.2, 12.0), (-2.0, 16.0)]
    stack, truth = _fill(heads, seed=5, photons=80.0, neck_radius_um=0.12)
    neck = truth[2] + [0, -1.1 / SPACING[1], 0]          # halfway down the third neck
    empty = truth[2] + [0, -1.1 / SPACING[1], 2.0 / SPACING[2]]   # beside the shaft, no neck
    positions = np.vstack([truth, neck, empty])
    rows = _measured_in_s01(stack, positions, SpinesParams(shadow_necks=True))
    default = _measured_in_s01(stack, positions, SpinesParams(shadow_necks=False))
    assert default.loc[5, "observed"] == 1 and default.loc[5, "snr"] > 5, default.loc[5]
    assert rows.loc[5, "observed"] == 0 and "shadowed" in rows.loc[5, "quality_flags"]
    assert rows.loc[6, "observed"] == 1 and "shadowed" not in rows.loc[6, "quality_flags"]
    assert (rows.loc[1:4, "observed"] == 1).all() and (rows.loc[1:4, "present"] == 1).all()
    pd.testing.assert_frame_equal(rows.drop(columns=["observed", "present", "quality_flags"]),
                                  default.drop(columns=["observed", "present", "quality_flags"]))


def test_heads_are_found_in_a_fill_whose_background_was_clipped_at_zero():
    """A stack exported background-subtracted (everything below the neuropil's level set to
    0) has no noise left in its background: the photon scaling must not divide by that
    nothing (it did: not one head found).  Ingest warns of such a stack; what it finds is
    the reviewer's to check."""
    from pipeline.core.spines import photon_factor
    from pipeline.stages.detect import detect_spine_session
    from pipeline.truth.evaluate import match_points

    heads = [(1.5, 4.0), (-1.2, 8.0), (2.0, 12.0), (-1.8, 16.0), (1.1, 20.0), (-0.8, 24.0)]
    stack, truth = _fill(heads)
    clipped = np.maximum(stack - 6, 0)
    assert np.median(clipped) == 0
    found = detect_spine_session(clipped, spacing=SPACING)
    ia, ib = match_points(found[["z", "y", "x"]].to_numpy() * SPACING, truth * SPACING,
                          gate_um=0.5, z_scale=0.25)
    assert len(ib) == len(heads), found[["y", "x", "snr"]]
    # the factor: 1 at the neuropil, growing with the level, finite with a zero background
    means, variances = np.array([0.0, 10.0, 20.0]), np.array([0.0, 4.0, 9.0])
    np.testing.assert_allclose(photon_factor([0.0, 10.0, 20.0], means, variances, neuropil=0.0),
                               [1.0, 1.0, 1.5])
    np.testing.assert_allclose(photon_factor([0.0, 10.0], means, variances, neuropil=10.0),
                               [1.0, 1.5])
    assert (photon_factor([5.0], means, np.zeros(3), neuropil=0.0) == 1.0).all()


def test_spine_weight_is_head_over_shaft():
    """A head's weight is its intensity over its shaft's: the whole image twice as bright
    gives the same weights, a place on the shaft 4 um from any head next to none."""
    from pipeline.core.spines import head_over_shaft
    from pipeline.params import SpinesParams

    opts = {k: getattr(SpinesParams(), k) for k in ("head_fwhm_um", "line_um", "directions",
                                                    "orientation_um", "core_window_um")}
    stack, truth = _fill([(1.5, 6.0), (-1.5, 14.0)], photons=400.0)
    w = head_over_shaft(stack[0], truth, spacing=SPACING, **opts)
    brighter = head_over_shaft(2 * stack[0], truth, spacing=SPACING, **opts)
    np.testing.assert_allclose(brighter["weight"], w["weight"], rtol=0.02)
    assert (w["weight"] > 0.1).all() and (w["snr"] > 5).all()
    empty = head_over_shaft(stack[0], truth + [0, 0, 45], spacing=SPACING, **opts)  # 4 um on
    assert (empty["weight"].abs() < 0.3 * w["weight"].min()).all()


def test_a_spine_too_small_to_detect_in_one_session_keeps_its_id():
    """Six spines in three sessions; one of them shrinks below detection in the middle
    session (its head 0.1 um across) and recovers: tracking gives it one id in the first and
    last sessions, and the others one id each throughout."""
    from pipeline.stages.detect import detect_spine_session
    from pipeline.stages.track import track_cell

    heads = [(1.5, 4.0), (-1.2, 8.0), (2.0, 12.0), (-1.8, 16.0), (1.1, 20.0), (-1.4, 24.0)]
    shrunk = heads[:2] + [(*heads[2], 0.05)] + heads[3:]
    stacks = [_fill(heads, seed=1)[0], _fill(shrunk, seed=2)[0], _fill(heads, seed=3)[0]]
    identity = {"matrix": np.eye(4).tolist(), "reliable": True}
    found, metas = [], []
    for k, stack in enumerate(stacks):
        found.append(detect_spine_session(stack, spacing=SPACING))
        metas.append({"cell": "c1", "session": f"s{k}", "day": 4.0 * k,
                      "shape_czyx": list(stack.shape), "voxel_um": SPACING.tolist()})
    assert [len(f) for f in found] == [6, 5, 6]
    tracks, unreliable = track_cell(found, [identity] * 3, metas)
    assert unreliable == []
    assert tracks["synapse_id"].nunique() == 6
    x_of = tracks.groupby("synapse_id")["x"].median() * SPACING[2]
    gone = (x_of - heads[2][1]).abs().idxmin()
    assert sorted(tracks.loc[tracks.synapse_id == gone, "session"]) == ["s0", "s2"]
    assert (tracks.groupby("synapse_id").size().drop(gone) == 3).all()


def test_a_spines_run_follows_spines_and_says_so(tmp_path):
    """A sheet with target spines (a simulated 8-bit fill): the whole workflow ends, spine
    heads are detected and tracked with weights, most true spines are found, and the run's
    summary and report name the cell as spines of a cell fill."""
    import pandas as pd

    from pipeline.truth.evaluate import evaluate_results
    from pipeline.truth.simulate import write_dataset

    data = write_dataset(tmp_path / "data", [("sp01", SimulationParams(
        cell_type="pyr", shape=(16, 256, 256), n_sessions=3, seed=21, spines=True,
        bit_depth=8))])
    assert "spines" in (data / "sessions.tsv").read_text()
    results = tmp_path / "results"
    tail = pipeline_run(data / "sessions.tsv", results, cwd=tmp_path)
    assert "cell sp01: spines of a cell fill" in tail, tail
    report = (results / "report.html").read_text()
    assert "cell sp01: spines of a cell fill" in report
    assert "For sp01 (dendritic spines of a cell fill)" in report      # the methods paragraph
    log = (results / "logs" / "detect" / "sp01" / "s01.log").read_text()
    assert "spine heads (target spines" in log, log
    synapses = pd.read_csv(results / "synapses.csv")
    assert (synapses.loc[synapses.present == 1, "weight"] > 0).mean() > 0.95
    scores = evaluate_results(data, results).set_index("metric")["value"]
    assert scores["detection_recall"] > 0.6 and scores["detection_precision"] > 0.7, scores
    assert scores["link_f1"] > 0.85, scores
