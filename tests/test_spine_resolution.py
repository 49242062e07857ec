"""benchmarks/spine_errors.py's resolution measurement, which BENCHMARKS_SPINES.md and the
README quote for the share of spine heads merged with a neighbour by the optics alone: two
heads far apart are two maxima, two heads closer than the blur are one, and a dimmer head
merges farther out."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SPACING = np.array([0.8, 0.0887, 0.0887])


def _heads(lateral_um, second=1.0):
    """Two heads in plane 5, ``lateral_um`` apart along x (the second ``second`` times as
    bright), blurred as the simulator blurs a 0.6 um head (PSF, head and tube: SD 0.37 um
    laterally), and their truth rows."""
    from pipeline.core.optics import FWHM_TO_SIGMA, PSF_FWHM_UM

    shape = (11, 64, 96)
    x0 = 30.0
    pts = np.array([[5, 32, x0], [5, 32, x0 + lateral_um / SPACING[2]]])
    vol = np.zeros(shape)
    for (z, y, x), fill in zip(pts, (1.0, second)):
        vol[int(z), int(y), int(round(x))] = fill
    sd_um = np.sqrt((np.asarray(PSF_FWHM_UM) * FWHM_TO_SIGMA) ** 2
                    + (0.6 * FWHM_TO_SIGMA) ** 2 + 0.2 ** 2)
    truth = pd.DataFrame(np.round(pts), columns=["z", "y", "x"])
    return ndimage.gaussian_filter(vol, sd_um / SPACING), truth


def test_heads_apart_are_two_maxima_and_heads_closer_than_the_blur_are_one():
    from spine_errors import resolvable

    for apart, expected in ((2.0, 2), (0.5, 1)):
        image, truth = _heads(apart)
        found = resolvable(image, truth, spacing=SPACING, extra_fwhm_um=0.0,
                           min_separation_um=0.3)
        assert len(found["projection"]) == len(found["3-D"]) == expected, (apart, found)


def test_a_dimmer_head_merges_with_its_neighbour_at_a_distance_equal_heads_part():
    """1 um apart: two equal heads are two maxima; a head half as bright is a shoulder on its
    neighbour's flank, no maximum of its own (a missed spine no filter setting recovers)."""
    from spine_errors import resolvable

    for second, expected in ((1.0, 2), (0.5, 1)):
        image, truth = _heads(1.0, second)
        found = resolvable(image, truth, spacing=SPACING, extra_fwhm_um=0.0,
                           min_separation_um=0.3)
        assert len(found["projection"]) == expected, (second, found)
