"""Optics constants and the typical sizes that follow from them."""
from __future__ import annotations

import numpy as np

#: a Gaussian's SD per unit of its full width at half maximum
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))

#: FWHM (z, y, x) in um of a two-photon point-spread function through a cranial window
PSF_FWHM_UM = (2.0, 0.4, 0.4)
#: semi-axes (z, y, x) in um of the ellipsoid that integrates one punctum's light
APERTURE_UM = (1.6, 0.6, 0.6)
#: weight of z differences in distances between puncta: axial localisation and registration
#: are about twice as coarse as lateral
Z_SCALE = 0.5
