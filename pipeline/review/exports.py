"""Tables other tools read: tracks for napari and trackpy, points for MapManagerCore.

``tracks.csv`` (one row per synapse and session where it is present): ``cell, track_id, t,
z, y, x`` (``t``: the session's index in time order; ``z, y, x``: voxels of the cell's
reference session, so that every session overlays the registered view), ``z_um, y_um, x_um``
(the same in um), ``session``, ``weight``, and trackpy's names ``particle`` and ``frame`` for
``track_id`` and ``t``.  napari's tracks layer takes ``track_id, t, z, y, x`` as they are.

``points.csv`` per cell, as MapManagerCore writes it: ``spineID`` (the synapse, the same in
every timepoint), ``segmentID`` (0: the pipeline does not trace dendrite segments), ``point``
(WKT ``POINT (x y)`` in pixels of that session's own stack), ``z`` (its slice) and ``t``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _session_index(synapses: pd.DataFrame) -> pd.Series:
    order = (synapses.sort_values("day").drop_duplicates(["cell", "session"])
             .assign(t=lambda d: d.groupby("cell").cumcount()))
    return synapses.merge(order[["cell", "session", "t"]], on=["cell", "session"],
                          how="left")["t"].to_numpy()


def tracks_table(synapses: pd.DataFrame, *, reference_spacing: dict) -> pd.DataFrame:
    """napari/trackpy tracks of present synapses; ``reference_spacing``: cell -> its reference
    session's voxel size (z, y, x) um."""
    t = synapses.assign(t=_session_index(synapses))
    t = t[t["present"] == 1]
    sp = np.array([reference_spacing[c] for c in t["cell"]], float).reshape(-1, 3)
    vox = t[["z_um", "y_um", "x_um"]].to_numpy(float) / sp
    out = pd.DataFrame({"cell": t["cell"].to_numpy(), "track_id": t["synapse_id"].to_numpy(),
                        "t": t["t"].to_numpy(), "z": vox[:, 0], "y": vox[:, 1], "x": vox[:, 2],
                        "z_um": t["z_um"].to_numpy(), "y_um": t["y_um"].to_numpy(),
                        "x_um": t["x_um"].to_numpy(), "session": t["session"].to_numpy(),
                        "weight": t["weight"].to_numpy()})
    out["particle"], out["frame"] = out["track_id"], out["t"]
    return out.sort_values(["cell", "track_id", "t"]).reset_index(drop=True)


def points_table(synapses: pd.DataFrame) -> pd.DataFrame:
    """One cell's present synapses as MapManagerCore's points.csv."""
    t = synapses.assign(t=_session_index(synapses))
    t = t[t["present"] == 1].sort_values(["t", "synapse_id"])
    return pd.DataFrame({
        "spineID": t["synapse_id"].to_numpy(), "segmentID": 0,
        "point": [f"POINT ({x:.3f} {y:.3f})" for x, y in zip(t["x"], t["y"])],
        "z": np.round(t["z"].to_numpy(float)).astype(int), "t": t["t"].to_numpy()})
