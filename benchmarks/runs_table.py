"""The command line of a script that sums up each of several run folders in one table row.

    main_over_runs(run_summary, description, argv)

``run_summary(run: Path) -> dict``: one row per run folder given on the command line; the
table is printed as markdown and, with ``--out FILE``, written there.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd


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
