import numpy as np
import pandas as pd
import pytest

from pipeline.stages.detect import detect_puncta
from pipeline.truth.evaluate import match_points
from pipeline.truth.simulate import render_puncta
from pipeline.core.channels import remove_bleedthrough
from pipeline.core.photometry import aperture_photometry
from pipeline.core.normalise import normalise_weights
from pipeline.stages.weights import quality_flags

from conftest import spacing_of, truth_of

SPACING = np.array([0.8, 0.0887, 0.0887])


def _field(rng, integrals, shape=(16, 96, 96), background=4.0):
    n = len(integrals)
    centres = np.column_stack([np.full(n, 8.0), np.linspace(15, 80, n), np.full(n, 48.0)])
    centres += rng.uniform(-0.5, 0.5, centres.shape)
    sig = np.tile([0.85, 0.2, 0.2], (n, 1))
    img = render_puncta(shape, SPACING, centres, integrals, sig) + background
    return centres, img


def test_intensity_is_proportional_to_the_integral_and_background_is_removed():
    rng = np.random.default_rng(0)
    integrals = np.array([500.0, 1000.0, 2000.0, 4000.0])
    centres, img = _field(rng, integrals)
    phot = aperture_photometry(img, centres, spacing=SPACING, radius_um=(2.4, 0.7, 0.7))
    np.testing.assert_allclose(phot["background"], 4.0, rtol=0.02)
    ratio = phot["intensity"] / integrals
    # the aperture captures the same fraction of every punctum of the same shape
    assert ratio.std() / ratio.mean() < 0.02
    assert 0.7 < ratio.mean() <= 1.0


def test_noise_free_background_only_measures_zero():
    img = np.full((16, 64, 64), 7.0)
    phot = aperture_photometry(img, np.array([[8.0, 32.0, 32.0]]), spacing=SPACING)
    assert abs(phot["intensity"].item()) < 1e-9
    assert phot["in_view"].item() == 1


@pytest.mark.parametrize("photons", [0.5, 1.4, 2.6, 4.5, 5.0])
def test_a_whole_count_low_background_without_a_punctum_measures_zero(photons):
    # a dim session of a 16-bit detector: an offset of 10 counts plus a Poisson background of
    # about one photon per voxel.  The shell's median is a whole count (11 at 1.4 photons,
    # 0.4 below the mean); subtracting it left 0.4 x 365 aperture voxels = 146 counts of
    # "signal" at every place without a synapse, and a session's absent synapses called present.
    # Its MAD is a whole count too: 0 at 0.5 photons (an SNR of millions), 1.5 counts SD at
    # 4.5 photons and 3 at 5, where the truth is 2.1 and 2.2
    rng = np.random.default_rng(1)
    img = (10 + rng.poisson(photons, (20, 160, 160))).astype(np.uint16)
    yx = np.arange(20, 150, 22.0)
    pos = np.array([(10.0, y, x) for y in yx for x in yx])
    phot = aperture_photometry(img, pos, spacing=SPACING)
    se = phot["intensity"].std() / np.sqrt(len(pos))
    assert abs(phot["intensity"].mean()) < 4 * se
    np.testing.assert_allclose(phot["background"], 10 + photons, atol=0.1)
    np.testing.assert_allclose(phot["noise"], np.sqrt(photons), rtol=0.06)
    assert 0.8 < phot["snr"].std() < 1.25


def test_a_bright_neighbours_core_in_the_shell_does_not_raise_the_background():
    rng = np.random.default_rng(2)
    img = 10 + rng.normal(0, 1, (16, 64, 64))
    img[8, 45:48, 31:34] += 300            # 2 aperture radii from the position, in its shell
    phot = aperture_photometry(img, np.array([[8.0, 32.0, 32.0]]), spacing=SPACING)
    assert abs(phot["background"].item() - 10) < 0.1
    assert abs(phot["intensity"].item()) < 4 * phot["noise"].item() * 365 ** 0.5


def test_position_outside_the_stack_is_flagged():
    img = np.ones((16, 64, 64))
    phot = aperture_photometry(img, np.array([[8.0, 70.0, 32.0]]), spacing=SPACING)
    assert phot["in_view"].item() == 0


