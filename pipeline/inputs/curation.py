"""Reading a person's curation file (``curation.tsv``): one action a line.

The actions and what they do are described in :mod:`pipeline.stages.curate`; this module checks
the file's form and names every bad line with its fix.  Written by hand or saved by the review
page, the file is read tolerantly: the header line is optional, ``#`` starts a comment, and the
fields may be separated by tabs (positional, empty fields allowed) or by runs of spaces (then
each action's fields are taken in its own order, since an empty field cannot be written, and the
words after them are the note).  Nothing here writes the file; :func:`curation_text` gives the
text the review server saves.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..contract import CURATION_CALLS as CALLS
from ..contract import CURATION_FILE_COLUMNS as COLUMNS
from ..contract import CURATION_IDENTITY as IDENTITY
from ..core.errors import InputError

#: the columns of the table :func:`read_curation` returns (the file's, and its line number)
ROW_FIELDS = COLUMNS + ["row"]

#: the fields each action needs after ``action`` when a line is separated by spaces
FIELDS_OF = {"reject": ["cell", "synapse_id"],
             "merge": ["cell", "synapse_id", "other_synapse_id"],
             "split": ["cell", "synapse_id", "session"],
             "present": ["cell", "synapse_id", "session"],
             "absent": ["cell", "synapse_id", "session"]}

FORM = (f"one action a line: {', '.join(COLUMNS)}, separated by tabs (or by spaces, e.g. "
        "'merge pyr01 6 14' or 'absent pyr01 6 s03'); '#' starts a comment")


def _fields(line: str, header: list[str]) -> dict[str, str]:
    """One line's fields by column name (tab-separated: by position; else by the action)."""
    values = [v.strip() for v in line.strip().split("\t")]
    if len(values) > 1 and len(values[0].split()) == 1:
        return dict(zip(header, values + [""] * (len(header) - len(values))))
    words = line.split()      # spaces (or a tab only after space-separated fields)
    names = FIELDS_OF.get(words[0], [])
    out = dict(zip(["action"] + names, words))
    out["note"] = " ".join(words[1 + len(names):])
    return out


def parse_curation(text: str, *, source: str = "curation file") -> pd.DataFrame:
    """Parse and check a curation file's text (every problem at once, naming its line).

    Returns one row per action with the columns of :data:`ROW_FIELDS` (``row``: the line
    number in the file).  Raises :class:`InputError` listing every bad line and its fix.
    """
    header, rows, problems = list(COLUMNS), [], []
    seen_content = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        first = line.split("\t")[0].split()[0] if line.split() else ""
        if not seen_content and first == "action":      # the (optional) header line
            header = [c.strip() for c in (line.split("\t") if "\t" in line else line.split())]
            unknown = [c for c in header if c not in COLUMNS]
            missing = [c for c in ("action", "cell", "synapse_id") if c not in header]
            if unknown or missing:
                raise InputError(f"{source}, line {number}: the header names "
                                 f"{', '.join(unknown + missing)} wrongly; the columns are "
                                 f"{', '.join(COLUMNS)} ({FORM})")
            seen_content = True
            continue
        seen_content = True
        f = _fields(line, header)
        row = {c: f.get(c, "") or "" for c in COLUMNS}
        row["row"] = number
        where = f"{source}, line {number}"
        action = row["action"]
        if action not in IDENTITY + CALLS:
            problems.append(f"{where}: '{action}' is not an action; the first field is one of "
                            f"{', '.join(IDENTITY + CALLS)} ({FORM})")
            continue
        needed = FIELDS_OF[action]
        if not row["cell"]:
            problems.append(f"{where}: '{action}' needs the cell ({action} "
                            f"{' '.join(n.upper() for n in needed)})")
            continue
        if not row["synapse_id"].isdigit():
            problems.append(f"{where}: synapse_id '{row['synapse_id']}' must be a synapse number "
                            f"(the review page's track id)")
        if action in ("split",) + CALLS and not row["session"]:
            problems.append(f"{where}: '{action}' needs the session column ({action} "
                            f"{row['cell']} {row['synapse_id'] or 'ID'} SESSION)")
        if row["at_um"] and anchor_of(row["at_um"]) is None:
            problems.append(f"{where}: at_um '{row['at_um']}' must be three numbers, z y x in um "
                            "(the review page writes it; or leave it empty)")
        if action == "merge" and not row["other_synapse_id"].isdigit():
            problems.append(f"{where}: 'merge' needs other_synapse_id, a synapse number "
                            f"(merge {row['cell']} {row['synapse_id'] or 'ID'} OTHER_ID)")
        rows.append(row)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in the curation file:\n  - "
                         + "\n  - ".join(problems))
    return pd.DataFrame(rows, columns=ROW_FIELDS)


def anchor_of(text: str):
    """The (z, y, x) um of an ``at_um`` field, or None when it is not three numbers."""
    try:
        values = [float(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        return None
    return tuple(values) if len(values) == 3 else None


def read_curation(path: str | Path) -> pd.DataFrame:
    """Read and check a curation file (see :func:`parse_curation`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a text file ({exc})") from exc
    return parse_curation(text, source=str(path))


def curation_text(rows: pd.DataFrame) -> str:
    """A complete curation file (header included, tab-separated) holding ``rows``."""
    lines = ["\t".join(COLUMNS)]
    for r in rows.reindex(columns=COLUMNS).fillna("").itertuples(index=False):
        lines.append("\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in r))
    return "\n".join(lines) + "\n"


def curation_path(results: Path, *, sheet: Path | None = None, configured: Path | None = None
                  ) -> tuple[Path, Path]:
    """(the curation file the workflow reads, the file the review server saves to): the
    config's ``curation``, else ``<results>/curation.tsv``, else one beside the sessions sheet
    (where files made by hand before the review server lived); saving goes to the config's
    file, else ``<results>/curation.tsv``.  ``rules/common.smk`` and the server both ask here."""
    if configured:
        return Path(configured), Path(configured)
    own = Path(results) / "curation.tsv"
    beside = Path(sheet).parent / "curation.tsv" if sheet else None
    read = own if own.exists() or beside is None or not beside.exists() else beside
    return read, own


def row_error(row, text: str) -> InputError:
    """The error for one curation row (a row of :func:`read_curation`'s table), naming it."""
    return InputError(f"curation line {row.row} ({row.action} synapse {row.synapse_id} of cell "
                     f"{row.cell}): {text}")
