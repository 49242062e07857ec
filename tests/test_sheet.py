import numpy as np
import pytest
import tifffile

from pipeline.inputs.sheet import SheetError, check_images, read_sessions

HEADER = "cell\tcell_type\tsession\tday\tpath\n"


def _write(tmp_path, text, images=("a.tif", "b.tif", "c.tif")):
    for name in images:
        tifffile.imwrite(tmp_path / name, np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8))
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text(text)
    return sheet


def test_valid_sheet_is_sorted_and_resolved(tmp_path):
    sheet = _write(tmp_path, HEADER + "c1\tpyr\tlate\t4\tb.tif\nc1\tpyr\tearly\t0\ta.tif\n")
    df = read_sessions(sheet)
    assert df["session"].tolist() == ["early", "late"]
    assert df["abs_path"].iloc[0] == str((tmp_path / "a.tif").resolve())
    assert df["morphology_channel"].tolist() == [-1, -1]


def test_missing_column_is_named(tmp_path):
    sheet = _write(tmp_path, "cell\tsession\tday\tpath\nc1\ts1\t0\ta.tif\n")
    with pytest.raises(SheetError, match="missing required column.*cell_type"):
        read_sessions(sheet)


def test_every_problem_is_reported_at_once_with_rows(tmp_path):
    sheet = _write(tmp_path, HEADER +
                   "c1\tpyr\ts1\t0\ta.tif\n"
                   "c1\tpyr\ts1\t4\tb.tif\n"          # duplicate session
                   "c1\tpyr\ts3\tfour\tc.tif\n"       # non-numeric day
                   "c1\tpyr\ts4\t12\tmissing.tif\n")  # path that does not exist
    with pytest.raises(SheetError) as err:
        read_sessions(sheet)
    msg = str(err.value)
    assert "3 problem(s)" in msg
    assert "rows 1, 2: session 's1' appears more than once" in msg
    assert "row 3 (line 4), column 'day'" in msg
    assert "row 4 (line 5), column 'path'" in msg and "missing.tif" in msg


def test_unknown_column_and_single_session_cell(tmp_path):
    sheet = _write(tmp_path, "cell\tcell_type\tsession\tday\tpath\tcomment\n"
                             "c1\tpyr\ts1\t0\ta.tif\tx\n")
    with pytest.raises(SheetError, match="unknown column.*comment"):
        read_sessions(sheet)
    sheet = _write(tmp_path, HEADER + "c1\tpyr\ts1\t0\ta.tif\nc2\tPV\ts1\t0\tb.tif\nc2\tPV\ts2\t4\tc.tif\n")
    with pytest.raises(SheetError, match="cell 'c1' has only one session"):
        read_sessions(sheet)


def test_bad_voxel_and_equal_channels(tmp_path):
    sheet = _write(tmp_path, "cell\tcell_type\tsession\tday\tpath\tpsd95_channel\tmorphology_channel\tvoxel_um\n"
                             "c1\tpyr\ts1\t0\ta.tif\t0\t0\t0.8,0.1\n"
                             "c1\tpyr\ts2\t4\tb.tif\t0\t1\t0.8,0.1,0.1\n")
    with pytest.raises(SheetError) as err:
        read_sessions(sheet)
    assert "column 'voxel_um'" in str(err.value)
    assert "psd95_channel and morphology_channel are both 0" in str(err.value)


def test_image_probe_reports_channel_out_of_range_and_unreadable(tmp_path):
    sheet = _write(tmp_path, "cell\tcell_type\tsession\tday\tpath\tmorphology_channel\tvoxel_um\n"
                             "c1\tpyr\ts1\t0\ta.tif\t1\t0.8,0.1,0.1\n"
                             "c1\tpyr\ts2\t4\tb.tif\t1\t0.8,0.1,0.1\n")
    (tmp_path / "b.tif").write_bytes(b"garbage")
    problems = check_images(read_sessions(sheet))
    assert len(problems) == 2
    assert "row 1" in problems[0] and "morphology_channel 1 is out of range" in problems[0]
    assert "row 2" in problems[1] and "b.tif" in problems[1] and "cannot be read" in problems[1]


def test_check_sheet_prints_each_file_and_warns_about_units_and_shallow_stacks(tmp_path):
    """One line per file as read (planes, axes, channels, voxel size and its source); an
    implausible voxel size and a stack much shallower than its cell's others are named."""
    import subprocess
    import sys

    vox = {"axes": "ZCYX", "unit": "um"}
    for name, z, spacing in (("deep0.tif", 20, 0.8), ("deep1.tif", 20, 0.8), ("half.tif", 8, 0.8),
                             ("nm.tif", 20, 800.0)):
        data = np.random.default_rng(0).integers(0, 500, (z, 2, 16, 16)).astype(np.uint16)
        tifffile.imwrite(tmp_path / name, data, imagej=True, resolution=(1 / 0.09, 1 / 0.09),
                         metadata={**vox, "spacing": spacing})
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text("cell\tcell_type\tsession\tday\tpath\tmorphology_channel\n"
                     "c1\tpyr\ts0\t0\tdeep0.tif\t1\nc1\tpyr\ts1\t4\tdeep1.tif\t1\n"
                     "c1\tpyr\ts2\t8\thalf.tif\t1\nc2\tpyr\ts0\t0\tdeep0.tif\t1\n"
                     "c2\tpyr\ts1\t4\tnm.tif\t1\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "check-sheet", str(sheet), "--images"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "deep0.tif: ImageJ TIFF, 20 planes of 16x16, axes ZCYX, 2 channel(s) (psd95 0, morphology 1), " \
           "uint16, voxel 0.8,0.09,0.09 um from the file's metadata" in lines[0]
    warnings = [ln for ln in lines if ln.startswith("warning:")]
    assert len(warnings) == 2, warnings
    assert "cell c1, session s2: its stack is 6.4 um deep" in warnings[0]
    assert "censored" in warnings[0]
    assert "nm.tif" in warnings[1] and "unusual" in warnings[1]


def test_target_column_says_what_the_synapses_are(tmp_path):
    header = "cell\tcell_type\tsession\tday\tpath\ttarget\n"
    sheet = _write(tmp_path, header + "c1\tpyr\ts0\t0\ta.tif\tpuncta\nc1\tpyr\ts1\t4\tb.tif\t\n")
    assert read_sessions(sheet)["cell"].tolist() == ["c1", "c1"]     # puncta, or left blank
    sheet = _write(tmp_path, header + "c1\tpyr\ts0\t0\ta.tif\tspine\nc1\tpyr\ts1\t4\tb.tif\t\n"
                   "c2\tpyr\ts0\t0\ta.tif\tspines\nc2\tpyr\ts1\t4\tb.tif\tspines\n"
                   "c3\tpyr\ts0\t0\ta.tif\tpuncta\nc3\tpyr\ts1\t4\tc.tif\tspines\n")
    with pytest.raises(SheetError) as err:
        read_sessions(sheet)
    msg = str(err.value)
    assert "row 1 (line 2), column 'target'" in msg and "'spine' is not one of" in msg
    assert "row 3" not in msg and "cell 'c2'" not in msg     # spines: a cell fill's spines
    assert "cell 'c3' has several target values" in msg
    sheet = _write(tmp_path, header + "c2\tpyr\ts0\t0\ta.tif\tspines\nc2\tpyr\ts1\t4\tb.tif\tspines\n"
                   "c1\tpyr\ts0\t0\ta.tif\t\nc1\tpyr\ts1\t4\tb.tif\t\n")
    assert read_sessions(sheet).groupby("cell")["target"].first().to_dict() == {
        "c1": "puncta", "c2": "spines"}