@pytest.mark.parametrize("method", ["percentile_40_60", "median_ratio"])
def test_uniformly_brighter_session_gives_the_same_normalised_weights(method):
    rng = np.random.default_rng(1)
    intens = rng.lognormal(0, 0.9, 50)
    table = pd.DataFrame({"intensity": np.concatenate([intens, 2.5 * intens]),
                          "present": 1, "session": ["a"] * 50 + ["b"] * 50,
                          "synapse_id": np.r_[np.arange(50), np.arange(50)]})
    w = normalise_weights(table["intensity"], table["present"], groups=table["session"],
                          method=method, synapse_ids=table["synapse_id"])
    np.testing.assert_allclose(w[:50].to_numpy(), w[50:].to_numpy())
    lo, hi = np.percentile(intens, [40, 60])
    assert np.isclose(np.mean(w[:50][(intens >= lo) & (intens <= hi)]), 1.0)


def test_log_weights_correlate_with_truth(sim_pyr, sim_pv):
    for sim in (sim_pyr, sim_pv):
        sp = spacing_of(sim)
        img = sim.images[0][0].astype(np.float32)
        tr = truth_of(sim, 0)
        # measured at the detected positions, as the pipeline does
        det = detect_puncta(img, spacing=sp, morphology=sim.images[0][1])
        ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * sp, tr[["z", "y", "x"]].to_numpy() * sp)
        phot = aperture_photometry(img, det[["z", "y", "x"]].to_numpy()[ia], spacing=sp)
        ok = phot["intensity"].to_numpy() > 0
        r = np.corrcoef(np.log(phot["intensity"].to_numpy()[ok]),
                        np.log(tr["weight"].to_numpy()[ib][ok]))[0, 1]
        assert r > 0.9, (sim.params.cell_type, r)


def test_brighter_session_with_many_new_small_synapses_median_ratio_recovers_the_scale():
    """The published percentile scale moves when many small synapses appear; the median
    ratio over synapses present in both sessions does not."""
    rng = np.random.default_rng(2)
    old = rng.lognormal(0, 0.9, 60)
    new = rng.lognormal(np.log(0.2), 0.3, 40)           # births: small
    ids = np.r_[np.arange(60), np.arange(60), np.arange(60, 100)]
    intens = np.r_[old, 1.7 * old, 1.7 * new]
    table = pd.DataFrame({"intensity": intens, "present": 1, "synapse_id": ids,
                          "session": ["a"] * 60 + ["b"] * 100})
    kw = dict(groups=table["session"], synapse_ids=table["synapse_id"])
    robust = normalise_weights(table["intensity"], table["present"], method="median_ratio", **kw)
    published = normalise_weights(table["intensity"], table["present"], **kw)
    np.testing.assert_allclose(robust[60:120].to_numpy(), robust[:60].to_numpy(), rtol=1e-9)
    ratio = np.median(published[60:120].to_numpy() / published[:60].to_numpy())
    assert ratio > 1.2, ratio                           # the percentile scale fell with the births
    # the reference session is the same under both
    np.testing.assert_allclose(robust[:60], published[:60])


def test_bleedthrough_is_removed_from_the_weights():
    rng = np.random.default_rng(3)
    integrals = np.array([800.0, 1600.0, 3200.0])
    centres, img = _field(rng, integrals)
    # a bright dendrite through the puncta, 6 % of which shows in the PSD-95 channel
    morph = np.zeros_like(img)
    morph[6:11, 10:85, 44:53] = 400.0
    morph += 10.0
    from scipy import ndimage
    morph = ndimage.gaussian_filter(morph, (1, 2, 2))
    leaky = img + 0.06 * (morph - 10.0)
    clean = aperture_photometry(img, centres, spacing=SPACING)["intensity"].to_numpy()
    raw = aperture_photometry(leaky, centres, spacing=SPACING)["intensity"].to_numpy()
    fixed = aperture_photometry(remove_bleedthrough(leaky, morph, 0.06), centres,
                                spacing=SPACING)["intensity"].to_numpy()
    assert np.all(np.abs(raw - clean) > 0.05 * clean)   # the dendrite's light was counted
    np.testing.assert_allclose(fixed, clean, rtol=0.01)


