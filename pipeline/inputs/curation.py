"""Reading a person's curation file (``curation.tsv``): one action a row, tab-separated.

The actions and what they do are described in :mod:`pipeline.stages.curate`; this module checks
the file's form and names every bad row.  Nothing here writes the file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..contract import CURATION_CALLS as CALLS
from ..contract import CURATION_FILE_COLUMNS as COLUMNS
from ..contract import CURATION_IDENTITY as IDENTITY
from ..core.errors import InputError

#: the columns of the table :func:`read_curation` returns (the file's, and its row number)
ROW_FIELDS = COLUMNS + ["row"]


def read_curation(path: str | Path) -> pd.DataFrame:
    """Read and check the form of a curation file (every problem at once, naming rows)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except Exception as exc:
        raise InputError(f"{path}: cannot be read as a tab-separated table ({exc})") from exc
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in ("action", "cell", "synapse_id") if c not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; the columns are "
                         f"{', '.join(COLUMNS)} (tab-separated)")
    for col in COLUMNS:
        if col not in raw.columns:
            raw[col] = ""
    raw = raw[COLUMNS].apply(lambda s: s.str.strip())
    raw["row"] = range(1, len(raw) + 1)
    problems = []
    for r in raw.itertuples():
        where = f"{path}, row {r.row}"  # rows count the actions, not comment lines
        if r.action not in IDENTITY + CALLS:
            problems.append(f"{where}: action '{r.action}' is not one of "
                            f"{', '.join(IDENTITY + CALLS)}")
            continue
        if not r.synapse_id.isdigit():
            problems.append(f"{where}: synapse_id '{r.synapse_id}' must be a synapse number")
        if r.action in ("split",) + CALLS and not r.session:
            problems.append(f"{where}: '{r.action}' needs the session column")
        if r.action == "merge" and not r.other_synapse_id.isdigit():
            problems.append(f"{where}: 'merge' needs other_synapse_id (a synapse number)")
    if problems:
        raise InputError(f"{len(problems)} problem(s) in the curation file:\n  - "
                         + "\n  - ".join(problems))
    return raw


def row_error(row, text: str) -> InputError:
    """The error for one curation row (a row of :func:`read_curation`'s table), naming it."""
    return InputError(f"curation row {row.row} ({row.action} synapse {row.synapse_id} of cell "
                     f"{row.cell}): {text}")
