"""The pair test's fit (pipeline.core.pairs): known answers on synthetic spots."""
import numpy as np

from pipeline.core.pairs import fit_pairs

SIGMA_PX = 1.9
R = 8


def _spot(centres, *, widths=(SIGMA_PX, SIGMA_PX), seed=0):
    """A (17, 17) patch of Gaussians (peak 2000 photons each) on a tilted background, with
    photon noise."""
    yy, xx = np.mgrid[0:2 * R + 1, 0:2 * R + 1].astype(float)
    image = 40.0 + 0.5 * (yy - R)
    for cy, cx in centres:
        image += 2000.0 * np.exp(-0.5 * (((yy - cy) / widths[0]) ** 2 + ((xx - cx) / widths[1]) ** 2))
    return np.random.default_rng(seed).poisson(image).astype(float)


def test_two_points_closer_than_resolved_are_two_and_one_long_spot_is_one():
    pair = [(R, R - 2.5), (R, R + 2.5)]                   # 0.45 um apart at 0.09 um pixels
    centres, amplitudes, f = fit_pairs(_spot(pair), sigma_px=SIGMA_PX)
    assert f > 30
    np.testing.assert_allclose(np.sort(centres[:, 1]), [R - 2.5, R + 2.5], atol=0.4)
    np.testing.assert_allclose(amplitudes, 2000, rtol=0.15)
    # one punctum as long as the pair is wide: the free-shape Gaussian explains it
    assert fit_pairs(_spot([(R, R)], widths=(SIGMA_PX, 1.6 * SIGMA_PX)), sigma_px=SIGMA_PX)[2] < 30


def test_patches_fitted_together_give_what_each_gives_alone():
    patches = np.array([_spot([(R, R - 2.5), (R + 1, R + 2)], seed=1),
                        _spot([(R - 1, R)], widths=(1.4 * SIGMA_PX, SIGMA_PX), seed=2),
                        _spot([(R + 0.5, R - 0.5)], seed=3)])
    centres, amplitudes, f = fit_pairs(patches, sigma_px=SIGMA_PX)
    for k, patch in enumerate(patches):
        c, a, g = fit_pairs(patch, sigma_px=SIGMA_PX)
        np.testing.assert_allclose(c, centres[k], atol=1e-6)
        np.testing.assert_allclose(g, f[k], rtol=1e-6)
    # shared between two threads (two parts of the batch): the same values
    for got, whole in zip(fit_pairs(patches, sigma_px=SIGMA_PX, workers=2), (centres, amplitudes, f)):
        np.testing.assert_allclose(got, whole, rtol=1e-9, atol=1e-9)
