"""Curation from the review pages: merge suggestions, label placement, link doubts, and the
review server (saves only valid files, keeps the previous one, serves nothing outside the
results folder)."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from pipeline.inputs.curation import read_curation
from pipeline.review.curation_ui import merge_suggestions
from pipeline.review.pages import link_doubt, place_labels
from pipeline.review.server import make_server

HEADER = "action\tcell\tsynapse_id\tsession\tother_synapse_id\tnote\n"


def _table():
    # track 1 in s0-s3; track 2 (1.2 um away) in s2-s3 only: shares sessions, no candidate;
    # track 3 (0.8 um from 4) in s0-s1, track 4 in s2-s3: each the other's candidate;
    # track 5 (3 um from 3) in s2: a farther candidate of 3; track 6 is 20 um away
    rows = []
    for tid, sessions, (x, y) in [(1, "0123", (10, 10)), (2, "23", (11.2, 10)),
                                  (3, "01", (20, 20)), (4, "23", (20.8, 20)),
                                  (5, "2", (23, 20)), (6, "23", (40, 40))]:
        for k in range(4):
            rows.append({"synapse_id": tid, "track_id": tid, "session": f"s{k}", "day": 4 * k,
                         "detected": int(str(k) in sessions), "z_um": 2.0, "y_um": y, "x_um": x})
    return pd.DataFrame(rows)


def test_merge_suggestions_are_near_tracks_never_seen_together_nearest_first():
    sug = merge_suggestions(_table())
    assert [c["id"] for c in sug[3]] == [4, 5]       # 0.8 um, then 3 um
    assert [c["id"] for c in sug[4]] == [3]
    assert sug[1] == [] and sug[6] == []             # 2 shares sessions with 1; 6 is far
    assert sug[3][0]["distance_um"] == pytest.approx(0.8)
    assert sug[4][0]["sessions"] == ["s0", "s1"]
    # 5 (seen in s2) could join 3 (seen in s0, s1) but not 4 (also s2)
    assert [c["id"] for c in sug[5]] == [3]


def test_the_pages_rows_carry_each_tracks_place():
    from pipeline.review.curation_ui import CURATION_JS, session_controls, synapse_controls, \
        track_anchors
    from pipeline.review.pages import curation_rows

    anchors = track_anchors(_table())
    assert anchors[3] == "2.00 20.00 20.00" and anchors[4] == "2.00 20.00 20.80"
    bar = synapse_controls("c", [3], merge_suggestions(_table()), anchors)
    assert "data-action='reject' data-cell='c' data-id='3' data-at='2.00 20.00 20.00'" in bar
    assert "data-id='3' data-at='2.00 20.00 20.00' title='the two tracks" in bar
    assert "data-at='2.00 20.00 20.80'" in session_controls("c", 4, "s2", 1, first=False,
                                                            anchor=anchors[4])
    assert "at_um:b.dataset.at" in CURATION_JS           # the staged row takes it
    g = _table()[lambda t: t.track_id == 4]
    rows = dict(curation_rows("c", g.assign(present=1), anchors))
    assert rows["reject (track 4)"] == "reject\tc\t4\t\t\t\t2.00 20.00 20.80"
    assert rows["split from s1 on"].endswith("\t2.00 20.00 20.80")


def _label_overlaps(anchors, texts) -> int:
    w = 5.4 * np.array([len(t) for t in texts])
    b = np.c_[anchors[:, 0], anchors[:, 1] - 8, anchors[:, 0] + w, anchors[:, 1] + 1]
    hit = ((b[:, None, 0] < b[None, :, 2]) & (b[:, None, 2] > b[None, :, 0])
           & (b[:, None, 1] < b[None, :, 3]) & (b[:, None, 3] > b[None, :, 1]))
    np.fill_diagonal(hit, False)
    return int(hit.sum()) // 2


@pytest.mark.parametrize("layout", ["field", "shaft", "diagonal shaft"])
def test_labels_are_placed_without_overlapping(layout):
    rng = np.random.default_rng(0)
    step = np.arange(30) * 10.0       # a PV shaft: puncta 0.9 um (10 px) apart, marker r 6.7 px
    xy = {"field": rng.uniform(0, 512, (100, 2)),      # ~100 synapses over a 512 px field
          "shaft": np.c_[50 + step, np.full(30, 50.0)],
          "diagonal shaft": np.c_[50 + 0.7 * step, 50 + 0.7 * step]}[layout]
    texts = [str(v) for v in rng.integers(1, 300, len(xy))]
    naive = np.c_[xy[:, 0] + 7.7, xy[:, 1] - 6.7]     # the old place: right of each marker
    assert _label_overlaps(naive, texts) >= 5         # the crowding is real
    assert _label_overlaps(place_labels(xy, 6.7, texts), texts) == 0


def test_a_link_in_doubt_says_why():
    row = pd.Series({"link_confidence": 0.2, "link_distance_um": 0.6, "link_competitor_um": 0.9,
                     "registration_error_um": 0.1})
    assert "competitor 0.9 um" in link_doubt(row)
    row = row.copy(); row["link_competitor_um"] = np.nan; row["registration_error_um"] = 0.6
    assert "registration is uncertain" in link_doubt(row)
    row = row.copy(); row["registration_error_um"] = 0.05
    assert "long" in link_doubt(row)
    row = row.copy(); row["link_confidence"] = 0.9
    assert link_doubt(row) == ""


# ------------------------------------------------------------------ the review server
@pytest.fixture()
def served(tmp_path):
    results = tmp_path / "results"
    (results / "review").mkdir(parents=True)
    (results / "review" / "index.html").write_text("<html>review</html>")
    pd.DataFrame({"cell": ["pyr01"], "synapse_id": [1]}).to_csv(results / "synapses.csv",
                                                                 index=False)
    (tmp_path / "secret.txt").write_text("outside")
    sheet = tmp_path / "imaging" / "sessions.tsv"
    sheet.parent.mkdir()
    sheet.write_text("cell\n")
    (sheet.parent / "curation.tsv").write_text(HEADER + "reject\tpyr01\t3\t\t\tby hand\n")
    server = make_server(results, port=0, sheet=sheet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", results, sheet
    server.shutdown()
    server.server_close()


def _get(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url, body: bytes, headers=None):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_server_serves_the_results_folder_and_nothing_outside_it(served):
    base, results, _ = served
    assert _get(base + "/review/index.html") == (200, b"<html>review</html>")
    for path in ("/../secret.txt", "/review/../../secret.txt", "/%2e%2e/secret.txt",
                 "/review/%2E%2E%2F%2E%2E%2Fsecret.txt", "/..%5csecret.txt", "//etc/passwd"):
        status, body = _get(base + path)
        assert status in (403, 404) and b"outside" not in body.replace(b"outside the results", b""), path
    (results / "review" / "link").symlink_to(results.parent / "secret.txt")
    assert _get(base + "/review/link")[0] == 403      # a link leading out is refused too


def test_saving_accepts_only_a_valid_file_and_keeps_the_previous_one(served):
    base, results, sheet = served
    status, cur = _get(base + "/api/curation")
    cur = json.loads(cur)
    assert status == 200 and cur["read_from"] == str(sheet.parent / "curation.tsv")
    assert [r["synapse_id"] for r in cur["rows"]] == ["3"]    # the person's file beside the sheet
    assert cur["path"] == str(results / "curation.tsv")
    # invalid: a bad action, a cell this run does not have, an empty body
    for body in (HEADER + "delete\tpyr01\t3\t\t\t\n", HEADER + "reject\tPV99\t3\t\t\t\n", ""):
        status, out = _post(base + "/api/curation", body.encode())
        assert status == 400 and "error" in out
    assert not (results / "curation.tsv").exists()
    # a write from another site's page is refused
    good = HEADER + "reject\tpyr01\t3\t\t\tby hand\nmerge\tpyr01\t6\t\t14\t\n"
    status, _ = _post(base + "/api/curation", good.encode(), {"Origin": "http://evil.example"})
    assert status == 403 and not (results / "curation.tsv").exists()
    status, out = _post(base + "/api/curation", good.encode(), {"Origin": base})
    assert status == 200 and out["rows"] == 2 and out["backup"] is None
    assert read_curation(results / "curation.tsv")["action"].tolist() == ["reject", "merge"]
    assert (sheet.parent / "curation.tsv").read_text() == HEADER + "reject\tpyr01\t3\t\t\tby hand\n"
    # saved again: the previous version is kept
    status, out = _post(base + "/api/curation", (good + "absent\tpyr01\t6\ts02\t\t\n").encode())
    assert status == 200 and out["backup"]
    assert read_curation(out["backup"])["action"].tolist() == ["reject", "merge"]
    assert len(read_curation(results / "curation.tsv")) == 3
    # and is what the server reads from now on
    assert json.loads(_get(base + "/api/curation")[1])["read_from"] == str(results / "curation.tsv")


def test_the_server_binds_to_this_computer_only(served):
    base, _, _ = served
    assert base.startswith("http://127.0.0.1:")


def test_the_review_command_serves_a_results_folder(served, tmp_path):
    import re
    import subprocess
    import sys

    _, results, sheet = served
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "review", str(results), "--port",
                             "0", "--sheet", str(sheet)], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/review/index\.html", first).group(0)
        assert _get(url) == (200, b"<html>review</html>")
        assert f"edits are saved to {results / 'curation.tsv'}" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # without a results folder it is the workflow's stage, which names what it needs
    res = subprocess.run([sys.executable, "-m", "pipeline", "review"], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "review RESULTS" in res.stderr + res.stdout
