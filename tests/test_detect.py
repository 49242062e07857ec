import numpy as np
import pytest

from pipeline.core.channels import morphology_coefficient
from pipeline.stages.detect import detect_puncta
from pipeline.truth.evaluate import match_points, precision_recall
from pipeline.truth.simulate import render_puncta

from conftest import spacing_of, truth_of

SPACING = np.array([0.8, 0.0887, 0.0887])


@pytest.mark.parametrize("cell", ["pyr01", "PV02"])
def test_detection_recall_precision_at_the_sample_signal_to_noise(cell):
    """Every session of a data_sample cell, pooled, against the sample's truth."""
    import pandas as pd
    import tifffile

    from conftest import ROOT

    truth = pd.read_csv(ROOT / "data_sample" / "truth" / "synapses.csv")
    n_true = n_det = n_match = 0
    for sess, tr in truth[(truth.cell == cell) & (truth.present == 1)].groupby("session"):
        stack = tifffile.imread(ROOT / "data_sample" / "images" / cell / f"{sess}.tif")  # z, c, y, x
        det = detect_puncta(stack[:, 0].astype(np.float32), spacing=SPACING,
                            morphology=stack[:, 1])
        ia, _ = match_points(det[["z", "y", "x"]].to_numpy() * SPACING,
                             tr[["z", "y", "x"]].to_numpy() * SPACING)
        n_true, n_det, n_match = n_true + len(tr), n_det + len(det), n_match + len(ia)
    pr = precision_recall(n_true, n_det, n_match)
    assert n_true > 100  # enough puncta for the rates to mean something
    assert pr["recall"] > 0.9, pr
    assert pr["precision"] > 0.9, pr


def _isolated_puncta(rng, n=12, shape=(20, 128, 128), integrals=None):
    """Puncta well apart, each integrating to 3000 counts or, with ``integrals`` (low, high),
    to a uniform draw from that range; returns their centres and a Poisson stack."""
    centres = np.column_stack([rng.uniform(6, shape[0] - 7, n),
                               rng.uniform(10, shape[1] - 10, n),
                               rng.uniform(10, shape[2] - 10, n)])
    # keep them well apart so each is isolated
    keep = [0]
    for i in range(1, n):
        d = np.linalg.norm((centres[keep] - centres[i]) * SPACING * [0.3, 1, 1], axis=1)
        if d.min() > 1.5:
            keep.append(i)
    centres = centres[keep]
    sig = np.tile([0.85, 0.17, 0.17], (len(centres), 1))
    counts = (np.full(len(centres), 3000.0) if integrals is None
              else rng.uniform(*integrals, len(centres)))
    img = render_puncta(shape, SPACING, centres, counts, sig)
    return centres, rng.poisson(img + 3.0).astype(np.float32)


def test_subvoxel_localisation_error_below_0_1_um_lateral():
    rng = np.random.default_rng(0)
    centres, img = _isolated_puncta(rng)
    det = detect_puncta(img, spacing=SPACING)
    ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
    assert len(ia) == len(centres)
    err = (det[["z", "y", "x"]].to_numpy()[ia] - centres[ib]) * SPACING
    lateral = np.linalg.norm(err[:, 1:], axis=1)
    assert np.median(lateral) < 0.05 and lateral.max() < 0.1, lateral
    assert np.abs(err[:, 0]).max() < 0.4  # z: within half a plane


def test_noise_only_stack_gives_no_detections():
    """Without a morphology channel there is no cell mask to confine the search, and a
    threshold of 6 noise SDs is needed to keep noise out of a whole stack."""
    rng = np.random.default_rng(1)
    img = rng.poisson(5.0, size=(20, 128, 128)).astype(np.float32)
    assert len(detect_puncta(img, spacing=SPACING, threshold=6.0)) == 0