def test_saturated_edge_and_crowded_synapses_are_flagged():
    rng = np.random.default_rng(4)
    shape = (16, 96, 96)
    centres = np.array([[8.0, 20.0, 20.0],     # bright: clipped by the detector
                        [8.0, 60.0, 20.0],     # isolated, fine
                        [8.0, 48.0, 70.0],     # with a neighbour 0.6 um away
                        [8.0, 48.0, 76.8],
                        [8.0, 2.0, 50.0]])     # at the stack's face
    integrals = np.array([40000.0, 2000.0, 2000.0, 2000.0, 2000.0])
    img = render_puncta(shape, SPACING, centres, integrals, np.tile([0.85, 0.2, 0.2], (5, 1))) + 4.0
    img = rng.poisson(img).astype(np.float32)
    top = np.float32(np.percentile(img[7:10, 15:26, 15:26], 99))  # below the bright one's peak
    img = np.minimum(img, top)
    phot = aperture_photometry(img, centres, spacing=SPACING, saturation=top)
    flags = quality_flags(phot, centres, np.ones(5), spacing=SPACING)
    assert flags.tolist() == ["saturated", "", "neighbour", "neighbour", "edge"], flags.tolist()
    # an SNR below the bound is flagged only where the synapse is called present
    weak = phot.assign(snr=[10, 1.0, 10, 10, 10])
    assert "low_snr" in quality_flags(weak, centres, np.ones(5), spacing=SPACING)[1]
    assert "low_snr" not in quality_flags(weak, centres, [1, 0, 1, 1, 1], spacing=SPACING)[1]


def _pair_field(rng, offset_um, integrals, shape=(16, 96, 96), noise=1.0):
    """Two puncta (sigma 0.85, 0.26, 0.26 um: FWHM 2.0, 0.6, 0.6), the second ``offset_um``
    away in x, on a flat background with Gaussian noise."""
    centres = np.array([[8.0, 48.0, 40.0], [8.0, 48.0, 40.0 + offset_um / SPACING[2]]])
    sig = np.tile([0.85, 0.255, 0.255], (2, 1))
    clean = render_puncta(shape, SPACING, centres, np.asarray(integrals, float), sig) + 10.0
    return centres, clean + rng.normal(0, noise, shape)


def test_deblending_takes_a_bright_neighbours_light_out_of_a_dim_punctum():
    rng = np.random.default_rng(3)
    centres, img = _pair_field(rng, 0.9, [300.0, 3000.0])
    alone = aperture_photometry(_pair_field(rng, 0.9, [300.0, 0.0])[1], centres[:1], spacing=SPACING)
    raw = aperture_photometry(img, centres, spacing=SPACING)
    clean = aperture_photometry(img, centres, spacing=SPACING, sources=[True, True],
                                template_fwhm_um=(2.0, 0.6, 0.6))
    target = alone["intensity"].item()
    assert raw["intensity"].iloc[0] > 1.2 * target          # the neighbour inflates the sum
    assert clean["aperture_intensity"].iloc[0] > 1.2 * target   # kept: the sum before deblending
    assert abs(clean["intensity"].iloc[0] / target - 1) < 0.1, (clean["intensity"].iloc[0], target)


def test_deblending_leaves_an_absent_synapse_beside_a_bright_one_near_zero():
    rng = np.random.default_rng(4)
    snr_raw, snr_clean = [], []
    for _ in range(20):
        centres, img = _pair_field(rng, 0.9, [0.0, 3000.0])
        raw = aperture_photometry(img, centres, spacing=SPACING)
        # the absent synapse's position is measured, not detected: not a source of light
        clean = aperture_photometry(img, centres, spacing=SPACING, sources=[False, True],
                                    template_fwhm_um=(2.0, 0.6, 0.6))
        snr_raw.append(raw["snr"].iloc[0])
        snr_clean.append(clean["snr"].iloc[0])
    # the aperture alone sees a punctum (4.1 noise units; 5.1 when the background was the
    # shell's median, which the neighbour's light in the shell moves less than its mean)
    assert np.mean(snr_raw) > 3
    # unbiased within 1 noise unit, spread about one noise unit
    assert abs(np.mean(snr_clean)) < 1.0 and np.std(snr_clean) < 2.0, (np.mean(snr_clean), np.std(snr_clean))


def test_deblending_does_not_split_one_punctum_between_two_pieces_of_its_track():
    from pipeline.stages.weights import distinct_puncta

    rng = np.random.default_rng(5)
    centres, img = _pair_field(rng, 0.0, [2000.0, 0.0])
    pieces = centres + [[0, 0, 0], [0.1, 1.0, 0.5]]          # 0.1 um apart: one synapse
    sources = distinct_puncta(pieces, [True, False], spacing=SPACING)
    assert sources.tolist() == [True, False]
    raw = aperture_photometry(img, pieces, spacing=SPACING)
    clean = aperture_photometry(img, pieces, spacing=SPACING, sources=sources,
                                template_fwhm_um=(2.05, 0.6, 0.6))
    assert abs(clean["intensity"].iloc[0] / raw["intensity"].iloc[0] - 1) < 0.01
    assert abs(clean["snr"].iloc[1]) < 3                       # the other piece: nothing left


