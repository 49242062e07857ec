import numpy as np
import pandas as pd

from pipeline.detect import detect_puncta
from pipeline.evaluate import match_points
from pipeline.simulate import render_puncta
from pipeline.weights import aperture_photometry, normalise_weights

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


def test_position_outside_the_stack_is_flagged():
    img = np.ones((16, 64, 64))
    phot = aperture_photometry(img, np.array([[8.0, 70.0, 32.0]]), spacing=SPACING)
    assert phot["in_view"].item() == 0


def test_uniformly_brighter_session_gives_the_same_normalised_weights():
    rng = np.random.default_rng(1)
    intens = rng.lognormal(0, 0.9, 50)
    table = pd.DataFrame({"intensity": np.concatenate([intens, 2.5 * intens]),
                          "present": 1, "session": ["a"] * 50 + ["b"] * 50})
    w = normalise_weights(table["intensity"], table["present"], groups=table["session"])
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