def _dendrite(shape, y_vox, *, peak=40.0, radius_um=0.4):
    """A morphology channel with one dendrite along x at row ``y_vox``."""
    from scipy import ndimage

    line = np.zeros(shape, np.float32)
    line[shape[0] // 2, y_vox, :] = 1.0
    img = ndimage.gaussian_filter(line, np.array([1.0, radius_um, radius_um]) / SPACING)
    return peak * img / img.max()


def test_noise_on_a_labelled_cell_gives_no_detections_at_the_default_threshold():
    rng = np.random.default_rng(5)
    shape = (20, 128, 128)
    morph = rng.poisson(_dendrite(shape, 64) + 2.0).astype(np.float32)
    for seed in range(3):
        psd = np.random.default_rng(seed).poisson(3.0, size=shape).astype(np.float32)
        assert len(detect_puncta(psd, spacing=SPACING, morphology=morph)) == 0


def test_punctum_on_an_unlabelled_neighbour_is_excluded():
    rng = np.random.default_rng(6)
    shape = (20, 128, 128)
    morph = rng.poisson(_dendrite(shape, 40) + 2.0).astype(np.float32)
    on_cell = np.array([[10.0, 40.0, 30.0], [10.0, 41.0, 90.0]])
    off_cell = np.array([[10.0, 100.0, 60.0]])          # 5.3 um from the labelled dendrite
    centres = np.vstack([on_cell, off_cell])
    img = render_puncta(shape, SPACING, centres, np.full(3, 3000.0), np.tile([0.85, 0.17, 0.17], (3, 1)))
    img = rng.poisson(img + 3.0).astype(np.float32)
    det = detect_puncta(img, spacing=SPACING, morphology=morph)
    ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
    assert len(det) == 2 and sorted(ib) == [0, 1], det
    assert (det["cell_distance_um"] < 0.5).all()
    everywhere = detect_puncta(img, spacing=SPACING, morphology=morph, cell_distance_um=None)
    _, ib = match_points(everywhere[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
    assert sorted(ib) == [0, 1, 2]


def _spots(centres, sigmas_um, integral, seed, shape=(20, 96, 96)):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, float)
    img = render_puncta(shape, SPACING, centres, np.full(len(centres), integral),
                        np.asarray(sigmas_um, float).reshape(-1, 3))
    return rng.poisson(img + 3.0).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_puncta_0_4_um_apart_are_two_detections(seed):
    """Two point-like puncta 0.4 um apart (the PSF's FWHM) merge in the filtered image; the
    pair test finds both, each within 0.05 um of the truth."""
    half = 0.2 / SPACING[2]
    centres = np.array([[10.0, 48.0, 48.0 - half], [10.0, 48.0, 48.0 + half]])
    img = _spots(centres, [[0.85, 0.17, 0.17]] * 2, 1500.0, seed)
    det = detect_puncta(img, spacing=SPACING, threshold=6.0)
    assert len(det) == 2, det
    ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
    lateral = np.linalg.norm((det[["y", "x"]].to_numpy()[ia] - centres[ib, 1:]) * SPACING[1:], axis=1)
    assert len(ia) == 2 and lateral.max() < 0.05, lateral
    # without the pair test they are one detection between the two
    assert len(detect_puncta(img, spacing=SPACING, threshold=6.0, split_snr=None)) == 1


@pytest.mark.parametrize("sigma_yx", [(0.17, 0.17), (0.3, 0.3), (0.17, 0.3)])
def test_one_large_or_elongated_punctum_is_not_split(sigma_yx):
    img = _spots([[10.0, 48.0, 48.0]], [[0.85, *sigma_yx]], 3000.0, seed=3)
    assert len(detect_puncta(img, spacing=SPACING, threshold=6.0)) == 1


def test_threshold_is_in_noise_units_so_brightness_does_not_matter():
    rng = np.random.default_rng(2)
    centres, img = _isolated_puncta(rng)
    a = detect_puncta(img, spacing=SPACING)
    b = detect_puncta(img * 3.7 + 100, spacing=SPACING)
    assert len(a) == len(b)
    np.testing.assert_allclose(a["snr"], b["snr"], rtol=1e-3)


def test_morphology_share_is_estimated_and_removed(sim_pyr):
    # the simulator puts 2 % bleed-through plus 3 % diffuse PSD-95 of the morphology into PSD-95
    img, morph = sim_pyr.images[0][0].astype(np.float32), sim_pyr.images[0][1].astype(np.float32)
    assert morphology_coefficient(img, morph) == pytest.approx(0.05, abs=0.015)
    # an image that is only bleed-through: nothing is detected once it is subtracted
    rng = np.random.default_rng(4)
    fake = rng.poisson(0.05 * (morph - morph.min()) + 3.0).astype(np.float32)
    without = detect_puncta(fake, spacing=spacing_of(sim_pyr), shaft_line_um=None,
                            local_noise="never")       # nothing subtracted
    with_morph = detect_puncta(fake, spacing=spacing_of(sim_pyr), morphology=morph)
    assert len(with_morph) < 0.2 * max(len(without), 1) and len(without) > 5
    # the PSD-95 channel alone: its own line background, local noise and dendrite (issue 25)
    alone = detect_puncta(fake, spacing=spacing_of(sim_pyr))
    assert len(alone) < 0.5 * len(without), (len(alone), len(without))


def test_simulated_session_with_a_departing_channel_share_and_a_patchy_shaft():
    """The simulator's regime for issue 24: one session's morphology share is 2.5x its
    siblings' (the estimate follows it), and the diffuse PSD-95 along the shaft is patchy
    (relative density SD 0.5) while the default leaves every image as it was."""
    from pipeline.truth.simulate import SimulationParams, shaft_texture, simulate_cell

    base = dict(cell_type="PV", shape=(16, 160, 160), n_sessions=3, seed=12)
    plain = simulate_cell(SimulationParams(**base), cell="p")
    same = simulate_cell(SimulationParams(**base, shaft_texture=0.0,
                                          channel_share_sessions=(), channel_share_factor=3.0),
                         cell="p")
    assert all(np.array_equal(a, b) for a, b in zip(plain.images, same.images))
    odd = simulate_cell(SimulationParams(**base, channel_share_sessions=(1,),
                                         channel_share_factor=2.5), cell="p")
    k = [morphology_coefficient(im[0].astype(np.float32), im[1].astype(np.float32))
         for im in odd.images]
    assert k[1] / np.mean([k[0], k[2]]) == pytest.approx(2.5, rel=0.15), k
    assert np.array_equal(odd.images[0], plain.images[0])        # the siblings unchanged
    # the texture: mean 1, SD about the CV, patches about a wavelength across
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 30, (4000, 3))
    t = shaft_texture(pts, cv=0.5, seed=3)
    assert t.min() >= 0 and t.mean() == pytest.approx(1, abs=0.1) and 0.35 < t.std() < 0.6
    line = np.c_[np.zeros(200), np.zeros(200), np.linspace(0, 20, 200)]
    along = shaft_texture(line, cv=0.5, seed=3)
    lag = lambda n: np.corrcoef(along[:-n], along[n:])[0, 1]     # noqa: E731
    assert lag(1) > 0.9 and abs(lag(15)) < 0.6             # 0.1 um: same patch; 1.5 um: not
    textured = simulate_cell(SimulationParams(**base, shaft_texture=0.5), cell="p")
    fill = [c.images[0][1].astype(float).sum() for c in (textured, plain)]
    assert fill[0] == pytest.approx(fill[1], rel=0.002)      # the fill is the same (its noise
    assert not np.array_equal(textured.images[0][0], plain.images[0][0])   # draws aside)


def test_a_session_whose_share_departs_gets_the_cells_and_is_named():
    from pipeline.core.errors import InputError
    from pipeline.stages.channels import pooled_shares

    est = {"s00": 0.081, "s01": 0.083, "s02": 0.0, "s03": 0.079, "s04": 0.30, "s05": None}
    out = pooled_shares(est, cell="PV01")
    assert out["cell_share"] == pytest.approx(0.081)
    departs = {s for s, v in out["sessions"].items() if v["departs"]}
    assert departs == {"s02", "s04"}                       # too low and too high
    assert out["sessions"]["s02"]["used"] == pytest.approx(0.081)
    assert out["sessions"]["s01"]["used"] == 0.083          # the others keep their own
    assert out["sessions"]["s05"]["used"] is None           # no morphology channel
    assert len(out["warnings"]) == 2 and "PV01, session s02" in out["warnings"][0]
    assert "0.000" in out["warnings"][0] and "0.081" in out["warnings"][0]
    kept = pooled_shares(est, cell="PV01", policy="keep")
    assert kept["sessions"]["s02"]["used"] == 0.0 and kept["sessions"]["s02"]["departs"]
    with pytest.raises(InputError, match="s02"):
        pooled_shares(est, cell="PV01", policy="error")
    # two sessions: no majority to tell which one is off; shares near zero never depart
    assert not any(v["departs"] for v in pooled_shares({"a": 0.1, "b": 0.0})["sessions"].values())
    near_zero = pooled_shares({"a": 0.001, "b": 0.004, "c": 0.0, "d": 0.002})
    assert not any(v["departs"] for v in near_zero["sessions"].values())


def test_a_session_with_an_object_in_the_morphology_channel_only_detects_like_its_siblings():
    """The failure of issue 24 in the simulator: a bright object in one session's morphology
    channel only collapses that session's share estimate; unsubtracted patchy shaft PSD-95
    then gives weak false puncta.  The cell's share (and no subtraction where the PSD-95
    channel does not show the object) gives that session its siblings' precision.  Without
    ``brightness_noise``, which on its own takes most of those puncta out (below), so that
    the pooled share is what is tested; with it, fewer still."""
    from dataclasses import replace

    from pipeline.params import DetectParams
    from pipeline.stages.channels import pooled_shares, session_share
    from pipeline.stages.detect import detect_session
    from pipeline.truth.evaluate import score_detection
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    def false_detections(sim, stacks, k, share, params=replace(DetectParams(),
                                                               brightness_noise=False)):
        det = detect_session(stacks[k], spacing=spacing_of(sim), params=params, share=share)
        t = truth_of(sim, k)
        score = score_detection(det[["z", "y", "x"]].to_numpy(), t[["z", "y", "x"]].to_numpy(),
                                spacing_of(sim))
        return len(det) - round(score["precision"] * len(det))

    own = pooled = siblings = worst_sibling = pooled_by_brightness = 0
    for seed in (12, 13):
        sim = simulate_cell(SimulationParams(cell_type="PV", shape=(20, 256, 256), n_sessions=4,
                                             seed=seed, shaft_texture=0.5, diffuse_psd95=0.06,
                                             red_blob_sessions=(1,)), cell="b")
        stacks = [im.astype(np.float32) for im in sim.images]
        est = {f"s{k:02d}": session_share(s) for k, s in enumerate(stacks)}
        chosen = pooled_shares(est, cell="b")["sessions"]
        assert est["s01"] < 0.3 * chosen["s00"]["used"]            # the estimate collapsed
        assert chosen["s01"]["departs"] and sum(v["departs"] for v in chosen.values()) == 1
        own += false_detections(sim, stacks, 1, est["s01"])
        pooled += false_detections(sim, stacks, 1, chosen["s01"]["used"])
        pooled_by_brightness += false_detections(sim, stacks, 1, chosen["s01"]["used"],
                                                 DetectParams())
        each = [false_detections(sim, stacks, k, chosen[f"s{k:02d}"]["used"]) for k in (0, 2, 3)]
        siblings += np.mean(each)
        worst_sibling += max(each)
    assert own >= 3 * pooled and own >= 2 * siblings, (own, pooled, siblings)   # the failure
    assert pooled <= worst_sibling, (pooled, siblings, worst_sibling)   # gone: a sibling's
    # the default's threshold rises on the bright textured shaft (the object in the
    # morphology channel left out of its noise): fewer still
    assert pooled_by_brightness < pooled, (pooled_by_brightness, pooled)


def test_nothing_is_subtracted_where_the_morphology_shows_what_psd95_does_not(sim_pyr):
    from pipeline.core.channels import foreign_morphology, remove_bleedthrough
    from pipeline.truth.simulate import red_blob

    img, morph = (sim_pyr.images[0][k].astype(np.float32) for k in (0, 1))
    sp = spacing_of(sim_pyr)
    assert not foreign_morphology(img, morph, 0.05, spacing=sp).any()   # a cell: nothing foreign
    blob = red_blob(img.shape, spacing_of(sim_pyr), seed=1)
    odd = morph + 120.0 * blob.astype(np.float32)
    mask = foreign_morphology(img, odd, 0.05, spacing=sp)
    inside = blob > 0.8
    from scipy import ndimage

    far = ndimage.distance_transform_edt(blob < 0.01, sampling=spacing_of(sim_pyr)) > 2.0
    assert mask[inside].mean() > 0.9 and mask[far].mean() < 0.001, (mask[inside].mean(),
                                                                    mask[far].mean())
    guarded = remove_bleedthrough(img, odd, 0.05, spacing=sp)
    unguarded = remove_bleedthrough(img, odd, 0.05)
    # without the guard a hole of 0.05 x 120 photons is dug under the object; with it, none
    assert np.median(unguarded[inside] - img[inside]) < -4
    assert abs(np.median(guarded[inside] - img[inside])) < 0.5


def test_the_simulator_writes_single_channel_8_bit_stacks_as_labs_do(tmp_path):
    """The single-channel regime (issue 25): PSD-95 alone, each stack scaled to its own 8 bits,
    and a sheet without a morphology channel."""
    import pandas as pd

    from pipeline.truth.simulate import SimulationParams, write_dataset

    prm = SimulationParams(cell_type="pyr", shape=(12, 96, 96), n_sessions=2, seed=3,
                           single_channel=True, bit_depth=8)
    out = write_dataset(tmp_path / "sc", [("pyr01", prm)])
    sheet = pd.read_csv(out / "sessions.tsv", sep="\t")
    assert sheet["morphology_channel"].isna().all()
    import tifffile

    stack = tifffile.imread(out / sheet["path"].iloc[0])
    assert stack.dtype == np.uint8 and stack.ndim == 3 and stack.shape == (12, 96, 96)
    assert stack.max() == 255 and stack.min() == 0             # scaled to its own range
    # the default is unchanged: two 16-bit channels
    two = write_dataset(tmp_path / "two", [("pyr01", SimulationParams(
        cell_type="pyr", shape=(12, 96, 96), n_sessions=2, seed=3))])
    assert tifffile.imread(two / "images" / "pyr01" / "s00.tif").shape == (12, 2, 96, 96)


def _plane_apart_pairs(rng, *, brighter: float, n: int = 12):
    """Stacks of two puncta one plane apart and 0.6 um aside, the first ``brighter`` times
    the second (the flank of the bright one, a plane away, tops the dim one's peak within
    the default 0.25 um box)."""
    psf = np.array([2.0, 0.4, 0.4]) / 2.355
    for _ in range(n):
        c = np.array([[9.5, 48, 48], [10.5, 48, 48 + 0.6 / SPACING[2]]]) + rng.uniform(-0.5, 0.5, 3)
        img = render_puncta((20, 96, 96), SPACING, c, [1500 * brighter, 1500], np.tile(psf, (2, 1)))
        yield c, rng.poisson(img + 10).astype(np.float32)


def test_a_punctum_a_plane_from_a_brighter_one_is_found():
    rng = np.random.default_rng(1)
    found, found_box_only = [], []
    for centres, img in _plane_apart_pairs(rng, brighter=3.0):
        # the box alone: neither the close rule nor the narrower filter (which finds these too)
        for out, opts in ((found, {}),
                          (found_box_only, {"close_min_snr": np.inf, "fine_scale": None})):
            det = detect_puncta(img, spacing=SPACING, **opts)
            ia, _ = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING,
                                 gate_um=0.3)
            out.append(len(ia))
    assert np.mean(found) >= 1.75, found                # both, nearly always
    assert np.mean(found_box_only) <= 1.5, found_box_only   # the default box alone: often one


