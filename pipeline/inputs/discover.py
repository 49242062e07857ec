"""A first sessions sheet from an imaging directory tree, for a person to check and edit.

``sessions_from_paths`` matches relative paths against a layout pattern such as
``{animal}/{cell}/{session}/*.tif``; ``day_from_name`` and ``acquisition_date`` find each session's
day; ``assign_days`` turns names and dates into days since a cell's first session.  ``discover_sessions``
walks the tree (file headers only) and builds the sheet that ``python -m pipeline discover`` writes.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from ..core.errors import InputError
from .formats import format_of
from .stacks import SLICE_SUFFIXES, probe_stack
from .vendors import acquisition_folder_date, is_acquisition_folder

PATTERN_FIELDS = ("animal", "cell", "session")
DEFAULT_PATTERN = "{animal}/{cell}/{session}/*.tif"


def pattern_regex(pattern: str) -> re.Pattern:
    """``{name}`` matches one path component, ``*`` any characters within one component."""
    names = re.findall(r"{(\w+)}", pattern)
    unknown = [n for n in names if n not in PATTERN_FIELDS]
    if unknown or "cell" not in names or "session" not in names:
        raise InputError(f"layout pattern '{pattern}': use the fields {{cell}} and {{session}} "
                         f"(and optionally {{animal}}), not {', '.join(unknown) or 'only these'}; "
                         "e.g. '{animal}/{cell}/{session}/*.tif'")
    out = ""
    for token in re.split(r"({\w+}|\*)", pattern.strip("/")):
        if token == "*":
            out += r"[^/]*"
        elif token.startswith("{"):
            out += rf"(?P<{token[1:-1]}>[^/]+)"
        else:
            out += re.escape(token)
    return re.compile(out + "$")


def safe_id(text: str) -> str:
    """A cell or session id the sheet accepts: other characters become '_'."""
    out = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text)).strip("_.-")
    return out if out and out[0].isalnum() else f"x{out}"


def sessions_from_paths(paths: list[str], pattern: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per (animal, cell, session) from relative POSIX paths; returns (table, problems).

    A session matched by several single-plane images is a folder of slices (its folder is the
    path); several files of one session otherwise is a problem to resolve by hand.
    """
    rx = pattern_regex(pattern)
    hits: dict[tuple[str, str, str], list[str]] = {}
    for rel in sorted(paths):
        m = rx.match(rel)
        if m:
            key = tuple(m.groupdict().get(f, "") for f in PATTERN_FIELDS)
            hits.setdefault(key, []).append(rel)
    rows, problems = [], []
    for (animal, cell, session), files in sorted(hits.items()):
        if len(files) == 1:
            path = files[0]
        elif len({str(Path(f).parent) for f in files}) == 1 and \
                all(Path(f).suffix.lower() in SLICE_SUFFIXES for f in files):
            path = str(Path(files[0]).parent)  # a folder of slices (checked by the caller)
        else:
            problems.append(f"{animal}/{cell}/{session}: {len(files)} files match ({', '.join(files[:4])}"
                            f"{' ...' if len(files) > 4 else ''}); narrow the pattern or pick one")
            continue
        cell_id = safe_id(f"{animal}_{cell}" if animal else cell)
        rows.append({"animal": animal, "cell": cell_id, "session": safe_id(session),
                     "session_name": session, "path": path, "files": len(files)})
    return pd.DataFrame(rows, columns=["animal", "cell", "session", "session_name", "path", "files"]), problems


_DATE_PATTERNS = (r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)",)
_DAY_PATTERNS = (r"(?:^|[^A-Za-z])(?:day|d)[-_ ]?(\d+(?:\.\d+)?)(?![\d])",)


def day_from_name(name: str) -> tuple[float | None, dt.date | None]:
    """(day number, date) stated in a session name such as 'day04', 'd12' or '2026-01-30'."""
    for pat in _DATE_PATTERNS:
        m = re.search(pat, name)
        if m:
            try:
                return None, dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                pass
    for pat in _DAY_PATTERNS:
        m = re.search(pat, name, flags=re.I)
        if m:
            return float(m.group(1)), None
    return None, None


def image_entries(root: Path) -> list[str]:
    """Paths under ``root`` (relative, POSIX) that a layout pattern matches against: every file,
    except that an acquisition folder (PrairieView, ThorImage) or an OME-Zarr folder is one
    entry, its own files not listed."""
    out = []
    for here, dirs, files in os.walk(root):
        folder = Path(here)
        if folder != root and (is_acquisition_folder(folder) or format_of(folder) == "zarr"):
            out.append(folder.relative_to(root).as_posix())
            dirs[:] = []
            continue
        dirs.sort()
        out.extend((folder / f).relative_to(root).as_posix() for f in sorted(files))
    return out


