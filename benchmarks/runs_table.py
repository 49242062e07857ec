"""The command line of a script that sums up each of several run folders in one table row.

    main_over_runs(run_summary, description, argv)

``run_summary(run: Path) -> dict``: one row per run folder given on the command line; the
table is printed as markdown and, with ``--out FILE``, written there.  Such a summary that
measures the true synapses of a run reads them with :func:`true_synapse_rows` and each
session's channels with :func:`two_channel_sessions`.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def two_channel_sessions(run: Path, cell: str, truth: pd.DataFrame):
    """Each session of ``cell`` with a morphology share chosen by the channels stage: yields
    ``(session, its rows of truth, PSD-95 channel, morphology channel, the share)``, the
    channels as float32 from the ingested stack (one session in memory at a time)."""
    import numpy as np
    import tifffile

    shares = json.loads((run / "results" / "channels" / f"{cell}.json").read_text())["sessions"]
    for session, t in truth.groupby("session"):
        used = shares.get(session, {}).get("used")
        if used is None:        # one channel, or a repeat session the sheet leaves out
            continue
        stack = tifffile.imread(run / "results" / "ingest" / cell / f"{session}.tif")
        yield session, t, stack[:, 0].astype(np.float32), stack[:, 1].astype(np.float32), used


def true_synapse_rows(run: Path, cell_rows: Callable) -> pd.DataFrame:
    """``cell_rows(run, cell, truth, spacing)`` of each simulated cell of ``run`` (its
    ``data/truth``), given the cell's true synapse-sessions present and in view with a weight
    above 0, concatenated (empty where no cell gives any)."""
    truth = pd.read_csv(run / "data" / "truth" / "synapses.csv")
    params = json.loads((run / "data" / "truth" / "params.json").read_text())
    truth = truth[(truth["present"] == 1) & (truth["in_view"] == 1) & (truth["weight"] > 0)]
    parts = [cell_rows(run, cell, t, params[cell]["spacing"]) for cell, t in truth.groupby("cell")]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def main_over_runs(run_summary: Callable[[Path], dict], description: str, argv=None) -> int:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    table = pd.DataFrame([run_summary(r) for r in args.runs]).round(3)
    text = table.to_markdown(index=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0
