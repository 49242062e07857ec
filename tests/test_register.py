import numpy as np
import pandas as pd
import pytest

from pipeline.stages.detect import detect_puncta
from pipeline.truth.evaluate import registration_error_um
from pipeline.core.frames import to_reference, transform_points
from pipeline.stages.register import phase_correlate, register_session

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


def test_puncta_that_pair_up_nowhere_leave_the_full_resolution_image_transform(sim_pyr):
    # the binned correlation is only a start for the puncta; when none pair up, the transform
    # must be the full-resolution image registration, as without puncta
    sp = spacing_of(sim_pyr)
    ref, mov = (sim_pyr.images[k].astype(np.float32) for k in (0, 1))
    far = np.random.default_rng(0).uniform(500, 600, (20, 3))
    with_far = register_session(ref, mov, spacing=sp, reference_points_um=far,
                                moving_points_um=far + [0, 300, 0])
    without = register_session(ref, mov, spacing=sp)
    assert with_far["n_matches"] == 0
    np.testing.assert_allclose(with_far["matrix"], without["matrix"], atol=1e-9)
    tr = sim_pyr.truth[sim_pyr.truth.session == "s01"]
    err = registration_error_um(without["matrix"], tr[["z", "y", "x"]].to_numpy() * sp,
                                tr[["z_um", "y_um", "x_um"]].to_numpy())
    assert np.median(err) < 0.15, np.median(err)


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


@pytest.fixture(scope="module")
def sim_rotated():
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    return simulate_cell(SimulationParams(cell_type="pyr", shape=(24, 320, 320), n_sessions=3,
                                          seed=32, shift_sd_um=(1.0, 4.0, 4.0), rotation_deg=5.0,
                                          tilt_deg=1.0), cell="rot01")


def _register_with_puncta(sim, s, **options):
    sp = spacing_of(sim)
    dets = [detect_puncta(sim.images[k][0].astype(np.float32), spacing=sp,
                          morphology=sim.images[k][1]) for k in (0, s)]
    return register_session(sim.images[0].astype(np.float32), sim.images[s].astype(np.float32),
                            spacing=sp, reference_points_um=dets[0][["z", "y", "x"]].to_numpy() * sp,
                            moving_points_um=dets[1][["z", "y", "x"]].to_numpy() * sp, **options)


def test_known_rotation_and_tilt_are_recovered(sim_rotated):
    sp = spacing_of(sim_rotated)
    for s in (1, 2):
        true = np.asarray(sim_rotated.transforms[s])
        true_deg = np.degrees(np.arctan2(true[2, 1], true[1, 1]))   # about z, session -> ref
        assert abs(true_deg) > 2.5                                   # the test has a rotation
        tr = sim_rotated.truth[sim_rotated.truth.session == f"s{s:02d}"]
        src, dst = tr[["z", "y", "x"]].to_numpy() * sp, tr[["z_um", "y_um", "x_um"]].to_numpy()
        rigid = _register_with_puncta(sim_rotated, s, model="rigid", warp_length_um=0)
        assert abs(rigid["rotation_deg"] - true_deg) < 1.0, (rigid["rotation_deg"], true_deg)
        err = registration_error_um(rigid, src, dst)
        assert np.median(err) < 0.1 and np.percentile(err, 95) < 0.25, np.percentile(err, [50, 95])
        # a translation alone cannot do this: the field's edges are a micrometre off
        shift_only = _register_with_puncta(sim_rotated, s, model="translation", warp_length_um=0,
                                           max_rotation_deg=0)
        assert np.percentile(registration_error_um(shift_only, src, dst), 95) > 0.5


