"""Curation rows change the tracks and the calls exactly as stated (pipeline.stages.curate)."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.inputs.curation import curation_text, parse_curation, read_curation
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
                                  r), note="", row=i + 1) for i, r in enumerate(rows)],
                        columns=["action", "cell", "synapse_id", "session", "other_synapse_id",
                                 "note", "row"])


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
    (("reject", "c", "9", "", ""), "line 1 .*no such synapse"),
    (("split", "c", "1", "s7", ""), "line 1 .*no session 's7'"),
    (("merge", "c", "1", "", "2"), "line 1 .*both synapses were detected in session"),
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


def test_merged_pieces_are_present_wherever_either_was_detected_unless_marked_absent():
    # synapse 6 (track 6) merged with a piece seen only in s2 at low SNR: the model called s2 absent
    table = pd.DataFrame({"synapse_id": [6, 6, 6, 6, 7, 7], "track_id": [6, 6, 6, 6, 7, 7],
                          "session": ["s0", "s1", "s2", "s3", "s2", "s3"],
                          "detected": [1, 1, 1, 0, 1, 0], "present": [1, 1, 0, 0, 0, 0],
                          "p_present": [0.99, 0.98, 0.067, 0.02, 0.1, 0.02]})
    out = curate_calls(table, _actions(("merge", "c", "6", "", "14")))
    assert out["present"].tolist() == [1, 1, 1, 0, 0, 0]      # s2 now present; s3 not detected
    assert out["p_present"].tolist()[2] == 1.0 and out["curated"].tolist() == [1, 1, 1, 0, 0, 0]
    # the person's absent row wins over the merge
    out = curate_calls(table, _actions(("merge", "c", "6", "", "14"), ("absent", "c", "6", "s2", "")))
    assert out["present"].tolist() == [1, 1, 0, 0, 0, 0]
    # without a merge row the model's calls stand
    assert curate_calls(table, _actions())["present"].tolist() == table["present"].tolist()


def test_curation_file_problems_are_all_named_with_their_lines(tmp_path):
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
    assert "4 problem(s)" in msg and "line 2" in msg and "'delete' is not an action" in msg
    assert "line 3" in msg and "needs the session" in msg and "split c 2 SESSION" in msg
    assert "line 4" in msg and "synapse_id 'x'" in msg and "merge c x OTHER_ID" in msg
    assert "line 6" not in msg
    path.write_text("action\tcell\tsynapse_id\nreject\tc\t3\n")
    assert read_curation(path)["action"].tolist() == ["reject"]


def test_curation_lines_may_use_spaces_and_need_no_header(tmp_path):
    path = tmp_path / "curation.tsv"
    # pasted with spaces (the failing row), runs of spaces, a comment, a note, no header
    path.write_text("# my edits\n"
                    "reject pyr01 28\n"
                    "merge   pyr01  6   14   same punctum, drifted\n"
                    "\n"
                    "absent pyr01 6 s03\n"
                    "split\tpyr01\t9\ts02\t\t\n")
    rows = read_curation(path)
    assert rows["action"].tolist() == ["reject", "merge", "absent", "split"]
    assert rows["row"].tolist() == [2, 3, 5, 6]
    merge = rows.iloc[1]
    assert (merge["synapse_id"], merge["other_synapse_id"], merge["session"]) == ("6", "14", "")
    assert merge["note"] == "same punctum, drifted"
    assert rows.iloc[2][["synapse_id", "session"]].tolist() == ["6", "s03"]
    assert rows.iloc[3][["synapse_id", "session"]].tolist() == ["9", "s02"]
    # what the review server saves reads back as the same rows
    again = tmp_path / "again.tsv"
    again.write_text(curation_text(rows))
    cols = ["action", "cell", "synapse_id", "session", "other_synapse_id", "note"]
    assert read_curation(again)[cols].equals(rows[cols])


def test_a_bad_header_is_named():
    with pytest.raises(InputError, match="line 1: the header names sesion"):
        parse_curation("action\tcell\tsynapse_id\tsesion\n")


def test_a_row_whose_id_now_names_another_place_is_an_error_naming_the_synapse_there():
    # rows made on the review page carry at_um, the synapse's place when they were made.  The
    # tracks are renumbered (a new release, other track settings): 2 and 3 swap ids
    tracks = _tracks()
    tracks.loc[tracks.synapse_id == 2, ["y_um", "x_um"]] = [10.0, 10.0]
    tracks.loc[tracks.synapse_id == 3, ["y_um", "x_um"]] = [20.0, 20.0]
    made_on_2 = _actions(("reject", "c", "2", "", "")).assign(at_um="1 10.1 9.9")
    assert 2 not in set(curate_tracks(tracks, made_on_2, sessions=SESSIONS).synapse_id)
    renumbered = tracks.replace({"synapse_id": {2: 3, 3: 2}})
    with pytest.raises(InputError, match=r"line 1 .*synapse 2 no longer is.*synapse 3 is there "
                                         r"now.*renumbered"):
        curate_tracks(renumbered, made_on_2, sessions=SESSIONS)
    # a present/absent row is checked too; nothing at the place: said so
    call = _actions(("absent", "c", "2", "s1", "")).assign(at_um="1 40 40")
    with pytest.raises(InputError, match="no synapse is there now"):
        curate_tracks(tracks, call, sessions=SESSIONS)
    # rows without at_um (written by hand) apply as they stand
    assert 3 not in set(curate_tracks(renumbered, _actions(("reject", "c", "3", "", "")),
                                      sessions=SESSIONS).synapse_id)


def test_at_um_is_read_written_and_checked_for_form():
    text = ("action\tcell\tsynapse_id\tsession\tother_synapse_id\tnote\tat_um\n"
            "reject\tc\t2\t\t\tshaft\t1.00 10.10 9.90\n"
            "reject\tc\t4\t\t\tby hand\t\n")
    rows = parse_curation(text)
    assert rows["at_um"].tolist() == ["1.00 10.10 9.90", ""]
    assert parse_curation(curation_text(rows))["at_um"].tolist() == rows["at_um"].tolist()
    # files written before the column existed (six fields) read as before
    old = parse_curation("reject\tc\t2\t\t\tshaft\n")
    assert old["at_um"].tolist() == [""] and old["note"].tolist() == ["shaft"]
    with pytest.raises(InputError, match="line 2: at_um '1 2' must be three numbers"):
        parse_curation("action\tcell\tsynapse_id\tsession\tother_synapse_id\tnote\tat_um\n"
                       "reject\tc\t2\t\t\t\t1 2\n")
