"""Reading a sample-check file (``sample_check.tsv``, saved by the review page's sample check).

One mark a line, tab-separated with a header (:data:`pipeline.contract.SAMPLE_CHECK_COLUMNS`):
``checked`` (the tile was looked at; ``claims`` lists the synapse ids it showed), ``wrong``
(``synapse_id`` shown there is not a synapse) or ``missed`` (a synapse at ``y_um, x_um`` the
pipeline did not show).  Every bad line is named with its fix.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from ..contract import SAMPLE_CHECK_COLUMNS as COLUMNS
from ..contract import SAMPLE_CHECK_MARKS as MARKS
from ..core.errors import InputError


def parse_marks(text: str, *, source: str = "sample-check file") -> pd.DataFrame:
    """The marks of a sample-check file's text, checked; ``row`` is each mark's line number."""
    try:
        table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False,
                            comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{source}: not a tab-separated table ({exc})") from None
    missing = [c for c in ("tile", "mark") if c not in table.columns]
    if missing:
        raise InputError(f"{source}: no column(s) {', '.join(missing)}; the header is "
                         f"{chr(9).join(COLUMNS)} (tab-separated)")
    table = table.reindex(columns=COLUMNS, fill_value="")
    table["row"] = range(2, len(table) + 2)
    problems = []
    for r in table.itertuples(index=False):
        if r.mark not in MARKS:
            problems.append(f"line {r.row}: mark {r.mark!r} is not one of {', '.join(MARKS)}")
        elif r.mark == "wrong" and not r.synapse_id.strip().lstrip("-").isdigit():
            problems.append(f"line {r.row}: a 'wrong' mark needs the synapse_id it rejects")
        elif r.mark == "missed" and pd.to_numeric(pd.Series([r.y_um, r.x_um]),
                                                  errors="coerce").isna().any():
            problems.append(f"line {r.row}: a 'missed' mark needs y_um and x_um (numbers)")
        if not r.tile.strip():
            problems.append(f"line {r.row}: no tile")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    return table


def read_marks(path: Path) -> pd.DataFrame:
    """:func:`parse_marks` of a file, naming it in any error."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no sample-check file; open review/check.html of the run "
                         "(served by `python -m pipeline review RESULTS`), check some tiles "
                         "and save")
    return parse_marks(path.read_text(encoding="utf-8"), source=str(path))
