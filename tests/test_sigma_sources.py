"""benchmarks/sigma_sources.py, which BENCHMARKS_DETECTION.md and the README quote for what
widens a run's SD of ln weight: a dim track that matches no true synapse is counted as such,
widens the SD over the rows called present and leaves the matched rows' SD as it was."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from sigma_sources import session_rows  # noqa: E402


def _run_folder(tmp_path: Path, results: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "data").symlink_to(SAMPLE.resolve())
    shutil.copytree(results, run / "results")
    return run


def test_a_dim_track_of_no_synapse_is_what_widens_the_sd(sample_run, tmp_path):
    run = _run_folder(tmp_path, sample_run.results)
    before = session_rows(run).set_index(["cell", "session"])
    synapses = pd.read_csv(run / "results" / "synapses.csv")
    cell = "pyr01"
    rows = synapses[synapses["cell"] == cell].drop_duplicates("session").copy()
    # a track that tracking never wrote: its rows map to no true synapse; present and
    # detected in every session at a tenth of the session's median weight
    median = synapses[(synapses["cell"] == cell) & (synapses["present"] == 1)] \
        .groupby("session")["weight"].median()
    rows = rows.assign(synapse_id=synapses["synapse_id"].max() + 1, present=1, detected=1,
                       weight=0.1 * rows["session"].map(median).to_numpy(), snr=5.0)
    pd.concat([synapses, rows]).to_csv(run / "results" / "synapses.csv", index=False)
    after = session_rows(run).set_index(["cell", "session"])

    mine = after.loc[cell]
    assert (mine["unmatched"] == before.loc[cell, "unmatched"] + 1).all()
    assert (mine["unmatched persistent"] == before.loc[cell, "unmatched persistent"] + 1).all()
    assert (mine["SD ln w, all present"] > before.loc[cell, "SD ln w, all present"]).all()
    for col in ("SD ln w, matched", "SD ln w, truth of the matched", "SD ln w, truth"):
        assert np.allclose(mine[col], before.loc[cell, col])
    other = [c for c in after.index.get_level_values("cell").unique() if c not in (cell, "mean")]
    assert other and after.loc[other].equals(before.loc[other])
    # the SD over all present rows is the plain SD of their ln weights
    present = pd.read_csv(run / "results" / "synapses.csv")
    present = present[(present["cell"] == cell) & (present["present"] == 1)
                      & (present["weight"] > 0)]
    for session, here in present.groupby("session"):
        assert mine.loc[session, "SD ln w, all present"] == pytest.approx(
            np.log(here["weight"]).std())
