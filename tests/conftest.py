"""Shared fixtures: simulated cells with known answers (the trackpy `artificial` idea)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.simulate import SimulationParams, simulate_cell

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "melander2021_pyr"


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
