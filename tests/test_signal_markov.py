"""The presence model whose present state carries the signal (pipeline.core.signal_markov),
on tracks drawn from known dynamics."""
import numpy as np
import pytest
from scipy import special

from pipeline.core.signal_markov import fit_signal_markov
from pipeline.stages.presence import fit_presence


def draw_tracks(rng, *, n=400, sessions=8, rho=0.7, q=0.3, m=3.0, alpha=-1.0, beta=-1.0,
                birth=0.04, pi1=0.85, mb=2.3, sb=0.3, r=0.1, tau0=1.0):
    """(present, true signal, measured snr) of ``n`` tracks: ln s an AR(1) about ``m``, lost
    with probability expit(alpha + beta ln s) per step and never back, born at ln s ~
    N(mb, sb); measured as s + noise of SD sqrt(tau0^2 + (r s)^2), absent as N(0, tau0)."""
    present = np.zeros((n, sessions), bool)
    signal = np.zeros((n, sessions))
    state = np.where(rng.random(n) < pi1, 1, 0)       # 0 unborn, 1 present, 2 lost
    log_s = rng.normal(m, q / np.sqrt(1 - rho ** 2), n)
    for t in range(sessions):
        if t:
            lose = (state == 1) & (rng.random(n) < special.expit(alpha + beta * log_s))
            born = (state == 0) & (rng.random(n) < birth)
            log_s = np.where(state == 1, m + rho * (log_s - m) + q * rng.normal(size=n), log_s)
            log_s = np.where(born, rng.normal(mb, sb, n), log_s)
            state = np.where(lose, 2, np.where(born, 1, state))
        present[:, t] = state == 1
        signal[:, t] = np.where(present[:, t], np.exp(log_s), 0.0)
    sd = np.sqrt(tau0 ** 2 + (r * signal) ** 2)
    return present, signal, signal + sd * rng.normal(size=signal.shape)


def test_dynamics_are_recovered():
    rng = np.random.default_rng(3)
    present, _, z = draw_tracks(rng, n=1500)
    init = fit_presence(z, np.ones_like(z, bool), null_snr=rng.normal(0, 1, 300))["params"]
    fit = fit_signal_markov(z, np.ones_like(z, bool), mu0=0.0, tau0=1.0, init=init, lost=True)
    prm = fit["params"]
    assert prm["rho"] == pytest.approx(0.7, abs=0.08)
    assert prm["q"] == pytest.approx(0.3, abs=0.05)
    assert prm["m"] == pytest.approx(3.0, abs=0.3)
    assert prm["beta"] == pytest.approx(-1.0, abs=0.5)      # large synapses persist longer
    assert prm["r"] == pytest.approx(0.1, abs=0.04)
    assert prm["birth"] == pytest.approx(0.04, abs=0.015)
    # and the calls are right nearly everywhere
    assert ((fit["p_present"] >= 0.5) == present).mean() > 0.98


def test_a_bright_synapse_with_one_dim_session_stays_present():
    rng = np.random.default_rng(4)
    _, _, z = draw_tracks(rng)
    # a bright synapse (ln s ~ 3.5) measuring at the absent level in one session, and a
    # synapse as bright that is lost for good after session 3
    dim = np.array([[35.0, 30.0, 38.0, 33.0, 0.5, 31.0, 36.0, 34.0]])
    gone = np.array([[35.0, 30.0, 38.0, 33.0, 0.5, -0.4, 0.9, -1.2]])
    z = np.vstack([z, dim, gone])
    obs = np.ones_like(z, bool)
    null = rng.normal(0, 1, 300)
    two_state = fit_presence(z, obs, null_snr=null, lost_for_good=False)["p_present"]
    assert two_state[-2, 4] < 0.5          # the cell's log-normal alone: a false loss and birth
    # a measurement at the absent level is absent to any model that lets a synapse come back;
    # one where the lost do not return reads it as a dim session
    for memory, for_good in ((True, True), (False, True)):
        p = fit_presence(z, obs, null_snr=null, signal_memory=memory,
                         lost_for_good=for_good)["p_present"]
        assert p[-2].min() >= 0.5, (memory, for_good)
        assert (p[-1, :4] >= 0.5).all() and (p[-1, 4:] < 0.5).all(), (memory, for_good)


def test_lost_for_good_reads_a_track_as_one_run():
    rng = np.random.default_rng(5)
    _, _, z = draw_tracks(rng)
    back = np.array([[12.0, 14.0, 0.3, -0.5, 13.0, 15.0, 12.0, 14.0]])
    z = np.vstack([z, back])
    obs = np.ones_like(z, bool)
    p = fit_presence(z, obs, null_snr=rng.normal(0, 1, 300), lost_for_good=True)["p_present"]
    # every track's present sessions are one run: none is present, absent, then present again
    for calls in p >= 0.5:
        on = np.flatnonzero(calls)
        assert len(on) == 0 or calls[on[0]:on[-1] + 1].all()
    assert (p[-1] >= 0.5).all()     # the track with two dim sessions among eight bright ones


def test_unobserved_sessions_carry_no_evidence():
    rng = np.random.default_rng(6)
    _, _, z = draw_tracks(rng, n=300)
    obs = np.ones_like(z, bool)
    obs[:, 3] = False
    z_garbage = z.copy()
    z_garbage[:, 3] = 1e4
    null = rng.normal(0, 1, 300)
    a = fit_presence(z, obs, null_snr=null, signal_memory=True, lost_for_good=True)["p_present"]
    b = fit_presence(z_garbage, obs, null_snr=null, signal_memory=True,
                     lost_for_good=True)["p_present"]
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_not_combined_with_the_two_state_refinements():
    z = np.ones((5, 4))
    with pytest.raises(ValueError, match="own_signal_reach"):
        fit_presence(z, z > 0, signal_memory=True, dim_present=True)


def test_a_bridged_run_of_noise_sessions_is_counted_and_named():
    from pipeline.stages.presence import call_presence
    import pandas as pd

    rng = np.random.default_rng(7)
    _, _, z = draw_tracks(rng, n=150)
    z = np.vstack([z, [[30.0, 28.0, 0.2, -0.6, 0.4, 31.0, 29.0, 33.0]]])   # 3 sessions at noise
    n, k = z.shape
    table = pd.DataFrame({
        "cell": "c1", "cell_type": "pyr", "synapse_id": np.repeat(np.arange(1, n + 1), k),
        "session": np.tile([f"s{i}" for i in range(k)], n), "day": np.tile(np.arange(k) * 4, n),
        "snr": z.ravel(), "intensity": 100 * z.ravel(), "in_view": 1,
        "detected": (z > 5).astype(int).ravel(), "z_um": 0.0,
        "y_um": np.repeat(np.arange(n) * 3.0, k), "x_um": 0.0})
    null = rng.normal(0, 1, 300)
    out, summary = call_presence(table, null_snr=null, lost_for_good=True)
    last = out[out["synapse_id"] == n].sort_values("day")
    assert (last["present"] == 1).all()
    assert summary["gaps_bridged"] >= 1
    assert any("lost_for_good" in w and "c1" in w for w in summary["warnings"])
    _, two_state = call_presence(table, null_snr=null, lost_for_good=False)
    assert "gaps_bridged" not in two_state
    # the default: lost for good in cells of puncta, not of spines (which return)
    for target, bridged in (("puncta", True), ("spines", False)):
        out, summary = call_presence(table, null_snr=null, target=target)
        last = out[out["synapse_id"] == n].sort_values("day")
        assert (last["present"] == 1).all() == bridged, target
        assert ("gaps_bridged" in summary) == bridged, target
