"""The sample check (review/check.html): a random sample of tiles a person checks by eye,
turned into precision and recall of the whole run with honest intervals."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE
from pipeline.contract import Layout
from pipeline.inputs.check_marks import parse_marks
from pipeline.review.sample_check import draw_tiles, tile_claims
from pipeline.review.server import make_server
from pipeline.truth.sample_check import (marks_from_points, ratio_interval, score_sample,
                                         tile_counts)


# ----------------------------------------------------------------------------- the interval
def test_the_interval_covers_a_population_value_with_heterogeneous_tiles():
    """Tiles differ (some fields are hard throughout): the interval must widen for it."""
    rng = np.random.default_rng(3)
    n_tiles = 3000
    shown = rng.poisson(5, n_tiles)
    p_wrong = rng.beta(1, 6, n_tiles)                  # mean 0.14, widely spread over tiles
    wrong = rng.binomial(shown, p_wrong)
    truth = 1 - wrong.sum() / shown.sum()
    hits = naive_hits = 0
    reps = 400
    for _ in range(reps):
        pick = rng.choice(n_tiles, 40, replace=False)
        p, lo, hi, deff = ratio_interval(shown[pick] - wrong[pick], shown[pick])
        hits += lo <= truth <= hi
        # the same Wilson interval treating every synapse as independent
        m, z = shown[pick].sum(), 1.959964
        c = (p + z * z / (2 * m)) / (1 + z * z / m)
        h = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
        naive_hits += c - h <= truth <= c + h
    assert 0.91 <= hits / reps <= 0.985, hits / reps
    assert naive_hits / reps < hits / reps - 0.03     # ignoring the tiles covers too rarely


def test_the_interval_of_a_perfect_sample_is_wilsons():
    p, lo, hi, deff = ratio_interval([10] * 10, [10] * 10)
    assert (p, hi, deff) == (1.0, 1.0, 1.0)
    assert lo == pytest.approx(0.963, abs=0.001)       # Wilson's lower bound for 100 of 100
    assert np.isnan(ratio_interval([0, 0], [0, 0])[0])


# ----------------------------------------------------------------------------- the draw
def test_the_draw_is_fixed_by_its_seed_and_a_smaller_sample_is_its_start():
    fields = {"a": (45.0, 45.0), "b": (30.0, 20.0)}
    sessions = {"a": ["s0", "s1", "s2"], "b": ["s0", "s1"]}
    big = draw_tiles(fields, sessions, tile_um=10, n=1000, seed=0)
    assert len(big) == 3 * 25 + 2 * 6 and big["tile"].is_unique
    assert big["y1_um"].max() == 45.0 and (big["x1_um"] - big["x0_um"]).min() == 5.0
    small = draw_tiles(fields, sessions, tile_um=10, n=20, seed=0)
    assert small["tile"].tolist() == big["tile"].head(20).tolist()
    assert draw_tiles({}, {}, tile_um=10, n=20, seed=0).empty      # every cell failed
    other = draw_tiles(fields, sessions, tile_um=10, n=20, seed=1)
    assert set(other["tile"]) != set(small["tile"])
    # every tile equally likely: over many seeds, cell a's share of the first 20 is 75/87
    share = np.mean([(draw_tiles(fields, sessions, tile_um=10, n=20, seed=s)["cell"] == "a").mean()
                     for s in range(200)])
    assert share == pytest.approx(75 / 87, abs=0.02)


# ----------------------------------------------------------------------------- scoring
def _synthetic():
    """10 tiles of 4 synapses each in cell c, session s0."""
    tiles = draw_tiles({"c": (10.0, 100.0)}, {"c": ["s0"]}, tile_um=10, n=10, seed=0)
    rows = []
    for t in tiles.itertuples():
        for k in range(4):
            rows.append({"cell": "c", "session": "s0", "synapse_id": len(rows) + 1, "present": 1,
                         "y_um": 2.0 + 2 * k, "x_um": t.x0_um + 5})
    rows.append({"cell": "c", "session": "s0", "synapse_id": 999, "present": 0, "y_um": 5.0,
                 "x_um": 5.0})                          # absent: never shown
    return tiles, pd.DataFrame(rows)


def test_scores_are_the_counts_of_the_marks():
    tiles, table = _synthetic()
    claims = tile_claims(table, tiles)
    assert len(claims) == 40 and 999 not in set(claims["synapse_id"])
    lines = ["tile\tcell\tsession\tmark\tsynapse_id\ty_um\tx_um\tclaims\tnote"]
    checked = tiles[tiles["order"] != 3]                # tile 3 skipped
    for t in checked.itertuples():
        ids = claims.loc[claims["tile"] == t.tile, "synapse_id"].tolist()
        lines.append(f"{t.tile}\tc\ts0\tchecked\t\t\t\t{';'.join(map(str, ids))}\t")
        if t.order <= 4:                                 # one wrong in tiles 1, 2, 4
            lines.append(f"{t.tile}\tc\ts0\twrong\t{ids[0]}\t\t\t\t")
        if t.order in (5, 6):                            # two missed in 5 and 6 (one twice)
            lines += [f"{t.tile}\tc\ts0\tmissed\t\t1.5\t{t.x0_um + 1}\t\t"] * 2
            lines.append(f"{t.tile}\tc\ts0\tmissed\t\t8.5\t{t.x0_um + 1}\t\t")
    marks = parse_marks("\n".join(lines) + "\n")
    scores, per_tile = score_sample(tiles, table, marks)
    row = scores.set_index("cell").loc["c"]
    assert (row["tiles_checked"], row["tiles_skipped"], row["shown"], row["wrong"],
            row["missed"]) == (9, 1, 36, 3, 4)
    assert row["precision"] == pytest.approx(33 / 36)
    assert row["recall"] == pytest.approx(33 / 37)
    assert row["precision_ci_low"] < 33 / 36 < row["precision_ci_high"]
    assert scores.set_index("cell").loc["all", "precision"] == row["precision"]
    # a rerun drops a synapse of tile 1: that tile is stale and no longer scored
    first = tiles.loc[tiles["order"] == 1, "tile"].iloc[0]
    gone = claims.loc[claims["tile"] == first, "synapse_id"].iloc[-1]
    rerun = table.assign(present=np.where(table["synapse_id"] == gone, 0, table["present"]))
    scores2, per_tile2 = score_sample(tiles, rerun, marks)
    assert per_tile2.set_index("tile").loc[first, "stale"]
    row2 = scores2.set_index("cell").loc["c"]
    assert (row2["tiles_checked"], row2["tiles_stale"], row2["shown"], row2["wrong"]) == (8, 1, 32, 2)


def test_bad_marks_are_named_with_their_line():
    with pytest.raises(Exception, match="line 2: mark 'maybe'.*line 3: a 'wrong' mark needs"):
        parse_marks("tile\tmark\tsynapse_id\nt1\tmaybe\t\nt1\twrong\t\n")
    tiles, table = _synthetic()
    marks = parse_marks("tile\tmark\tclaims\nelsewhere/s0/0-0\tchecked\t1\n")
    with pytest.raises(Exception, match="tiles this run did not draw"):
        score_sample(tiles, table, marks)


# ----------------------------------------------------------------------------- on a real run
def _truth_points():
    """The simulator's true synapses present; its ``y_um, x_um`` are in the reference frame
    (the session's own voxels are ``z, y, x``)."""
    truth = pd.read_csv(SAMPLE / "truth" / "synapses.csv")
    return truth.loc[truth["present"] == 1, ["cell", "session", "y_um", "x_um"]]


def _degraded(table, points, rng):
    """The run's table with a sixth of its present calls dropped and 40 false ones added
    (1.5-3 um from any true synapse, inside the field): a run of known precision and recall."""
    on = np.flatnonzero(table["present"].to_numpy() == 1)
    drop = rng.choice(on, len(on) // 6, replace=False)
    out = table.copy()
    out.loc[out.index[drop], "present"] = 0
    fakes = []
    for _ in range(10 ** 4):
        r = table.iloc[rng.choice(on)]
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 3.0)
        y, x = r["y_um"] + dist * np.sin(angle), r["x_um"] + dist * np.cos(angle)
        same = points[(points["cell"] == r["cell"]) & (points["session"] == r["session"])]
        if (0 < y < 22 and 0 < x < 22
                and np.hypot(same["y_um"] - y, same["x_um"] - x).min() > 1.5):
            fakes.append({**r.to_dict(), "synapse_id": 10 ** 5 + len(fakes), "y_um": y, "x_um": x})
        if len(fakes) == 40:
            break
    return pd.concat([out, pd.DataFrame(fakes)], ignore_index=True), len(on) - len(drop)


def test_a_sample_checked_against_the_truth_estimates_the_whole_run(sample_run, tmp_path):
    """A person (here the simulator's truth) checks 30 tiles of a run of known precision and
    recall; the estimates' intervals hold the whole run's values as often as they claim."""
    results = sample_run.results
    layout = Layout(results)
    tiles = pd.read_csv(layout.path("review_check_tiles"))
    page = layout.path("review_check").read_text()
    assert len(tiles) == 60 and tiles["order"].tolist() == list(range(1, 61))
    assert all(t in page for t in tiles["tile"])
    points = _truth_points()
    table, kept = _degraded(pd.read_csv(layout.synapses), points, np.random.default_rng(0))
    # the whole run's values: every tile of every field checked
    fields = {c: (g["y1_um"].max(), g["x1_um"].max()) for c, g in tiles.groupby("cell")}
    sessions = {c: sorted(g["session"].unique()) for c, g in table.groupby("cell")}
    every = draw_tiles(fields, sessions, tile_um=10, n=10 ** 6, seed=0)
    whole, _ = score_sample(every, table, marks_from_points(every, table, points, gate_um=0.6))
    whole = whole.set_index("cell").loc["all"]
    assert whole["shown"] == kept + 40 and whole["wrong"] == pytest.approx(40, abs=2)
    assert whole["precision"] == pytest.approx(kept / (kept + 40), abs=0.01)
    assert whole["recall"] == pytest.approx(kept / len(points), abs=0.015)
    # a person checks 30 tiles: over 200 draws (seeds), the intervals hold the whole run's
    # values in at least 93 % (nominal 95 %)
    counts = tile_counts(every, table, marks_from_points(every, table, points, gate_um=0.6))
    counts = counts.set_index("tile")
    held = {"precision": 0, "recall": 0}
    for seed in range(200):
        c = counts.loc[draw_tiles(fields, sessions, tile_um=10, n=30, seed=seed)["tile"]]
        right = c["shown"] - c["wrong"]
        for q, den in (("precision", c["shown"]), ("recall", right + c["missed"])):
            _, lo, hi, _ = ratio_interval(right, den)
            held[q] += lo <= whole[q] <= hi
    assert min(held.values()) >= 0.93 * 200, held
    # the command scores the run's own first 30 tiles as the functions do
    own = tmp_path / "results"
    (own / "review").mkdir(parents=True)
    table.to_csv(own / "synapses.csv", index=False)
    tiles.to_csv(own / "review" / "check_tiles.csv", index=False)
    marks = marks_from_points(tiles, table, points, gate_um=0.6)
    marks = marks[marks["tile"].isin(set(tiles.loc[tiles["order"] <= 30, "tile"]))]
    marks.to_csv(own / "sample_check.tsv", sep="\t", index=False)
    res = subprocess.run([sys.executable, "-m", "pipeline", "evaluate", "--sample-check",
                          "--results", str(own)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = pd.read_csv(own / "evaluation" / "sample_check.csv").set_index("cell")
    expected = score_sample(tiles, table, parse_marks((own / "sample_check.tsv").read_text()))[0]
    expected = expected.set_index("cell")
    assert got.loc["all", "tiles_checked"] == 30 and got.loc["all", "tiles_skipped"] == 0
    assert np.allclose(got[["shown", "wrong", "missed", "precision", "recall_ci_low"]],
                       expected[["shown", "wrong", "missed", "precision", "recall_ci_low"]],
                       rtol=1e-5)


def test_the_server_saves_the_sample_check_and_keeps_the_last(tmp_path):
    results = tmp_path / "results"
    (results / "review").mkdir(parents=True)
    (results / "review" / "index.html").write_text("<html></html>")
    pd.DataFrame({"cell": ["pyr01"], "synapse_id": [1]}).to_csv(results / "synapses.csv",
                                                                 index=False)
    server = make_server(results, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def post(text):
        req = urllib.request.Request(base + "/api/sample-check", data=text.encode(), method="POST")
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    try:
        good = "tile\tcell\tsession\tmark\tsynapse_id\ty_um\tx_um\tclaims\tnote\nt\tc\ts\tchecked\t\t\t\t1;2\t\n"
        assert post(good)[0] == 200
        status, out = post("tile\tmark\nt\tmaybe\n")
        assert status == 400 and "maybe" in out["error"]
        status, out = post(good.replace("1;2", "1;3"))
        assert status == 200 and out["backup"]
        saved = results / "sample_check.tsv"
        assert "1;3" in saved.read_text() and "1;2" in Path(out["backup"]).read_text()
        with urllib.request.urlopen(base + "/api/sample-check") as r:
            assert "1;3" in json.loads(r.read())["text"]
    finally:
        server.shutdown()
        server.server_close()