def acquisition_date(path: str | Path) -> dt.date | None:
    """Acquisition date from a TIFF's metadata (OME AcquisitionDate, ScanImage epoch, DateTime
    tag) or an acquisition folder's XML (PrairieView, ThorImage)."""
    path = Path(path)
    if path.is_dir() and is_acquisition_folder(path):
        return acquisition_folder_date(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        if not files:
            return None
        path = files[0]
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            texts = [tif.ome_metadata or "", page.description or "", page.software or ""]
            m = re.search(r"AcquisitionDate>?\s*=?\s*\"?(\d{4})-(\d{2})-(\d{2})", texts[0])
            if m is None:
                m = re.search(r"epoch\s*=\s*\[\s*(\d{4})\s+(\d+)\s+(\d+)", "\n".join(texts[1:]))
            if m is None:
                tag = page.tags.get("DateTime")
                m = re.match(r"(\d{4})[:-](\d{2})[:-](\d{2})", str(tag.value)) if tag else None
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    except Exception:
        return None


def assign_days(table: pd.DataFrame) -> pd.DataFrame:
    """Days since each cell's first session from ``day_number`` or ``date`` columns.

    Adds ``day`` (NaN where neither is known) and ``day_source``.  A cell mixing numbered and
    dated sessions is left for the person to fill.
    """
    out = table.copy()
    out["day"] = float("nan")
    out["day_source"] = ""
    for _, idx in out.groupby("cell").groups.items():
        grp = out.loc[idx]
        if grp["day_number"].notna().all():
            out.loc[idx, "day"] = grp["day_number"] - grp["day_number"].min()
            out.loc[idx, "day_source"] = "number in the session name"
        elif grp["date"].notna().all():
            first = min(grp["date"])
            out.loc[idx, "day"] = [float((d - first).days) for d in grp["date"]]
            out.loc[idx, "day_source"] = grp["date_source"]
    return out


def check_discover_paths(root: Path, out: Path, *, force: bool) -> None:
    """The sheet goes outside the imaging directory and replaces nothing unless ``force``."""
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; pass the top folder of the imaging data")
    if out == root or root in out.parents:
        raise InputError(f"{out} is inside the imaging directory {root}; the pipeline never "
                         "writes there: put the sheet elsewhere (e.g. beside the results)")
    if out.exists() and not force:
        raise InputError(f"{out} exists (it may hold your edits); choose another --out or pass "
                         "--force to replace it")


def discover_sessions(root: Path, *, sheet_folder: Path, pattern: str = DEFAULT_PATTERN,
                      cell_type: str | None = None, psd95_channel: int = 0,
                      morphology_channel: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """A sessions sheet for the files under ``root`` that match ``pattern`` (paths relative to
    ``sheet_folder``, where the sheet will be), and what is left for the user to check or fill.
    Reads file headers only."""
    paths = image_entries(root)
    table, problems = sessions_from_paths(paths, pattern)
    if table.empty:
        folders = [p for p in paths if (root / p).is_dir()]
        hint = (f"; {len(folders)} acquisition folder(s) were found (e.g. {folders[0]}): match "
                "the folders themselves, e.g. --pattern '{animal}/{cell}/{session}/ZSeries-*' "
                "or '{animal}/{cell}/{session}'" if folders else "")
        raise InputError(f"{root}: no file matches the layout pattern '{pattern}' (paths "
                         "relative to ROOT, e.g. '{animal}/{cell}/{session}/*.tif')" + hint + "; "
                         + (f"{len(problems)} session(s) were ambiguous:\n  - "
                            + "\n  - ".join(problems) if problems else "pass --pattern"))
    rows = []
    for rec in table.to_dict("records"):
        image = root / rec["path"]
        number, date = day_from_name(rec["session_name"])
        source = "date in the session name" if date else ""
        if number is None and date is None:
            date = acquisition_date(image)
            source = "acquisition date in the file's metadata" if date else ""
        n_channels, note = None, ""
        try:
            info = probe_stack(image)
            n_channels = info.n_channels
            if rec["files"] > 1 and info.n_planes != rec["files"]:
                note = f"{rec['files']} files but {info.n_planes} planes: check this folder"
            elif any(info.channel_names):   # the rig's names: the person checks the indices
                note = f"{info.format}, channels " + ", ".join(
                    f"{i} = {n}" for i, n in enumerate(info.channel_names) if n)
        except InputError as exc:
            note = f"unreadable: {exc}"
        rows.append({**rec, "day_number": number, "date": date, "date_source": source,
                     "n_channels": n_channels, "notes": note})
    found = assign_days(pd.DataFrame(rows))
    single = found["n_channels"] == 1
    sheet = pd.DataFrame({
        "cell": found["cell"], "cell_type": cell_type or "", "session": found["session"],
        "day": found["day"].map(lambda d: "" if pd.isna(d) else f"{d:g}"),
        "path": [os.path.relpath(root / p, sheet_folder) for p in found["path"]],
        "animal": found["animal"],
        "psd95_channel": psd95_channel,
        "morphology_channel": np.where(single, "", str(morphology_channel)),
        "voxel_um": "",
        "notes": [("; ".join(x for x in (n, f"day from {s}" if s else "") if x))
                  for n, s in zip(found["notes"], found["day_source"])],
    })
    todo = []
    if not cell_type:
        todo.append("fill the cell_type column (or rerun with --cell-type)")
    no_day = sorted(found.loc[found["day"].isna(), "cell"].unique())
    if no_day:
        todo.append(f"fill 'day' for cell(s) {', '.join(no_day)} (no day number or date in the "
                    "session names, no acquisition date in the files)")
    bad = found.loc[found["notes"].str.startswith("unreadable"), "path"].tolist()
    if bad:
        todo.append(f"check unreadable file(s): {', '.join(bad)}")
    return sheet, problems + todo