def test_warp_round_trip_and_shrinks_to_zero_far_from_the_puncta():
    from pipeline.core.frames import to_reference, to_session, warp_displacement
    from pipeline.stages.register import fit_warp

    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 40, (30, 3))
    res = 0.3 * np.sin(pts[:, [1]] / 8.0) * np.array([[0.2, 1.0, 0.5]])
    warp = fit_warp(pts, res, length_um=8.0)
    m = np.eye(4)
    m[:3, 3] = [1.0, -2.0, 3.0]
    transform = {"matrix": m.tolist(), "warp": warp}
    q = rng.uniform(5, 35, (50, 3))
    np.testing.assert_allclose(to_session(transform, to_reference(transform, q)), q, atol=1e-4)
    assert np.abs(warp_displacement(warp, [[500.0, 500.0, 500.0]])).max() < 1e-9
    near = warp_displacement(warp, pts)
    assert np.corrcoef(near[:, 1], res[:, 1])[0, 1] > 0.8          # follows the residuals


def test_session_without_overlap_is_flagged_not_trusted(sim_pyr):
    # the reference is the left third of the field, the session the right third: no overlap
    sp = spacing_of(sim_pyr)
    ref = sim_pyr.images[0][:, :, :, :85].astype(np.float32)
    mov = sim_pyr.images[0][:, :, :, 170:].astype(np.float32)
    dets = [detect_puncta(im[0], spacing=sp, morphology=im[1]) for im in (ref, mov)]
    res = register_session(ref, mov, spacing=sp,
                           reference_points_um=dets[0][["z", "y", "x"]].to_numpy() * sp,
                           moving_points_um=dets[1][["z", "y", "x"]].to_numpy() * sp)
    assert not res["reliable"], res


def test_auto_model_fits_a_rotation_only_where_the_puncta_show_one(sim_pyr, sim_pv, sim_rotated):
    for sim in (sim_pyr, sim_pv):                 # translation only
        for s in (1, 2):
            assert _register_with_puncta(sim, s)["model"] == "translation"
    sp = spacing_of(sim_rotated)
    for s in (1, 2):
        res = _register_with_puncta(sim_rotated, s)
        assert res["model"] != "translation", res["loo_error_um"]
        tr = sim_rotated.truth[sim_rotated.truth.session == f"s{s:02d}"]
        err = registration_error_um(res, tr[["z", "y", "x"]].to_numpy() * sp,
                                    tr[["z_um", "y_um", "x_um"]].to_numpy())
        assert np.median(err) < 0.1 and np.percentile(err, 95) < 0.25


# --------------------------------------------------------------------------- issue 31
def _linear_angle_deg(matrix) -> float:
    m = np.asarray(matrix, float)
    return float(np.degrees(np.arctan2(m[2, 1] - m[1, 2], m[1, 1] + m[2, 2])))


def _register_stage(sim, s):
    """The register stage as the workflow calls it (default parameters) on session s."""
    from pipeline.params import RegisterParams
    from pipeline.stages.register import register_to_reference

    sp = spacing_of(sim)
    stacks = [sim.images[k].astype(np.float32) for k in (0, s)]
    pts = [detect_puncta(im[0], spacing=sp, morphology=im[1])[["z", "y", "x"]].to_numpy() * sp
           for im in stacks]
    return register_to_reference(stacks[0], stacks[1], spacing=sp, reference_spacing=sp,
                                 cell="c", session=f"s{s:02d}", reference_session="s00",
                                 reference_points_um=pts[0], moving_points_um=pts[1],
                                 params=RegisterParams())


def _truth_pairs(sim, s):
    sp = spacing_of(sim)
    t = sim.truth[(sim.truth.session == f"s{s:02d}") & (sim.truth.present == 1)
                  & (sim.truth.in_view == 1)]
    return t, t[["z", "y", "x"]].to_numpy() * sp, t[["z_um", "y_um", "x_um"]].to_numpy()


def test_a_field_rotated_beyond_the_search_bound_is_recovered():
    from pipeline.stages.register import estimate_rotation_z
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    for deg in (5.8, 7.5):          # the default search bound is 6 degrees
        sim = simulate_cell(SimulationParams(cell_type="pyr", shape=(20, 256, 256), n_sessions=2,
                                             seed=33, rotation_deg=deg, rotation_min_deg=deg,
                                             shift_sd_um=(0.5, 2.0, 2.0)), cell="r")
        true = np.degrees(np.arctan2(sim.transforms[1][2, 1], sim.transforms[1][1, 1]))
        assert abs(abs(true) - deg) < 1e-6
        angle, _ = estimate_rotation_z(sim.images[0].astype(np.float32),
                                       sim.images[1].astype(np.float32), spacing=spacing_of(sim))
        assert abs(angle - true) < 0.5, (angle, true)       # the image search, not clipped
        res = _register_stage(sim, 1)
        assert abs(_linear_angle_deg(res["matrix"]) - true) < 0.2, (res["matrix"], true)


