"""A lab's own annotations: readers of each form, agreement with a run scored as the truth is,
and exports that other tools read back."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE
from pipeline.inputs.annotations import name_sessions, read_annotations
from pipeline.truth.agreement import evaluate_annotations
from pipeline.truth.evaluate import evaluate_results


def _order(results):
    syn = pd.read_csv(results / "synapses.csv")
    return {c: list(g.sort_values("day")["session"].drop_duplicates())
            for c, g in syn.groupby("cell")}


def _truth_as_points(tmp_path, frame="voxels"):
    t = pd.read_csv(SAMPLE / "truth" / "synapses.csv")
    t = t[t.present == 1].rename(columns={"synapse_id": "annotation_id"})
    cols = ["z", "y", "x"] if frame == "voxels" else ["z_um", "y_um", "x_um"]
    path = tmp_path / f"points_{frame}.csv"
    t[["cell", "session", "annotation_id", *cols]].to_csv(path, index=False)
    return path


def test_the_truth_written_as_annotations_scores_as_the_truth(sample_run, tmp_path):
    results = sample_run.results
    ann = name_sessions(read_annotations(_truth_as_points(tmp_path)), _order(results))
    table, per_synapse = evaluate_annotations(ann, results, complete=True, n_boot=200)
    truth = evaluate_results(SAMPLE, results).set_index(["cell", "metric"])["value"]
    for cell in ("pyr01", "PV02"):
        row = table.set_index("cell").loc[cell]
        assert row["recall"] == pytest.approx(truth[(cell, "detection_recall")], abs=1e-12)
        assert row["precision"] == pytest.approx(truth[(cell, "detection_precision")], abs=1e-12)
        assert row["link_agreement"] == pytest.approx(truth[(cell, "link_precision")], abs=1e-12)
        assert row["link_recall"] == pytest.approx(truth[(cell, "link_recall")], abs=1e-12)
    pooled = table.set_index("cell").loc["all"]
    assert pooled["recall"] == pytest.approx(table["recall"].iloc[:2].mean())
    assert np.isnan(pooled["recall_ci_low"])          # two cells: no CI over cells
    assert per_synapse["agreement"].between(0, 1).all() and len(per_synapse) > 40
    # the same points in the reference frame (um, as synapses.csv) match as well, through
    # the run's own registration
    ref = name_sessions(read_annotations(_truth_as_points(tmp_path, "um")), _order(results))
    assert set(ref["frame"]) == {"reference_um"}
    table_um, _ = evaluate_annotations(ref, results, complete=True, n_boot=200)
    assert (table_um["recall"] - table["recall"]).abs().max() < 0.03


def test_moving_a_tenth_of_the_points_3_um_lowers_recall_by_a_tenth(sample_run, tmp_path):
    results = sample_run.results
    ann = name_sessions(read_annotations(_truth_as_points(tmp_path)), _order(results))
    base, _ = evaluate_annotations(ann, results, complete=True, n_boot=200)
    rng = np.random.default_rng(1)
    moved = ann.copy()
    pick = rng.random(len(moved)) < 0.1
    spacing = json.loads((results / "ingest" / "pyr01" / "s00.json").read_text())["voxel_um"]
    moved.loc[pick, "x"] += 3.0 / spacing[2]               # 3 um sideways: beyond the gate
    after, _ = evaluate_annotations(moved, results, complete=True, n_boot=200)
    for cell in ("pyr01", "PV02"):
        b, a = base.set_index("cell").loc[cell], after.set_index("cell").loc[cell]
        share = pick[(ann["cell"] == cell).to_numpy()].mean()
        assert a["recall"] == pytest.approx(b["recall"] * (1 - share), abs=0.03)
        assert a["precision"] < b["precision"]


def test_mapmanager_legacy_map_is_read_with_its_links(tmp_path):
    folder = tmp_path / "rr30a"
    (folder / "stackdb").mkdir(parents=True)
    (folder / "rr30a.txt").write_text("\ts0\ts1\ts2\nhsStack\trr30a_s0_ch1\trr30a_s1_ch1\t"
                                      "rr30a_s2_ch1\nvoxelx\t0.1\t0.1\t0.1\n")
    # three sessions, points (stack index): s0 {0, 1, 2}, s1 {0, 1}, s2 {0, 1, 2}
    # links: s0#0 -> s1#1 -> s2#0; s0#1 -> s1#0 (ends); s0#2 alone; s2#1, s2#2 new
    idx = np.full((3, 3), np.nan)
    nxt = np.full((3, 3), -1.0)
    idx[:, 0] = [0, 1, 2]
    idx[:2, 1] = [0, 1]
    idx[:, 2] = [0, 1, 2]
    nxt[0, 0], nxt[1, 1], nxt[1, 0] = 1, 0, 0
    blocks = np.stack([idx, nxt, np.full((3, 3), -1.0)])
    (folder / "rr30a_objMap.txt").write_text(
        "rows=3;cols=3;blocks=3;\n" + "\n".join(" ".join("NaN" if np.isnan(v) else f"{v:g}"
                                                      for v in row) for row in blocks.reshape(-1, 3)))
    dbs = {0: [(1, 2, 3, "spineROI", 0), (4, 5, 6, "spineROI", 0), (7, 8, 9, "spineROI", 1)],
           1: [(10, 11, 12, "spineROI", 0), (13, 14, 15, "spineROI", 0)],
           2: [(16, 17, 18, "spineROI", 0), (19, 20, 21, "controlPnt", 0),
               (22, 23, 24, "spineROI", 0)]}
    for s, pts in dbs.items():
        pd.DataFrame(pts, columns=["x", "y", "z", "roiType", "isBad"]).to_csv(
            folder / "stackdb" / f"rr30a_s{s}_db2.txt", index=False)
    ann = read_annotations(folder, cell="pyr01")
    assert set(ann["frame"]) == {"session_um"} and set(ann["cell"]) == {"pyr01"}
    by_id = {a: sorted(zip(g["session"], g["x"])) for a, g in ann.groupby("annotation_id")}
    runs = sorted(by_id.values())
    # s0#0 -> s1#1 -> s2#0 is one synapse; s0#1 -> s1#0 another; s0#2 isBad, s2#1 not a spine
    assert [(0, 1.0), (1, 13.0), (2, 16.0)] in runs
    assert [(0, 4.0), (1, 10.0)] in runs
    assert [(2, 22.0)] in runs and len(runs) == 3
    named = name_sessions(ann, {"pyr01": ["d0", "d4", "d8"]})
    assert set(named["session"]) == {"d0", "d4", "d8"}
    assert set(read_annotations(folder, cell="pyr01", units="voxels")["frame"]) == {"voxels"}


def test_mapmanager_core_points_and_exports_read_back(sample_run, tmp_path):
    import subprocess
    import sys

    results = sample_run.results
    out = tmp_path / "exports"
    subprocess.run([sys.executable, "-m", "pipeline", "export", "--results", str(results),
                    "--out", str(out)], check=True, capture_output=True)
    syn = pd.read_csv(results / "synapses.csv")
    tracks = pd.read_csv(out / "tracks.csv")
    assert len(tracks) == int((syn["present"] == 1).sum())
    # trackpy's columns, and napari's tracks layer data (track_id, t, z, y, x)
    assert {"particle", "frame", "x", "y", "z"} <= set(tracks.columns)
    data = tracks[tracks.cell == "pyr01"][["track_id", "t", "z", "y", "x"]].to_numpy()
    assert data.shape[1] == 5 and np.isfinite(data).all()
    assert (tracks.groupby(["cell", "particle"])["frame"].apply(lambda f: f.is_unique)).all()
    # MapManagerCore's points.csv back as annotations: the run agrees with itself
    points = out / "pyr01" / "points.csv"
    head = points.read_text().splitlines()[0]
    assert head == "spineID,segmentID,point,z,t"
    ann = name_sessions(read_annotations(points, cell="pyr01"), _order(results))
    assert set(ann["frame"]) == {"voxels"}
    table, per_synapse = evaluate_annotations(ann, results, n_boot=200)
    row = table.set_index("cell").loc["pyr01"]
    assert row["presence_agreement"] == pytest.approx(1.0)
    assert row["added_error_pp"] == pytest.approx(0.0) and row["lost_error_pp"] == pytest.approx(0.0)
    assert np.isnan(row["precision"]) and row["unannotated_detections"] >= 0   # not complete


def test_bad_annotation_files_are_named(tmp_path):
    from pipeline.core.errors import InputError

    bad = tmp_path / "points.csv"
    bad.write_text("cell,session,z,y,x\npyr01,s00,1,2,3\n")
    with pytest.raises(InputError, match="annotation_id"):
        read_annotations(bad)
    bad.write_text("cell,session,annotation_id\npyr01,s00,1\n")
    with pytest.raises(InputError, match="no positions"):
        read_annotations(bad)
    ok = tmp_path / "ok.csv"
    ok.write_text("cell,session,annotation_id,z,y,x\npyr99,s00,1,1,2,3\n")
    with pytest.raises(InputError, match="pyr99"):
        name_sessions(read_annotations(ok), {"pyr01": ["s00"]})
