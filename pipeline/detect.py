"""3D detection of PSD-95 puncta.

A difference of Gaussians matched to the expected punctum (point-spread function convolved
with a typical punctum size, per axis in voxels) enhances puncta and removes the smooth
background.  When a morphology channel exists, the share of it that shows in the PSD-95
channel (bleed-through and diffuse PSD-95 in the shaft, estimated from the data) is first
subtracted, so bright shafts and empty spine heads are not taken for puncta.  The filtered
image's noise is estimated robustly (MAD over the stack), so one threshold, in units of noise,
works across sessions of different brightness.  Local maxima above the threshold
are localised to sub-voxel precision by a parabola through the log response on each axis.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .weights import MAD_TO_SD, aperture_photometry

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def punctum_sigma_um(psf_fwhm_um, punctum_fwhm_um: float) -> np.ndarray:
    """Per-axis SD (um) of a punctum of FWHM ``punctum_fwhm_um`` seen through the PSF."""
    psf = np.asarray(psf_fwhm_um, float) * FWHM_TO_SIGMA
    return np.sqrt(psf ** 2 + (punctum_fwhm_um * FWHM_TO_SIGMA) ** 2)


def dog_response(image: np.ndarray, *, spacing, sigma_um, ratio: float = 1.6) -> np.ndarray:
    """Difference of Gaussians at the matched scale (float32, same shape as ``image``)."""
    sig = np.asarray(sigma_um) / np.asarray(spacing)
    img = image.astype(np.float32, copy=False)
    small = ndimage.gaussian_filter(img, sig, mode="nearest")
    large = ndimage.gaussian_filter(img, sig * ratio, mode="nearest")
    small -= large
    return small


def robust_noise(values: np.ndarray) -> float:
    """SD of the noise from the median absolute deviation (puncta are a small minority)."""
    v = values.ravel()
    if v.size > 2_000_000:  # a regular subsample is plenty for a median
        v = v[:: v.size // 1_000_000]
    med = np.median(v)
    return float(MAD_TO_SD * np.median(np.abs(v - med)))


def morphology_coefficient(psd95: np.ndarray, morphology: np.ndarray, *, bin_yx: int = 2) -> float:
    """How much of the morphology channel shows in the PSD-95 channel (bleed-through plus
    diffuse, non-synaptic PSD-95 in the dendrite), estimated from the data.

    Both channels are block-averaged in y and x (to tame the photon noise cheaply) and
    background-subtracted (their medians); on bright morphology voxels (the dendrite) the
    median ratio PSD-95 / morphology is returned, which the puncta, a minority of those
    voxels, barely move.  Clipped to [0, 1].
    """
    from .register import bin_yx as block_average

    p, m = block_average(psd95, bin_yx), block_average(morphology, bin_yx)
    p -= np.median(p)
    m -= np.median(m)
    top = np.percentile(m, 99.9)
    sel = m > 0.3 * top
    if top <= 0 or sel.sum() < 100:
        return 0.0
    return float(np.clip(np.median(p[sel] / m[sel]), 0.0, 1.0))


def _subvoxel(resp: np.ndarray, peaks: np.ndarray):
    """Parabolic refinement of each peak on log(response) along z, y and x.

    Returns offsets (n, 3) in voxels, clipped to +-0.5, and the curvature-derived SD (n, 3).
    """
    offsets = np.zeros(peaks.shape, float)
    sigmas = np.full(peaks.shape, np.nan)
    shape = np.array(resp.shape)
    f0 = resp[tuple(peaks.T)]
    for ax in range(3):
        step = np.zeros(3, int)
        step[ax] = 1
        lo, hi = peaks - step, peaks + step
        ok = (lo[:, ax] >= 0) & (hi[:, ax] < shape[ax])
        fm = np.where(ok, resp[tuple(np.clip(lo, 0, shape - 1).T)], np.nan)
        fp = np.where(ok, resp[tuple(np.clip(hi, 0, shape - 1).T)], np.nan)
        pos = ok & (fm > 0) & (fp > 0) & (f0 > 0)
        with np.errstate(all="ignore"):
            lm, l0, lp = np.log(np.where(pos, fm, 1)), np.log(np.where(pos, f0, 1)), np.log(np.where(pos, fp, 1))
            curv = lm - 2 * l0 + lp
            off = np.where(pos & (curv < 0), 0.5 * (lm - lp) / curv, 0.0)
            sigmas[:, ax] = np.where(pos & (curv < 0), np.sqrt(-1.0 / curv), np.nan)
        offsets[:, ax] = np.clip(off, -0.5, 0.5)
    return offsets, sigmas


def detect_puncta(image: np.ndarray, *, spacing, psf_fwhm_um=(2.0, 0.4, 0.4),
                  punctum_fwhm_um: float = 0.0, threshold: float = 6.0,
                  min_separation_um=(0.8, 0.25, 0.25), aperture_um=(1.6, 0.6, 0.6),
                  mask: np.ndarray | None = None, morphology: np.ndarray | None = None,
                  morphology_coefficient_value: float | None = None) -> pd.DataFrame:
    """Find PSD-95 puncta in one (z, y, x) stack.

    Parameters
    ----------
    image : (z, y, x) array, the PSD-95 channel
    spacing : voxel size (z, y, x) in um
    psf_fwhm_um : FWHM of the point-spread function (z, y, x) in um
    punctum_fwhm_um : typical punctum diameter (FWHM) before blurring, um
    threshold : minimum peak response in units of the response's robust noise SD
    min_separation_um : half-size (z, y, x) of the neighbourhood in which a peak must be
        the maximum
    aperture_um : semi-axes of the photometry aperture (see :func:`aperture_photometry`)
    mask : optional boolean (z, y, x); peaks outside it are dropped
    morphology : optional (z, y, x) morphology channel; the part of it that shows in the
        PSD-95 channel (bleed-through, diffuse PSD-95 in the shaft, see
        :func:`morphology_coefficient`) is subtracted before detection, so empty spine heads
        and bright shafts are not taken for puncta
    morphology_coefficient_value : use this coefficient instead of estimating it

    Returns
    -------
    DataFrame, one row per punctum: ``z, y, x`` (sub-voxel, voxel units), ``peak`` (response),
    ``snr`` (peak over the response's noise SD), ``morphology_coefficient`` (subtracted share of
    the morphology channel), ``intensity``, ``background`` (aperture
    photometry), ``size_um`` (lateral FWHM estimated from the peak's curvature).
    """
    spacing = np.asarray(spacing, float)
    sigma_um = punctum_sigma_um(psf_fwhm_um, punctum_fwhm_um)
    signal = image
    k_morph = 0.0
    if morphology is not None:
        k_morph = (morphology_coefficient(image, morphology)
                   if morphology_coefficient_value is None else morphology_coefficient_value)
        signal = image.astype(np.float32) - np.float32(k_morph) * (
            morphology.astype(np.float32) - np.float32(np.median(morphology)))
    resp = dog_response(signal, spacing=spacing, sigma_um=sigma_um)
    noise = robust_noise(resp)
    half = np.maximum(np.round(np.asarray(min_separation_um) / spacing).astype(int), 1)
    local_max = ndimage.maximum_filter(resp, size=tuple(2 * half + 1), mode="nearest")
    cand = (resp == local_max) & (resp > threshold * noise)
    if mask is not None:
        cand &= mask
    peaks = np.argwhere(cand)
    cols = ["z", "y", "x", "peak", "morphology_coefficient", "snr", "intensity", "background",
            "size_um"]
    if len(peaks) == 0:
        return pd.DataFrame(columns=cols)
    offsets, sig_vox = _subvoxel(resp, peaks)
    pos = peaks + offsets
    phot = aperture_photometry(signal, pos, spacing=spacing, radius_um=aperture_um)
    peak = resp[tuple(peaks.T)]
    # the DoG of a Gaussian blob is narrower than the blob; report the lateral FWHM in um
    with np.errstate(all="ignore"):
        lateral = np.sqrt(sig_vox[:, 1] * sig_vox[:, 2]) * np.sqrt(spacing[1] * spacing[2]) / FWHM_TO_SIGMA
    out = pd.DataFrame({"z": pos[:, 0], "y": pos[:, 1], "x": pos[:, 2], "peak": peak,
                        "morphology_coefficient": k_morph,
                        "snr": peak / noise, "intensity": phot["intensity"].to_numpy(),
                        "background": phot["background"].to_numpy(), "size_um": lateral})
    return out.sort_values("snr", ascending=False, ignore_index=True)
