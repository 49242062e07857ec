"""The weight ideal observer of benchmarks/weight_floor.py, whose r BENCHMARKS_WEIGHTS.md and
the README quote as what the photon noise leaves: unbiased, and its error the
Cramer-Rao bound of a Gaussian profile's amplitude."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from weight_floor import ideal_weights, noise_variance  # noqa: E402

SPACING = np.array([0.8, 0.1, 0.1])


def _profile_sum_sq(sigma_um, shape, centre):
    """sum(g^2) of the unit-integral Gaussian as ideal_weights samples it (within 3.5 SDs)."""
    sig = np.asarray(sigma_um) / SPACING
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1)
    inside = np.all(np.abs(grid - centre) <= np.ceil(3.5 * sig), axis=-1)
    g = np.exp(-0.5 * np.sum(((grid - centre) / sig) ** 2, axis=-1)) / (
        np.prod(sig) * (2 * np.pi) ** 1.5)
    return float(np.sum(g[inside] ** 2))


def test_ideal_weights_are_unbiased_with_the_cramer_rao_spread():
    rng = np.random.default_rng(3)
    shape = (12, 40, 40)
    centre = np.array([5.7, 20.3, 19.6])
    sigma_um = np.array([0.9, 0.2, 0.2])
    unit, weight, sd = 400.0, 1.3, 5.0          # counts per unit weight; noise SD per voxel
    variance = np.full(shape, sd ** 2)
    est = np.array([ideal_weights(rng.normal(0, sd, shape), variance, centre[None],
                                  np.array([weight]), sigma_um[None], unit,
                                  spacing=SPACING)[0] for _ in range(600)])
    bound = sd / np.sqrt(_profile_sum_sq(sigma_um, shape, centre)) / unit
    assert abs(est.mean() - weight) < 3 * bound / np.sqrt(len(est))
    assert 0.9 < est.std() / bound < 1.1
    # without noise the estimate is the weight
    assert ideal_weights(np.zeros(shape), variance, centre[None], np.array([weight]),
                         sigma_um[None], unit, spacing=SPACING)[0] == weight


def test_noise_variance_follows_the_noise_free_value():
    """Poisson-like noise (variance = value): each voxel's variance read back from the
    noise against the noise-free image, within 5 %."""
    rng = np.random.default_rng(4)
    clean = rng.uniform(10, 1000, (20, 64, 64)).astype(np.float32)
    noise = rng.normal(0, np.sqrt(clean)).astype(np.float32)
    var = noise_variance(noise, clean)
    assert np.median(np.abs(var / clean - 1)) < 0.05