def test_a_dense_cluster_with_shift_and_warp_keeps_every_identity():
    from scipy.spatial import cKDTree

    from pipeline.truth.simulate import SimulationParams, simulate_cell

    sim = simulate_cell(SimulationParams(cell_type="PV", shape=(20, 256, 256), n_sessions=2,
                                         seed=34, synapse_density_per_um=2.5,
                                         min_separation_um=0.6, shift_sd_um=(0.3, 0.7, 0.7),
                                         warp_um=0.3, warp_wavelength_um=20.0), cell="d")
    t, src, dst = _truth_pairs(sim, 1)
    nn = cKDTree(dst).query(dst, k=2)[0][:, 1]
    assert np.median(nn) < 1.0                        # a dense shaft: neighbours under 1 um
    res = _register_stage(sim, 1)
    mapped = to_reference(res, src)
    nearest = cKDTree(dst).query(mapped)[1]
    assert np.array_equal(nearest, np.arange(len(dst))), "a synapse took a neighbour's place"
    err = np.linalg.norm(mapped - dst, axis=1)
    assert np.percentile(err, 95) < 0.3, np.percentile(err, [50, 95])


def test_a_synapse_far_beyond_every_other_is_registered():
    from scipy.spatial import cKDTree

    from pipeline.truth.simulate import SimulationParams, simulate_cell

    sim = simulate_cell(SimulationParams(cell_type="pyr", shape=(20, 320, 320), n_sessions=2,
                                         seed=35, shift_sd_um=(0.5, 3.0, 3.0), rotation_deg=4.0,
                                         warp_um=0.3, warp_wavelength_um=25.0,
                                         sparse_fraction=0.45, sparse_density_factor=0.04),
                        cell="f")
    t, src, dst = _truth_pairs(sim, 1)
    far = cKDTree(dst).query(dst, k=2)[0][:, 1]
    lone = int(np.argmax(far))
    assert far[lone] > 6.0, far[lone]                  # several um beyond every other punctum
    res = _register_stage(sim, 1)
    err = np.linalg.norm(to_reference(res, src) - dst, axis=1)
    assert err[lone] < 0.3, (err[lone], far[lone])


@pytest.fixture(scope="module")
def deformed_right_half():
    """Session 1 of a cell with the right half of its field deformed beyond any smooth model:
    content at (y, x) moves by 0.8 um sin(2 pi x / 4 um) in y for x past the centre.  Returns
    the cell, its true session positions after the deformation, the reference positions and
    the centre line x (um)."""
    from scipy import ndimage

    from pipeline.truth.simulate import SimulationParams, simulate_cell

    sim = simulate_cell(SimulationParams(cell_type="pyr", shape=(20, 320, 320), n_sessions=2,
                                         seed=36, shift_sd_um=(0.3, 1.0, 1.0)), cell="w")
    sp = spacing_of(sim)
    amp, wavelength = 0.8, 4.0
    img = sim.images[1].astype(np.float32)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in img.shape[1:]], indexing="ij")
    centre = (img.shape[3] - 1) * sp[2] / 2

    def dy(x_um):
        return np.where(x_um > centre, amp * np.sin(2 * np.pi * (x_um - centre) / wavelength), 0)

    coords = [zz, yy - dy(xx * sp[2]) / sp[1], xx]
    deformed = np.stack([ndimage.map_coordinates(c, coords, order=1) for c in img])
    t, src, dst = _truth_pairs(sim, 1)
    src = src + np.c_[np.zeros(len(src)), dy(src[:, 2]), np.zeros(len(src))]
    undeformed = _register_stage(sim, 1)
    sim.images[1] = deformed
    return sim, src, dst, centre, undeformed


