"""benchmarks/presence_floor.py's share of our turnover error that detection and tracking alone
cost (BENCHMARKS_FLOOR.md's last column): the truth's calls on our tracks, each track known by
its detected rows in synapses.csv (pieces the presence stage joined are one track)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from presence_floor import track_matches, truth_on_our_tracks  # noqa: E402

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


def _rows(track_places: dict) -> pd.DataFrame:
    """Our rows for ``{track id: {session: y = x of its detection there}}``: every track
    observed and called present everywhere (the calls must not matter), detected where a
    place is given (elsewhere at its first place, undetected)."""
    rows = []
    for t, places in track_places.items():
        first = next(iter(places.values()))
        for s in SESSIONS:
            v = places.get(s, first)
            rows.append({"synapse_id": t, "session": s, "present": 1.0, "weight": 1.0,
                         "z": 5.0, "y": float(v), "x": float(v), "detected": int(s in places)})
    return pd.DataFrame(rows)


def _truth_calls(rows: pd.DataFrame) -> pd.DataFrame:
    return truth_on_our_tracks(rows, _truth(), track_matches(rows, _truth(), SPACING)[0])


def _calls(out: pd.DataFrame) -> dict:
    return {t: list(g.sort_values("session")["present"].astype(int))
            for t, g in out.groupby("synapse_id")}


def test_one_track_per_synapse_gets_the_truth():
    rows = _rows({10: {s: 20 for s in SESSIONS}, 11: {"s0": 60}, 12: {"s2": 100}})
    assert _calls(_truth_calls(rows)) == {
        10: [1, 1, 1], 11: [1, 0, 0], 12: [0, 0, 1]}


def test_split_track_and_junk_track_are_absent():
    # synapse 1 split over tracks 10 (two detections) and 13 (one); 14 matches nothing
    rows = _rows({10: {"s0": 20, "s1": 20}, 13: {"s2": 20}, 11: {"s0": 60},
                  14: {s: 140 for s in SESSIONS}})
    calls = _calls(_truth_calls(rows))
    assert calls[10] == [1, 1, 1] and calls[11] == [1, 0, 0]
    assert calls[13] == [0, 0, 0] and calls[14] == [0, 0, 0]
    # synapse 3 (born at s2) has no track
    assert track_matches(rows, _truth(), SPACING)[1] == {
        "missed": 1, "split": 1, "two_synapses": 0, "no_synapse": 1}


def test_a_track_holding_two_synapses_stands_for_the_one_it_matched_most():
    # track 10 holds synapse 1 in s0 and s1, then synapse 3 (born at s2) in s2: it stands for
    # synapse 1, and synapse 3 has no track of its own
    rows = _rows({10: {"s0": 20, "s1": 20, "s2": 100}, 11: {"s0": 60}})
    matches, defects = track_matches(rows, _truth(), SPACING)
    assert matches.to_dict() == {10: 1, 11: 2}
    assert defects == {"missed": 0, "split": 0, "two_synapses": 1, "no_synapse": 0}
    assert _calls(_truth_calls(rows))[10] == [1, 1, 1]


def test_unobserved_rows_stay_unobserved():
    rows = _rows({10: {s: 20 for s in SESSIONS}})
    rows.loc[rows["session"] == "s1", "present"] = np.nan
    out = _truth_calls(rows)
    assert out.set_index("session")["present"].isna().to_dict() == {
        "s0": False, "s1": True, "s2": False}
