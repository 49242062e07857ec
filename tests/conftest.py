"""Shared fixtures: simulated cells with known answers (the trackpy `artificial` idea)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.simulate import SimulationParams, simulate_cell

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


def fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.md5(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    before = fingerprint(SAMPLE)
    res = snakemake(tmp / "work", "--config", f"sessions={SAMPLE / 'sessions.tsv'}",
                    f"results={tmp / 'results'}")
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp / "results", before