def test_a_correct_registration_has_no_flagged_region(deformed_right_half):
    *_, undeformed = deformed_right_half
    assert undeformed["misregistered_regions"] == []
    assert np.max(undeformed["error"]["error_um"]) < 0.25
    assert undeformed["dissimilar_regions"] == []          # nor a patch unlike the reference
    final = np.array(undeformed["similarity"]["final"], float)
    contrast = np.array(undeformed["similarity"]["contrast"], float)
    assert np.nanmedian(final[contrast >= 3.0]) > 0.9


def test_a_deformed_right_half_looks_unlike_the_reference_there_and_not_elsewhere(
        deformed_right_half):
    sim, src, dst, centre, _ = deformed_right_half
    res = _register_stage(sim, 1)
    unlike = res["dissimilar_regions"]
    assert len(unlike) >= 1
    assert all(r["x_um"][1] > centre + 2 for r in unlike)   # on the deformed half only
    assert all(r["x_um"][0] > centre - 4 for r in unlike)   # (a block reaches 4 um out)
    sim_map = res["similarity"]
    final = np.array(sim_map["final"], float)
    x = sim_map["origin_um"][1] + np.arange(final.shape[1]) * sim_map["step_um"][1]
    assert np.nanmedian(final[:, x < centre - 4]) > 0.9      # the left half still alike
    assert np.nanmedian(final[:, x > centre + 4]) < 0.7


def test_a_deformed_right_half_is_flagged_there_and_not_elsewhere(deformed_right_half):
    from pipeline.core.frames import registration_error_at

    sim, src, dst, centre, _ = deformed_right_half
    res = _register_stage(sim, 1)
    err = np.linalg.norm(to_reference(res, src) - dst, axis=1)
    estimate = registration_error_at(res, dst)
    right, flagged = dst[:, 2] > centre + 1.0, estimate > res["error"]["limit_um"]
    left = dst[:, 2] < centre - 1.0
    assert (err[right] > 0.5).sum() >= 5                   # the deformation did harm
    assert flagged[right & (err > 0.5)].mean() >= 0.8       # where it is wrong, it says so
    assert not flagged[left].any()                          # and nowhere else
    assert len(res["misregistered_regions"]) >= 1
    assert all(r["x_um"][1] > centre for r in res["misregistered_regions"])


def test_rows_in_a_misregistered_region_carry_the_flag_and_can_be_censored():
    from pipeline.stages.weights import measure_session

    rng = np.random.default_rng(3)
    stack = rng.normal(100, 5, (2, 12, 64, 64)).astype(np.float32)
    sp = [0.8, 0.0887, 0.0887]
    meta = {"cell": "c", "cell_type": "pyr", "session": "s01", "day": 4.0, "voxel_um": sp}
    pos = np.array([[4.8, 1.5, 1.0], [4.8, 1.5, 4.5]])            # left, right (um)
    tracks = pd.DataFrame({"synapse_id": [1, 2], "session": "s00", "z_um": pos[:, 0],
                           "y_um": pos[:, 1], "x_um": pos[:, 2], "z": pos[:, 0] / sp[0],
                           "y": pos[:, 1] / sp[1], "x": pos[:, 2] / sp[2],
                           "link_distance_um": np.nan})
    transform = {"matrix": np.eye(4).tolist(), "reliable": True,
                 "error": {"origin_um": [0.0, 0.0], "step_um": [4.0, 4.0], "limit_um": 0.5,
                           "error_um": [[0.1, 0.9], [0.1, 0.9]]}}
    rows, _ = measure_session(stack, meta, transform, tracks)
    rows = rows.set_index("synapse_id")
    assert rows.loc[2, "registration_error_um"] > 0.5 > rows.loc[1, "registration_error_um"]
    assert "misregistered" in rows.loc[2, "quality_flags"]
    assert "misregistered" not in rows.loc[1, "quality_flags"]
    assert rows.loc[2, "observed"] == 1 and rows.loc[2, "present"] == 0   # called, by default
    # with censor_misregistered, where the position may be another place's no call is made
    from pipeline.params import WeightsParams

    censored, _ = measure_session(stack, meta, transform, tracks,
                                  params=WeightsParams(censor_misregistered=True))
    censored = censored.set_index("synapse_id")
    assert censored.loc[2, "observed"] == 0 and np.isnan(censored.loc[2, "present"])
    assert censored.loc[1, "observed"] == 1 and censored.loc[1, "present"] == 0