def test_isolated_dim_puncta_get_no_second_peak():
    """The smaller box is for bright peaks: a weak one there is more often noise on a flank."""
    rng = np.random.default_rng(2)
    n_true = n_det = 0
    for _ in range(4):
        # dimmest 120 counts: at one channel's threshold of 6 local noise SDs (the default
        # since the flanks are left out of that noise), 150 left some stacks' dimmest above 8
        centres, img = _isolated_puncta(rng, n=40, integrals=(120, 500))
        det = detect_puncta(img, spacing=SPACING)
        n_true, n_det = n_true + len(centres), n_det + len(det)
        assert det["snr"].min() < 8      # dim enough to matter
    assert n_det <= n_true + 1, (n_det, n_true)


def _dim_between_bright(rng, *, n: int = 10, apart_um: float = 0.6, brighter: float = 3.0,
                        dim: float = 2500.0):
    """Stacks of a dim punctum half a plane off two ``brighter`` ones ``apart_um`` on either
    side along a line (a PV shaft's synapses): the matched filter's peak of each bright one
    swallows the dim one, a shoulder without a peak of its own."""
    psf = np.array([2.0, 0.4, 0.4]) / 2.355
    step = apart_um / SPACING[2]
    for _ in range(n):
        c = np.array([[10, 48, 48 - step], [10.5, 48, 48], [10, 48, 48 + step]]) + rng.uniform(-0.5, 0.5, 3)
        img = render_puncta((20, 96, 96), SPACING, c, [dim * brighter, dim, dim * brighter],
                            np.tile(psf, (3, 1)))
        yield c, rng.poisson(img + 10).astype(np.float32)


