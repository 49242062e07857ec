"""The report reads like a results section: its numbers are the statistics' tables', every figure
has a caption and a vector twin in the cell types' own colours, no table shows NaN, and the
Methods name every setting that differs from the defaults."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from pipeline.contract import STATS_PLOTS
from pipeline.review.report import write_report
from pipeline.review.results_text import changed_settings, defaults
from pipeline.stats.plots import TYPE_COLOURS


class _Page(HTMLParser):
    """The numbers (data-key, data-v), figures, table cells and paragraphs of a page."""

    def __init__(self):
        super().__init__()
        self.numbers, self.figures, self.cells, self.stack = {}, [], [], []
        self.methods = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, a))
        if tag == "span" and "data-key" in a:
            self.numbers[a["data-key"]] = float(a["data-v"]) if a["data-v"] else np.nan
        if tag == "figure":
            self.figures.append({"img": None, "caption": "", "svg": None})
        if tag == "img" and self.figures and self._inside("figure"):
            self.figures[-1]["img"] = a["src"]
        if tag == "a" and self._inside("figcaption") and a.get("href", "").endswith(".svg"):
            self.figures[-1]["svg"] = a["href"]
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self._inside("figcaption"):
            self.figures[-1]["caption"] += data
        if self._inside("td"):
            self.cells[-1] += data
        if any(t == "p" and a.get("class") == "methods" for t, a in self.stack):
            self.methods += data

    def _inside(self, tag):
        return any(t == tag for t, _ in self.stack)


def _page(path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    return p


def test_the_reports_numbers_are_the_statistics_tables(sample_run):
    results = sample_run.results
    page = _page(results / "report.html")
    syn = pd.read_csv(results / "synapses.csv")
    surv = pd.read_csv(results / "stats" / "survival.csv")
    turn = pd.read_csv(results / "stats" / "turnover.csv")
    logn = pd.read_csv(results / "stats" / "lognormal.csv")
    for ct, rows in syn.groupby("cell_type"):
        assert page.numbers[f"{ct}.cells"] == rows["cell"].nunique()
        assert page.numbers[f"{ct}.synapses"] == rows.groupby(["cell", "synapse_id"]).ngroups
        last = surv[surv.cell_type == ct].sort_values("day").iloc[-1]
        assert page.numbers[f"{ct}.last_day"] == last["day"]
        assert page.numbers[f"{ct}.survival"] == pytest.approx(last["survival"])
        assert page.numbers[f"{ct}.km"] == pytest.approx(last["km_survival"])
        assert page.numbers[f"{ct}.km_low"] == pytest.approx(last["km_ci_low"])
        t = turn[turn.cell_type == ct]
        assert page.numbers[f"{ct}.turnover"] == pytest.approx(t["dynamic"].mean())
        assert page.numbers[f"{ct}.lost"] == pytest.approx(t["lost"].mean())
        first = logn[logn.cell_type == ct].sort_values("day").iloc[0]
        assert page.numbers[f"{ct}.sigma"] == pytest.approx(first["sigma"])
    # and the words show them rounded as the numbers say
    text = (results / "report.html").read_text()
    pv = surv[surv.cell_type == "PV"].sort_values("day").iloc[-1]
    assert f">{100 * pv['survival']:.1f} %<" in text


def test_every_figure_has_a_caption_and_a_vector_twin_in_the_types_colours(sample_run):
    results = sample_run.results
    page = _page(results / "report.html")
    assert len(page.figures) == len(STATS_PLOTS)
    types = set(pd.read_csv(results / "synapses.csv")["cell_type"])
    for fig in page.figures:
        assert len(fig["caption"].strip()) > 150, fig               # says what and how
        assert (results / fig["img"]).exists()
        svg = results / fig["svg"]
        assert svg.exists() and svg.with_suffix(".png").name == (results / fig["img"]).name
        text = svg.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        for ct in types:                                             # one colour per type
            assert TYPE_COLOURS[ct] in text, (svg.name, ct)
    # the Markov panels carry each type's own bin edges
    stationary = pd.read_csv(results / "stats" / "markov_stationary.csv")
    svg = (results / "stats" / "markov_stationary.svg").read_text()
    for ct, g in stationary[stationary.state > 0].groupby("cell_type"):
        edge = np.exp(g["ln_w_high"].iloc[0])
        assert f"w &lt; {edge:.2g}" in svg or f"w < {edge:.2g}" in svg, (ct, edge)


def test_no_table_shows_nan_none_or_inf(sample_run):
    page = _page(sample_run.results / "report.html")
    assert len(page.cells) > 100
    bad = [c for c in page.cells if re.search(r"\b(nan|NaN|None|inf)\b", c)]
    assert bad == []
    # the raw tables do have empty values: the report explains them instead
    assert pd.read_csv(sample_run.results / "stats" / "turnover.csv")["added_sem"].isna().any()
    assert "Empty cells:" in (sample_run.results / "report.html").read_text()


def test_the_methods_name_every_setting_that_differs_from_the_defaults(sample_run, tmp_path):
    base = defaults()
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    settings["detect"]["threshold"] = 6.0
    settings["register"]["max_rotation_deg"] = 10
    settings["presence"]["model"] = "per_session"
    settings["stats"]["n_boot"] = 200
    settings["sessions"] = "/somewhere/sessions.tsv"          # paths are not settings
    assert [k for k, _, _ in changed_settings(settings)] == [
        "detect.threshold", "register.max_rotation_deg", "presence.model", "stats.n_boot"]
    out = tmp_path / "report.html"
    write_report(sample_run.results, out, settings=settings)
    methods = _page(out).methods
    for key, value, default in changed_settings(settings):
        assert f"{key} = {value} (default {default})" in methods
    assert "sessions" not in re.findall(r"(\w+) = ", methods)
    for name in ("snakemake", "synapse-pipeline", "numpy"):
        assert name in methods
    write_report(sample_run.results, out, settings=base)
    assert "All settings were the defaults" in _page(out).methods
    # the workflow's own report carries the run's settings
    assert "settings were not recorded" not in _page(sample_run.results / "report.html").methods
