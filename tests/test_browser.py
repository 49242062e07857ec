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
    assert page.url.endswith(f"review/PV02/index.html#syn-{sid}")
    strip = page.locator(f"#syn-{sid}")
    assert strip.is_visible() and strip.locator("img").evaluate("i => i.naturalWidth") > 0
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
