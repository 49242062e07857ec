"""The ideal observer used as a floor for presence calls: exact without noise, better than a
per-session threshold with it, and the measurement model recovered from known measurements."""
import numpy as np
import pandas as pd
from scipy import special

from pipeline.truth.ideal_observer import (ideal_calls, ideal_presence_posterior, measurement_noise,
                                           model_calls, simulate_measurements)
from pipeline.truth.simulate import kesten_step

DYNAMICS = {"kesten": (-0.05, 0.04, 0.07, 0.11), "loss_logit": (-3.3, -1.0), "min_weight": 0.05,
            "weight_lognormal": (0.0, 0.92), "birth_lognormal": (np.log(0.4), 0.5),
            "birth_rate": 0.05}


def _truth(rng, n=300, T=8):
    """A truth table (cell, synapse, session) with the simulator's dynamics."""
    a, c, b, d = DYNAMICS["kesten"]
    w = np.full((n, T), np.nan)
    born = np.where(rng.uniform(size=n) < 0.75, 0, rng.integers(1, T, n))
    for i in range(n):
        w[i, born[i]] = np.exp(rng.normal(*(DYNAMICS["weight_lognormal"] if born[i] == 0
                                            else DYNAMICS["birth_lognormal"])))
    for t in range(1, T):
        alive = np.flatnonzero(~np.isnan(w[:, t - 1]))
        nxt = kesten_step(w[alive, t - 1], a, c, b, d, rng, floor=DYNAMICS["min_weight"])
        alpha, beta = DYNAMICS["loss_logit"]
        lost = rng.uniform(size=len(alive)) < special.expit(alpha + beta * np.log(w[alive, t - 1]))
        w[alive[~lost], t] = nxt[~lost]
    present = ~np.isnan(w)
    return pd.DataFrame({
        "cell": "c1", "cell_type": "pyr", "synapse_id": np.repeat(np.arange(n), T),
        "session": np.tile([f"s{t}" for t in range(T)], n), "day": np.tile(np.arange(T) * 4, n),
        "present": present.astype(int).ravel(), "weight": np.nan_to_num(w).ravel()})


def test_without_noise_the_ideal_observer_calls_the_truth():
    rng = np.random.default_rng(0)
    truth = _truth(rng)
    quiet = {"signal_per_weight": np.full(8, 40.0), "relative_sd": 0.01, "null_centre": 0.0,
             "null_sd": 0.05}
    calls = ideal_calls(truth, DYNAMICS, quiet, rng)
    assert (calls["present"].to_numpy() == truth.sort_values(["synapse_id", "day"])["present"].to_numpy()).all()


def test_with_noise_it_beats_a_per_session_threshold():
    rng = np.random.default_rng(1)
    truth = _truth(rng)
    w = truth.pivot(index="synapse_id", columns="day", values="weight").to_numpy()
    m = truth.pivot(index="synapse_id", columns="day", values="present").to_numpy() == 1
    noise = {"signal_per_weight": np.full(8, 11.0), "relative_sd": 0.2, "null_centre": 0.0,
             "null_sd": 1.6}           # the low-signal regime's measurement model
    z = simulate_measurements(w, m, noise, rng)
    post = ideal_presence_posterior(
        z, np.ones_like(m), **noise, kesten=DYNAMICS["kesten"], loss_logit=DYNAMICS["loss_logit"],
        min_weight=0.05, weight_lognormal=DYNAMICS["weight_lognormal"],
        birth_lognormal=DYNAMICS["birth_lognormal"], p_present_first=m[:, 0].mean(),
        birth_probability=0.05)
    ideal_errors = ((post >= 0.5) != m).sum()
    threshold_errors = min(((z > k * 1.6) != m).sum() for k in (2, 3, 4, 5))
    assert 0 < ideal_errors < 0.6 * threshold_errors
    # calibrated: of rows with p near 0.8, about 80 % present
    band = (post > 0.6) & (post < 0.95)
    assert band.sum() > 30 and abs(m[band].mean() - post[band].mean()) < 0.12


def test_measurement_model_is_recovered_from_matched_rows():
    rng = np.random.default_rng(2)
    truth = _truth(rng, n=400)
    w = truth.pivot(index="synapse_id", columns="day", values="weight")
    m = w.to_numpy() > 0
    noise = {"signal_per_weight": np.linspace(40, 30, 8), "relative_sd": 0.15,
             "null_centre": 0.5, "null_sd": 1.8}
    z = simulate_measurements(w.to_numpy(), m, noise, rng)
    rows = pd.DataFrame({"day": np.tile(w.columns.to_numpy(), len(w)), "snr": z.ravel(),
                         "detected": (z > 8).astype(int).ravel(),
                         "true_weight": np.where(m, w.to_numpy(), np.nan).ravel()})
    null = 0.5 + 1.8 * rng.normal(size=300)
    est = measurement_noise(rows, null)
    assert np.allclose(est["signal_per_weight"], noise["signal_per_weight"], rtol=0.05)
    assert abs(est["relative_sd"] - 0.15) < 0.04
    assert abs(est["null_centre"] - 0.5) < 0.3 and abs(est["null_sd"] - 1.8) < 0.3


def test_the_presence_model_on_perfect_tracks_is_exact_without_noise_and_behind_the_ideal_with_it():
    # model_calls: the presence stage's own HMM on measurements at the true synapses (perfect
    # tracking); it knows no dynamics, so with noise it errs more often than the ideal observer
    rng = np.random.default_rng(3)
    truth = _truth(rng)
    truth_present = truth.sort_values(["synapse_id", "day"])["present"].to_numpy()
    quiet = {"signal_per_weight": np.full(8, 40.0), "relative_sd": 0.01, "null_centre": 0.0,
             "null_sd": 0.05}
    assert (model_calls(truth, DYNAMICS, quiet, rng)[0]["present"].to_numpy()
            == truth_present).all()
    noisy = {"signal_per_weight": np.full(8, 11.0), "relative_sd": 0.2, "null_centre": 0.0,
             "null_sd": 1.6}
    model_errors = sum((model_calls(truth, DYNAMICS, noisy, rng)[0]["present"].to_numpy()
                        != truth_present).sum() for _ in range(3))
    ideal_errors = sum((ideal_calls(truth, DYNAMICS, noisy, rng)["present"].to_numpy()
                        != truth_present).sum() for _ in range(3))
    assert 0 < ideal_errors < model_errors
