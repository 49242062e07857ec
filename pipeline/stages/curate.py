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
row may name the id a split made.  The file is read by :mod:`pipeline.inputs.curation`; the
present/absent calls are applied by :func:`pipeline.stages.presence.curate_calls`.
"""
from __future__ import annotations

import pandas as pd

from ..contract import CURATION_CALLS as CALLS
from ..inputs.curation import row_error


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
            raise row_error(row, f"no such synapse (the cell's tracks have ids {out['synapse_id'].min()}"
                       f"..{out['synapse_id'].max()})")
        if row.session and row.session not in order:
            raise row_error(row, f"no session '{row.session}' (the cell's sessions: {', '.join(sessions)})")
        if row.action in CALLS:  # applied after presence; the track is kept as it is
            out.loc[mine, "curated"] = 1
        elif row.action == "reject":
            out = out[~mine]
        elif row.action == "merge":
            other = out["synapse_id"] == int(row.other_synapse_id)
            if not other.any():
                raise row_error(row, f"other_synapse_id {row.other_synapse_id}: no such synapse")
            shared = set(out.loc[mine, "session"].astype(str)) & \
                set(out.loc[other, "session"].astype(str))
            if shared:
                raise row_error(row, f"both synapses were detected in session(s) {', '.join(sorted(shared))}; "
                           "reject or split one first")
            out.loc[other, "synapse_id"] = sid
            out.loc[mine | other, "curated"] = 1
        else:  # split
            later = mine & (out["session"].astype(str).map(order) >= order[row.session])
            if not later.any() or later.sum() == mine.sum():
                raise row_error(row, f"splitting at session {row.session} leaves one part empty")
            out.loc[later, "synapse_id"] = int(out["synapse_id"].max()) + 1
            out.loc[mine, "curated"] = 1
    return out.reset_index(drop=True)  # row order kept: downstream sums come out the same