def test_misregistered_regions_reach_the_warnings_and_the_qc_figure(tmp_path):
    import json

    from pipeline.review.qc import registration_figure
    from pipeline.review.report import registration_warnings

    folder = tmp_path / "register" / "c1"
    folder.mkdir(parents=True)
    result = {"cell": "c1", "session": "s03", "matrix": np.eye(4).tolist(), "reliable": True,
              "shift_um": [0, 0, 0], "n_matches": 30, "residual_um": 0.1,
              "error": {"limit_um": 0.5},
              "misregistered_regions": [{"y_um": [2.0, 14.0], "x_um": [20.0, 30.0],
                                         "error_um": 0.9}]}
    (folder / "s03.json").write_text(json.dumps(result))
    (folder / "s01.json").write_text(json.dumps({**result, "session": "s01",
                                                 "misregistered_regions": []}))
    unlike = {"y_um": [30.0, 38.0], "x_um": [4.0, 12.0], "similarity": 0.21}
    similarity = {"origin_um": [2.0, 2.0], "step_um": [4.0, 4.0],
                  "final": [[0.9, None], [0.95, 0.21]], "global": [[0.8, None], [0.9, 0.2]],
                  "contrast": [[5.0, 0.9], [6.0, 5.5]]}
    (folder / "s02.json").write_text(json.dumps({**result, "session": "s02",
                                                 "misregistered_regions": [],
                                                 "dissimilar_regions": [unlike],
                                                 "similarity": similarity}))
    warnings = registration_warnings(tmp_path)
    assert len(warnings) == 2
    assert "cell c1, session s03" in warnings[1] and "y 2-14 um, x 20-30 um" in warnings[1]
    assert "cell c1, session s02" in warnings[0] and "y 30-38 um, x 4-12 um" in warnings[0]
    assert "unlike the reference" in warnings[0] and "0.21" in warnings[0]
    img = np.random.default_rng(0).random((4, 64, 64)).astype(np.float32)
    registration_figure(img, img, result, spacing=[0.8, 0.5, 0.5],
                        reference_spacing=[0.8, 0.5, 0.5], path=tmp_path / "qc.png")
    assert (tmp_path / "qc.png").stat().st_size > 1000
    from pipeline.review.pages import _qc_table   # the cell's review page

    page = _qc_table([{**result, "qc_href": "qc.png"}])
    assert "y 2-14, x 20-30 um (0.9 um)" in page
    page = _qc_table([{**result, "qc_href": "qc.png", "dissimilar_regions": [unlike],
                       "similarity": similarity}])
    assert "y 30-38, x 4-12 um (0.21)" in page and "<td>0.90 " in page   # median of 3 patches
    registration_figure(img, img, {**result, "dissimilar_regions": [unlike],
                                   "similarity": similarity}, spacing=[0.8, 0.5, 0.5],
                        reference_spacing=[0.8, 0.5, 0.5], path=tmp_path / "qc2.png")
    assert (tmp_path / "qc2.png").stat().st_size > 1000


