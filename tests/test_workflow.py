"""End-to-end: Snakemake on data_sample/ and on broken copies of it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SAMPLE, fingerprint, snakemake

CONTRACT = ["cell", "cell_type", "synapse_id", "session", "day", "present", "z", "y", "x",
            "z_um", "y_um", "x_um", "weight", "intensity", "snr"]
STATS = ["lognormal.csv", "survival.csv", "survival_by_quartile.csv", "turnover.csv",
         "kesten.csv", "weights_lognormal.png", "survival.png", "kesten.png"]


def test_output_contract(sample_run):
    results, _ = sample_run
    syn = pd.read_csv(results / "synapses.csv")
    assert set(CONTRACT) <= set(syn.columns)
    sheet = pd.read_csv(SAMPLE / "sessions.tsv", sep="\t")
    assert set(syn["cell"]) == set(sheet["cell"])
    # every synapse has a row in every session of its cell
    per = syn.groupby(["cell", "synapse_id"])["session"].nunique()
    assert (per == 6).all()
    assert set(syn["present"].unique()) <= {0, 1}
    assert (syn.loc[syn.present == 1, "weight"] > 0).all()
    for name in STATS:
        assert (results / "stats" / name).stat().st_size > 0
    # the presence stage: joint calls beside the per-session ones, and what changed
    assert {"p_present", "present_detected", "presence_uncertain", "track_id"} <= set(syn.columns)
    assert (syn["present"] == (syn["p_present"] >= 0.5)).all()
    html = (results / "report.html").read_text()
    assert "synapses.csv" in html and "survival.png" in html and "Presence calls" in html
    for cell, sess in sheet[["cell", "session"]].itertuples(index=False):
        assert (results / "register" / cell / f"{sess}.json").exists()
        assert (results / "register" / cell / f"{sess}_qc.png").exists()
        assert (results / "detect" / cell / f"{sess}.csv").exists()


def test_results_agree_with_the_sample_truth(sample_run):
    from pipeline.evaluate import evaluate_results

    results, _ = sample_run
    scores = evaluate_results(SAMPLE, results)
    pop = scores[scores["cell"].str.startswith("type:")].pivot(index="cell", columns="metric",
                                                                 values="value")
    # joint presence calls: turnover closer to the truth than per-session detection
    # (measured on this sample: 0.0-2.6 pp vs 2.7-4.9 pp)
    for q in ("added", "lost"):
        assert (pop[f"{q}_abs_error_pp"] <= pop[f"{q}_abs_error_pp_detection"]).all(), pop
    scores = scores[~scores["cell"].str.startswith("type:")]
    scores = scores.pivot(index="cell", columns="metric", values="value")
    assert (scores["detection_recall"] > 0.9).all(), scores
    assert (scores["detection_precision"] > 0.9).all(), scores
    assert (scores["registration_error_um_median"] < 0.5 * 0.0887 * 4).all(), scores
    assert (scores["link_precision"] > 0.9).all() and (scores["link_recall"] > 0.9).all(), scores
    assert (scores["log_weight_r"] > 0.9).all(), scores


def test_imaging_directory_is_never_written(sample_run):
    _, before = sample_run
    assert fingerprint(SAMPLE) == before


def test_lint_is_clean():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def _copy_sample(tmp_path: Path) -> Path:
    dst = tmp_path / "imaging"
    shutil.copytree(SAMPLE, dst)
    return dst


def test_sheet_with_missing_column_fails_before_any_image_work(tmp_path):
    data = _copy_sample(tmp_path)
    sheet = pd.read_csv(data / "sessions.tsv", sep="\t").drop(columns="day")
    sheet.to_csv(data / "sessions.tsv", sep="\t", index=False)
    res = snakemake(tmp_path / "work", "--config", f"sessions={data / 'sessions.tsv'}",
                    f"results={tmp_path / 'results'}")
    assert res.returncode != 0
    assert "missing required column(s) day" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_unreadable_file_fails_its_cell_only_with_keep_going(tmp_path):
    data = _copy_sample(tmp_path)
    bad = data / "images" / "PV02" / "s03.tif"
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated
    results = tmp_path / "results"
    res = snakemake(tmp_path / "work", "--keep-going", "--config",
                    f"sessions={data / 'sessions.tsv'}", f"results={results}")
    assert res.returncode != 0
    log = (results / "logs" / "ingest" / "PV02" / "s03.log").read_text()
    assert "s03.tif" in log and ("cannot be read" in log or "corrupt" in log)
    # the healthy cell went all the way through
    assert (results / "weights" / "pyr01" / "synapses.csv").exists()
    assert not (results / "ingest" / "PV02" / "s03.tif").exists()


def test_channel_out_of_range_names_the_file(tmp_path):
    data = _copy_sample(tmp_path)
    sheet = pd.read_csv(data / "sessions.tsv", sep="\t")
    sheet.loc[sheet.cell == "PV02", "morphology_channel"] = 5
    sheet.to_csv(data / "sessions.tsv", sep="\t", index=False)
    results = tmp_path / "results"
    res = snakemake(tmp_path / "work", "--keep-going", "--config",
                    f"sessions={data / 'sessions.tsv'}", f"results={results}",
                    "--until", "ingest")
    assert res.returncode != 0
    log = (results / "logs" / "ingest" / "PV02" / "s00.log").read_text()
    assert "s00.tif" in log and "channel 5" in log
