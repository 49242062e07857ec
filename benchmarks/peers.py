"""The tools a lab would otherwise use, wrapped to take and return what our stages do.

Detection: ``skimage.feature.blob_log`` and ``trackpy.locate`` (3D, anisotropic).
Tracking, given the same reference-frame detections: ``trackpy.link`` (with memory) and
``laptrack.LapTrack`` (with gap closing).  Registration: ``skimage.registration.
phase_cross_correlation`` alone on the morphology channel.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pipeline.stages.detect import punctum_sigma_um

PSF_FWHM_UM = (2.0, 0.4, 0.4)


def detect_blob_log(image, *, spacing, threshold: float, sigma_scale: float = 1.0):
    """blob_log on the image scaled to its 99.99th percentile, sigmas matched to the PSF."""
    from skimage.feature import blob_log

    sig = punctum_sigma_um(PSF_FWHM_UM, 0.0) / np.asarray(spacing) * sigma_scale
    norm = image / max(np.percentile(image, 99.99), 1e-9)
    blobs = blob_log(norm, min_sigma=sig * 0.8, max_sigma=sig * 1.5, num_sigma=3,
                     threshold=threshold, exclude_border=False)
    return pd.DataFrame(blobs[:, :3], columns=["z", "y", "x"])


def detect_trackpy(image, *, spacing, diameter_um: float, minmass: float):
    """trackpy.locate in 3D with an anisotropic (odd) diameter; NaN positions dropped."""
    import trackpy

    trackpy.quiet()
    diam = tuple(int(2 * np.ceil(d / s / 2) + 1) for d, s in
                 zip((diameter_um * 5, diameter_um, diameter_um), spacing))
    sep = tuple(max(1, int(d * 0.5)) for d in diam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = trackpy.locate(image, diameter=diam, minmass=minmass, separation=sep)
    return f[["z", "y", "x"]].dropna().reset_index(drop=True)


def _link_input(puncta: pd.DataFrame, z_scale: float) -> pd.DataFrame:
    return pd.DataFrame({"frame": puncta["session_index"].to_numpy(),
                         "z": puncta["z_um"].to_numpy() * z_scale,
                         "y": puncta["y_um"].to_numpy(), "x": puncta["x_um"].to_numpy()})


def link_trackpy(puncta: pd.DataFrame, *, search_range_um: float, memory: int,
                 z_scale: float = 0.5) -> np.ndarray:
    """trackpy.link on reference-frame positions; returns a synapse id per row."""
    import trackpy

    trackpy.quiet()
    df = _link_input(puncta, z_scale)
    linked = trackpy.link(df, search_range=search_range_um, memory=memory,
                          pos_columns=["z", "y", "x"], t_column="frame")
    return linked.loc[df.index, "particle"].to_numpy() + 1


def link_laptrack(puncta: pd.DataFrame, *, cutoff_um: float, max_gap: int,
                  z_scale: float = 0.5) -> np.ndarray:
    """laptrack with gap closing over ``max_gap`` missing sessions; a synapse id per row."""
    from laptrack import LapTrack

    df = _link_input(puncta, z_scale).reset_index(drop=True)
    lt = LapTrack(cutoff=cutoff_um ** 2, gap_closing_cutoff=cutoff_um ** 2,
                  gap_closing_max_frame_count=max_gap + 1, splitting_cutoff=False,
                  merging_cutoff=False)
    track_df, _, _ = lt.predict_dataframe(df, coordinate_cols=["z", "y", "x"],
                                          frame_col="frame", only_coordinate_cols=False)
    # predict_dataframe keeps the input rows in order with a track id per row
    return track_df["track_id"].to_numpy() + 1


def register_skimage(reference, moving, *, spacing) -> np.ndarray:
    """phase_cross_correlation alone (upsample 10); 4x4 moving um -> reference um."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(reference, moving, upsample_factor=10)
    m = np.eye(4)
    m[:3, 3] = np.asarray(shift) * np.asarray(spacing)
    return m
