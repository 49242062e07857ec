"""Optics constants."""
from __future__ import annotations

import numpy as np

#: a Gaussian's SD per unit of its full width at half maximum
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
