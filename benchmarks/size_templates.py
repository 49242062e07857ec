"""What one template size costs the weights: deblended photometry at the true positions with
one typical size, with each synapse's own size, and with its whole light.

    python benchmarks/size_templates.py RUN [RUN ...] [--out FILE]

``RUN``: a simulated regime's folder with ``data/`` and ``results/`` (as ``make bench`` and
``regime_run.py`` leave them; the script reads the truth, the ingested stacks and the channels
stage's shares).  In every session of a two-channel cell, every true synapse present and in
view is measured at its true place with the weights stage's aperture photometry, every one of
them a source of light (nothing missed, nothing misplaced), its neighbours' light taken out:

- ``one size``: every template ``weights.deblend_fwhm_um`` (``own_size: false``);
- ``own true size``: each synapse's template its simulated size (``own_templates`` of its
  image FWHM), the light inside the aperture;
- ``own true size, whole light``: the same, the aperture's share divided out (what
  ``own_size: true`` does, here with the true sizes where the workflow has its detections');
- ``own measured size, whole light``: the sizes the detect stage measured, each true synapse
  the mean over the cell's sessions of the ``size_um`` of its detection (the nearest within
  0.35 um; only a detection with no other within 0.7 um), weighted by its SNR squared, as
  the weights stage pools a track's (the typical size where it has none): the workflow's own
  estimate, with the positions still true.

Per run: r of log intensity (less each session's median) against log true weight, over the
rows every method measures above zero (their number: ``rows scored``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runs_table import main_over_runs, true_synapse_rows, two_channel_sessions  # noqa: E402

#: a detection this near (um, z times Z_SCALE) a true synapse is its detection
MATCH_UM = 0.35
METHODS = ("one size", "own true size", "own true size, whole light",
           "own measured size, whole light")


def _measured_sizes(run: Path, cell: str, session: str, at: np.ndarray,
                    spacing) -> tuple[np.ndarray, np.ndarray]:
    """The detect stage's ``size_um`` and ``snr`` of the detection nearest each position
    (within :data:`MATCH_UM`), NaN where there is none."""
    from scipy.spatial import cKDTree

    from pipeline.core.optics import Z_SCALE
    from pipeline.stages.weights import sizes_clear_of_neighbours

    path = run / "results" / "detect" / cell / f"{session}.csv"
    det = pd.read_csv(path) if path.exists() else pd.DataFrame()   # a session left out
    scale = np.asarray(spacing) * [Z_SCALE, 1, 1]
    if det.empty:
        return np.full(len(at), np.nan), np.full(len(at), np.nan)
    size = sizes_clear_of_neighbours(det.assign(session=session))   # as the weights stage
    dist, j = cKDTree(det[["z", "y", "x"]].to_numpy() * scale).query(at * scale)
    near = dist < MATCH_UM
    return np.where(near, size[j], np.nan), np.where(near, det["snr"].to_numpy(float)[j], np.nan)


def cell_rows(run: Path, cell: str, truth: pd.DataFrame, spacing) -> pd.DataFrame:
    """One cell's true synapse-sessions measured each way (columns :data:`METHODS`)."""
    from pipeline.core.channels import remove_bleedthrough
    from pipeline.core.optics import PSF_FWHM_UM
    from pipeline.core.photometry import aperture_photometry
    from pipeline.params import WeightsParams
    from pipeline.stages.weights import own_templates, snr_weighted_sizes

    params = WeightsParams()
    typical = list(params.deblend_fwhm_um)
    # each true synapse's measured size: its detections' over the sessions, pooled as the
    # weights stage pools a track's
    measured = pd.concat([pd.DataFrame(dict(zip(("size_um", "snr"), _measured_sizes(
        run, cell, session, t[["z", "y", "x"]].to_numpy(float), spacing))),
        index=t["synapse_id"].to_numpy()) for session, t in truth.groupby("session")])
    measured = snr_weighted_sizes(measured["size_um"], measured["snr"], measured.index)
    out = []
    for session, t, psd, morph, used in two_channel_sessions(run, cell, truth):
        psd = remove_bleedthrough(psd, morph, used, spacing=spacing)
        at = t[["z", "y", "x"]].to_numpy(float)
        true_lateral = np.hypot(PSF_FWHM_UM[1], t["size_um"].to_numpy())
        templates = {"one size": (typical, False),
                     "own true size": (own_templates(true_lateral, typical), False),
                     "own true size, whole light": (own_templates(true_lateral, typical), True),
                     "own measured size, whole light": (own_templates(
                         measured.reindex(t["synapse_id"]).to_numpy(), typical), True)}
        row = {"cell": cell, "session": session, "true_weight": t["weight"].to_numpy()}
        for name, (template, whole) in templates.items():
            row[name] = aperture_photometry(
                psd, at, spacing=spacing, radius_um=list(params.aperture_um),
                sources=np.ones(len(at), bool), template_fwhm_um=template,
                aperture_correction=whole)["intensity"].to_numpy()
        out.append(pd.DataFrame(row))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def log_r(rows: pd.DataFrame, column: str) -> float:
    """r of log ``column`` (less its session's median) with log true weight, over the rows
    every method measures above 0 (one row at a sliver above 0 is worth -5 in log)."""
    above = rows[(rows[list(METHODS)] > 0).all(axis=1)]
    if len(above) < 3:
        return np.nan
    log_i = np.log(above[column])
    log_i = log_i - log_i.groupby([above["cell"], above["session"]]).transform("median")
    return float(np.corrcoef(log_i, np.log(above["true_weight"]))[0, 1])


def run_summary(run: Path) -> dict:
    rows = true_synapse_rows(run, cell_rows)
    if rows.empty:
        return {"run": run.name, "rows": 0}
    return {"run": run.name, "rows": len(rows),
            "rows scored": int((rows[list(METHODS)] > 0).all(axis=1).sum()),
            **{f"r, {name}": log_r(rows, name) for name in METHODS}}


def main(argv=None) -> int:
    return main_over_runs(run_summary, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
