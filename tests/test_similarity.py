"""The image half of registration QC: resampling through a whole transform, and local
similarity with known answers."""
import numpy as np
import pytest
from scipy import ndimage

from pipeline.core.correlate import rotation_z_matrix, translation_matrix
from pipeline.core.frames import to_reference
from pipeline.core.similarity import (dissimilar_regions, local_similarity,
                                      resample_to_reference)

SPACING = np.array([0.8, 0.2, 0.2])


@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(0)
    return ndimage.gaussian_filter(rng.random((10, 80, 90)), (1, 3, 3)).astype(np.float32)


def test_resampling_puts_a_session_point_where_the_transform_maps_it():
    offset = np.array([0.0, 0.1, 0.1])               # a stack binned by 2
    m = translation_matrix([0.4, 1.0, -0.6]) @ rotation_z_matrix(4.0, [4.0, 8.0, 9.0])
    grid = {"origin_um": [0.0, 0.0], "step_um": [8.0, 8.0],      # a local correction too
            "displacement_um": np.tile([0.0, -0.3, 0.5], (3, 3, 1)).tolist()}
    from pipeline.core.frames import fit_warp

    warp = fit_warp(np.array([[4.0, 5.0, 6.0], [4.0, 10.0, 12.0], [3.0, 14.0, 4.0]]),
                    np.array([[0.1, 0.3, -0.2], [0.0, -0.3, 0.3], [0.05, 0.2, 0.25]]),
                    length_um=4.0)                  # a smooth warp, the node path's hardest
    for transform in (m, {"matrix": m.tolist(), "grid": grid},
                      {"matrix": m.tolist(), "grid": grid, "warp": warp}):
        for z, y, x in [(5, 40, 45), (4, 22, 58)]:
            blob = np.zeros((10, 80, 90), np.float32)
            blob[z, y, x] = 1.0
            blob = ndimage.gaussian_filter(blob, (1.0, 2.5, 2.5))
            out = resample_to_reference(blob, transform, shape=blob.shape, spacing=SPACING,
                                        reference_spacing=SPACING, offset_um=offset)
            found = np.array(ndimage.center_of_mass(out)) * SPACING + offset
            where = to_reference(transform, [[z, y, x] * SPACING + offset])[0]
            assert np.abs(found - where).max() < 0.03, (found, where)


def test_the_node_path_for_a_grid_agrees_with_the_exact_affine_path(texture):
    m = translation_matrix([0.0, 0.7, 0.3]) @ rotation_z_matrix(-3.0, [4.0, 8.0, 9.0])
    zero_grid = {"origin_um": [0.0, 0.0], "step_um": [4.0, 4.0],
                 "displacement_um": np.zeros((4, 4, 3)).tolist()}
    kw = dict(shape=texture.shape, spacing=SPACING, reference_spacing=SPACING)
    exact = resample_to_reference(texture, m, **kw)
    nodes = resample_to_reference(texture, {"matrix": m.tolist(), "grid": zero_grid}, **kw)
    both = (exact != 0) & (nodes != 0)
    assert both.mean() > 0.7
    assert np.abs(exact - nodes)[both].max() < 1e-4
    # and a grid's displacement moves the content by it
    shifted = {"origin_um": [0.0, 0.0], "step_um": [4.0, 4.0],
               "displacement_um": np.tile([0.0, 0.6, 0.0], (4, 4, 1)).tolist()}
    moved = resample_to_reference(texture, {"matrix": m.tolist(), "grid": shifted}, **kw)
    assert np.abs(moved[:, 3:, :] - exact[:, :-3, :])[:, 10:-10, 10:-10].max() < 1e-3


def test_similarity_is_one_for_the_same_stack_and_drops_where_a_patch_moved(texture):
    valid = np.ones(texture.shape, bool)
    same = local_similarity(texture, texture, valid, block_vox=20)
    assert np.allclose(same["similarity"], 1.0, atol=1e-5)
    moved = texture.copy()
    moved[:, :, 50:] = np.roll(texture, 10, axis=1)[:, :, 50:]   # right part off by 2 um
    res = local_similarity(texture, moved, valid, block_vox=20)
    centres_x = res["origin_vox"][1] + np.arange(res["similarity"].shape[1]) * res["step_vox"][1]
    left, right = centres_x < 40, centres_x > 60
    assert res["similarity"][:, left].min() > 0.99
    assert res["similarity"][:, right].max() < 0.3
    # blocks without enough valid voxels are not measured
    half = valid.copy()
    half[:, :, 45:] = False
    cut = local_similarity(texture, moved, half, block_vox=20)
    assert np.isnan(cut["similarity"][:, right]).all()


