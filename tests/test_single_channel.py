"""PSD-95 alone (issue 25): the shaft's diffuse PSD-95 estimated from the PSD-95 channel itself,
a threshold in the noise around each peak, and the dendrite that channel outlines."""
import numpy as np
import pandas as pd
import pytest

from pipeline.core.shaft import dendrite_mask, line_background, local_noise_factor
from pipeline.stages.detect import detect_puncta
from pipeline.truth.evaluate import score_detection
from pipeline.truth.simulate import render_puncta

from conftest import pipeline_run, spacing_of, truth_of

SPACING = np.array([0.8, 0.0887, 0.0887])


def _shaft(shape, y_vox, *, peak):
    from scipy import ndimage

    line = np.zeros(shape, np.float32)
    line[shape[0] // 2, y_vox, :] = 1.0
    img = ndimage.gaussian_filter(line, np.array([1.0, 0.25, 0.25]) / SPACING)
    return peak * img / img.max()


def test_line_background_is_the_shaft_without_its_puncta():
    shape = (16, 128, 128)
    shaft = _shaft(shape, 64, peak=20.0)
    centres = np.array([[8.0, 64.0, 40.0], [8.0, 30.0, 90.0]])     # on the shaft; off it
    puncta = render_puncta(shape, SPACING, centres, np.full(2, 3000.0),
                           np.tile([0.85, 0.17, 0.17], (2, 1)))
    img = shaft + puncta + 5.0
    bg = line_background(img, spacing=SPACING)
    on_shaft = (8, 64, slice(20, 108))
    assert np.allclose(bg[on_shaft], 20.0, rtol=0.15), bg[on_shaft]   # the shaft, noise-free
    peak = img[8, 30, 90] - 5.0
    assert bg[8, 30, 90] < 0.02 * peak                # the punctum off the shaft is not in it
    assert bg[8, 64, 40] < 20.0 * 1.15                # the punctum on it: only the shaft's level


@pytest.mark.parametrize("length", [7, 15])
def test_openings_by_lines_are_scipys(length):
    """The shaft's openings (shifted whole-array minima, a 1-D filter along an axis) give
    scipy's grey opening's values in every direction, ties and the planes' edges included."""
    from scipy import ndimage

    from pipeline.core.shaft import _opening_by_line, line_footprint

    image = np.random.default_rng(5).normal(size=(3, 40, 50)).astype(np.float32).round(1)
    for k in range(8):
        footprint = line_footprint(length, np.pi * k / 8)
        np.testing.assert_array_equal(_opening_by_line(image, footprint),
                                      ndimage.grey_opening(image, footprint=footprint))


def test_local_noise_factor_is_the_noise_ratio_where_a_region_is_noisier():
    rng = np.random.default_rng(0)
    shape = (16, 96, 96)
    resp = rng.normal(0, 1, shape).astype(np.float32)
    resp[:, :, 48:] *= 2.0
    pts = np.array([[8, 48, 20], [8, 48, 80]])
    f = local_noise_factor(resp, 1.0, pts, spacing=(0.8, 0.2, 0.2), window_um=(2, 1, 1))
    assert abs(f[0] - 1.0) < 0.1 and abs(f[1] - 2.0) < 0.2, f


def test_puncta_flanks_are_not_counted_as_noise():
    """Noise of SD 1 on a shaft crowded with bright puncta ~2 um apart: halfway between them
    the flanks (under the 4 SD cut) raised the measured noise to ~1.2; without the voxels
    near a punctum it is the noise's own, as where there are no puncta at all."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    shape = (24, 160, 160)
    noise = rng.normal(0, 1, shape).astype(np.float32)
    centres = [(12, y, x) for y in range(14, 160, 22) for x in range(14, 160, 22)]
    puncta = np.zeros(shape, np.float32)
    puncta[tuple(np.array(centres).T)] = 1.0
    puncta = ndimage.gaussian_filter(puncta, (1.0, 2.5, 2.5))
    response = noise + 40 * puncta / puncta.max()
    between = np.array([(z, y + 11, x) for z, y, x in centres if y + 11 < shape[1]])
    with_flanks = local_noise_factor(response, 1.0, between, spacing=SPACING)
    without = local_noise_factor(response, 1.0, between, spacing=SPACING,
                                 flanks_um=(1.6, 0.45, 0.45))
    alone = local_noise_factor(noise, 1.0, between, spacing=SPACING, flanks_um=(1.6, 0.45, 0.45))
    assert np.median(with_flanks) > 1.12, np.median(with_flanks)
    assert abs(np.median(without) - 1.0) < 0.05 and abs(np.median(alone) - 1.0) < 0.05


def test_no_dendrite_is_seen_in_noise_alone():
    rng = np.random.default_rng(1)
    img = rng.poisson(5.0, size=(16, 128, 128)).astype(np.float32)
    assert dendrite_mask(line_background(img, spacing=SPACING), spacing=SPACING) is None


def test_a_punctum_far_from_the_dendrite_the_psd95_channel_outlines_is_dropped():
    rng = np.random.default_rng(2)
    shape = (16, 160, 160)
    near = np.array([[8.0, 64.0, 40.0], [8.0, 76.0, 110.0]])      # on the shaft; a spine 1.1 um
    far = np.array([[8.0, 140.0, 80.0]])                           # 6.7 um away
    centres = np.vstack([near, far])
    img = _shaft(shape, 64, peak=3.0) + render_puncta(
        shape, SPACING, centres, np.full(3, 3000.0), np.tile([0.85, 0.17, 0.17], (3, 1)))
    img = rng.poisson(img + 3.0).astype(np.float32)
    def found(det, points):
        return score_detection(det[["z", "y", "x"]].to_numpy(), points, SPACING)["n_matched"]

    det = detect_puncta(img, spacing=SPACING)
    assert found(det, near) == 2 and found(det, far) == 0, det
    assert (det["cell_distance_um"] <= 2.0).all()
    everywhere = detect_puncta(img, spacing=SPACING, shaft_distance_um=None)
    assert found(everywhere, far) == 1


@pytest.fixture(scope="module")
def single_channel_cell():
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    return simulate_cell(SimulationParams(cell_type="pyr", shape=(24, 256, 256), n_sessions=2,
                                          seed=7, single_channel=True, bit_depth=8), cell="sc")


def test_single_channel_8_bit_stacks_detect_with_default_settings(single_channel_cell):
    """Before: the shaft's noise passed for puncta (precision ~0.4-0.6 on the regime); the
    shaft subtracted, the local noise and the dendrite mask give both rates above 0.9."""
    sim = single_channel_cell
    sp = spacing_of(sim)
    old = new = np.zeros(3)
    for k, stack in enumerate(sim.images):
        assert stack.shape[0] == 1 and stack.dtype == np.uint8
        t = truth_of(sim, k)[["z", "y", "x"]].to_numpy()
        img = stack[0].astype(np.float32)
        for opts, acc in (({"shaft_line_um": None, "local_noise": "never"}, "old"), ({}, "new")):
            det = detect_puncta(img, spacing=sp, **opts)
            s = score_detection(det[["z", "y", "x"]].to_numpy(), t, sp)
            row = np.array([s["n_matched"], len(det), len(t)])
            if acc == "old":
                old = old + row
            else:
                new = new + row
    precision = lambda v: v[0] / v[1]
    recall = lambda v: v[0] / v[2]
    assert new[2] > 60
    assert precision(old) < 0.75, old                           # the failure, reproduced
    assert precision(new) > 0.9 and recall(new) > 0.9, new      # gone


def test_a_single_channel_run_says_what_detection_did(tmp_path):
    """The whole workflow on PSD-95 alone (8-bit): it ends, puncta are tracked, and the run's
    summary, the report and each detect log say what was done without a morphology channel."""
    import pandas as pd

    from pipeline.truth.simulate import SimulationParams, write_dataset

    data = write_dataset(tmp_path / "data", [("sc01", SimulationParams(
        cell_type="pyr", shape=(16, 256, 256), n_sessions=3, seed=11, single_channel=True,
        bit_depth=8))])
    results = tmp_path / "results"
    tail = pipeline_run(data / "sessions.tsv", results, cwd=tmp_path)
    assert "cells imaged in one channel" in tail and "cell sc01: no morphology channel" in tail
    assert "2.5 um line openings" in tail, tail
    report = (results / "report.html").read_text()
    assert "Cells imaged in one channel" in report and "cell sc01: no morphology channel" in report
    log = (results / "logs" / "detect" / "sc01" / "s01.log").read_text()
    assert "PSD-95 alone: puncta kept within 2 um of the dendrite" in log, log
    synapses = pd.read_csv(results / "synapses.csv")
    assert (synapses.groupby("session")["present"].sum() > 10).all()


def test_a_stack_with_its_dark_level_clipped_is_named():
    """Many 8-bit exports subtract the offset and clip at zero: the background's noise is then
    mostly cut away, its noise estimate collapses and specks pass for puncta (measured by
    benchmarks/clipped_floor.py: 69 detections unclipped, 390 with 91 % of voxels at 0, for 78
    synapses).  The input check names such a stack."""
    from pipeline.inputs.session import clipped_floor_warning

    rng = np.random.default_rng(3)
    img = rng.normal(60, 14, size=(1, 8, 64, 64))
    assert clipped_floor_warning(img.clip(0, 255).round(), "a.tif") == ""
    clipped = (img - 75).clip(0, None).round()
    why = clipped_floor_warning(clipped, "a.tif")
    assert why.startswith("a.tif: ") and "dark level was clipped" in why and "(0)" in why


def _one_session_tracks(positions_vox, detected_in):
    """A track table: synapse k (1, 2, ...) detected at ``positions_vox[k - 1]`` in session
    ``detected_in[k - 1]``."""
    import pandas as pd

    pos = np.asarray(positions_vox, float)
    um = pos * SPACING
    return pd.DataFrame({"synapse_id": np.arange(1, len(pos) + 1), "session": detected_in,
                         "z": pos[:, 0], "y": pos[:, 1], "x": pos[:, 2], "z_um": um[:, 0],
                         "y_um": um[:, 1], "x_um": um[:, 2], "link_distance_um": np.nan})


def test_a_synapse_lost_from_the_shaft_measures_like_the_shaft_without_one():
    """Without a morphology channel the weights stage subtracts the shaft's diffuse PSD-95
    and takes the absent state from places on the dendrite it outlines.  Before, a synapse
    lost from the shaft still measured the shaft's light above its aperture's surround (many
    noise SDs: present), and there were no absent places (the joint calls then found almost
    no losses on the simulated single-channel regime, survival 1.00 against 0.74)."""
    from pipeline.params import WeightsParams
    from pipeline.stages.weights import measure_session

    rng = np.random.default_rng(11)
    shape = (16, 128, 192)
    on_shaft = np.array([[8.0, 64.0, 40.0], [8.0, 64.0, 90.0], [8.0, 64.0, 150.0]])
    # the shaft's light in an aperture about that of a median punctum, as on the regime
    expected = (_shaft(shape, 64, peak=15.0) + 5.0
                + render_puncta(shape, SPACING, on_shaft[:2], np.full(2, 3000.0),
                                np.tile([0.85, 0.17, 0.17], (2, 1))))
    stack = rng.poisson(expected)[None].astype(np.float32)
    # 1 and 2 are there and detected; 3 was detected in s00 and is gone
    tracks = _one_session_tracks(on_shaft, ["s01", "s01", "s00"])
    meta = {"cell": "c", "cell_type": "pyr", "session": "s01", "day": 4.0,
            "voxel_um": SPACING.tolist()}
    transform = {"matrix": np.eye(4).tolist(), "reliable": True}
    rows, null = measure_session(stack, meta, transform, tracks)
    rows = rows.set_index("synapse_id")
    assert len(null) >= 10                               # places on the dendrite it outlines
    centre = np.median(null["snr"])
    spread = 1.4826 * np.median(np.abs(null["snr"] - centre))
    # within the absent state (the opening falls ~10 % short on the shaft's ridge, which the
    # null places, spread over the dendrite, only partly share)
    assert abs(rows.loc[3, "snr"] - centre) < 3 * spread, (rows.loc[3, "snr"], centre, spread)
    assert rows.loc[1, "snr"] > centre + 10 * spread and rows.loc[2, "snr"] > centre + 10 * spread
    # the failure, reproduced: nothing subtracted, the lost synapse measures the shaft
    old, old_null = measure_session(stack, meta, transform, tracks,
                                    params=WeightsParams(shaft_line_um=None))
    old = old.set_index("synapse_id")
    assert len(old_null) == 0
    assert old.loc[3, "snr"] > 0.4 * old.loc[1, "snr"], old["snr"]      # half a punctum
    assert old.loc[3, "snr"] - rows.loc[3, "snr"] > 10 * spread


def test_puncta_close_along_the_shaft_keep_their_light_in_the_weight():
    """Without a morphology channel, the shaft is estimated by openings with lines.  Those of
    2.5 um, detection's, take the light of puncta that stand 1-1.5 um apart along the shaft
    with it (together they are a line that long): 35-75 % of each one's weight and signal
    was lost, and on the simulated single-channel regime the log-weight r at the true
    positions was 0.909; present PV synapses on a crowded shaft measured as absent.  What is
    measured (weight and snr) is over the shaft of 6 um lines
    (``weights.weight_shaft_line_um``); the null places still lie on the dendrite the 2.5 um
    lines outline."""
    from pipeline.params import WeightsParams
    from pipeline.stages.weights import measure_session

    rng = np.random.default_rng(11)
    shape = (16, 128, 256)
    xs = [40.0, *(100 + np.arange(3) * 1.0 / SPACING[2]), *(190 + np.arange(2) * 1.5 / SPACING[2])]
    pos = np.array([[8.0, 64.0, x] for x in xs])
    light = 3000.0
    expected = (_shaft(shape, 64, peak=15.0) + 5.0
                + render_puncta(shape, SPACING, pos, np.full(len(pos), light),
                                np.tile([0.85, 0.17, 0.17], (len(pos), 1))))
    stack = rng.poisson(expected)[None].astype(np.float32)
    # each detection's size as the detect stage measures these PSF-sized puncta (0.4 um):
    # the weight is then each one's whole light (weights.own_size)
    tracks = _one_session_tracks(pos, ["s01"] * len(pos)).assign(size_um=0.4)
    meta = {"cell": "c", "cell_type": "pyr", "session": "s01", "day": 4.0,
            "voxel_um": SPACING.tolist()}
    transform = {"matrix": np.eye(4).tolist(), "reliable": True}
    rows, null = measure_session(stack, meta, transform, tracks)
    assert np.allclose(rows["intensity"] / light, 1.0, atol=0.16), rows["intensity"] / light
    # the failure, reproduced: measured over the 2.5 um lines' shaft
    short, short_null = measure_session(stack, meta, transform, tracks,
                                        params=WeightsParams(weight_shaft_line_um=None))
    assert (short["intensity"].to_numpy()[1:] / light < 0.85).all(), short["intensity"] / light
    assert (short["intensity"].to_numpy()[1:4] / light < 0.4).all()
    # the signal, the presence calls' evidence, alike; the null places are the same places
    assert (rows["snr"].to_numpy()[1:] > 1.3 * short["snr"].to_numpy()[1:]).all()
    np.testing.assert_array_equal(null[["z", "y", "x"]], short_null[["z", "y", "x"]])
    assert len(null) >= 10


def _oblique_shaft(rng, *, peak, shape=(20, 384, 384), angle_deg=11.25, photons=1500.0):
    """A straight shaft (a tube 0.8 um across) between two of the line openings' 8 directions,
    ``peak`` photons over a background of 2, with a punctum of ``photons`` every 4 um along
    it; a Poisson stack and the puncta's centres (voxels)."""
    from pipeline.truth.render import straight_shaft

    a = np.deg2rad(angle_deg)
    shaft = straight_shaft(shape, SPACING, peak=peak, angle_deg=angle_deg)
    along = np.arange(-150, 151, 4.0 / SPACING[2])
    centres = np.column_stack([np.full(len(along), shape[0] / 2),
                               shape[1] / 2 + along * np.sin(a), shape[2] / 2 + along * np.cos(a)])
    puncta = render_puncta(shape, SPACING, centres, np.full(len(centres), photons),
                           np.tile([0.85, 0.19, 0.19], (len(centres), 1)))
    return rng.poisson(shaft + 2.0 + puncta).astype(np.float32), centres


def test_a_bright_shaft_that_grows_false_puncta_is_measured_as_such():
    """PSD-95 alone: the line openings miss 6-15 % of a noisy shaft, and on a bright one noise
    on that ridge passes for puncta (here with the threshold in the neighbourhood's noise
    alone: ``photon_noise_shaft_snr=None``).  The detect table's ``shaft_snr`` (what
    track.warn_shaft_snr, 3, reads) must say so where it happens and not on a dim shaft, 8-bit
    or not."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(4)
    for peak, bright in ((9.0, True), (2.0, False)):
        image, centres = _oblique_shaft(rng, peak=peak)
        for stack in (image, np.round(image * 255 / image.max())):
            det = detect_puncta(stack, spacing=SPACING, photon_noise_shaft_snr=None)
            d, _ = cKDTree(centres * SPACING).query(det[["z", "y", "x"]].to_numpy() * SPACING)
            false = int((d > 0.5).sum())
            snr = det["shaft_snr"].iloc[0]
            assert det["shaft_snr"].nunique() == 1                  # one value per session
            if bright:      # the failure, and the number that names it
                assert false >= 3 and snr >= 3.0, (false, snr)
            else:
                assert false <= 1 and snr < 1.5, (false, snr)
    # with a morphology channel nothing is subtracted as a shaft: NaN
    two = detect_puncta(image, spacing=SPACING, morphology=np.ones_like(image))
    assert two["shaft_snr"].isna().all()


def test_on_a_bright_shaft_its_ridge_does_not_pass_for_puncta():
    """On the bright oblique shaft above, with dim puncta on it (450 photons: weight 0.3 in
    make bench's units), the threshold in the photon noise the image shows there and the
    test of each peak for a bump on a ridge (detect.photon_noise_shaft_snr, the default) take
    the false puncta along the ridge down to a tenth or fewer and keep every punctum; on a
    dim shaft neither is used."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(5)
    image, centres = _oblique_shaft(rng, peak=9.0, photons=450.0)
    counts = {}
    for option in (None, 3.0):
        det = detect_puncta(image, spacing=SPACING, photon_noise_shaft_snr=option)
        d, j = cKDTree(centres * SPACING).query(det[["z", "y", "x"]].to_numpy() * SPACING)
        counts[option] = int((d > 0.5).sum())
        assert len(set(j[d <= 0.5])) == len(centres), option          # every punctum found
    assert counts[None] >= 10 and 10 * counts[3.0] <= counts[None], counts
    # a dim shaft (shaft_snr ~1) is left to the neighbourhood's noise: the same detections
    dim, _ = _oblique_shaft(rng, peak=2.0, photons=450.0)
    a, b = (detect_puncta(dim, spacing=SPACING, photon_noise_shaft_snr=o) for o in (None, 3.0))
    assert a["shaft_snr"].iloc[0] < 3.0
    pd.testing.assert_frame_equal(a, b)


def test_the_photon_noise_map_reads_noise_and_not_smooth_structure():
    """Known answers: Poisson noise four times as variable on a quarter of the field (the
    rest is the median voxel's) reads 2 there and 1 elsewhere; a noise-free smooth ridge (a
    shaft's leftover) adds nothing."""
    from pipeline.core.shaft import photon_noise_map

    rng = np.random.default_rng(6)
    mean = np.full((10, 128, 128), 2.0)
    mean[:, :, 96:] = 8.0
    y = np.arange(128)[None, :, None]
    ridge = 10.0 * np.exp(-0.5 * ((y - 40) / 4.0) ** 2) * (np.arange(128)[None, None, :] < 48)
    image = rng.poisson(mean).astype(np.float32) + ridge.astype(np.float32)
    noise = photon_noise_map(image, sigma_vox=(1.0, 2.5, 2.5))
    assert np.median(noise[2:-2, 10:-10, 104:-4]) == pytest.approx(2.0, rel=0.08)
    assert np.median(noise[2:-2, 60:-10, 10:80]) == pytest.approx(1.0, rel=0.08)
    assert np.median(noise[2:-2, 36:45, 10:40]) == pytest.approx(1.0, rel=0.1)     # the ridge


def test_a_bump_on_a_ridge_is_ridge_like_and_a_dim_punctum_on_it_is_not():
    """Known answers, noise-free: along a ridge 20 noise SDs high, a bump of 2 curves far less
    along the ridge than across it and stands 2 above the ridge beside it (ridge-like); a
    punctum of 10 on the same ridge falls off along it by 9 (not)."""
    from pipeline.core.shaft import ridge_like

    z, y, x = np.meshgrid(np.arange(9), np.arange(96), np.arange(96), indexing="ij")
    along = (x + 0.3 * y) / np.hypot(1, 0.3)             # an oblique ridge
    across = (y - 0.3 * x) / np.hypot(1, 0.3) - 30
    response = 20.0 * np.exp(-0.5 * (across / 4.0) ** 2)

    def blob(height, at):
        return height * np.exp(-0.5 * (((along - at) / 2.5) ** 2 + (across / 2.5) ** 2
                                       + ((z - 4) / 1.5) ** 2))

    response = response + blob(10.0, 30.0) + blob(2.0, 70.0)
    peaks = []
    for at in (30.0, 70.0):
        k = np.argmax(np.where(np.abs(along - at) < 8, response, -np.inf))
        peaks.append(np.unravel_index(k, response.shape))
    flags = ridge_like(response, np.array(peaks, float), spacing=SPACING, noise=1.0)
    assert flags.tolist() == [False, True]
