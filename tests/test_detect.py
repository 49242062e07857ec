import numpy as np
import pytest

from pipeline.detect import detect_puncta
from pipeline.evaluate import match_points, precision_recall
from pipeline.simulate import render_puncta

from conftest import spacing_of, truth_of

SPACING = np.array([0.8, 0.0887, 0.0887])


@pytest.mark.parametrize("which", ["sim_pyr", "sim_pv"])
def test_detection_recall_precision_on_simulated_sessions(which, request):
    sim = request.getfixturevalue(which)
    sp = spacing_of(sim)
    n_true = n_det = n_match = 0
    for s in range(3):
        det = detect_puncta(sim.images[s][0].astype(np.float32), spacing=sp)
        tr = truth_of(sim, s)
        ia, _ = match_points(det[["z", "y", "x"]].to_numpy() * sp, tr[["z", "y", "x"]].to_numpy() * sp)
        n_true, n_det, n_match = n_true + len(tr), n_det + len(det), n_match + len(ia)
    pr = precision_recall(n_true, n_det, n_match)
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
