import numpy as np
import pytest

from pipeline.detect import detect_puncta
from pipeline.evaluate import registration_error_um
from pipeline.register import phase_correlate, register_session, transform_points

from conftest import spacing_of


@pytest.mark.parametrize("which", ["sim_pyr", "sim_pv"])
def test_phase_correlation_recovers_known_shift_within_half_a_voxel(which, request):
    sim = request.getfixturevalue(which)
    sp = spacing_of(sim)
    ref = sim.images[0].astype(np.float32)  # both channels, correlated jointly
    for s in (1, 2):
        shift_vox, peak = phase_correlate(ref, sim.images[s].astype(np.float32), spacing=sp)
        true = np.asarray(sim.transforms[s])[:3, 3] / sp  # pure translation in this sim
        assert np.all(np.abs(shift_vox - true) < 0.5), (shift_vox, true)
        assert peak > 0.05


def test_morphology_alone_recovers_shift_of_a_spiny_dendrite(sim_pyr):
    sp = spacing_of(sim_pyr)
    shift_vox, _ = phase_correlate(sim_pyr.images[0][1].astype(np.float32),
                                   sim_pyr.images[1][1].astype(np.float32), spacing=sp)
    true = np.asarray(sim_pyr.transforms[1])[:3, 3] / sp
    assert np.all(np.abs(shift_vox - true) < 0.5), (shift_vox, true)


def test_integer_shift_of_a_stack_is_recovered_exactly(sim_pv):
    sp = spacing_of(sim_pv)
    ref = sim_pv.images[0][1].astype(np.float32)
    moved = np.roll(ref, (2, -17, 9), axis=(0, 1, 2))
    shift_vox, _ = phase_correlate(ref, moved, spacing=sp)
    np.testing.assert_allclose(shift_vox, [-2, 17, -9], atol=0.25)


@pytest.mark.parametrize("which", ["sim_pyr", "sim_pv"])
def test_puncta_refinement_reaches_sub_0_1_um(which, request):
    sim = request.getfixturevalue(which)
    sp = spacing_of(sim)
    dets = [detect_puncta(im[0].astype(np.float32), spacing=sp, morphology=im[1])
            for im in sim.images]
    for s in (1, 2):
        res = register_session(sim.images[0].astype(np.float32),
                               sim.images[s].astype(np.float32), spacing=sp,
                               reference_points_um=dets[0][["z", "y", "x"]].to_numpy() * sp,
                               moving_points_um=dets[s][["z", "y", "x"]].to_numpy() * sp)
        tr = sim.truth[(sim.truth.session == f"s{s:02d}")]
        err = registration_error_um(res["matrix"], tr[["z", "y", "x"]].to_numpy() * sp,
                                    tr[["z_um", "y_um", "x_um"]].to_numpy())
        assert np.median(err) < 0.1, err
        assert res["reliable"] and res["n_matches"] >= 5


def test_transform_points_round_trip():
    m = np.eye(4)
    m[:3, 3] = [1.0, -2.0, 0.5]
    pts = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    back = transform_points(np.linalg.inv(m), transform_points(m, pts))
    np.testing.assert_allclose(back, pts)


def test_unrelated_stack_is_flagged_unreliable(sim_pyr):
    sp = spacing_of(sim_pyr)
    rng = np.random.default_rng(3)
    noise = rng.poisson(12.0, size=sim_pyr.images[0].shape).astype(np.float32)
    res = register_session(sim_pyr.images[0].astype(np.float32), noise, spacing=sp)
    assert not res["reliable"]


def test_session_of_different_depth_and_size_is_registered(sim_pyr):
    # sessions of one cell need not share a stack shape: a shallower, smaller second session
    sp = spacing_of(sim_pyr)
    offset = np.array([3, 20, 10])  # first plane, row and column kept from the full stack
    moving = sim_pyr.images[1][:, 3:17, 20:220, 10:240].astype(np.float32)
    res = register_session(sim_pyr.images[0].astype(np.float32), moving, spacing=sp)
    true = np.asarray(sim_pyr.transforms[1])[:3, 3] + offset * sp
    assert np.all(np.abs(np.asarray(res["shift_um"]) - true) < 0.5 * sp), (res["shift_um"], true)
    assert res["reliable"]
