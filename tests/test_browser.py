"""The review pages in a real headless browser (Debian's chromium driven by Playwright).

The pages of the shared end-to-end run on data_sample/ are opened from report.html as a person
would: the table sorts and filters, a synapse link opens its strip, every image loads, the
contrast sliders and session keys work, the copied curation row is one the pipeline accepts,
and no page logs an error.  Chromium is installed with apt-get when it is missing (as root).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from pipeline.inputs.curation import read_curation
from pipeline.review.pages import CURATION_HEADER

# without the networking flags chromium keeps trying to reach Google, which a closed network refuses
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and "
                    "apt-get: apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if res.returncode != 0:
            pytest.skip(f"could not install chromium ({' '.join(cmd)} exited {res.returncode}): "
                        f"{res.stderr.strip()[-400:]}")
    path = shutil.which("chromium")
    if not path:
        pytest.skip("apt-get installed chromium but there is no chromium command")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=FLAGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    pg = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors = []
    pg.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
          if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    pg.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))
    pg.errors = errors
    yield pg
    pg.close()


def _column(pg, table: str, header: str) -> list[str]:
    return pg.eval_on_selector(
        f"#{table}", """(t, header) => {
          const i = Array.from(t.tHead.rows[0].cells).findIndex(th => th.textContent.trim()
                                                                  .startsWith(header));
          return Array.from(t.tBodies[0].rows).filter(r => r.style.display !== 'none')
                      .map(r => r.cells[i].dataset.v ?? r.cells[i].textContent.trim());}""",
        header)


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def test_table_sorts_filters_and_links_to_each_synapse(page, sample_run):
    results = sample_run.results
    table = pd.read_csv(results / "synapses.csv")
    page.goto((results / "report.html").as_uri())
    page.click("text=Every synapse")
    assert page.url.endswith("review/index.html")
    n = table.groupby(["cell", "synapse_id"]).ngroups
    assert page.locator("#all tbody tr").count() == n
    # least certain first, as written
    certainty = _numbers(_column(page, "all", "certainty"))
    assert certainty == sorted(certainty) and len(certainty) == n
    # a click sorts by the column, a second click reverses it; empty values stay last
    page.click("#all th:text-is('median weight')")
    up = _column(page, "all", "median weight")
    assert _numbers(up) == sorted(_numbers(up)) and all(v == "" for v in up[len(_numbers(up)):])
    page.click("#all th:text-is('median weight')")
    down = _numbers(_column(page, "all", "median weight"))
    assert down == sorted(down, reverse=True)
    # filters: text, flagged only, cell
    page.fill("#all-q", "pyr01")
    cells = _column(page, "all", "cell")
    assert set(cells) == {"pyr01"} and len(cells) == table.loc[table.cell == "pyr01",
                                                                "synapse_id"].nunique()
    assert page.inner_text("#all-n") == str(len(cells))
    page.fill("#all-q", "")
    page.check("#all-flagged")
    assert all(f for f in _column(page, "all", "flags"))
    page.uncheck("#all-flagged")
    page.select_option("#all-cell", "PV02")
    assert set(_column(page, "all", "cell")) == {"PV02"}
    # the first (least certain) PV02 synapse opens its strip on the cell's page
    link = page.locator("#all tbody tr:visible a").first
    sid = link.inner_text()
    link.click()
    # the cell's page opens the strip once it has loaded: wait for that, not a fixed moment
    # (is_visible() does not wait; on a loaded machine it once ran before the page's script)
    page.wait_for_load_state("load")
    assert page.url.endswith(f"review/PV02/index.html#syn-{sid}")
    strip = page.locator(f"#syn-{sid}")
    strip.wait_for(state="visible", timeout=30_000)
    assert strip.locator("img").evaluate("i => i.naturalWidth") > 0
    box = strip.bounding_box()
    assert box is not None and -2 <= box["y"] < 1000                # scrolled into view
    assert page.errors == []


def test_cell_page_images_contrast_sessions_and_screenshot(page, sample_run, tmp_path):
    from matplotlib.image import imread

    results = sample_run.results
    table = pd.read_csv(results / "synapses.csv")
    cell = "PV02"
    page.goto((results / "review" / cell / "index.html").as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "ims => ims.map(i => [i.src, i.complete, "
                                                "i.naturalWidth])")
    n_syn = table.loc[table.cell == cell, "synapse_id"].nunique()
    n_sessions = table.loc[table.cell == cell, "session"].nunique()
    assert len(images) == n_syn + 2 * n_sessions                     # strips + 2 channels
    assert all(ok and width > 0 for _, ok, width in images), [i for i in images if not i[2]]
    # the markers of the first session: one per synapse, present ones solid
    first = table[(table.cell == cell) & (table.session == "s00")]
    panel = page.locator(".session.on")
    assert panel.locator("g.m").count() == len(first)
    assert panel.locator("g.m.present").count() == int(first["present"].sum())
    # contrast slider acts on the PSD-95 images
    page.locator(".contrast[data-ch='psd95'] .gain").fill("2.5")
    assert "brightness(2.5)" in page.eval_on_selector("img.ch-psd95", "i => i.style.filter")
    # arrow key: next session (not while a slider has the focus: there it moves the slider)
    page.click("h1")
    page.keyboard.press("ArrowRight")
    assert page.locator(".session.on p").inner_text().startswith("s01")
    page.keyboard.press("ArrowLeft")
    # screenshot of the first session's view: the picture is there and the markers are drawn
    shot = tmp_path / "view.png"
    page.locator(".session.on .view").screenshot(path=str(shot))
    rgb = imread(shot)[..., :3]
    assert rgb.shape[0] >= 200 and rgb.std() > 0.05                  # not a blank picture
    green = (rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.3)                 # PSD-95 puncta
    yellow = (rgb[..., 0] > 0.8) & (rgb[..., 1] > 0.7) & (rgb[..., 2] < 0.3)  # present markers
    assert green.sum() > 50 and yellow.sum() > 20 * int(first["present"].sum())
    # the copied curation row is one the curate stage reads as meant
    sid = int(first["synapse_id"].iloc[0])
    section = page.locator(f"#syn-{sid}")
    section.locator("summary").click()
    row = section.locator("pre.cur").first.inner_text()
    path = tmp_path / "curation.tsv"
    path.write_text(CURATION_HEADER + "\n" + row + "\n")
    parsed = read_curation(path).iloc[0]
    track = int(first.loc[first.synapse_id == sid, "track_id"].iloc[0])
    assert (parsed["action"], parsed["cell"], int(parsed["synapse_id"])) == ("reject", cell, track)
    assert page.errors == []
    np.testing.assert_equal(page.title(), f"Review {cell}")


# ------------------------------------------------------------------ curation by clicking
@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A run of its own on a copy of data_sample/ through `pipeline run` (the review server
    reruns it, so the shared run stays as it is)."""
    import sys

    from conftest import SAMPLE

    tmp = tmp_path_factory.mktemp("clicked")
    data, results = tmp / "data", tmp / "results"
    shutil.copytree(SAMPLE, data)
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(data / "sessions.tsv"),
                          "--results", str(results)], capture_output=True, text=True,
                         timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:]
    return data, results


