"""The absent state's width by the labelled cell's brightness.

An absent synapse measures what its aperture holds without it: the photon noise and, on a
dendrite whose diffuse PSD-95 is patchy, the patch under it.  The shell around the aperture
gives the noise of single voxels, not of a patch the aperture's size, so on a bright textured
shaft the places without a synapse scatter about twice as widely (in snr units) as on the
cell's dim parts (channel_departure: SDs of 2.1-2.6 in the brightest fifth of the null
places against 1.1), and an absent synapse there measuring 4-6 is called present.  The null
places measure that width in bins of the morphology channel's brightness; the presence model
widens each row's absent state (and the noise of its measurement when present) by the width at
its place, and scales the null places by theirs before it takes the cell's width from them.
"""
from __future__ import annotations

import numpy as np

from .brightness_noise import brightness_noise_curve, brightness_noise_factor

#: bins of the null places' brightness (quantiles): the first, the dimmer half, is the
#: reference; about 2,400 places a cell of 8 sessions, 240 or more a bin
LEVEL_QUANTILES = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0)
#: fewer null places with a brightness than this: no curve (a factor of 1)
MIN_PLACES = 200


def absent_sd_factor(levels, null_levels, null_snr, *, quantiles=LEVEL_QUANTILES,
                     min_places: int = MIN_PLACES) -> np.ndarray:
    """How many times wider than on the cell's dim parts the absent state is at each of
    ``levels`` (the weights stage's ``morphology_level``): the robust SD of ``null_snr`` in
    bins of ``null_levels`` over the dimmer half's, less the tolerance of
    :func:`~pipeline.core.brightness_noise.brightness_noise_curve`, non-decreasing,
    interpolated (flat beyond the end bins).  1 where a level is NaN, and everywhere with
    fewer than ``min_places`` null places with a level."""
    levels = np.asarray(levels, float)
    null_levels, null_snr = np.asarray(null_levels, float), np.asarray(null_snr, float)
    known = np.isfinite(null_levels) & np.isfinite(null_snr)
    out = np.ones(levels.shape)
    if known.sum() < min_places:
        return out
    curve = brightness_noise_curve(null_snr[known], null_levels[known],
                                   np.ones(int(known.sum()), bool), quantiles=quantiles,
                                   min_voxels=min_places)
    finite = np.isfinite(levels)
    out[finite] = brightness_noise_factor(curve, levels[finite])
    return out
