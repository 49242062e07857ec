"""The smoothed image read at points equals the whole image smoothed, read there."""
import numpy as np
from scipy import ndimage

from pipeline.core.smooth_at import gaussian_at, gaussian_kernel


def test_points_equal_the_filtered_image_inside_and_at_the_faces():
    rng = np.random.default_rng(3)
    image = rng.gamma(2.0, 50.0, (12, 40, 50)).astype(np.float32)
    sigma = (0.75, 2.8, 1.3)
    points = np.r_[np.column_stack([rng.integers(0, n, 300) for n in image.shape]),
                   [[0, 0, 0], [11, 39, 49], [0, 39, 2], [11, 1, 49]]]
    whole = ndimage.gaussian_filter(image.astype(float), sigma, mode="nearest")
    np.testing.assert_allclose(gaussian_at(image, points, sigma=sigma),
                               whole[tuple(points.T)], rtol=1e-10)


def test_a_step_is_smoothed_across_and_not_along():
    image = np.zeros((5, 30, 30))
    image[:, :, 15:] = 1.0
    at = gaussian_at(image, np.array([[2, 10, 15], [2, 10, 14], [2, 10, 25], [2, 10, 3]]),
                     sigma=(1.0, 2.0, 2.0))
    assert 0.5 < at[0] < 0.7 and 0.3 < at[1] < 0.5      # either side of the step
    assert np.isclose(at[2], 1.0) and at[3] == 0.0       # far from it: unchanged


def test_a_zero_sigma_axis_is_not_smoothed_and_the_kernel_sums_to_one():
    image = np.arange(60, dtype=float).reshape(3, 4, 5)
    points = np.array([[1, 2, 3], [0, 0, 0]])
    np.testing.assert_allclose(gaussian_at(image, points, sigma=(0.0, 0.0, 0.0)),
                               image[tuple(points.T)])
    assert gaussian_kernel(0.0).tolist() == [1.0]
    assert np.isclose(gaussian_kernel(2.3).sum(), 1.0) and len(gaussian_kernel(2.3)) == 19