def test_dissimilar_regions_need_structure_and_low_similarity():
    sim = {"origin_um": [2.0, 2.0], "step_um": [2.0, 2.0],
           "final": [[0.9, 0.2, 0.95], [0.92, 0.3, None], [0.9, 0.9, 0.1]],
           "contrast": [[5.0, 5.0, 5.0], [5.0, 4.0, 5.0], [5.0, 5.0, 1.0]]}
    regions = dissimilar_regions(sim, min_similarity=0.5)
    assert len(regions) == 1                  # (2, 2) is background: not a region
    r = regions[0]
    assert r["y_um"] == [0.0, 6.0] and r["x_um"] == [2.0, 6.0] and r["similarity"] == 0.2
    # PSD-95 alone (a one-channel cell): puncta change between sessions, no region
    assert dissimilar_regions({**sim, "channel": "psd95"}, min_similarity=0.5) == []


def test_contrast_is_structure_over_the_background_texture(texture):
    rng = np.random.default_rng(1)
    stack = rng.normal(0, 1, texture.shape).astype(np.float32)      # background alone
    stack[:, 20:40, 20:40] += 200 * (texture[:, 20:40, 20:40] - texture.mean())   # a structure
    res = local_similarity(stack, stack, np.ones(stack.shape, bool), block_vox=20)
    centres = res["origin_vox"][0] + np.arange(res["contrast"].shape[0]) * res["step_vox"][0]
    on = np.abs(centres - 29.5) < 1
    assert res["contrast"][np.ix_(on, on)].min() > 3
    assert np.median(res["contrast"]) < 1.2


def test_smoothed_noise_sd_is_what_smoothing_leaves_of_white_noise():
    """The noise SD after smoothing, from the kernel's weights: what a large draw of white
    noise, smoothed, shows (within its sampling error)."""
    from scipy import ndimage

    from pipeline.core.similarity import _smoothed_noise_sd

    rng = np.random.default_rng(11)
    noise = rng.normal(scale=3.0, size=(48, 160, 160)).astype(np.float32)
    for sigma in [(0.5, 1.0, 1.0), (1.5, 3.0, 3.0)]:
        seen = ndimage.gaussian_filter(noise, sigma, mode="wrap").std()
        assert abs(_smoothed_noise_sd(noise, sigma) / seen - 1) < 0.03, sigma


@pytest.mark.parametrize("slab", [1, 3])
def test_resampling_a_few_planes_at_a_time_is_resampling_the_whole_grid(texture, slab,
                                                                          monkeypatch):
    """The slabs (10 planes: 8 + 2 by default, and other cuts) give what one resampling of
    every voxel gives, image and cover, to the bit."""
    import pipeline.core.similarity as similarity

    m = translation_matrix([0.3, 0.7, -0.4]) @ rotation_z_matrix(-3.0, [4.0, 8.0, 9.0])
    grid = {"origin_um": [0.0, 0.0], "step_um": [4.0, 4.0],
            "displacement_um": np.tile([0.1, 0.6, -0.2], (4, 4, 1)).tolist()}
    kw = dict(shape=texture.shape, spacing=SPACING, reference_spacing=SPACING, with_cover=True)
    for transform in (m, {"matrix": m.tolist(), "grid": grid}):
        default = resample_to_reference(texture, transform, **kw)
        monkeypatch.setattr(similarity, "SLAB_PLANES", texture.shape[0])
        whole = resample_to_reference(texture, transform, **kw)
        monkeypatch.setattr(similarity, "SLAB_PLANES", slab)
        cut = resample_to_reference(texture, transform, **kw)
        monkeypatch.undo()
        assert 0 < whole[1].mean() < 1            # part of the grid falls outside the session
        for out in (default, cut):
            assert np.array_equal(out[0], whole[0]) and np.array_equal(out[1], whole[1])
