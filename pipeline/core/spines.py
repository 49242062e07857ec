"""Spine heads in a cell fill (one channel): bright compact blobs beside the dendrite's shaft.

Work in progress (issue 26): measured on the simulator's ``spines`` regime, not yet called by
the workflow (the sessions sheet's ``target: spines`` is still refused).  In a fill the shaft
is the brightest structure, as wide as a spine head, and a blob filter answers to it all along
its length.  Three steps keep its answer out:

- the shaft is estimated as the median along in-plane lines longer than twice a head
  (:func:`~pipeline.core.shaft.line_background` with ``statistic='median'``) and subtracted;
- the shaft's core (where that estimate stands above ``core_share`` of its largest value
  within ``core_window_um``) is where the estimate is least exact (a dendrite that climbs in z
  leaves the plane of a line along it): a peak there counts only if it also stands out of the
  core's own response around it (a stubby spine on the shaft does, the shaft's noise does not);
- peaks are kept within ``max_distance_um`` of the dendrite.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .noise import robust_noise
from .optics import FWHM_TO_SIGMA, PSF_FWHM_UM
from .shaft import dendrite_mask, line_background


def shaft_core(background: np.ndarray, *, spacing, share: float = 0.5,
               window_um: float = 3.0, sds: float = 8.0) -> np.ndarray:
    """Where ``background`` (the shaft estimate) is at least ``share`` of its largest value
    within ``window_um`` laterally (one plane either side), on a dendrite that stands ``sds``
    of its robust noise SDs above zero."""
    spacing = np.asarray(spacing, float)
    size = np.maximum(np.round(window_um / spacing).astype(int) | 1, 1)
    size[0] = 3
    local_max = ndimage.maximum_filter(background, size=tuple(size))
    return (background >= share * local_max) & (local_max > sds * robust_noise(background))


def _peaks(response: np.ndarray, half, floor: float) -> np.ndarray:
    """Integer (z, y, x) of local maxima of ``response`` above ``floor`` (neighbourhood
    ``2 * half + 1``)."""
    size = tuple(2 * np.asarray(half, int) + 1)
    top = ndimage.maximum_filter(response, size=size, mode="nearest")
    return np.argwhere((response >= top) & (response > floor))


def detect_spines(image: np.ndarray, *, spacing, head_fwhm_um: float = 0.6,
                  threshold: float = 6.0, surround_ratio: float = 2.0, line_um: float = 3.0,
                  directions: int = 16, core_share: float = 0.5, core_window_um: float = 3.0,
                  core_threshold: float = 2.0, core_context_um: float = 1.5,
                  max_distance_um: float = 3.0,
                  min_separation_um=(0.8, 0.3, 0.3)) -> pd.DataFrame:
    """Spine heads in one (z, y, x) stack of a cell fill.

    Parameters
    ----------
    image : (z, y, x) array, the fill
    spacing : voxel size (z, y, x), um
    head_fwhm_um : typical head diameter, um (added to the PSF for the matched filter)
    threshold : peak response in units of the response's robust noise SD
    surround_ratio : the background Gaussian's width over the matched one
    line_um, directions : the shaft estimate's lines (:func:`~pipeline.core.shaft.line_background`)
    core_share, core_window_um : the shaft's core (:func:`shaft_core`)
    core_threshold, core_context_um : a peak in the core must exceed the mean response of the
        core within ``core_context_um`` (Gaussian window) by this many of its SDs there
    max_distance_um : peaks farther than this from the dendrite are dropped (None: kept)
    min_separation_um : half-size (z, y, x) of the neighbourhood a peak must top

    Returns
    -------
    DataFrame, one row per head, brightest first: ``z, y, x`` (voxel units), ``peak``,
    ``snr``, ``on_shaft`` (1 where the peak lies in the shaft's core), ``shaft`` (the shaft
    estimate there), ``cell_distance_um`` (to the dendrite; NaN when none is seen).
    """
    spacing = np.asarray(spacing, float)
    image = image.astype(np.float32, copy=False)
    shaft = line_background(image, spacing=spacing, length_um=line_um, directions=directions,
                            statistic="median")
    sigma = np.sqrt((np.asarray(PSF_FWHM_UM) * FWHM_TO_SIGMA) ** 2
                    + (head_fwhm_um * FWHM_TO_SIGMA) ** 2) / spacing
    signal = image - shaft
    response = ndimage.gaussian_filter(signal, sigma) - ndimage.gaussian_filter(
        signal, sigma * surround_ratio)
    del signal
    noise = robust_noise(response)
    core = shaft_core(shaft, spacing=spacing, share=core_share, window_um=core_window_um)
    half = np.maximum(np.round(np.asarray(min_separation_um) / spacing).astype(int), 1)
    peaks = _peaks(response, half, threshold * noise)
    at = tuple(peaks.T)
    on_shaft = core[at]
    if on_shaft.any():   # the core's own mean and SD of the response around each peak
        window = np.array([1.0, core_context_um, core_context_um]) / spacing
        weight = ndimage.gaussian_filter(core.astype(np.float32), window)
        mean = ndimage.gaussian_filter(np.where(core, response, 0), window)
        square = ndimage.gaussian_filter(np.where(core, response * response, 0), window)
        w = np.maximum(weight[at], 1e-6)
        sd = np.sqrt(np.maximum(square[at] / w - (mean[at] / w) ** 2, 0))
        stands_out = (response[at] - mean[at] / w) > core_threshold * np.maximum(sd, noise)
        keep = ~on_shaft | stands_out
        peaks, on_shaft = peaks[keep], on_shaft[keep]
        at = tuple(peaks.T)
    distance = np.full(len(peaks), np.nan)
    dendrite = dendrite_mask(shaft, spacing=spacing)
    if dendrite is not None and len(peaks):
        inside = ndimage.distance_transform_edt(~dendrite, sampling=spacing)
        distance = inside[at]
        if max_distance_um is not None:
            keep = distance <= max_distance_um
            peaks, on_shaft, distance = peaks[keep], on_shaft[keep], distance[keep]
            at = tuple(peaks.T)
    out = pd.DataFrame({"z": peaks[:, 0].astype(float), "y": peaks[:, 1].astype(float),
                        "x": peaks[:, 2].astype(float), "peak": response[at],
                        "snr": response[at] / noise, "on_shaft": on_shaft.astype(int),
                        "shaft": shaft[at], "cell_distance_um": distance})
    return out.sort_values("snr", ascending=False, ignore_index=True)
