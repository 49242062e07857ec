"""How much of a true synapse's light the subtracted morphology share takes.

    python benchmarks/share_under_aperture.py RUN [RUN ...] [--out FILE]

``RUN``: a simulated regime's folder with ``data/`` and ``results/`` (as ``make bench``,
``regime_run.py`` and ``presence_benchmark.py`` leave them).  For every true synapse present and
in view in every session of a two-channel cell, the weights stage's aperture photometry (no
deblending) at its true place in that session's image, on the PSD-95 channel as it is and with
the share of the morphology channel the channels stage chose subtracted (as the detect and
weights stages subtract it).  The share's counts under the aperture are the difference.  Where
the shaft's diffuse PSD-95 is patchy, the cell's mean share is too much on a thin patch and too
little on a thick one: a dim synapse on a thin patch then measures nothing.  Per run: the rows,
the median share under the aperture over the median light of a synapse of true weight 1 (the
slope of the subtracted intensity on the true weight), and, among synapses dimmer than the
cell's median, the share of rows whose subtracted intensity is at or below zero and the
correlation of log intensity with log true weight over the rows above zero.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runs_table import main_over_runs, true_synapse_rows, two_channel_sessions  # noqa: E402


def cell_rows(run: Path, cell: str, truth: pd.DataFrame, spacing) -> pd.DataFrame:
    """One cell's true synapse-sessions with their aperture intensity, raw and subtracted."""
    from pipeline.core.channels import remove_bleedthrough
    from pipeline.core.photometry import aperture_photometry

    out = []
    for session, t, psd, morph, used in two_channel_sessions(run, cell, truth):
        at = t[["z", "y", "x"]].to_numpy()
        raw = aperture_photometry(psd, at, spacing=spacing)["intensity"].to_numpy()
        sub = aperture_photometry(remove_bleedthrough(psd, morph, used, spacing=spacing), at,
                                  spacing=spacing)["intensity"].to_numpy()
        out.append(pd.DataFrame({"cell": cell, "session": session, "true_weight": t["weight"],
                                 "raw": raw, "subtracted": sub, "share": raw - sub}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def run_summary(run: Path) -> dict:
    rows = true_synapse_rows(run, cell_rows)
    if rows.empty:
        return {"run": run.name, "rows": 0}
    per_weight = float(np.median(rows["subtracted"] / rows["true_weight"]))
    dim = rows[rows["true_weight"] < rows.groupby("cell")["true_weight"].transform("median")]
    return {"run": run.name, "rows": len(rows),
            "share under aperture / light of weight 1 (median)":
                float(np.median(rows["share"])) / per_weight,
            "dim rows": len(dim),
            "dim rows at or below zero": float(np.mean(dim["subtracted"] <= 0)),
            "r log intensity, dim rows above zero": log_r(dim),
            "r log intensity, all rows above zero": log_r(rows)}


def log_r(rows: pd.DataFrame) -> float:
    """Correlation of log subtracted intensity with log true weight, over rows above zero."""
    above = rows[rows["subtracted"] > 0]
    if len(above) < 3:
        return np.nan
    return float(np.corrcoef(np.log(above["subtracted"]), np.log(above["true_weight"]))[0, 1])


def main(argv=None) -> int:
    return main_over_runs(run_summary, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