def test_a_block_cut_by_the_moving_field_edge_is_measured_over_its_covered_part():
    from scipy import ndimage

    from pipeline.core.blockmatch import local_shifts

    rng = np.random.default_rng(5)
    reference = ndimage.gaussian_filter(rng.normal(size=(1, 8, 96, 96)), (0, 0.7, 1.5, 1.5))
    d = np.array([0.0, 1.3, -0.7])                       # voxels
    moving = ndimage.shift(reference[0], d, order=3)[None]
    footprint = np.ones((96, 96), bool)
    footprint[:, 60:] = False                            # beyond the moving field's edge
    moving[..., 60:] = 0
    spacing = np.array([0.8, 0.2, 0.2])
    field = local_shifts(reference, moving, footprint, spacing=spacing, block_vox=32)
    kept = field["kept"]
    # block columns start at x = 0, 16, 32, 48, 64: the one at 48 is 12/32 inside (skipped),
    # the one at 32 is 28/32 inside and measured, beside the whole ones
    assert kept[:, :3].all() and not kept[:, 3:].any(), kept
    partial, whole = field["displacement_um"][:, 2], field["displacement_um"][:, :2]
    assert np.allclose(partial, -d * spacing, atol=0.03), partial     # within 0.15 voxel
    assert np.abs(partial - whole.mean(1)).max() < 0.015     # within 0.08 voxel of the whole


def test_a_lone_block_that_departs_from_the_blocks_two_steps_away_is_dropped():
    from pipeline.core.blockmatch import agreeing_blocks

    # the kept blocks of a PSD-95-alone session (held-out single_channel pyr04 s07): few, and
    # one of them, (5, 8), with a single kept block beside it, locked 0.7 um off
    kept = np.zeros((10, 10), bool)
    for i, j in [(1, 3), (1, 4), (2, 4), (2, 5), (3, 6), (3, 7), (4, 7), (5, 8), (6, 0), (6, 1),
                 (6, 2), (6, 3), (7, 5), (8, 5), (8, 6), (8, 8), (8, 9)]:
        kept[i, j] = True
    rng = np.random.default_rng(0)
    shifts = rng.normal(0, 0.02, (10, 10, 3))
    shifts[5, 8] = [0.0, -0.56, -0.42]
    ok = agreeing_blocks(shifts, kept)
    expected = kept.copy()
    expected[5, 8] = False
    assert (ok == expected).all(), ok
    # the same lone block agreeing with the field stays
    shifts[5, 8] = [0.0, 0.03, -0.02]
    assert (agreeing_blocks(shifts, kept) == kept).all()
    # a real local deformation, a corner of blocks 0.4 um off together, stays
    shifts[6:, :4] = [0.0, 0.4, 0.1]
    assert (agreeing_blocks(shifts, kept) == kept).all()


def test_the_error_map_rises_beyond_the_matched_puncta_and_not_in_an_empty_corner():
    from pipeline.core.regerror import error_map

    rng = np.random.default_rng(8)
    # matched puncta along a dendrite from x = 2 to 20 um at y = 10 um, registered exactly
    matched = np.c_[rng.uniform(2, 5, 30), 10 + rng.normal(0, 0.3, 30), np.linspace(2, 20, 30)]
    lone = np.array([[3.0, 10.0, 32.0]])          # 12 um beyond the last matched punctum
    reference = np.vstack([matched, lone])
    moving = matched + rng.normal(0, 0.03, matched.shape)   # the lone one found no partner
    pairs = (np.arange(30), np.arange(30))
    error, regions = error_map({"matrix": np.eye(4)}, reference, moving, pairs,
                               field_um=(40.0, 40.0), limit_um=0.5)
    from pipeline.core.frames import registration_error_at

    at = registration_error_at({"error": error}, np.vstack([matched[::5], lone,
                                                             [[3.0, 36.0, 4.0]]]))
    assert np.all(at[:-2] < 0.25), at              # along the matched puncta: trusted
    assert at[-2] > 0.5, at                         # the lone punctum: an extrapolation
    assert at[-1] < 0.25, at                        # an empty corner: nothing to flag
    assert len(regions) == 1 and regions[0]["x_um"][0] > 20, regions


def _dense_shaft(rng, n=60):
    """PV-like puncta along a shaft at y = 20 um, neighbours 0.6-1.6 um apart (um, z y x)."""
    x = 2 + np.cumsum(rng.uniform(0.6, 1.6, n))
    return np.c_[rng.uniform(3, 6, n), 20 + rng.normal(0, 0.25, n), x]


def _mutual_nearest(reference, mapped, gate_um=1.0):
    from scipy.spatial import cKDTree

    d, j = cKDTree(reference).query(mapped)
    back = cKDTree(mapped).query(reference)[1]
    i = np.flatnonzero((d < gate_um) & (back[j] == np.arange(len(mapped))))
    return i, j[i]


