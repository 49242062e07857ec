"""stats/summary.csv: the headline quantities with their CIs, on tables with known answers."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.stats import run_stats
from pipeline.stats.summary import mean_ci
from pipeline.truth.artificial import simulate_table


def test_mean_ci_is_a_t_interval_over_animal_means_when_cells_share_animals():
    per_cell = pd.Series({"c1": 1.0, "c2": 3.0, "c3": 4.0, "c4": 6.0, "c5": 10.0, "c6": 0.0})
    animals = {"A": ["c1", "c2"], "B": ["c3", "c4"], "C": ["c5", "c6"]}
    est, lo, hi, method, n = mean_ci(per_cell, animals)
    means = np.array([2.0, 5.0, 5.0])
    half = stats.t.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
    assert n == 3 and np.isclose(est, 4.0)
    assert np.isclose(lo, 4.0 - half) and np.isclose(hi, 4.0 + half)
    assert "3 animals" in method
    # the same cells as independent units: a t interval over 6 cells, narrower here
    est6, lo6, hi6, method6, n6 = mean_ci(per_cell, None)
    half6 = stats.t.ppf(0.975, 5) * per_cell.std(ddof=1) / np.sqrt(6)
    assert n6 == 6 and np.isclose(hi6 - lo6, 2 * half6) and "6 cells" in method6


def test_mean_ci_gives_no_interval_below_three_units():
    est, lo, hi, method, n = mean_ci(pd.Series({"c1": 1.0, "c2": 2.0}), None)
    assert np.isclose(est, 1.5) and np.isnan(lo) and np.isnan(hi) and n == 2


def test_summary_rows_agree_with_the_other_tables_and_cover_the_truth(tmp_path):
    table = pd.concat([
        simulate_table(n_cells=6, n_synapses=60, cell_type="pyr", seed=3, repeat_first=True,
                       noise=(0.02, 0.001)),
        simulate_table(n_cells=2, n_synapses=60, cell_type="PV", sigma=0.45, seed=4,
                       kesten=(-0.17, 0.17, 0.04, 0.04))], ignore_index=True)
    res = run_stats(table, tmp_path, n_boot=100)
    summ = pd.read_csv(tmp_path / "summary.csv")
    pyr = summ[summ.cell_type == "pyr"].set_index("quantity")
    # survival on the last day: the survival table's mean over cells, same number
    surv = res["survival"]
    last = surv[(surv.cell_type == "pyr")].sort_values("day").iloc[-1]
    assert np.isclose(pyr.loc["survival_last_day", "estimate"], last["survival"])
    # the ML Kesten rows are the kesten table's, corrected ones where repeats exist
    k = res["kesten"]
    both = k[(k.cell_type == "pyr") & (k.method == "maximum_likelihood") & (k.model == "both")
             & (k.noise_correction == "none")].iloc[0]
    assert np.isclose(pyr.loc["kesten_b", "estimate"], both["b"])
    assert np.isclose(pyr.loc["kesten_b", "ci_high"], both["b_ci_high"])
    assert "kesten_d_noise_corrected" in pyr.index and "sigma_ln_w_noise_corrected" in pyr.index
    # the generating sigma (0.8) inside the pyr interval; noise makes the raw one larger
    row = pyr.loc["sigma_ln_w_noise_corrected"]
    assert row["ci_low"] < 0.8 < row["ci_high"]
    assert pyr.loc["sigma_ln_w", "estimate"] > row["estimate"]
    # two PV cells: estimates, no interval for the means, and the note says why
    pv = summ[summ.cell_type == "PV"].set_index("quantity")
    assert np.isnan(pv.loc["turnover_per_interval", "ci_low"])
    assert "2 cell(s), fewer than 3" in pv.loc["turnover_per_interval", "note"]
    assert pyr.loc["turnover_per_interval", "note"].startswith("added + lost")


def test_a_bootstrap_p_is_never_zero():
    from pipeline.stats.compare import bootstrap_p

    assert bootstrap_p(np.linspace(0.1, 1, 999)) == pytest.approx(2 / 1000)   # every draw > 0
    draws = np.r_[-np.ones(25), np.ones(974)]
    assert bootstrap_p(draws) == pytest.approx(2 * 26 / 1000)
    assert bootstrap_p(-draws) == pytest.approx(2 * 26 / 1000)               # either side
    assert bootstrap_p(np.r_[-np.ones(500), np.ones(499)]) == 1.0