def test_a_dim_punctum_between_two_bright_ones_is_found_by_the_narrower_filter():
    """The miss of make bench's dense PV shaft (hard_registration: 131 of 134 misses had no
    peak of their own in the matched filter, a neighbour within 1.2 um aside;
    ``benchmarks/detection_errors.py --regime hard_registration``)."""
    rng = np.random.default_rng(0)
    found = {True: [], False: []}
    extra = []
    for centres, img in _dim_between_bright(rng):
        for fine in (True, False):
            # a stack without a shaft: no line openings (which turn the narrower filter off)
            det = detect_puncta(img, spacing=SPACING, fine_scale=0.6 if fine else None,
                                shaft_line_um=None)
            _, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING,
                                 gate_um=0.3)
            found[fine].append(1 in ib)
            if fine:
                extra.append(len(det) - len(ib))
    assert np.mean(found[True]) >= 0.9, found
    assert np.mean(found[False]) <= 0.5, found      # the matched filter alone: mostly not
    assert sum(extra) <= 1, extra


def test_the_narrower_filter_adds_nothing_to_isolated_puncta():
    """Noise it lifts, around a punctum or alone, stays below its SNR bar (close_min_snr)."""
    rng = np.random.default_rng(5)
    for integrals in ((150, 500), (3000, 12000)):
        centres, img = _isolated_puncta(rng, n=40, integrals=integrals)
        with_fine = detect_puncta(img, spacing=SPACING, fine_scale=0.6, shaft_line_um=None)
        without = detect_puncta(img, spacing=SPACING, fine_scale=None, shaft_line_um=None)
        assert len(with_fine) == len(without), (integrals, len(with_fine), len(without))


