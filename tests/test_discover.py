"""`python -m pipeline discover`: a sessions sheet from an imaging directory tree."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import tifffile

from pipeline.cli import main
from pipeline.core.errors import InputError
from pipeline.inputs.discover import (assign_days, day_from_name, discover_sessions,
                                      sessions_from_paths)
from pipeline.inputs.sheet import SheetError, read_sessions


def _stack(path, seed, *, channels=2, date=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(1, 3000, size=(4, channels, 16, 16)).astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.1, 1 / 0.1),
                     metadata={"spacing": 0.8, "unit": "um", "axes": "ZCYX"},
                     datetime=dt.datetime(date.year, date.month, date.day, 10) if date else None)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "imaging"
    # m1/cellA: days in the names; m1/cellB: dates in the names; m2/cellA: dates only in metadata
    for i, name in enumerate(["day00", "day04", "day08"]):
        _stack(root / "m1" / "cellA" / name / "stack.tif", i)
    for i, name in enumerate(["2026-01-30", "2026-02-03", "20260207"]):
        _stack(root / "m1" / "cellB" / name / "img.tif", 10 + i)
    start = dt.date(2026, 3, 1)
    for i, name in enumerate(["first", "second"]):
        _stack(root / "m2" / "cellA" / name / "Image_001.tif", 20 + i,
               date=start + dt.timedelta(days=4 * i))
    (root / "m1" / "cellA" / "day00" / "notes.txt").write_text("not an image")
    return root


def test_discover_writes_a_sheet_the_pipeline_accepts(tree, tmp_path, capsys):
    out = tmp_path / "analysis" / "sessions.tsv"
    assert main(["discover", str(tree), "--out", str(out), "--cell-type", "pyr"]) == 0
    sheet = read_sessions(out)  # validates and checks that every path exists
    assert sorted(sheet["cell"].unique()) == ["m1_cellA", "m1_cellB", "m2_cellA"]
    days = {(r.cell, r.session): r.day for r in sheet.itertuples()}
    assert [days[("m1_cellA", s)] for s in ("day00", "day04", "day08")] == [0, 4, 8]
    assert [days[("m1_cellB", s)] for s in ("2026-01-30", "2026-02-03", "20260207")] == [0, 4, 8]
    assert [days[("m2_cellA", s)] for s in ("first", "second")] == [0, 4]
    assert set(sheet["animal"]) == {"m1", "m2"}
    assert (sheet["psd95_channel"] == 0).all() and (sheet["morphology_channel"] == 1).all()
    notes = dict(zip(sheet["session"] + "@" + sheet["cell"], sheet["notes"]))
    assert "metadata" in notes["first@m2_cellA"] and "name" in notes["day04@m1_cellA"]
    assert not any(p.name == "sessions.tsv" for p in tree.rglob("*"))


def test_missing_cell_type_and_day_are_left_to_fill_and_named(tmp_path, capsys):
    root = tmp_path / "imaging"
    for i, name in enumerate(["s1", "s2"]):
        _stack(root / "m1" / "c1" / name / "a.tif", i)
    out = tmp_path / "sessions.tsv"
    assert main(["discover", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cell_type" in printed and "fill 'day' for cell(s) m1_c1" in printed
    raw = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    assert (raw["day"] == "").all() and (raw["cell_type"] == "").all()
    with pytest.raises(SheetError, match="column 'day'"):
        read_sessions(out)


def test_discover_never_writes_into_the_imaging_directory_nor_over_a_sheet(tree, tmp_path, capsys):
    assert main(["discover", str(tree), "--out", str(tree / "sessions.tsv")]) == 2
    assert "inside the imaging directory" in capsys.readouterr().err
    out = tmp_path / "sessions.tsv"
    out.write_text("edited by hand\n")
    assert main(["discover", str(tree), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "edited by hand\n"


def test_pattern_with_slices_folder_and_ambiguous_session():
    paths = ["a/c1/s1/z000.tif", "a/c1/s1/z001.tif", "a/c1/s2/stack.tif",
             "a/c2/s1/x.tif", "a/c2/s1/y.ome.tiff.bak"]
    table, problems = sessions_from_paths(paths, "{animal}/{cell}/{session}/*.tif")
    got = {(r.cell, r.session): r.path for r in table.itertuples()}
    assert got[("a_c1", "s1")] == "a/c1/s1" and got[("a_c1", "s2")] == "a/c1/s2/stack.tif"
    assert got[("a_c2", "s1")] == "a/c2/s1/x.tif" and problems == []
    table, problems = sessions_from_paths(["c/s/a.tif", "c/s/sub/b.tif", "c/s/b.tif"],
                                          "{cell}/{session}/*.tif")
    assert len(problems) == 0 and table["path"].tolist() == ["c/s"]  # two slices in one folder
    with pytest.raises(Exception, match="cell"):
        sessions_from_paths([], "{animal}/{session}/*.tif")


def test_day_from_name_and_assign_days():
    assert day_from_name("day04") == (4.0, None)
    assert day_from_name("D12_repeat") == (12.0, None)
    assert day_from_name("2026-01-30") == (None, dt.date(2026, 1, 30))
    assert day_from_name("img_20251231_x") == (None, dt.date(2025, 12, 31))
    assert day_from_name("s01") == (None, None)
    t = pd.DataFrame({"cell": ["a", "a", "b", "b"], "day_number": [3.0, 7.0, None, None],
                      "date": [None, None, dt.date(2026, 1, 1), dt.date(2026, 1, 9)],
                      "date_source": ["", "", "x", "x"]})
    assert assign_days(t)["day"].tolist() == [0.0, 4.0, 0.0, 8.0]


def test_discover_takes_acquisition_folders_as_sessions(tmp_path):
    from vendor_layouts import write_prairieview, write_thorimage_raw

    root = tmp_path / "rig"
    stack = np.random.default_rng(3).integers(1, 3000, size=(2, 4, 16, 16)).astype(np.uint16)
    for i, day in enumerate(["day00", "day04"]):
        write_prairieview(root / "m1" / "cellA" / day / f"ZSeries-0314202{i}-1002-001", stack,
                          voxel_um=(0.8, 0.09, 0.09))
    for name in ("dendrite_a", "dendrite_b"):      # ThorImage: the experiment folder is the session
        write_thorimage_raw(root / "m2" / "cellB" / name, stack, voxel_um=(0.8, 0.09, 0.09))
    out = tmp_path / "sessions.tsv"
    # the default pattern matches no file and says what to do with the folders found
    with pytest.raises(InputError, match="4 acquisition folder.*were found.*ZSeries-"):
        discover_sessions(root, sheet_folder=tmp_path)
    assert main(["discover", str(root), "--out", str(out), "--cell-type", "pyr",
                 "--pattern", "{animal}/{cell}/{session}/ZSeries-*"]) == 0
    pv = read_sessions(out)
    assert list(pv["session"]) == ["day00", "day04"] and list(pv["day"]) == [0, 4]
    assert all(p.startswith("rig/m1/cellA/day0") and "/ZSeries-" in p for p in
               pd.read_csv(out, sep="\t")["path"])
    assert "Bruker PrairieView folder, channels 0 = Ch1, 1 = Ch2" in pv["notes"].iloc[0]
    out2 = tmp_path / "thor.tsv"
    assert main(["discover", str(root), "--out", str(out2), "--cell-type", "pyr",
                 "--pattern", "{animal}/{cell}/{session}"]) == 0
    thor = read_sessions(out2)
    thor = thor[thor["cell"] == "m2_cellB"]
    assert list(thor["session"]) == ["dendrite_a", "dendrite_b"]
    # no day in the names: both from Experiment.xml's date, the same day (the person fills it)
    assert "acquisition date" in thor["notes"].iloc[0] and list(thor["day"]) == [0, 0]