def _served(results):
    import threading

    from pipeline.review.server import make_server

    server = make_server(results, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_curation_done_entirely_by_clicking(browser, own_run, tmp_path):
    data, results = own_run
    before = pd.read_csv(results / "synapses.csv")
    server, base = _served(results)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pg = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        cell = "pyr01"
        pg.goto(f"{base}/review/{cell}/index.html")
        pg.screenshot(path=str(shots / "cell_page.png"))
        # merge: the first synapse offered a candidate, with the nearest one
        merge_sec = pg.locator("section.syn:has(select.merge-with)").first
        keep = int(merge_sec.locator("button.act[data-action='merge']").get_attribute("data-id"))
        other = int(merge_sec.locator("select.merge-with option").first.get_attribute("value"))
        merge_sec.locator("button.act[data-action='merge']").click()
        # reject, by the keyboard: select a one-track synapse that is neither, press r
        sections = pg.locator("section.syn:has(.curate button.act[data-action='reject'])")
        ids = sections.evaluate_all(
            "ss => ss.filter(s => s.querySelectorAll(\".curate button[data-action='reject']\")"
            ".length === 1).map(s => [s.id, +s.querySelector(\".curate button\").dataset.id])")
        victim_section, victim = next((s, i) for s, i in ids if i not in (keep, other))
        pg.locator(f"#{victim_section} h3").click()
        pg.keyboard.press("r")
        # absent: a third synapse present in s01
        mine = before[(before.cell == cell) & (before.session == "s01") & (before.present == 1)]
        gone = int(next(t for t in mine["track_id"] if t not in (keep, other, victim)))
        sid = int(mine.loc[mine.track_id == gone, "synapse_id"].iloc[0])
        pg.locator(f"#syn-{sid} button.act[data-action='absent'][data-session='s01']").click()
        # one more edit, undone
        pg.locator(f"#syn-{sid} button.act[data-action='split']").first.click()
        assert pg.inner_text("#staged-n") == "4"
        pg.locator("#staged-list li").nth(3).locator("button.undo").click()
        assert pg.inner_text("#staged-n") == "3"
        # staged edits survive a reload, and show on the index page too
        pg.reload()
        assert pg.inner_text("#staged-n") == "3"
        pg.goto(f"{base}/review/index.html")
        assert pg.inner_text("#staged-n") == "3"
        # a zoomed projection and a crop at 4x
        keep_syn = int(before.loc[(before.cell == cell) & (before.track_id == keep),
                                  "synapse_id"].iloc[0])
        pg.goto(f"{base}/review/{cell}/index.html#syn-{keep_syn}")
        view = pg.locator(".session.on .view")
        width = float(view.get_attribute("data-w"))
        pg.click("button.zoom[data-f='1.5']")
        pg.click("button.zoom[data-f='1.5']")
        assert view.locator("img").first.bounding_box()["width"] == pytest.approx(2.25 * width)
        assert pg.locator(".session.on .viewport").bounding_box()["width"] < 2 * width  # pans
        pg.locator(".session.on .viewport").screenshot(path=str(shots / "projection_zoomed.png"))
        strip = pg.locator(f"#syn-{keep_syn} .strip")
        height = strip.bounding_box()["height"]
        pg.select_option("select.strip-size", "2")
        assert strip.bounding_box()["height"] == pytest.approx(2 * height, rel=0.05)
        strip.screenshot(path=str(shots / "crop_4x.png"))
        # save in one click: the complete file, header included
        pg.click("#save-curation")
        pg.wait_for_function("document.getElementById('staged-msg').textContent.includes('saved')")
        assert pg.inner_text("#staged-n") == "0"
        saved = read_curation(results / "curation.tsv")
        got = {(r.action, int(r.synapse_id), r.session, r.other_synapse_id) for r in saved.itertuples()}
        assert got == {("merge", keep, "", str(other)), ("reject", victim, "", ""),
                       ("absent", gone, "s01", "")}
        assert (results / "curation.tsv").read_text().startswith(CURATION_HEADER)
        # the rerun, started from the page
        pg.click("#rerun")
        pg.wait_for_function("document.getElementById('staged-msg').textContent"
                             ".includes('rerun finished')", timeout=1_200_000)
        assert "(exit 0)" in pg.inner_text("#staged-msg")
        assert errors == []
    finally:
        pg.close()
        server.shutdown()
        server.server_close()
    log = next((results / "logs").glob("rerun-*.log")).read_text()
    rules = {ln.split()[1] for ln in log.splitlines() if ln.strip().startswith("done ")}
    assert {"curate", "weights", "presence"} <= rules, log[-2000:]
    assert not rules & {"check", "ingest", "channels", "detect", "register", "track"}, rules
    after = pd.read_csv(results / "synapses.csv")
    a = after[after.cell == cell]
    assert victim not in set(a["track_id"]) and other not in set(a["track_id"])
    merged = a[a.track_id == keep]
    assert (merged.loc[merged.detected == 1, "present"] == 1).all()
    # every session where either piece was detected is present
    pieces = before[(before.cell == cell) & before.track_id.isin([keep, other]) & (before.detected == 1)]
    assert set(pieces["session"]) <= set(merged.loc[merged.present == 1, "session"])
    assert a.loc[(a.track_id == gone) & (a.session == "s01"), "present"].tolist() == [0]
    # the other cell is untouched
    pd.testing.assert_frame_equal(after[after.cell == "PV02"].reset_index(drop=True),
                                  before[before.cell == "PV02"].reset_index(drop=True))
    print("screenshots:", *sorted(p.name for p in shots.iterdir()), "in", shots)


def test_report_reads_in_chromium_and_is_screenshot(page, sample_run, tmp_path):
    from pipeline.contract import STATS_PLOTS

    page.goto((sample_run.results / "report.html").as_uri())
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("figure img", "ims => ims.map(i => i.naturalWidth)")
    assert len(widths) == len(STATS_PLOTS) and all(w > 0 for w in widths)
    # every table's header has as many columns as each of its rows (none sits off its values)
    shapes = page.eval_on_selector_all(
        "table.t", "ts => ts.map(t => [t.tHead.rows[0].cells.length, "
                   "Array.from(t.tBodies[0].rows).map(r => r.cells.length)])")
    assert shapes and all(set(rows) <= {head} for head, rows in shapes)
    # wide tables scroll inside the page instead of overflowing it
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert page.errors == []
    print("screenshot:", shot)


def test_sample_check_done_by_clicking_and_scored(page, sample_run, tmp_path):
    """The sample check page: a circle clicked is a wrong call, a click elsewhere in the tile a
    missed synapse, 'checked' counts the tile; the file saved is what evaluate scores."""
    import sys

    page.goto((sample_run.results / "review" / "check.html").as_uri())
    page.wait_for_load_state("load")
    data = page.evaluate("window.CHECK")
    widths = page.eval_on_selector_all("#tile-1 img", "ims => ims.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths)
    tiles = data["tiles"]
    first = next(t for t in tiles if t["shown"])               # the first tile showing synapses
    sec = page.locator(f"#tile-{first['order']}")
    sec.locator("g.claim circle").first.click()                # not a synapse
    y0, y1, x0, x1 = first["box_um"]
    c = data["context_um"]
    grid = [(y, x) for y in np.linspace(y0 + 0.5, y1 - 0.5, 9)
            for x in np.linspace(x0 + 0.5, x1 - 0.5, 9)]
    far = max(grid, key=lambda p: min(np.hypot(p[0] - s["y"], p[1] - s["x"]) for s in first["shown"]))
    box = sec.locator(".tbox").bounding_box()
    page.mouse.click(box["x"] + (far[1] - x0 + c) / (x1 - x0 + 2 * c) * box["width"],
                     box["y"] + (far[0] - y0 + c) / (y1 - y0 + 2 * c) * box["height"])
    sec.locator("button.check-tile").click()
    page.locator(f"#tile-{first['order'] + 1} button.check-tile").click()
    assert page.locator("#n-checked").text_content() == "2"
    assert sec.locator(".counts").text_content().endswith("1 marked not a synapse, 1 missed")
    with page.expect_download() as dl:
        page.locator("#save-check").click()
    saved = tmp_path / "sample_check.tsv"
    dl.value.save_as(saved)
    out = tmp_path / "scores.csv"
    res = subprocess.run([sys.executable, "-m", "pipeline", "evaluate", "--sample-check",
                          str(saved), "--results", str(sample_run.results), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    row = pd.read_csv(out).set_index("cell").loc["all"]
    second = tiles[first["order"]]
    assert (row["tiles_checked"], row["wrong"], row["missed"]) == (2, 1, 1)
    assert row["shown"] == len(first["shown"]) + len(second["shown"])
    missed = pd.read_csv(saved, sep="\t").query("mark == 'missed'")
    assert float(missed["y_um"].iloc[0]) == pytest.approx(far[0], abs=0.1)
    assert float(missed["x_um"].iloc[0]) == pytest.approx(far[1], abs=0.1)
    assert page.errors == []


def test_sample_check_served_is_saved_and_read_back_in_another_browser(browser, sample_run,
                                                                        tmp_path):
    """Served, 'save' writes RESULTS/sample_check.tsv; a browser with none of the marks in its
    own storage (another computer, cleared data) shows them from that file."""
    results = tmp_path / "results"
    shutil.copytree(sample_run.results / "review", results / "review")
    shutil.copy(sample_run.results / "synapses.csv", results / "synapses.csv")
    server, base = _served(results)
    try:
        first = browser.new_context()
        pg = first.new_page()
        pg.goto(base + "/review/check.html")
        pg.wait_for_load_state("networkidle")
        tile = pg.evaluate("window.CHECK.tiles.find(t => t.shown.length)")
        sec = pg.locator(f"#tile-{tile['order']}")
        sec.locator("g.claim circle").first.click()
        sec.locator("button.check-tile").click()
        pg.locator("#save-check").click()
        pg.wait_for_function("document.getElementById('check-msg').textContent.includes('saved')")
        saved = pd.read_csv(results / "sample_check.tsv", sep="\t")
        assert sorted(saved["mark"]) == ["checked", "wrong"]
        assert (saved["tile"] == tile["tile"]).all()
        first.close()
        second = browser.new_context()          # empty local storage
        pg = second.new_page()
        pg.goto(base + "/review/check.html")
        pg.wait_for_function("document.getElementById('n-checked').textContent === '1'")
        sec = pg.locator(f"#tile-{tile['order']}")
        assert "done" in sec.get_attribute("class")
        assert "1 marked not a synapse" in sec.locator(".counts").text_content()
        second.close()
    finally:
        server.shutdown()
        server.server_close()