def _textured_shaft(rng, *, texture_cv=0.5, dim=400.0):
    """A shaft along x whose diffuse PSD-95 rises and falls every 1.5 um (the
    channel_departure regime's patches), three bright puncta and a dim one on it: (psd95,
    morphology, centres)."""
    shape = (20, 96, 384)
    shaft = _dendrite(shape, 48, peak=1.0)
    x_um = np.arange(shape[2]) * SPACING[2]
    phase = np.cumsum(rng.normal(0, 0.3, shape[2]))
    texture = 1 + texture_cv * np.sin(2 * np.pi * x_um / 1.5 + phase)
    morph = rng.poisson(40 * shaft + 2.0).astype(np.float32)
    centres = np.array([[10.0, 46.0, 60.0], [10.0, 50.0, 190.0], [10.0, 47.0, 320.0],
                        [10.0, 48.0, 255.0]])
    puncta = render_puncta(shape, SPACING, centres, np.array([1500.0, 1500, 1500, dim]),
                           np.tile([0.85, 0.17, 0.17], (4, 1)))
    psd = rng.poisson(2.0 * shaft * texture[None, None, :] + puncta + 3.0).astype(np.float32)
    return psd, morph, centres


def test_noise_measured_on_the_cell_drops_shaft_texture_peaks_and_keeps_puncta():
    """``local_noise="cell"``: a textured shaft gives peaks of 5-8 stack noise SDs; measured
    on the labelled cell's voxels, the noise there is the texture's too, and fewer of them
    pass, while the puncta on the shaft are found either way."""
    psd, morph, centres = _textured_shaft(np.random.default_rng(2))
    found = {}
    for mode in ("auto", "cell"):
        det = detect_puncta(psd, spacing=SPACING, morphology=morph, local_noise=mode,
                            brightness_noise=False)
        ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
        assert sorted(ib) == [0, 1, 2, 3], mode
        found[mode] = len(det) - len(ia)         # peaks of the texture
    assert found["auto"] >= 15                    # the texture does pass for puncta ...
    assert found["cell"] <= found["auto"] - 4     # ... and fewer in the cell's own noise


