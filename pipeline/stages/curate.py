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

import numpy as np
import pandas as pd

from ..contract import CURATION_CALLS as CALLS
from ..inputs.curation import anchor_of, row_error

#: a row's synapse must have a detection this close to the row's ``at_um`` (um; the linking
#: gate: a track's detections scatter about its mean by less)
ANCHOR_TOLERANCE_UM = 1.0


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
        anchor = anchor_of(getattr(row, "at_um", "") or "")
        if anchor is not None:
            _check_anchor(out, sid, np.array(anchor), row)
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


def _nearest_detection_um(tracks: pd.DataFrame, anchor: np.ndarray) -> pd.Series:
    """Per track id: the distance (um) from ``anchor`` to its nearest detection."""
    d = np.linalg.norm(tracks[["z_um", "y_um", "x_um"]].to_numpy(float) - anchor, axis=1)
    return pd.Series(d, index=tracks.index).groupby(tracks["synapse_id"]).min()


def _check_anchor(tracks: pd.DataFrame, sid: int, anchor: np.ndarray, row) -> None:
    """Fail when synapse ``sid`` has no detection near where the row was made (``at_um``):
    its id now names another synapse, so the row would act on the wrong one."""
    near = _nearest_detection_um(tracks, anchor)
    if near.get(sid, np.inf) <= ANCHOR_TOLERANCE_UM:
        return
    there = near[near <= ANCHOR_TOLERANCE_UM].sort_values()
    now = (f"synapse {', '.join(str(i) for i in there.index)} "
           f"{'is' if len(there) == 1 else 'are'} there now"
           if len(there) else "no synapse is there now")
    raise row_error(row, f"made at {' '.join(f'{v:g}' for v in anchor)} um, where synapse {sid} "
                    f"no longer is (its nearest detection {near.get(sid, np.inf):.1f} um away; "
                    f"{now}): the tracks were renumbered since the row was made (a new release "
                    "or other track settings). Change the row's synapse_id to the synapse now "
                    "at that place (check it on the review page) and its at_um to match, or "
                    "empty at_um to apply the row as it stands")
