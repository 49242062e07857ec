"""benchmarks/presence_floor.py's share of our turnover error that detection and tracking alone
cost (BENCHMARKS_FLOOR.md's last column): the truth's calls on our tracks."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from presence_floor import truth_on_our_tracks  # noqa: E402

SPACING = np.array([0.8, 0.1, 0.1])
SESSIONS = ["s0", "s1", "s2"]


def _truth():
    """Synapse 1 present throughout at (5, 20, 20); synapse 2 lost after s0 at (5, 60, 60);
    synapse 3 born at s2 at (5, 100, 100)."""
    rows = []
    for sid, yx, present in ((1, 20, [1, 1, 1]), (2, 60, [1, 0, 0]), (3, 100, [0, 0, 1])):
        for s, p in zip(SESSIONS, present):
            rows.append({"synapse_id": sid, "session": s, "day": 4 * SESSIONS.index(s),
                         "present": p, "weight": 0.5 * p,
                         "z": 5.0, "y": float(yx), "x": float(yx)})
    return pd.DataFrame(rows)


def _rows(track_places: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our rows (every track observed, called present everywhere: the calls must not matter)
    and the detections of the track stage for ``{track id: {session: y = x}}``."""
    rows = [{"synapse_id": t, "session": s, "present": 1.0, "weight": 1.0}
            for t in track_places for s in SESSIONS]
    det = [{"synapse_id": t, "session": s, "z": 5.0, "y": float(v), "x": float(v)}
           for t, places in track_places.items() for s, v in places.items()]
    return pd.DataFrame(rows), pd.DataFrame(det)


def _calls(out: pd.DataFrame) -> dict:
    return {t: list(g.sort_values("session")["present"].astype(int))
            for t, g in out.groupby("synapse_id")}


def test_one_track_per_synapse_gets_the_truth():
    rows, det = _rows({10: {s: 20 for s in SESSIONS}, 11: {"s0": 60}, 12: {"s2": 100}})
    assert _calls(truth_on_our_tracks(rows, det, _truth(), SPACING)) == {
        10: [1, 1, 1], 11: [1, 0, 0], 12: [0, 0, 1]}


def test_split_track_and_junk_track_are_absent():
    # synapse 1 split over tracks 10 (two detections) and 13 (one); 14 matches nothing
    rows, det = _rows({10: {"s0": 20, "s1": 20}, 13: {"s2": 20}, 11: {"s0": 60},
                       14: {s: 140 for s in SESSIONS}})
    calls = _calls(truth_on_our_tracks(rows, det, _truth(), SPACING))
    assert calls[10] == [1, 1, 1] and calls[11] == [1, 0, 0]
    assert calls[13] == [0, 0, 0] and calls[14] == [0, 0, 0]


def test_unobserved_rows_stay_unobserved():
    rows, det = _rows({10: {s: 20 for s in SESSIONS}})
    rows.loc[rows["session"] == "s1", "present"] = np.nan
    out = truth_on_our_tracks(rows, det, _truth(), SPACING)
    assert out.set_index("session")["present"].isna().to_dict() == {
        "s0": False, "s1": True, "s2": False}