def test_a_textured_bright_shaft_raises_the_threshold_there_and_a_dim_punctum_on_it_is_found():
    """``brightness_noise`` (the default): the response's noise on the cell's bright voxels
    over its dim ones scales each peak's noise.  On six draws of a textured shaft the texture
    gives 16-22 false puncta without it and at most one with it; the dim punctum (a
    quarter of the others' brightness) is found in every draw."""
    without, with_it = [], []
    for seed in range(6):
        psd, morph, centres = _textured_shaft(np.random.default_rng(seed))
        for on, out in ((False, without), (True, with_it)):
            det = detect_puncta(psd, spacing=SPACING, morphology=morph, brightness_noise=on)
            ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING,
                                  centres * SPACING)
            assert sorted(ib) == [0, 1, 2, 3], (seed, on)     # the dim one too
            out.append(len(det) - len(ia))
    assert min(without) >= 12 and max(with_it) <= 2, (without, with_it)
    # a smooth shaft: the threshold rises by no more than the shaft's own photon noise (its
    # diffuse PSD-95 of 2 photons per voxel over a background of 3: sqrt(5 / 3) = 1.29 on its
    # axis), where the texture raised it 2-2.5x
    psd, morph, centres = _textured_shaft(np.random.default_rng(7), texture_cv=0.0)
    snr = []
    for on in (False, True):
        det = detect_puncta(psd, spacing=SPACING, morphology=morph, brightness_noise=on)
        ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * SPACING, centres * SPACING)
        assert sorted(ib) == [0, 1, 2, 3]
        snr.append(det["snr"].to_numpy()[ia[np.argsort(ib)]])
    assert np.all(snr[1] >= snr[0] / 1.29) and np.all(snr[1] <= snr[0]), snr


