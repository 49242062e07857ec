"""The sessions sheet: read, validate, and report every problem at once.

Validation happens before any image is read.  Each problem names the row (data row number
and the line in the file), the column, and what to do.
"""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from ..core.errors import InputError

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"   # package data (pyproject)
SHEET_COLUMNS = ["cell", "cell_type", "session", "day", "path"]


class SheetError(InputError):
    """One or more problems in the sessions sheet (all listed in the message)."""


def load_schema(name: str) -> dict:
    return yaml.safe_load((SCHEMA_DIR / name).read_text())


def _typed_row(raw: dict) -> dict:
    """Turn the sheet's strings into the types the schema describes (blank = not given)."""
    row = {}
    for key, val in raw.items():
        val = str(val).strip()
        if val == "":
            continue
        if key == "day":
            try:
                val = float(val)
            except ValueError:
                pass  # the schema reports it as not a number
        elif key in ("psd95_channel", "morphology_channel", "series"):
            try:
                f = float(val)
                val = int(f) if f.is_integer() else f
            except ValueError:
                pass
        row[key] = val
    return row


def parse_voxel(text: str | None) -> tuple[float, float, float] | None:
    if text is None or str(text).strip() == "":
        return None
    return tuple(float(v) for v in str(text).split(","))


def read_sessions(path: str | Path, *, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a sessions sheet.

    Returns one row per session with typed columns and ``abs_path`` (the image path resolved
    against the sheet's folder), sorted by cell and day.  Raises :class:`SheetError` listing
    every problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"sessions sheet {path} does not exist; pass sessions=PATH in the config")
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except Exception as exc:
        raise SheetError(f"{path}: cannot be read as a tab-separated table ({exc})") from exc
    raw.columns = [c.strip() for c in raw.columns]
    schema = load_schema("sessions.schema.yaml")
    allowed = set(schema["properties"])
    problems: list[str] = []

    missing = [c for c in SHEET_COLUMNS if c not in raw.columns]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}; the sheet needs "
                        f"{', '.join(SHEET_COLUMNS)} (tab-separated, header on the first line)")
    extra = [c for c in raw.columns if c not in allowed]
    if extra:
        problems.append(f"unknown column(s) {', '.join(extra)}; allowed columns are "
                        f"{', '.join(sorted(allowed))} (put free text in 'notes')")
    if raw.empty:
        problems.append("the sheet has no rows")
    if problems:
        raise SheetError(f"{path}:\n  - " + "\n  - ".join(problems))

    validator = jsonschema.Draft202012Validator(schema)
    rows = []
    for i, rec in enumerate(raw.to_dict("records")):
        where = f"row {i + 1} (line {i + 2})"
        row = _typed_row(rec)
        for err in validator.iter_errors(row):
            if err.validator == "required":  # a blank cell of a required column
                col = next((c for c in SHEET_COLUMNS if c not in row and f"'{c}'" in err.message), "?")
                problems.append(f"{where}, column '{col}': empty; fill it in")
                continue
            col = err.path[0] if err.path else "?"
            problems.append(f"{where}, column '{col}': {err.message}")
        row["row"] = i + 1
        if "voxel_um" in row:
            try:
                vox = parse_voxel(row["voxel_um"])
                if min(vox) <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{where}, column 'voxel_um': '{row['voxel_um']}' must be three "
                                "positive numbers 'z,y,x' in micrometres")
        if {"psd95_channel", "morphology_channel"} <= row.keys() and \
                row["psd95_channel"] == row["morphology_channel"]:
            problems.append(f"{where}: psd95_channel and morphology_channel are both "
                            f"{row['psd95_channel']}; they must differ")
        if "path" in row:
            img = (path.parent / row["path"]).resolve()
            row["abs_path"] = str(img)
            if check_files and not img.exists():
                problems.append(f"{where}, column 'path': {img} does not exist (paths are "
                                f"relative to the sheet's folder {path.parent.resolve()})")
        rows.append(row)

    df = pd.DataFrame(rows)
    if {"cell", "session"} <= set(df.columns):
        dup = df[df.duplicated(["cell", "session"], keep=False)]
        for (cell, sess), grp in dup.groupby(["cell", "session"]):
            problems.append(f"rows {', '.join(map(str, grp['row']))}: session '{sess}' appears "
                            f"more than once for cell '{cell}'; session names must be unique "
                            "within a cell")
        for col in ("cell_type", "target"):    # one value per cell
            if col not in df.columns:
                continue
            for cell, grp in df.groupby("cell"):
                values = grp[col].dropna().unique()
                if len(values) > 1:
                    problems.append(f"rows {', '.join(map(str, grp['row']))}: cell '{cell}' has "
                                    f"several {col} values ({', '.join(values)}); use one")
        for cell, grp in df.groupby("cell"):
            if len(grp) < 2:
                problems.append(f"row {grp['row'].iloc[0]}: cell '{cell}' has only one session; "
                                "tracking needs two or more (add its other sessions or remove it)")
    if problems:
        raise SheetError(f"{path}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))

    for col, default in (("animal", ""), ("psd95_channel", 0), ("morphology_channel", -1),
                         ("voxel_um", ""), ("time_axis", "error"), ("axes", ""),
                         ("series", None), ("notes", ""), ("target", "puncta")):
        if col not in df.columns:
            df[col] = default
    df["psd95_channel"] = df["psd95_channel"].fillna(0).astype(int)
    df["morphology_channel"] = df["morphology_channel"].fillna(-1).astype(int)
    df["animal"] = df["animal"].fillna("")
    df["target"] = df["target"].fillna("puncta").replace("", "puncta")
    df["voxel_um"] = df["voxel_um"].fillna("")
    df["time_axis"] = df["time_axis"].fillna("error")
    df["axes"] = df["axes"].fillna("").str.strip().str.upper()
    df["series"] = df["series"].astype(object).where(df["series"].notna(), None)
    return df.sort_values(["cell", "day", "session"], kind="stable").reset_index(drop=True)


def read_options(row) -> dict:
    """How to read a session's image, from its sheet row: ``time_axis``, ``axes``, ``series``
    (keyword arguments of :func:`.stacks.probe_stack` and :func:`.stacks.read_stack`)."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    series = get("series", None)
    return {"time_axis": get("time_axis", "error") or "error", "axes": get("axes", "") or "",
            "series": None if series is None or pd.isna(series) else int(series)}


def check_images(sessions: pd.DataFrame, *, config_voxel=None) -> list[str]:
    """Probe every image header (no pixels read); return one problem line per bad session."""
    return [r["problem"] for r in describe_images(sessions, config_voxel=config_voxel)
            if r["problem"]]


#: a session whose stack is this much shallower than its cell's others is named
SHALLOW_FRACTION = 0.6


def describe_images(sessions: pd.DataFrame, *, config_voxel=None) -> list[dict]:
    """Every image header as read (no pixels): per session, a ``line`` (shape, axes, channels,
    voxel size and where it came from), the ``problem`` that stops it ('' when none) and
    ``warnings`` (an unusual voxel size; a stack much shallower than its cell's others, whose
    synapses outside it will be censored)."""
    from .stacks import probe_stack, unusual_voxel, voxel_and_source

    out = []
    for row in sessions.itertuples():
        where = f"row {row.row} (cell {row.cell}, session {row.session})"
        rec = {"cell": row.cell, "session": row.session, "line": "", "problem": "",
               "warnings": [], "depth_um": None}
        try:
            info = probe_stack(row.abs_path, **read_options(row))
            for name in ("psd95_channel", "morphology_channel"):
                c = getattr(row, name)
                if c >= info.n_channels:
                    raise InputError(f"{row.abs_path}: {name} {c} is out of range: the stack has "
                                     f"{info.n_channels} channel(s)")
            vox, source = voxel_and_source(parse_voxel(row.voxel_um), info.voxel_um,
                                           config_voxel, path=row.abs_path)
            morph = f", morphology {row.morphology_channel}" if row.morphology_channel >= 0 else ""
            named = ""
            if any(info.channel_names):
                named = " = " + ", ".join(f"{i} {n}" for i, n in enumerate(info.channel_names)
                                          if n)
            rec["line"] = (f"{where}: {row.abs_path}: {info.format}, {info.n_planes} planes of "
                           f"{info.plane_shape[0]}x{info.plane_shape[1]}, axes "
                           f"{info.axes or 'slices'}, {info.n_channels} channel(s){named} (psd95 "
                           f"{row.psd95_channel}{morph}), {info.dtype}, voxel "
                           f"{','.join(f'{v:g}' for v in vox)} um from {source}")
            if (why := unusual_voxel(vox)):
                rec["warnings"].append(f"{where}: {row.abs_path}: {why}")
            else:                                # depths in wrong units compare to nothing
                rec["depth_um"] = info.n_planes * vox[0]
        except InputError as exc:
            rec["problem"] = f"{where}: {exc}"
        out.append(rec)
    depths = pd.DataFrame(out)
    for rec in out:
        siblings = depths.loc[(depths["cell"] == rec["cell"]), "depth_um"].dropna()
        if rec["depth_um"] and len(siblings) > 1 and \
                rec["depth_um"] < SHALLOW_FRACTION * siblings.median():
            rec["warnings"].append(
                f"cell {rec['cell']}, session {rec['session']}: its stack is "
                f"{rec['depth_um']:.1f} um deep, the cell's sessions {siblings.median():.1f} um "
                "(median): synapses outside it are not observed there and are censored in the "
                "statistics")
    return out
