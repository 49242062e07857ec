import numpy as np
import pytest

from pipeline.detect import detect_puncta, morphology_coefficient
from pipeline.evaluate import match_points, precision_recall
from pipeline.simulate import render_puncta

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


def _isolated_puncta(rng, n=12, shape=(20, 128, 128)):
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
    img = render_puncta(shape, SPACING, centres, np.full(len(centres), 3000.0), sig)
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
    rng = np.random.default_rng(1)
    img = rng.poisson(5.0, size=(20, 128, 128)).astype(np.float32)
    assert len(detect_puncta(img, spacing=SPACING)) == 0


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
    without = detect_puncta(fake, spacing=spacing_of(sim_pyr))
    with_morph = detect_puncta(fake, spacing=spacing_of(sim_pyr), morphology=morph)
    assert len(with_morph) < 0.2 * max(len(without), 1) and len(without) > 5