def test_the_session_texture_factor_names_a_textured_shaft_and_not_a_smooth_one():
    """The detect table's ``texture_factor`` (what track.warn_texture_factor, 1.5, reads):
    how far the threshold rose on the cell's brightest 10 %.  A textured shaft (its patches
    half the diffuse PSD-95's level) reads above the bound in every draw; the same shaft
    smooth reads near 1 (its own photon noise, within TOLERANCE); without the option, NaN."""
    textured, smooth = [], []
    for seed in range(3):
        for cv, out in ((0.5, textured), (0.0, smooth)):
            psd, morph, _ = _textured_shaft(np.random.default_rng(seed), texture_cv=cv)
            det = detect_puncta(psd, spacing=SPACING, morphology=morph)
            assert det["texture_factor"].nunique() == 1          # one value per session
            out.append(det["texture_factor"].iloc[0])
    assert min(textured) >= 1.5 and max(smooth) < 1.3, (textured, smooth)
    det = detect_puncta(psd, spacing=SPACING, morphology=morph, brightness_noise=False)
    assert det["texture_factor"].isna().all()


def test_the_brightness_noise_curve_follows_the_noise_and_stays_flat_without_texture():
    from pipeline.core.brightness_noise import (TOLERANCE, brightness_noise_curve,
                                                brightness_noise_factor, texture_factor)

    rng = np.random.default_rng(0)
    shape = (10, 100, 200)
    brightness = rng.uniform(0, 100, shape).astype(np.float32)
    where = np.ones(shape, bool)
    where[:, :10] = False
    flat = rng.normal(0, 1, shape).astype(np.float32)
    for bright_excess in (1.0, 1.05):       # within the tolerance: no rise at all
        noisy = flat * np.where(brightness > 90, bright_excess, 1.0)
        curve = brightness_noise_curve(noisy, brightness, where)
        assert np.all(curve.factor == 1.0) and texture_factor(curve) == 1.0, curve
    # twice as noisy above the 90th percentile of brightness, and puncta left out by exclude
    noisy = flat * np.where(brightness > 90, 2.0, 1.0)
    exclude = np.zeros(shape, bool)
    noisy[:, :5] += 50                      # outside the cell: not measured
    noisy[5, 50:52] += 80
    exclude[5, 50:52] = True
    curve = brightness_noise_curve(noisy, brightness, where, exclude=exclude)
    centres, factor = curve.centres, curve.factor
    assert np.all(np.diff(factor) >= 0)
    got = brightness_noise_factor(curve, np.array([20.0, 60.0, 95.0, 99.9]))
    assert got[:2] == pytest.approx([1.0, 1.0], abs=0.03)
    assert got[2:] == pytest.approx([2.0 - TOLERANCE] * 2, rel=0.08), (centres, factor)
    # the session's texture: the bin from the 90th percentile of brightness on ...
    assert texture_factor(curve) == pytest.approx(2.0 - TOLERANCE, rel=0.08)
    # ... so a noise that rises only on the brightest 5 % (a few bright voxels) is not one
    only_top = brightness_noise_curve(flat * np.where(brightness > 95, 2.0, 1.0), brightness,
                                      where)
    assert texture_factor(only_top) == pytest.approx(1.0, abs=0.03)
    assert only_top.factor[-1] == pytest.approx(2.0 - TOLERANCE, rel=0.08)