def test_the_error_map_sees_a_dense_patch_moved_off_as_a_whole():
    from pipeline.core.frames import registration_error_at
    from pipeline.core.regerror import error_map, local_shifts

    rng = np.random.default_rng(31)
    # two shafts 1 um apart: a moved punctum lands within the gate of a wrong neighbour, and
    # the nearest-partner measures read less than the patch's offset (0.42 um here)
    reference = np.vstack([_dense_shaft(rng), _dense_shaft(rng) + [0.0, 1.0, 0.0]])
    patch = (reference[:, 2] > 30) & (reference[:, 2] < 38)
    off = np.array([0.0, 0.2, 0.55])                       # 0.59 um: the patch's residual
    moving = reference + rng.normal(0, 0.03, reference.shape) + patch[:, None] * off
    pairs = _mutual_nearest(reference, moving)
    error, regions = error_map({"matrix": np.eye(4)}, reference, moving, pairs,
                               field_um=(40.0, 80.0), limit_um=0.5)
    at = registration_error_at({"error": error}, reference)
    away = np.abs(reference[:, 2] - 34) > 12
    assert np.all(at[patch] > 0.5), at[patch]             # the moved patch is flagged
    assert np.all(at[away] < 0.3), at[away].max()         # and not far from it
    assert len(regions) == 1 and 26 <= regions[0]["x_um"][0] <= 31, regions
    # where the puncta around agree (3 votes or more), on the patch's own shift
    shift = local_shifts(reference, moving)
    agreed = shift[patch][shift[patch] > 0]
    assert len(agreed) >= 3, shift[patch]
    assert np.allclose(agreed, np.linalg.norm(off * [0.5, 1, 1]), atol=0.08), agreed
    assert np.all(shift[~patch] == 0), shift[~patch].max()


def test_the_error_map_flags_nothing_on_a_dense_shaft_registered_right():
    from pipeline.core.regerror import error_map

    rng = np.random.default_rng(32)
    reference = _dense_shaft(rng)
    keep = rng.random(len(reference)) > 0.15              # births, losses and misses
    moving = reference[keep] + rng.normal(0, 0.05, (keep.sum(), 3))
    pairs = _mutual_nearest(reference, moving)
    error, regions = error_map({"matrix": np.eye(4)}, reference, moving,
                               (pairs[0], pairs[1]), field_um=(40.0, 80.0), limit_um=0.5)
    assert regions == [], regions
    assert np.max(error["error_um"]) < 0.3, np.max(error["error_um"])


def test_a_dense_patch_moved_off_as_a_whole_is_moved_back_and_its_neighbours_stay():
    from pipeline.core.frames import to_reference, to_session
    from pipeline.core.regerror import patch_correction

    rng = np.random.default_rng(33)
    reference = np.vstack([_dense_shaft(rng), _dense_shaft(rng) + [0.0, 1.0, 0.0]])
    patch = (reference[:, 2] > 30) & (reference[:, 2] < 38)
    off = np.array([0.1, 0.2, 0.55])
    moving = reference + rng.normal(0, 0.03, reference.shape) + patch[:, None] * off
    correction = patch_correction(reference, moving)
    transform = {"matrix": np.eye(4).tolist(), "patch": correction}
    mapped = to_reference(transform, moving)
    lateral = np.linalg.norm((mapped - reference)[:, 1:], axis=1)
    inner = patch & (np.abs(reference[:, 2] - 34) < 2.5)
    assert np.all(lateral[inner] < 0.15), lateral[inner]          # were 0.59 off
    away = np.abs(reference[:, 2] - 34) > 8
    moved = np.linalg.norm(mapped - moving, axis=1)
    assert np.all(moved[away] < 0.02), moved[away].max()           # the rest stays put
    assert np.allclose(to_session(transform, mapped), moving, atol=1e-4)
    # a registration that is right has no patch to move
    assert patch_correction(reference, reference + rng.normal(0, 0.03, reference.shape)) is None
