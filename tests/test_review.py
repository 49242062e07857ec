"""Review pictures and pages: positions in the pictures are where the synapses are, the table's
summaries are right, and the curation rows a page offers are rows the curate stage accepts."""
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.inputs.curation import read_curation
from pipeline.stages.curate import curate_tracks
from pipeline.stages.presence import curate_calls
from pipeline.review.pictures import (reference_projection, summarise_synapses, synapse_crops)
from pipeline.review.pages import CURATION_HEADER, cell_page, curation_rows, index_page


def test_projection_lands_in_the_reference_frame():
    spacing = np.array([0.8, 0.1, 0.1])
    stack = np.zeros((10, 60, 80), np.float32)
    stack[4, 20, 30] = 100.0
    shift_um = np.array([0.8, 1.5, -2.0])           # session -> reference
    matrix = np.eye(4)
    matrix[:3, 3] = shift_um
    proj = reference_projection(stack, matrix, spacing=spacing, reference_spacing=spacing,
                                reference_shape=(10, 60, 80))
    y, x = np.unravel_index(np.argmax(proj), proj.shape)
    assert (y, x) == (20 + 15, 30 - 20)
    # a reference grid of other pixel size: a small blob sits at its um position
    stack[4, 19:22, 29:32] = 100.0
    proj2 = reference_projection(stack, matrix, spacing=spacing,
                                 reference_spacing=np.array([0.8, 0.2, 0.2]),
                                 reference_shape=(10, 30, 40))
    y2, x2 = np.unravel_index(np.argmax(proj2), proj2.shape)
    assert abs(y2 * 0.2 - (2.0 + 1.5)) <= 0.1 and abs(x2 * 0.2 - (3.0 - 2.0)) <= 0.1


def test_projection_follows_a_rotation():
    spacing = np.array([1.0, 0.1, 0.1])
    stack = np.zeros((5, 101, 101), np.float32)
    stack[2, 50, 80] = 1.0                           # 3 um right of the centre (5, 5) um
    a = np.deg2rad(90)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    centre = np.array([2.0, 5.0, 5.0])
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    matrix[:3, 3] = centre - rot @ centre            # rotation about the centre
    proj = reference_projection(stack, matrix, spacing=spacing, reference_spacing=spacing,
                                reference_shape=stack.shape)
    expected = (rot @ (np.array([2.0, 5.0, 8.0]) - centre) + centre)[1:] / 0.1
    assert np.allclose(np.unravel_index(np.argmax(proj), proj.shape), expected, atol=1)


def test_crops_are_centred_on_the_position_and_zero_outside():
    rng = np.random.default_rng(0)
    image = rng.random((12, 40, 50)).astype(np.float32)
    xy, xz = synapse_crops(image, [[5, 10, 20], [0, 0, 0]], half_xy=4, half_z=2)
    assert xy.shape == (2, 9, 9) and xz.shape == (2, 5, 9)
    assert xy[0, 4, 4] == image[5, 10, 20]
    assert np.array_equal(xy[0], image[5, 6:15, 16:25])
    assert np.array_equal(xz[0], image[3:8, 10, 16:25])
    assert (xy[1, :4] == 0).all() and (xy[1, :, :4] == 0).all()   # outside the stack
    assert xy[1, 4, 4] == image[0, 0, 0]


def _table():
    rows = []
    # synapse 1: present, absent, present (a gap), p 0.9/0.3/1; synapse 2: always present
    for sid, calls, ps in ((1, (1, 0, 1), (0.9, 0.3, 1.0)), (2, (1, 1, 1), (1.0, 1.0, 1.0))):
        for k, (c, p) in enumerate(zip(calls, ps)):
            rows.append({"cell": "c1", "cell_type": "pyr", "synapse_id": sid,
                         "session": f"s{k}", "day": 4.0 * k, "present": c, "p_present": p,
                         "presence_uncertain": int(0.2 < p < 0.8), "weight": 1.0 + sid + k,
                         "snr": 10.0 * sid, "in_view": 1, "detected": c,
                         "link_distance_um": 0.1 * k if k else np.nan,
                         "link_confidence": 0.95 if k else np.nan,
                         "track_id": sid, "weight_imputed": 0, "curated": 0,
                         "z": 5.0, "y": 10.0 * sid, "x": 20.0, "z_um": 4.0,
                         "y_um": 1.0 * sid, "x_um": 2.0})
    return pd.DataFrame(rows)