@pytest.mark.parametrize("own_fwhm_um", [0.2, 0.45, 0.7])
def test_size_um_is_the_punctums_lateral_image_fwhm(own_fwhm_um):
    """Bright puncta of a known own size seen through the PSF (0.4 um laterally): the
    detect stage reports their image's lateral FWHM (sqrt(0.4^2 + own^2): 0.447, 0.602,
    0.806 um).  The response's own width, reported before, compressed them into 0.51-0.72 um:
    a large punctum was deblended and corrected as a smaller one (weights.own_size)."""
    rng = np.random.default_rng(3)
    shape = (20, 128, 128)
    centres = np.array([[8.0, 20 + 30 * i, 20 + 30 * j] for i in range(4) for j in range(4)])
    centres += rng.uniform(-0.5, 0.5, centres.shape)
    sd = np.sqrt((np.array([2.0, 0.4, 0.4]) / 2.3548) ** 2 + (own_fwhm_um / 2.3548) ** 2)
    img = render_puncta(shape, SPACING, centres, np.full(len(centres), 40000.0),
                        np.tile(sd, (len(centres), 1)))
    det = detect_puncta(rng.poisson(img + 5.0).astype(np.float32), spacing=SPACING)
    assert len(det) == len(centres)
    expected = np.hypot(0.4, own_fwhm_um)
    assert abs(det["size_um"].median() / expected - 1) < 0.03, (det["size_um"].median(), expected)
    assert det["size_um"].std() < 0.03
