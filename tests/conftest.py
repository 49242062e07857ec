"""Shared fixtures: simulated cells with known answers (the trackpy `artificial` idea)."""
from __future__ import annotations

import hashlib
import shutil
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.truth.simulate import SimulationParams, simulate_cell

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "melander2021_pyr"
SAMPLE = ROOT / "data_sample"


@pytest.fixture(scope="session")
def sim_pyr():
    return simulate_cell(SimulationParams(cell_type="pyr", shape=(20, 256, 256), n_sessions=3,
                                          seed=11, shift_sd_um=(0.8, 2.5, 2.5)), cell="pyr01")


@pytest.fixture(scope="session")
def sim_pv():
    return simulate_cell(SimulationParams(cell_type="PV", shape=(20, 256, 256), n_sessions=3,
                                          seed=12, shift_sd_um=(0.8, 2.5, 2.5)), cell="PV01")


@pytest.fixture(scope="session")
def reference_table():
    import pandas as pd

    path = REFERENCE / "synapses.csv"
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (it sits in ../shared/ beside the repo)")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def reference_dir():
    if not (REFERENCE / "synapses.csv").exists():
        pytest.skip(f"reference data not found at {REFERENCE} (it sits in ../shared/ beside the repo)")
    return REFERENCE


def truth_of(sim, session: int):
    t = sim.truth
    return t[(t["session"] == f"s{session:02d}") & (t["present"] == 1)]


def spacing_of(sim):
    return np.asarray(sim.params.spacing)


# --- end-to-end runs of the workflow (test_workflow.py, test_slurm.py) ---

def snakemake(workdir: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run the workflow with `workdir` as Snakemake's working directory (its .snakemake/ lives there)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def pipeline_run(sheet: Path, results: Path, *, cwd: Path) -> str:
    """``python -m pipeline run SHEET --results RESULTS``, which must succeed; its summary (the
    output after 'summary:')."""
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(sheet),
                          "--results", str(results)], capture_output=True, text=True, cwd=cwd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout.split("summary:")[1]


def fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.md5(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class SampleRun:
    results: Path      # the results folder of a complete local run on data_sample/
    work: Path         # Snakemake's working directory of that run (its .snakemake/)
    sheet: Path        # the sessions sheet it ran on, in a read-only view of a copy of data_sample/
    imaging: Path      # that read-only view
    read_only: str     # how the view is protected ('' when it could not be made read-only)
    before: dict       # fingerprint of the imaging copy before the run


def _make_read_only(src: Path, tmp: Path):
    """(view, how, undo): a copy of ``src`` nobody can write to. Root ignores file modes, so as
    root the view is a read-only bind mount of the copy; otherwise the copy loses write
    permission."""
    copy = tmp / "imaging"
    shutil.copytree(src, copy)
    if os.geteuid() == 0:
        view = tmp / "imaging_ro"
        view.mkdir()
        run = lambda *a: subprocess.run(list(a), capture_output=True).returncode == 0  # noqa: E731
        if run("mount", "--bind", str(copy), str(view)):
            if run("mount", "-o", "remount,ro,bind", str(view)):
                return view, "read-only bind mount", lambda: run("umount", str(view))
            run("umount", str(view))
        return copy, "", lambda: None
    paths = [copy, *copy.rglob("*")]
    for p in paths:
        p.chmod(p.stat().st_mode & ~0o222)
    return copy, "no write permission", lambda: [p.chmod(p.stat().st_mode | 0o200) for p in paths]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One local run of the whole workflow on a read-only copy of data_sample/."""
    tmp = tmp_path_factory.mktemp("e2e")
    imaging, how, undo = _make_read_only(SAMPLE, tmp)
    try:
        before = fingerprint(imaging)
        res = snakemake(tmp / "work", "--config", f"sessions={imaging / 'sessions.tsv'}",
                        f"results={tmp / 'results'}")
        assert res.returncode == 0, res.stderr[-3000:]
        yield SampleRun(tmp / "results", tmp / "work", imaging / "sessions.tsv", imaging, how,
                        before)
    finally:
        undo()


def same_tables(a: Path, b: Path) -> tuple[int, list[str]]:
    """(number of CSV/JSON tables under ``a``, those that are missing or differ under ``b``)."""
    tables = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".csv", ".json"))
    return len(tables), [str(rel) for rel in tables
                         if not (b / rel).exists() or (b / rel).read_bytes() != (a / rel).read_bytes()]


def job_stats(log: str) -> dict[str, int]:
    """Jobs per rule from the "Job stats:" table of a Snakemake log ({} when nothing is to run)."""
    if "Job stats:" not in log:
        return {}
    block = log.split("Job stats:")[1].split("\n\n")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", block, flags=re.M)
            if rule != "total"}