def test_summary_of_a_synapse():
    s = summarise_synapses(_table()).set_index("synapse_id")
    assert s.loc[1, "present"] == "2/3" and s.loc[1, "pattern"] == "\u25cf\u25cb\u25cf"
    assert s.loc[1, "certainty"] == pytest.approx(0.7)          # max(0.3, 0.7) in session 1
    assert s.loc[1, "flags"] == "uncertain gap"
    assert s.loc[1, "median_weight"] == pytest.approx(np.median([2.0, 4.0]))  # present only
    assert s.loc[2, "flags"] == "" and s.loc[2, "certainty"] == 1.0
    assert s.loc[1, "max_link_um"] == pytest.approx(0.2)


def test_weight_quality_flags_reach_the_summary_once_each():
    t = _table()
    t["quality_flags"] = pd.Series([np.nan] * len(t), dtype=object)
    t.loc[(t.synapse_id == 2) & (t.session == "s0"), "quality_flags"] = "neighbour;edge"
    t.loc[(t.synapse_id == 2) & (t.session == "s2"), "quality_flags"] = "saturated;neighbour"
    t.loc[(t.synapse_id == 2) & (t.session == "s1"), "in_view"] = 0          # also 'edge'
    s = summarise_synapses(t).set_index("synapse_id")
    assert s.loc[2, "flags"] == "edge neighbour saturated"
    assert s.loc[1, "flags"] == "uncertain gap"


def test_offered_curation_rows_are_accepted_and_do_what_they_say(tmp_path):
    table = _table()
    g = table[table.synapse_id == 1].sort_values("day")
    offered = dict(curation_rows("c1", g))
    path = tmp_path / "curation.tsv"
    path.write_text(CURATION_HEADER + "\n" + offered["mark present in s1"] + "\n"
                    + offered["reject (track 2)".replace("2", "1")] + "\n")
    rows = read_curation(path)
    assert rows["action"].tolist() == ["present", "reject"]
    called = curate_calls(table, rows.iloc[:1])
    hit = called[(called.synapse_id == 1) & (called.session == "s1")]
    assert hit["present"].item() == 1 and hit["curated"].item() == 1
    tracks = table[table.detected == 1][["synapse_id", "session"]]
    kept = curate_tracks(tracks, rows.iloc[1:], sessions=["s0", "s1", "s2"])
    assert set(kept["synapse_id"]) == {2}


def test_pages_link_every_synapse_and_sort_least_certain_first():
    table = _table()
    summary = summarise_synapses(table)
    index = index_page(summary, cells=["c1"])
    links = re.findall(r"href='(c1/index.html#syn-\d+)'", index)
    assert links == ["c1/index.html#syn-1", "c1/index.html#syn-2"]   # certainty 0.7 before 1.0
    page = cell_page(table, summary, cell="c1", sessions=["s0", "s1", "s2"], days=[0, 4, 8],
                     spacing=[0.8, 0.1, 0.1], shape_yx=(40, 50),
                     qc=[{"session": s, "shift_um": [0, 0, 0], "n_matches": 5, "residual_um": 0.1,
                          "peak": 0.3, "reliable": s != "s2", "qc_href": f"{s}_qc.png",
                          "has_morphology": True} for s in ("s0", "s1", "s2")],
                     strip_width=100, tile_width=30, gap=3)
    for sid in (1, 2):
        assert f"id='syn-{sid}'" in page and f"src='syn_{sid}.png'" in page
    # every session's markers: synapse 1 absent (dashed) in s1, present elsewhere
    assert page.count("class='m absent'") == 1 and page.count("class='m present'") == 5
    assert "NO: not tracked" in page                       # the unreliable session
    # a marker sits at the synapse's reference position (x_um / 0.1, y_um / 0.1, pixel centres)
    assert "cx='20.5' cy='10.5'" in page


def test_fast_translation_path_matches_resampling_in_3d():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    stack = ndimage.gaussian_filter(rng.random((12, 64, 64)).astype(np.float32), (1, 3, 3))
    spacing = np.array([0.8, 0.1, 0.1])
    matrix = np.eye(4)
    matrix[:3, 3] = [1.6, 0.73, -1.27]                 # 2 planes, 7.3 and -12.7 pixels
    fast = reference_projection(stack, matrix, spacing=spacing, reference_spacing=spacing,
                                reference_shape=stack.shape)
    offset = -matrix[:3, 3] / spacing
    full = ndimage.affine_transform(stack, np.ones(3), offset=offset, order=1).max(axis=0)
    inside = full > 0
    assert np.corrcoef(fast[inside], full[inside])[0, 1] > 0.99
    assert np.array_equal(fast > 0, inside)
