"""Curation: a person's corrections of the automatic tracks, one action a row of ``curation.tsv``.

Actions (columns ``action, cell, synapse_id, session, other_synapse_id, note``):

``reject``  synapse_id                  the track is not a synapse; it is dropped.
``merge``   synapse_id, other_synapse_id the two tracks are one synapse; the other's detections
                                         join synapse_id (they must not share a session).
``split``   synapse_id, session          from that session on the detections are a new synapse
                                         (id: one more than the largest id of the cell).
``present`` synapse_id, session          the synapse is there in that session, whatever the
``absent``  synapse_id, session          presence model says (applied after the presence stage).

Identity actions (reject, merge, split) act on the tracks, before weights are measured; the calls
(present, absent) act on the presence stage's table.  Rows are applied in file order, so a later
row may name the id a split made.  Nothing here writes the curation file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.errors import InputError

COLUMNS = ["action", "cell", "synapse_id", "session", "other_synapse_id", "note"]
IDENTITY = ("reject", "merge", "split")
CALLS = ("present", "absent")


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


def _fail(row, text):
    raise InputError(f"curation row {row.row} ({row.action} synapse {row.synapse_id} of cell "
                     f"{row.cell}): {text}")


def curate_tracks(tracks: pd.DataFrame, actions: pd.DataFrame, *,
                  sessions: list[str]) -> pd.DataFrame:
    """Apply one cell's reject/merge/split rows to its tracks (detections with ``synapse_id``).

    Adds ``curated`` (1 on every row of a track an action changed or a present/absent row names;
    the presence stage does not join such tracks to others).  Raises :class:`InputError` naming the
    curation row when it names a synapse or session the cell does not have.
    """
    out = tracks.copy()
    out["curated"] = 0
    order = {s: i for i, s in enumerate(sessions)}
    for row in actions.itertuples():
        sid = int(row.synapse_id)
        mine = out["synapse_id"] == sid
        if not mine.any():
            _fail(row, f"no such synapse (the cell's tracks have ids {out['synapse_id'].min()}"
                       f"..{out['synapse_id'].max()})")
        if row.session and row.session not in order:
            _fail(row, f"no session '{row.session}' (the cell's sessions: {', '.join(sessions)})")
        if row.action in CALLS:  # applied after presence; the track is kept as it is
            out.loc[mine, "curated"] = 1
        elif row.action == "reject":
            out = out[~mine]
        elif row.action == "merge":
            other = out["synapse_id"] == int(row.other_synapse_id)
            if not other.any():
                _fail(row, f"other_synapse_id {row.other_synapse_id}: no such synapse")
            shared = set(out.loc[mine, "session"].astype(str)) & \
                set(out.loc[other, "session"].astype(str))
            if shared:
                _fail(row, f"both synapses were detected in session(s) {', '.join(sorted(shared))}; "
                           "reject or split one first")
            out.loc[other, "synapse_id"] = sid
            out.loc[mine | other, "curated"] = 1
        else:  # split
            later = mine & (out["session"].astype(str).map(order) >= order[row.session])
            if not later.any() or later.sum() == mine.sum():
                _fail(row, f"splitting at session {row.session} leaves one part empty")
            out.loc[later, "synapse_id"] = int(out["synapse_id"].max()) + 1
            out.loc[mine, "curated"] = 1
    return out.reset_index(drop=True)  # row order kept: downstream sums come out the same


def curate_calls(table: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Apply one cell's present/absent rows to the presence stage's table (``present``,
    ``p_present``, ``curated``).  A forced call keeps the measured weight as it is."""
    out = table.copy()
    if "curated" not in out.columns:
        out["curated"] = 0
    # ids of the curation file are track ids: the presence stage keeps them in `track_id`
    key = out["track_id"] if "track_id" in out.columns else out["synapse_id"]
    for row in actions[actions["action"].isin(CALLS)].itertuples():
        sel = key == int(row.synapse_id)
        if not sel.any():
            _fail(row, "no such synapse after the identity actions")
        sel &= out["session"].astype(str) == row.session
        if not sel.any():
            _fail(row, f"no session '{row.session}' for this synapse")
        call = int(row.action == "present")
        out.loc[sel, "present"] = call
        if "p_present" in out.columns:
            out.loc[sel, "p_present"] = float(call)
        if "presence_uncertain" in out.columns:
            out.loc[sel, "presence_uncertain"] = 0
        out.loc[sel, "curated"] = 1
    return out
