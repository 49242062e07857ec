"""Curation rows change the tracks and the calls exactly as stated (pipeline.stages.curate)."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.inputs.curation import read_curation
from pipeline.stages.curate import curate_tracks
from pipeline.stages.presence import curate_calls
from pipeline.core.errors import InputError

SESSIONS = ["s0", "s1", "s2", "s3"]


def _tracks():
    # synapse 1 in every session; 2 in s0, s1; 3 in s2, s3 (the same synapse, left in two pieces)
    rows = [(1, s) for s in SESSIONS] + [(2, "s0"), (2, "s1"), (3, "s2"), (3, "s3")]
    return pd.DataFrame({"synapse_id": [r[0] for r in rows], "session": [r[1] for r in rows],
                         "session_index": [SESSIONS.index(r[1]) for r in rows],
                         "z_um": 1.0, "y_um": 2.0, "x_um": 3.0})


def _actions(*rows):
    return pd.DataFrame([dict(zip(["action", "cell", "synapse_id", "session", "other_synapse_id"],
                                  r), note="", row=i + 1) for i, r in enumerate(rows)])


def test_reject_merge_split_change_the_tracks_as_stated():
    out = curate_tracks(_tracks(), _actions(("merge", "c", "2", "", "3")), sessions=SESSIONS)
    assert sorted(out.loc[out.synapse_id == 2, "session"]) == SESSIONS and 3 not in set(out.synapse_id)
    assert out.loc[out.synapse_id == 2, "curated"].eq(1).all()
    assert out.loc[out.synapse_id == 1, "curated"].eq(0).all()
    out = curate_tracks(_tracks(), _actions(("reject", "c", "1", "", "")), sessions=SESSIONS)
    assert 1 not in set(out.synapse_id) and len(out) == 4
    # split 1 at s2: s2 and s3 become a new synapse (one more than the largest id, 4)
    out = curate_tracks(_tracks(), _actions(("split", "c", "1", "s2", ""),
                                            ("reject", "c", "4", "", "")), sessions=SESSIONS)
    assert sorted(out.loc[out.synapse_id == 1, "session"]) == ["s0", "s1"]
    assert 4 not in set(out.synapse_id)  # a later row can name the id a split made


@pytest.mark.parametrize("row,message", [
    (("reject", "c", "9", "", ""), "row 1 .*no such synapse"),
    (("split", "c", "1", "s7", ""), "row 1 .*no session 's7'"),
    (("merge", "c", "1", "", "2"), "row 1 .*both synapses were detected in session"),
    (("split", "c", "1", "s0", ""), "leaves one part empty"),
])
def test_rows_naming_what_does_not_exist_are_errors_naming_the_row(row, message):
    with pytest.raises(InputError, match=message):
        curate_tracks(_tracks(), _actions(row), sessions=SESSIONS)


def test_present_and_absent_override_the_calls():
    table = pd.DataFrame({"synapse_id": [1, 1, 5, 5], "track_id": [1, 1, 2, 2],
                          "session": ["s0", "s1", "s0", "s1"], "present": [1, 0, 1, 1],
                          "p_present": [0.9, 0.3, 0.99, 0.6], "presence_uncertain": [0, 1, 0, 1]})
    out = curate_calls(table, _actions(("present", "c", "1", "s1", ""), ("absent", "c", "2", "s1", "")))
    assert out["present"].tolist() == [1, 1, 1, 0]
    assert out["p_present"].tolist() == [0.9, 1.0, 0.99, 0.0]
    assert out["curated"].tolist() == [0, 1, 0, 1] and out["presence_uncertain"].sum() == 0


def test_curation_file_problems_are_all_named(tmp_path):
    path = tmp_path / "curation.tsv"
    path.write_text("action\tcell\tsynapse_id\tsession\tother_synapse_id\tnote\n"
                    "delete\tc\t1\t\t\t\n"
                    "split\tc\t2\t\t\tno session\n"
                    "merge\tc\tx\t\t\t\n"
                    "# a comment line is ignored\n"
                    "reject\tc\t3\t\t\tnot a synapse\n")
    with pytest.raises(InputError) as err:
        read_curation(path)
    msg = str(err.value)
    assert "4 problem(s)" in msg and "row 1" in msg and "'delete'" in msg
    assert "row 2" in msg and "needs the session" in msg
    assert "row 3" in msg and "synapse_id 'x'" in msg and "other_synapse_id" in msg
    path.write_text("action\tcell\tsynapse_id\nreject\tc\t3\n")
    assert read_curation(path)["action"].tolist() == ["reject"]