def test_of_two_undetected_pieces_the_one_with_more_detections_carries_the_light():
    from pipeline.stages.weights import distinct_puncta

    rng = np.random.default_rng(6)
    centres, img = _pair_field(rng, 0.0, [2000.0, 0.0])
    pieces = centres + [[0, 0, 0], [0.1, 1.0, 0.5]]          # one synapse, two track pieces
    # in a session where neither was detected, the piece detected more often elsewhere (the
    # one the presence stage keeps when it merges them) is the source, whatever the order
    assert distinct_puncta(pieces, [False, False], spacing=SPACING, priority=[2, 5]).tolist() == [False, True]
    assert distinct_puncta(pieces, [False, False], spacing=SPACING).tolist() == [True, False]
    assert distinct_puncta(pieces, [True, False], spacing=SPACING, priority=[2, 5]).tolist() == [True, False]
    sources = distinct_puncta(pieces, [False, False], spacing=SPACING, priority=[2, 5])
    clean = aperture_photometry(img, pieces, spacing=SPACING, sources=sources,
                                template_fwhm_um=(2.05, 0.6, 0.6))
    assert clean["snr"].iloc[1] > 20 and abs(clean["snr"].iloc[0]) < 3


def _sized_pair(rng, offset_um, integrals, lateral_fwhm_um, noise=0.5):
    """Two puncta of their own lateral image FWHM (z 2.0 um widened as much in quadrature)
    ``offset_um`` apart in x, on a flat background with Gaussian noise."""
    from pipeline.core.optics import FWHM_TO_SIGMA
    from pipeline.stages.weights import own_templates

    centres = np.array([[8.0, 48.0, 40.0], [8.0, 48.0, 40.0 + offset_um / SPACING[2]]])
    fwhm = own_templates(np.asarray(lateral_fwhm_um, float), (2.0, 0.6, 0.6))
    clean = render_puncta((16, 96, 96), SPACING, centres, np.asarray(integrals, float),
                          fwhm * FWHM_TO_SIGMA) + 10.0
    return centres, fwhm, clean + rng.normal(0, noise, clean.shape)


def test_own_size_templates_widen_z_as_much_as_x_and_keep_the_typical_one():
    from pipeline.stages.weights import own_templates

    t = own_templates(np.array([0.6, 0.8, np.nan, 0.1, 3.0]), (2.05, 0.6, 0.6))
    np.testing.assert_allclose(t[0], [2.05, 0.6, 0.6])
    np.testing.assert_allclose(t[2], [2.05, 0.6, 0.6])          # no size: the typical one
    np.testing.assert_allclose(t[1], np.sqrt(np.array([2.05, 0.6, 0.6]) ** 2 + 0.8 ** 2 - 0.36))
    np.testing.assert_allclose(t[3, 1:], 0.4)                    # never narrower than the PSF
    np.testing.assert_allclose(t[4, 1:], 1.0)                    # nor wider than 1 um


def test_a_synapses_own_size_pools_its_detections_clear_of_neighbours_by_their_snr():
    from pipeline.stages.weights import _per_synapse

    tracks = pd.DataFrame({"synapse_id": [1, 1, 1, 2], "session": ["s0", "s1", "s2", "s0"],
                           "z_um": 1.0, "y_um": [1.0, 1.0, 1.0, 5.0], "x_um": 1.0,
                           "size_um": [0.5, 0.9, 0.55, np.nan], "snr": [10.0, 30.0, 10.0, 20.0]})
    # weights 100, 900, 100: (50 + 810 + 55) / 1100
    np.testing.assert_allclose(_per_synapse(tracks)[3], [915 / 1100, np.nan])
    # a dim detection's size (it reads small) hardly moves a bright one's; SNR over 60 counts
    # as 60, so one very bright session does not stand alone
    dim = tracks.assign(snr=[4.0, 40.0, 200.0, 20.0])
    expected = (0.5 * 16 + 0.9 * 1600 + 0.55 * 3600) / (16 + 1600 + 3600)
    np.testing.assert_allclose(_per_synapse(dim)[3], [expected, np.nan])
    # without an snr column every detection counts alike
    np.testing.assert_allclose(_per_synapse(tracks.drop(columns="snr"))[3], [0.65, np.nan])
    # a tracks table from before the column (or a person's added rows): the typical size
    assert np.isnan(_per_synapse(tracks.drop(columns="size_um"))[3]).all()
    # a detection with another within 0.7 um in its session measured their light together:
    # synapse 1's s0 size (0.5) is left out, and synapse 3 (0.5 um off it, s0 only) has none
    crowded = pd.concat([tracks, pd.DataFrame({"synapse_id": [3], "session": ["s0"],
                                               "z_um": 1.0, "y_um": [1.5], "x_um": 1.0,
                                               "size_um": [0.6], "snr": [50.0]})],
                        ignore_index=True)
    np.testing.assert_allclose(_per_synapse(crowded)[3], [(810 + 55) / 1000, np.nan, np.nan])


