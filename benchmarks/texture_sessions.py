"""Each session's texture factor, and which sessions the track stage names for it.

    python benchmarks/texture_sessions.py RUN [RUN ...] [--out FILE]

``RUN``: a simulated regime's folder with ``results/`` (as ``make bench``, ``regime_run.py``
and ``presence_benchmark.py`` leave them).  The detect stage (the defaults) is run again on
every ingested two-channel session there, with the morphology share the channels stage chose,
and its ``texture_factor`` read: how many times ``detect.brightness_noise`` raised the
threshold on the labelled cell's brightest 10 %.  Per run: the sessions, the factor's range
(median, largest), and the sessions at ``track.warn_texture_factor`` or above, which the track
stage names (:func:`pipeline.stages.track.texture_warning`).  A regime with a textured bright
shaft (channel_departure) should be named in every session; the smooth ones in none.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runs_table import main_over_runs  # noqa: E402

from pipeline.contract import chosen_for  # noqa: E402
from pipeline.inputs.stacks import load_ingested  # noqa: E402
from pipeline.params import DetectParams, TrackParams  # noqa: E402
from pipeline.stages.detect import detect_session  # noqa: E402
from pipeline.stages.track import session_texture  # noqa: E402


def run_textures(run: Path) -> pd.DataFrame:
    """One row per two-channel session of ``run``: cell, session, texture_factor."""
    results = run / "results"
    rows = []
    for tif in sorted((results / "ingest").glob("*/*.tif")):
        stack, meta = load_ingested(tif)
        if stack.shape[0] < 2:
            continue
        js = results / "channels" / f"{tif.parent.name}.json"
        channels = json.loads(js.read_text()) if js.exists() else None
        puncta = detect_session(stack, spacing=meta["voxel_um"], params=DetectParams(),
                                share=chosen_for(channels, meta["session"]).get("used"))
        rows.append({"cell": tif.parent.name, "session": tif.stem,
                     "texture_factor": session_texture(puncta)})
    return pd.DataFrame(rows)


def run_summary(run: Path, *, limit: float = TrackParams.warn_texture_factor) -> dict:
    t = run_textures(run)
    f = t["texture_factor"]
    named = t[f >= limit]
    return {"run": run.name, "cells": t["cell"].nunique(), "sessions": len(t),
            "texture factor, median": f.median(), "smallest": f.min(), "largest": f.max(),
            f"sessions named (>= {limit:g})": len(named),
            "cells named": named["cell"].nunique()}


def main(argv=None) -> int:
    return main_over_runs(run_summary, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
