"""A synapse called present whose measurement is within the noise of absence
(``weight_at_noise``): present for turnover and survival; an interval that starts there has no
measured weight at its start (left out of the hazard's and the Kesten fits' regressor)."""
import numpy as np
import pandas as pd

from pipeline.stages.presence import CLEAR_SDS, weight_at_noise
from pipeline.stats import run_stats
from pipeline.stats.hazard import at_risk_intervals
from pipeline.stats.table import consecutive_pairs, prepare_table, split_repeats
from pipeline.truth.artificial import simulate_table


def _at_noise_table(seed=3, share=0.08):
    """A simulated table, and the same with ``share`` of its present rows (not in the first
    or last session) flagged at noise and given a weight 100x too small."""
    truth = simulate_table(n_cells=6, n_synapses=60, n_sessions=6, seed=seed)
    rng = np.random.default_rng(seed)
    inner = (truth["present"] == 1) & truth["day"].between(1, truth["day"].max() - 1)
    flag = inner & (rng.random(len(truth)) < share)
    noisy = truth.assign(weight=truth["weight"].where(~flag, truth["weight"] / 100),
                         weight_at_noise=flag.astype(int))
    return truth, noisy, flag


def test_turnover_and_survival_count_a_synapse_at_noise_present(tmp_path):
    truth, noisy, flag = _at_noise_table()
    assert flag.sum() > 50
    a = run_stats(truth, tmp_path / "truth", n_boot=20, seed=0)
    b = run_stats(noisy, tmp_path / "noisy", n_boot=20, seed=0)
    for name in ("turnover", "survival"):
        pd.testing.assert_frame_equal(a[name], b[name])


def test_an_interval_ending_at_noise_is_not_a_loss_and_one_starting_there_not_at_risk():
    # one synapse: measured, at noise, measured, absent
    t = pd.DataFrame({"cell": "c1", "cell_type": "pyr", "synapse_id": 1,
                      "session": ["s0", "s1", "s2", "s3"], "day": [0, 4, 8, 12],
                      "present": [1, 1, 1, 0], "weight": [1.0, 0.05, 0.8, 0.0],
                      "weight_at_noise": [0, 1, 0, 0]})
    r = at_risk_intervals(consecutive_pairs(prepare_table(t)))
    assert r["day"].tolist() == [0, 8]          # the interval from the noise session: not at risk
    assert r["lost"].tolist() == [0, 1]         # ending at noise: persisted, not lost
    pairs = consecutive_pairs(prepare_table(t))
    assert pairs["measured_t"].tolist() == [True, False, True]


def test_kesten_fits_leave_out_pairs_that_start_at_noise_and_keep_those_ending_there(tmp_path):
    truth, noisy, flag = _at_noise_table()
    pairs = consecutive_pairs(split_repeats(prepare_table(noisy))[0])
    starts = pairs[(pairs["w_t"] > 0) & pairs["measured_t"]]
    kesten = run_stats(noisy, tmp_path, n_boot=20, seed=0)["kesten"]
    binned = kesten[kesten["method"] == "binned_moments"].set_index("cell_type")
    assert binned["n_pairs"].to_dict() == starts.groupby("cell_type").size().to_dict()
    # the flagged starts are gone, the flagged ends (w_next of a flagged row) are not
    assert ((pairs["w_t"] > 0) & ~pairs["measured_t"]).sum() > 30
    ends_at_noise = starts.merge(noisy[flag.to_numpy()][["cell", "synapse_id", "day"]],
                                 left_on=["cell", "synapse_id", "day_next"],
                                 right_on=["cell", "synapse_id", "day"])
    assert len(ends_at_noise) > 30


def test_presence_flags_present_rows_within_the_absent_states_noise():
    params = {"mu0": 0.3, "tau0": 1.2}
    level = 0.3 + CLEAR_SDS * 1.2
    t = pd.DataFrame({"present": [1, 1, 1, 0, 0, np.nan],
                      "snr": [level - 0.1, level + 0.1, -1.0, 0.5, 9.0, 0.2]})
    assert weight_at_noise(t, params).tolist() == [1, 0, 1, 0, 0, 0]
    # the per-session model fits no absent state: nothing is flagged
    assert weight_at_noise(t, {}).tolist() == [0] * 6


def test_make_bench_scores_the_kesten_fit_that_stats_reports(tmp_path):
    # the benchmark's "ours" Kesten row must be stats/kesten.csv's binned fit, not a fit that
    # still holds the intervals starting at noise (their w_t is 100x too small here)
    from pipeline.truth.evaluate import population_scores

    truth, noisy, _ = _at_noise_table()
    params = {"gen": {"cell_type": "pyr", "loss_logit": (-2.0, -1.0),
                      "weight_lognormal": (0.0, 0.8), "kesten": (-0.05, 0.04, 0.07, 0.11)}}
    scores = pd.DataFrame(population_scores(truth, noisy, params)).set_index("metric")["value"]
    kesten = run_stats(noisy, tmp_path, n_boot=20, seed=0)["kesten"]
    binned = kesten[kesten["method"] == "binned_moments"].iloc[0]
    for k in "acbd":
        assert np.isclose(scores[f"kesten_{k}_ours"], binned[k])
    # and the at-noise starts do move the fit: the scorer would differ without them left out
    everything = run_stats(noisy.drop(columns="weight_at_noise"), tmp_path / "all", n_boot=20,
                           seed=0)["kesten"]
    assert not np.isclose(everything[everything["method"] == "binned_moments"].iloc[0]["a"],
                          binned["a"], rtol=0.05)
