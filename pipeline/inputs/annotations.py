"""Reading a lab's own annotations of synapses: a plain points table, a MapManager map (legacy
text format) or MapManagerCore's ``points.csv``.

Every reader returns one table (:data:`ANNOTATION_COLUMNS`): ``cell, session, annotation_id``
(the same id in every session it was seen in: that is the annotator's link), the position in
the frame named by ``frame`` (``voxels``: ``z, y, x`` voxels of that session's stack;
``session_um``: um in that session's stack; ``reference_um``: um in the cell's reference frame,
as ``synapses.csv``'s ``z_um, y_um, x_um``), ``present`` (1 unless the table says 0) and
``intensity`` (NaN where none was given).  Sessions may be given by name or by their index in
time order (MapManager's); :func:`name_sessions` turns indices into the run's session names.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError

ANNOTATION_COLUMNS = ["cell", "session", "annotation_id", "z", "y", "x", "frame", "present",
                      "intensity"]
FRAMES = ("voxels", "session_um", "reference_um")


def read_annotations(path: str | Path, *, cell: str | None = None,
                     units: str = "um") -> pd.DataFrame:
    """Read annotations in any supported form (chosen by what ``path`` holds).

    ``cell`` names the cell of a MapManager map (its files do not); ``units`` says whether a
    legacy map's ``x, y, z`` are ``um`` (Map Manager's own, the default) or ``voxels``.
    """
    path = Path(path)
    if path.is_dir():
        maps = sorted(path.glob("*_objMap.txt"))
        if not maps:
            raise InputError(f"{path}: a folder of annotations must be a MapManager map "
                             "(<map>.txt, <map>_objMap.txt, stackdb/<map>_s<N>_db2.txt)")
        return pd.concat([read_mapmanager_map(m, cell=cell, units=units) for m in maps],
                         ignore_index=True)
    if not path.exists():
        raise InputError(f"{path}: no such annotation file or folder")
    head = path.read_text(errors="replace").splitlines()[:1]
    if head and "spineID" in head[0]:
        return read_mapmanager_core(path, cell=cell)
    return read_points_table(path)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if "present" not in out.columns:
        out["present"] = 1
    if "intensity" not in out.columns:
        out["intensity"] = np.nan
    out["present"] = pd.to_numeric(out["present"], errors="coerce").fillna(1).astype(int)
    out["annotation_id"] = out["annotation_id"].astype(int)
    out["cell"] = out["cell"].astype(str)
    return out[ANNOTATION_COLUMNS].reset_index(drop=True)


def read_points_table(path: Path) -> pd.DataFrame:
    """A plain table (CSV or TSV): ``cell, session, annotation_id`` (or ``synapse_id``, as in a
    synapses.csv-like table) and ``z, y, x`` (voxels of
    that session's stack) or ``z_um, y_um, x_um`` (reference frame, as synapses.csv); optional
    ``present`` and ``intensity`` (or ``weight``)."""
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    df = pd.read_csv(path, sep=sep)
    df.columns = [c.strip() for c in df.columns]
    if "annotation_id" not in df.columns and "synapse_id" in df.columns:
        df = df.rename(columns={"synapse_id": "annotation_id"})   # a synapses.csv-like table
    missing = [c for c in ("cell", "session", "annotation_id") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; a points table has "
                         "cell, session, annotation_id and z, y, x (voxels) or z_um, y_um, x_um "
                         "(reference frame, um)")
    if {"z", "y", "x"} <= set(df.columns):
        frame = "voxels"
    elif {"z_um", "y_um", "x_um"} <= set(df.columns):
        frame = "reference_um"
        df = df.rename(columns={"z_um": "z", "y_um": "y", "x_um": "x"})
    else:
        raise InputError(f"{path}: no positions: give z, y, x (voxels of each session's stack) "
                         "or z_um, y_um, x_um (um in the reference frame, as synapses.csv)")
    if "intensity" not in df.columns and "weight" in df.columns:
        df["intensity"] = df["weight"]
    return _finish(df.assign(frame=frame))


_POINT = re.compile(r"POINT\s*(?:Z\s*)?\(\s*([-\d.eE+]+)\s+([-\d.eE+]+)(?:\s+([-\d.eE+]+))?\s*\)")


def read_mapmanager_core(path: Path, *, cell: str | None) -> pd.DataFrame:
    """MapManagerCore's ``points.csv``: ``spineID`` (the same spine across timepoints),
    ``point`` (WKT ``POINT (x y)`` in pixels), ``z`` (slice) and ``t`` (timepoint index)."""
    df = pd.read_csv(path)
    missing = [c for c in ("spineID", "point", "z", "t") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: MapManagerCore points.csv without column(s) "
                         f"{', '.join(missing)}")
    xy = df["point"].astype(str).str.extract(_POINT)
    if xy[0].isna().any():
        bad = int(np.flatnonzero(xy[0].isna())[0]) + 2
        raise InputError(f"{path}, line {bad}: 'point' is not a WKT POINT (x y)")
    return _finish(pd.DataFrame({
        "cell": cell or path.parent.name, "session": df["t"].astype(int),
        "annotation_id": df["spineID"].astype(int), "z": df["z"].astype(float),
        "y": xy[1].astype(float), "x": xy[0].astype(float), "frame": "voxels"}))


def _map_header(path: Path) -> pd.DataFrame:
    """The map's header table: one row per quantity (``hsStack``, voxel sizes, dates), one
    column per session."""
    return pd.read_csv(path, sep="\t", index_col=0)


def read_mapmanager_map(objmap: Path, *, cell: str | None, units: str = "um") -> pd.DataFrame:
    """A MapManager map in its legacy text form.

    ``<map>_objMap.txt``: a header line ``rows=R;cols=C;blocks=B;`` then B blocks of R x C
    numbers (rows: a point's index in a session's stack database, columns: sessions); block 0
    holds the point's index, block 1 the index of the same object in the next session (-1 or
    NaN: none).  ``stackdb/<map>_s<N>_db2.txt``: comma-separated, one row per point, ``x, y,
    z`` (um by default; ``units='voxels'`` for pixels and slices), ``roiType`` (only
    ``spineROI`` points are synapses) and ``isBad`` (1: left out).  Each chain of next-links
    is one annotated synapse.
    """
    name = objmap.name[:-len("_objMap.txt")]
    folder = objmap.parent
    lines = objmap.read_text().splitlines()
    try:
        shape = dict(kv.split("=") for kv in lines[0].strip().rstrip(";").split(";"))
        rows, cols, blocks = int(shape["rows"]), int(shape["cols"]), int(shape["blocks"])
        values = np.array(" ".join(lines[1:]).split(), float)
        obj = values[:rows * cols * blocks].reshape(blocks, rows, cols)
    except (KeyError, ValueError) as exc:
        raise InputError(f"{objmap}: not a MapManager object map (first line "
                         f"'rows=R;cols=C;blocks=B;' then the numbers): {exc}") from exc
    dbs = []
    for session in range(cols):
        db_path = folder / "stackdb" / f"{name}_s{session}_db2.txt"
        if not db_path.exists():
            raise InputError(f"{db_path}: missing (the object map has {cols} sessions)")
        db = pd.read_csv(db_path, sep=",")
        db.columns = [c.strip() for c in db.columns]
        dbs.append(db)
    idx, nxt = obj[0], obj[1] if blocks > 1 else np.full_like(obj[0], -1)
    # follow each chain of next-links from where it starts (no point links to it)
    linked_to = {(int(nxt[i, j]), j + 1) for j in range(cols - 1) for i in range(rows)
                 if np.isfinite(idx[i, j]) and idx[i, j] >= 0 and np.isfinite(nxt[i, j])
                 and nxt[i, j] >= 0}
    records, run = [], 0
    for j in range(cols):
        for i in range(rows):
            if not (np.isfinite(idx[i, j]) and idx[i, j] >= 0) or (i, j) in linked_to:
                continue
            k, s = i, j
            while True:
                records.append((run, s, int(idx[k, s])))
                following = nxt[k, s]
                if s + 1 >= cols or not np.isfinite(following) or following < 0:
                    break
                k, s = int(following), s + 1
            run += 1
    rows_out = []
    for ann, session, point in records:
        db = dbs[session]
        if point >= len(db):
            raise InputError(f"{folder / 'stackdb'}/{name}_s{session}_db2.txt: no point {point} "
                             "(named by the object map)")
        p = db.iloc[point]
        if "roiType" in db.columns and str(p["roiType"]) != "spineROI":
            continue
        if "isBad" in db.columns and pd.notna(p["isBad"]) and int(p["isBad"]) == 1:
            continue
        rows_out.append({"cell": cell or name, "session": session, "annotation_id": ann,
                         "z": float(p["z"]), "y": float(p["y"]), "x": float(p["x"]),
                         "frame": "voxels" if units == "voxels" else "session_um"})
    if not rows_out:
        raise InputError(f"{objmap}: no spineROI points in the map")
    return _finish(pd.DataFrame(rows_out))


def name_sessions(ann: pd.DataFrame, sessions_of: dict[str, list[str]]) -> pd.DataFrame:
    """Session indices (MapManager's, in time order) replaced by the run's session names;
    names are checked against the run's.  ``sessions_of``: cell -> its sessions in time order."""
    out = ann.copy()
    unknown_cells = sorted(set(out["cell"]) - set(sessions_of))
    if unknown_cells:
        raise InputError(f"annotations name cell(s) {', '.join(unknown_cells)} that the run "
                         f"does not have ({', '.join(sorted(sessions_of))}); give --cell")
    names = []
    for cell, s in zip(out["cell"], out["session"]):
        order = sessions_of[cell]
        if isinstance(s, (int, np.integer)) or (isinstance(s, str) and s.isdigit()
                                                 and s not in order):
            k = int(s)
            if not 0 <= k < len(order):
                raise InputError(f"annotations of cell {cell}: session index {k}, but the run "
                                 f"has {len(order)} sessions")
            names.append(order[k])
        elif str(s) in order:
            names.append(str(s))
        else:
            raise InputError(f"annotations of cell {cell}: no session '{s}' in the run "
                             f"({', '.join(order)})")
    out["session"] = names
    return out