def test_own_size_gives_a_small_and_a_large_punctum_their_whole_light():
    """Equal light, different sizes: one template keeps more of the small one's light in
    its aperture; each its own size measures both at their light (the weight)."""
    rng = np.random.default_rng(7)
    centres, fwhm, img = _sized_pair(rng, 3.0, [2000.0, 2000.0], [0.45, 0.85])
    typical = aperture_photometry(img, centres, spacing=SPACING, sources=[True, True],
                                  template_fwhm_um=(2.05, 0.6, 0.6))
    own = aperture_photometry(img, centres, spacing=SPACING, sources=[True, True],
                              template_fwhm_um=fwhm, aperture_correction=True)
    ratio = typical["intensity"].iloc[0] / typical["intensity"].iloc[1]
    assert ratio > 1.25, ratio                                    # the small one looks heavier
    np.testing.assert_allclose(own["intensity"], 2000.0, rtol=0.05)
    np.testing.assert_allclose(own["snr"], typical["snr"], rtol=0.2)


def test_own_size_deblends_a_dim_large_punctum_beside_a_bright_small_one():
    """0.65 um apart (a dense PV shaft): the typical template gives the bright small
    neighbour's flank too much light in the dim one's aperture and takes it out."""
    errors = {"typical": [], "own": []}
    rng = np.random.default_rng(8)
    for _ in range(10):
        centres, fwhm, img = _sized_pair(rng, 0.65, [600.0, 2400.0], [0.75, 0.45])
        typical = aperture_photometry(img, centres, spacing=SPACING, sources=[True, True],
                                      template_fwhm_um=(2.05, 0.6, 0.6))
        own = aperture_photometry(img, centres, spacing=SPACING, sources=[True, True],
                                  template_fwhm_um=fwhm, aperture_correction=True)
        alone = aperture_photometry(_sized_pair(rng, 0.65, [600.0, 0.0], [0.75, 0.45])[2],
                                    centres[:1], spacing=SPACING)
        errors["typical"].append(typical["intensity"].iloc[0] / alone["intensity"].iloc[0] - 1)
        errors["own"].append(own["intensity"].iloc[0] / 600.0 - 1)
    assert abs(np.mean(errors["own"])) < 0.05, errors["own"]
    assert abs(np.mean(errors["typical"])) > 3 * abs(np.mean(errors["own"])), errors


def test_null_positions_lie_on_the_cell_away_from_every_synapse():
    from pipeline.stages.weights import null_positions

    mask = np.zeros((16, 96, 96), bool)
    mask[6:10, 40:56, :] = True                               # a dendrite along x
    synapses = np.array([[8.0, 48.0, 20.0], [8.0, 48.0, 60.0]])
    null = null_positions(mask, synapses, spacing=SPACING, n=50, min_distance_um=1.5)
    assert len(null) >= 3
    assert mask[tuple(null.astype(int).T)].all()
    d = np.linalg.norm((null[:, None] - synapses[None]) * SPACING, axis=2)
    assert d.min() >= 1.5
    pair = np.linalg.norm((null[:, None] - null[None]) * SPACING, axis=2)
    assert pair[np.triu_indices(len(null), 1)].min() >= 1.5
    assert len(null_positions(np.zeros_like(mask), synapses, spacing=SPACING)) == 0


def test_an_undetected_synapse_at_another_ones_detection_is_not_observed():
    """Its light is the detection's (distinct_puncta): called absent it would be a loss and a
    rebirth; it is not observed there instead."""
    from pipeline.stages.weights import shadowed_by_detection

    um = np.array([[8.0, 4.0, 4.0],     # A detected
                   [8.0, 4.0, 4.3],     # B, 0.3 um beside A: shadowed
                   [8.8, 4.0, 4.0],     # C, 0.8 um below A (0.4 after z scaling): shadowed
                   [8.0, 4.0, 5.5],     # D, 1.5 um away: measured on its own
                   [8.0, 6.0, 4.0]])    # E detected
    vox = um / np.asarray(SPACING)
    out = shadowed_by_detection(vox, [True, False, False, False, True], spacing=SPACING)
    assert out.tolist() == [False, True, True, False, False]
    assert not shadowed_by_detection(vox, [True] * 5, spacing=SPACING).any()
    assert not shadowed_by_detection(vox, [False] * 5, spacing=SPACING).any()
