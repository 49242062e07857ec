"""Joint presence calls: known tracks with dimmed, lost and one-off synapses, calibration."""
import numpy as np
import pandas as pd
import pytest

from pipeline.core.presence_hmm import neighbour_log_signal
from pipeline.stages.presence import (IMPUTE_SDS, call_presence, fit_presence, merge_fragments,
                                      split_at_gaps)

TAU = 2.0  # spread of the signal at positions without a synapse (snr units)


def _cell(states, rng, *, signal=None, detect_above=6.0):
    """A weights-stage table for one cell from a (tracks x sessions) 0/1 matrix of truth."""
    states = np.asarray(states)
    n, k = states.shape
    if signal is None:
        signal = np.exp(rng.normal(3.0, 0.6, n))[:, None] * np.ones(k)
    snr = states * signal + rng.normal(0, TAU, (n, k))
    pos = rng.uniform(0, 50, (n, 3)) * np.arange(1, n + 1)[:, None] / n * 10
    t = pd.DataFrame({
        "cell": "c1", "cell_type": "pyr", "synapse_id": np.repeat(np.arange(1, n + 1), k),
        "session": np.tile([f"s{i}" for i in range(k)], n), "day": np.tile(np.arange(k) * 4, n),
        "snr": snr.ravel(), "intensity": 100 * snr.ravel(), "in_view": 1,
        "detected": (snr > detect_above).astype(int).ravel(),
        "z_um": np.repeat(pos[:, 0], k), "y_um": np.repeat(pos[:, 1], k),
        "x_um": np.repeat(pos[:, 2], k), "truth": states.ravel()})
    return t


def _background(rng, n=80, k=6):
    """Tracks present throughout, with a few losses and births, as the bulk of a cell."""
    states = np.ones((n, k), int)
    for i in range(0, n, 10):
        cut = rng.integers(1, k)
        states[i, cut:] = 0           # lost
        states[i + 1, :cut] = 0       # born
    return states


def _p(table, sid):
    return table[table["synapse_id"] == sid].sort_values("day")["p_present"].to_numpy()


def test_a_synapse_dimmed_below_threshold_is_present_there():
    rng = np.random.default_rng(0)
    states = np.vstack([_background(rng), [1, 1, 1, 1, 1, 1]])
    t = _cell(states, rng)
    sid = len(states)
    row = (t["synapse_id"] == sid) & (t["session"] == "s3")
    t.loc[row, ["snr", "detected"]] = [3.0, 0]          # dim, missed by the detector
    t.loc[t["synapse_id"] == sid, "snr"] = np.where(row[t["synapse_id"] == sid], 3.0, 25.0)
    out, summary = call_presence(t.drop(columns="truth"))
    assert _p(out, sid)[3] > 0.5
    assert out.loc[(out["synapse_id"] == sid) & (out["session"] == "s3"), "present"].item() == 1
    assert summary["changed_to_present"] >= 1


#: the two-state model's settings (a lost synapse may return), and the grid model's (lost for
#: good, the default; with signal memory)
TWO_STATE = dict(lost_for_good=False)
SETTINGS = [TWO_STATE, dict(TWO_STATE, own_signal_reach=1), dict(TWO_STATE, dim_present=True),
            dict(signal_memory=True, lost_for_good=True), dict(lost_for_good=True)]


@pytest.mark.parametrize("settings", SETTINGS)
def test_a_synapse_truly_lost_stays_lost(settings):
    rng = np.random.default_rng(1)
    states = np.vstack([_background(rng), [1, 1, 1, 0, 0, 0]])
    t = _cell(states, rng, signal=np.full((len(states), 6), 20.0))
    out, _ = call_presence(t.drop(columns="truth"), **settings)
    p = _p(out, len(states))
    assert (p[:3] > 0.9).all() and (p[3:] < 0.1).all()


@pytest.mark.parametrize("settings", SETTINGS)
def test_a_faint_one_off_blob_is_not_made_a_synapse(settings):
    rng = np.random.default_rng(2)
    states = np.vstack([_background(rng), [0, 0, 0, 0, 0, 0]])
    t = _cell(states, rng)
    sid = len(states)
    blob = (t["synapse_id"] == sid) & (t["session"] == "s2")
    t.loc[blob, ["snr", "detected"]] = [5.0, 1]  # the detector fired on a noise peak
    t.loc[blob, "intensity"] = 500.0
    out, summary = call_presence(t.drop(columns="truth"), **settings)
    assert (_p(out, sid) < 0.5).all()
    assert out.loc[out["synapse_id"] == sid, "present_detected"].sum() == 1
    assert summary["changed_to_absent"] >= 1 and summary["never_present"] >= 1


def test_own_signal_keeps_a_dim_synapse_present_through_its_dimmest_session():
    """A dim synapse (6 noise SDs, in a cell whose synapses measure ~20) dips to 1.5 in one
    session.  Against the cell's log-normal the dip reads as absent (a false loss and a false
    birth); against its own neighbouring sessions (own_signal_reach=1) it stays present."""
    rng = np.random.default_rng(0)
    states = np.vstack([_background(rng), [1] * 6, [1, 1, 1, 0, 0, 0]])
    t = _cell(states, rng)
    sid, lost = len(states) - 1, len(states)
    t.loc[t["synapse_id"] == sid, "snr"] = [6.0, 6.0, 1.5, 6.0, 6.0, 6.0]
    # as dim, but lost: no neighbouring session vouches for it after the loss
    t.loc[t["synapse_id"] == lost, "snr"] = [6.0, 6.0, 6.0, 0.5, -1.0, 0.3]
    cell, _ = call_presence(t.drop(columns="truth"), **TWO_STATE)
    own, summary = call_presence(t.drop(columns="truth"), own_signal_reach=1, **TWO_STATE)
    assert _p(cell, sid)[2] < 0.5
    assert _p(own, sid)[2] > 0.75
    assert (own.loc[own["synapse_id"] == sid, "present"] == 1).all()
    p_lost = _p(own, lost)
    assert (p_lost[:3] > 0.9).all() and (p_lost[3:] < 0.1).all(), p_lost
    assert 0.15 <= summary["params"]["own_signal_sd"] < 0.3   # tracks of constant signal


def _dim_session_tracks(rng, dim_share, n=600, k=8, birth=0.06, loss=0.04):
    """Tracks from the two-state chain whose present sessions are, with chance ``dim_share``,
    dim: a signal drawn uniformly between 0 and 7.4 (the cell's median is 20, noise SD 2)."""
    states = np.zeros((n, k), int)
    states[:, 0] = rng.random(n) < 0.8
    for s in range(1, k):
        u = rng.random(n)
        states[:, s] = np.where(states[:, s - 1] == 1, u >= loss, u < birth)
    signal = np.exp(rng.normal(3.0, 0.5, n))[:, None] * np.exp(rng.normal(0, 0.15, (n, k)))
    dim = (rng.random((n, k)) < dim_share) & (states == 1)
    signal = np.where(dim, rng.uniform(0, np.exp(2.0), (n, k)), signal)
    return states, dim, states * signal + rng.normal(0, TAU, (n, k))


def test_dim_present_keeps_dim_sessions_of_present_synapses_and_its_rates():
    """6 % of present sessions dim (down to what an absent synapse measures): with the dim
    component their share is found and half the wrong calls go, and the loss and birth rates
    come out near the chain's instead of inflated by the dim sessions."""
    rng = np.random.default_rng(0)
    states, dim, snr = _dim_session_tracks(rng, 0.06)
    seen = np.ones(snr.shape, bool)
    plain = fit_presence(snr, seen, dim_present=False, **TWO_STATE)
    mixed = fit_presence(snr, seen, dim_present=True, **TWO_STATE)
    wrong = {name: int(((f["p_present"] >= 0.5) != (states == 1)).sum())
             for name, f in (("plain", plain), ("mixed", mixed))}
    assert wrong["mixed"] < 0.6 * wrong["plain"], wrong
    assert ((mixed["p_present"] < 0.5) & dim).sum() < 0.5 * ((plain["p_present"] < 0.5) & dim).sum()
    assert 0.025 <= mixed["params"]["dim"] <= 0.08
    assert mixed["params"]["loss"] == pytest.approx(0.04, abs=0.01)
    assert mixed["params"]["birth"] == pytest.approx(0.06, abs=0.015)
    assert plain["params"]["loss"] > 0.055          # what the dim sessions did without it


def test_dim_present_finds_no_dim_share_where_there_is_none():
    rng = np.random.default_rng(1)
    states, _, snr = _dim_session_tracks(rng, 0.0)
    seen = np.ones(snr.shape, bool)
    plain = fit_presence(snr, seen, dim_present=False, **TWO_STATE)
    mixed = fit_presence(snr, seen, dim_present=True, **TWO_STATE)
    assert mixed["params"]["dim"] < 0.005
    changed = ((plain["p_present"] >= 0.5) != (mixed["p_present"] >= 0.5)).sum()
    assert changed <= 3


def test_neighbour_log_signal_leaves_the_session_itself_out():
    log_s = np.log([[10.0, 20.0, 40.0, 80.0]])
    clear = np.array([[True, True, True, False]])
    near, k = neighbour_log_signal(log_s, clear, reach=1)
    np.testing.assert_allclose(np.exp(near), [[20.0, 20.0, 20.0, 40.0]])
    np.testing.assert_array_equal(k, [[1, 2, 1, 1]])
    near, k = neighbour_log_signal(log_s, clear, reach=2)
    np.testing.assert_allclose(np.exp(near[0, :2]), [np.sqrt(800.0), np.sqrt(400.0)])
    np.testing.assert_array_equal(k, [[2, 2, 2, 2]])


def test_posterior_probabilities_are_calibrated():
    """Tracks drawn from the model: a two-state chain, and dim signals drawn afresh in each
    session (the model does not use a synapse's brightness in its other sessions), so that
    posteriors spread over (0, 1)."""
    rng = np.random.default_rng(3)
    n, k = 2500, 8
    birth, loss = 0.05, 0.08
    states = np.zeros((n, k), int)
    states[:, 0] = rng.random(n) < 0.7
    for s in range(1, k):
        u = rng.random(n)
        states[:, s] = np.where(states[:, s - 1] == 1, u >= loss, u < birth)
    signal = np.exp(rng.normal(1.3, 0.6, (n, k)))  # median 3.7 against noise SD 2
    snr = states * signal + rng.normal(0, TAU, (n, k))
    fit = fit_presence(snr, np.ones((n, k), bool))
    prm = fit["params"]
    assert prm["birth"] == pytest.approx(birth, abs=0.015)
    assert prm["loss"] == pytest.approx(loss, abs=0.015)
    assert prm["tau0"] == pytest.approx(TAU, rel=0.1)
    p, truth = fit["p_present"].ravel(), states.ravel()
    mid = (p > 0.1) & (p < 0.9)
    assert mid.sum() > 800  # the test exercises uncertain calls, not just easy ones
    for lo, hi in ((0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9)):
        sel = (p >= lo) & (p < hi)
        observed, expected = truth[sel].mean(), p[sel].mean()
        se = np.sqrt(expected * (1 - expected) / sel.sum())
        assert abs(observed - expected) < 3 * se + 0.02, (lo, hi, observed, expected)


def test_joint_calls_beat_per_session_detection_on_simulated_tracks():
    rng = np.random.default_rng(4)
    states = _background(rng, n=200, k=8)
    t = _cell(states, rng, signal=np.exp(rng.normal(2.3, 0.6, (200, 1))) * np.ones(8))
    out, _ = call_presence(t.drop(columns="truth"))
    truth = t.set_index(["synapse_id", "session"])["truth"]
    out = out.set_index(["synapse_id", "session"])
    truth = truth.reindex(out.index)

    def f1(call):
        tp = ((call == 1) & (truth == 1)).sum()
        return 2 * tp / ((call == 1).sum() + (truth == 1).sum())

    err_joint = (out["present"] != truth).mean()
    err_detect = (out["present_detected"] != truth).mean()
    # measured: 9.9 % of calls wrong vs 17.4 % for detection alone
    assert err_joint < 0.7 * err_detect
    assert f1(out["present"]) > f1(out["present_detected"])


def test_track_pieces_of_one_synapse_are_merged_but_neighbours_are_not():
    t = pd.DataFrame({
        "synapse_id": np.repeat([1, 2, 3], 4), "session": ["s0", "s1", "s2", "s3"] * 3,
        "day": [0, 4, 8, 12] * 3,
        "detected": [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
        "z_um": [5.0] * 4 + [5.1] * 4 + [5.0] * 4, "y_um": [10.0] * 4 + [10.2] * 4 + [10.6] * 4,
        "x_um": [3.0] * 12, "snr": np.arange(12.0)})
    merged, n = merge_fragments(t, max_distance_um=0.5)
    assert n == 1
    assert sorted(merged["synapse_id"].unique()) == [1, 3]
    one = merged[merged["synapse_id"] == 1].sort_values("day")
    assert one["detected"].tolist() == [1, 1, 1, 1] and one["track_id"].tolist() == [1, 1, 2, 2]


def test_a_merged_synapse_keeps_the_row_of_its_most_detected_piece_where_none_was_detected():
    # three pieces of one synapse; in s6 and s7 none was detected, and the weights stage
    # measured piece 3 (three detections, the most) as the punctum there: the other pieces'
    # rows hold the residual beside it (weights.distinct_puncta)
    det = {1: [1, 1, 0, 0, 0, 0, 0, 0], 2: [0, 0, 1, 0, 0, 0, 0, 0], 3: [0, 0, 0, 1, 1, 1, 0, 0]}
    snr = {1: [30, 31, 0, 0, 0, 0, 0.1, 0.2], 2: [0, 0, 29, 0, 0, 0, 0.3, 0.1],
           3: [0, 0, 0, 28, 27, 30, 25.0, 26.0]}
    t = pd.DataFrame({
        "synapse_id": np.repeat([1, 2, 3], 8), "session": [f"s{i}" for i in range(8)] * 3,
        "day": list(range(0, 32, 4)) * 3, "detected": det[1] + det[2] + det[3],
        "z_um": 5.0, "y_um": [10.0] * 8 + [10.1] * 8 + [10.3] * 8, "x_um": 3.0,
        "snr": snr[1] + snr[2] + snr[3]})
    merged, n = merge_fragments(t, max_distance_um=0.5)
    assert n == 2
    one = merged.sort_values("day")
    assert one["track_id"].tolist() == [1, 1, 2, 3, 3, 3, 3, 3]
    assert (one["snr"] > 20).all()


def test_split_at_gaps_is_the_published_convention():
    t = pd.DataFrame({"synapse_id": np.repeat([1, 2], 4), "day": [0, 4, 8, 12] * 2,
                      "present": [1, 1, 0, 1, 1, 0, 0, 0]})
    out = split_at_gaps(t)
    assert out["synapse_id"].nunique() == 3
    pres = out.pivot(index="synapse_id", columns="day", values="present")
    assert pres.loc[1].tolist() == [1, 1, 0, 0] and pres.loc[3].tolist() == [0, 0, 0, 1]
    assert pres.loc[2].tolist() == [1, 0, 0, 0]
    assert out.loc[out["synapse_id"] == 3, "track_id"].unique().tolist() == [1]


def test_detection_model_keeps_the_per_session_calls():
    rng = np.random.default_rng(5)
    t = _cell(_background(rng), rng).drop(columns="truth")
    out, summary = call_presence(t, model="detection")
    assert (out["present"] == ((t["detected"] == 1) & (t["intensity"] > 0)).astype(int)).all()
    assert summary["changed_to_present"] == summary["changed_to_absent"] == 0
    with pytest.raises(ValueError, match="presence model"):
        call_presence(t, model="magic")


def test_presence_settings_that_cannot_hold_together_are_named():
    from pipeline.core.errors import InputError
    from pipeline.params import PresenceParams, from_options

    for clash in ({"dim_present": True}, {"own_signal_reach": 1},
                  {"own_signal_reach": 1, "lost_for_good": False, "signal_memory": True}):
        with pytest.raises(InputError, match="lost_for_good: false"):
            from_options(PresenceParams, clash)
    with pytest.raises(InputError, match="gaps: split"):
        from_options(PresenceParams, {"gaps": "split"})
    # each refinement, and the published rule, with the two-state model under it
    for fine in ({"dim_present": True}, {"own_signal_reach": 1}, {"gaps": "split"}):
        from_options(PresenceParams, {**fine, "lost_for_good": False})


@pytest.mark.parametrize("settings", [TWO_STATE, {}, dict(signal_memory=True)])
def test_a_present_synapse_that_measures_nothing_gets_a_positive_flagged_weight(settings):
    # dim synapses (median snr 3.7 against noise SD 2): some present ones measure <= 0, or a
    # sliver above it (within one absent-state SD of its centre)
    rng = np.random.default_rng(6)
    states = _background(rng, n=300, k=8)
    t = _cell(states, rng, signal=np.exp(rng.normal(1.3, 0.6, (300, 8))))
    out, summary = call_presence(t.drop(columns="truth"), **settings)
    before = t.set_index(["synapse_id", "session"])[["intensity", "snr"]]
    key = pd.MultiIndex.from_frame(out[["synapse_id", "session"]])
    measured, snr = (before[c].reindex(key).to_numpy() for c in ("intensity", "snr"))
    present = out["present"].to_numpy() == 1
    sliver = snr <= summary["params"]["mu0"] + IMPUTE_SDS * summary["params"]["tau0"]
    filled = out["weight_imputed"].to_numpy() == 1
    assert summary["weights_imputed"] == filled.sum() > 0
    assert (filled == (present & ((measured <= 0) | sliver))).all()
    assert (filled & (measured > 0)).any()          # a sliver above 0 is no weight either
    assert (out.loc[out["present"] == 1, "intensity"] > 0).all()
    # the estimate is a dim signal, and every other measurement is left as it was
    assert (out["intensity"].to_numpy()[filled] < np.median(measured[measured > 0])).all()
    assert (out["intensity"].to_numpy()[~filled] == measured[~filled]).all()


def test_rows_outside_the_stack_get_no_call():
    """Not observed: `present` (and the per-session call) empty, never 0; p_present is the
    model's guess from the other sessions; the summary counts them per session."""
    rng = np.random.default_rng(7)
    t = _cell(_background(rng), rng).drop(columns="truth")
    gone = t["synapse_id"].isin([3, 4]) & t["session"].isin(["s0", "s1"])
    t.loc[gone, ["snr", "intensity"]] = np.nan
    t.loc[gone, "in_view"] = 0
    t["observed"] = t["in_view"]
    out, summary = call_presence(t)
    off = out[out["observed"] == 0]
    assert len(off) == 4 and off["present"].isna().all() and off["p_present"].notna().all()
    assert off["present_detected"].isna().all() and (off["presence_uncertain"] == 0).all()
    assert out.loc[out["observed"] == 1, "present"].notna().all()
    assert (out.loc[out["present"] == 1, "intensity"] > 0).all()
    assert summary["not_observed"]["s0"] == 2 and summary["not_observed"]["s1"] == 2


def test_an_offset_absent_state_is_learnt_from_null_measurements():
    """Absent synapses measure +1.5 on average (the dendrite under the aperture): without the
    null measurements the model takes that for faint presence (absent rows called present,
    an inflated birth rate); with them its absent state sits where the data put it.  (Dim
    present rows then need more evidence: on these tracks the share of wrong calls is not
    lower, 8.5 % vs 4.7 %, as 90 % of rows are present; the bench's turnover errors are.)"""
    rng = np.random.default_rng(7)
    n, k, offset = 300, 8, 1.5
    states = _background(rng, n=n, k=k)
    signal = np.exp(rng.normal(2.0, 0.6, (n, 1))) * np.ones(k)
    snr = states * signal + offset + rng.normal(0, TAU, (n, k))
    null = offset + rng.normal(0, TAU, 400)
    with_null = fit_presence(snr, np.ones((n, k), bool), null_snr=null)
    without = fit_presence(snr, np.ones((n, k), bool))
    assert with_null["params"]["mu0"] == pytest.approx(offset, abs=0.3)
    assert with_null["params"]["tau0"] == pytest.approx(TAU, rel=0.15)
    false_present = {name: ((f["p_present"] >= 0.5) & (states == 0)).sum()
                     for name, f in (("null", with_null), ("none", without))}
    assert false_present["null"] < 0.5 * false_present["none"], false_present
    births = ((states[:, 1:] == 1) & (states[:, :-1] == 0)).sum() / (states[:, :-1] == 0).sum()
    assert abs(with_null["params"]["birth"] - births) < abs(without["params"]["birth"] - births)


def test_a_synapse_detected_twice_in_one_session_is_merged_but_two_neighbours_are_not():
    # piece 1 (s0-s2) and piece 2 (s2-s5) are one synapse, split into two puncta in s2, where
    # the weights stage shared its light between them; pieces 3 and 4 are two synapses 0.3 um
    # apart, detected together in every session
    det = {1: [1, 1, 1, 0, 0, 0], 2: [0, 0, 1, 1, 1, 1], 3: [1] * 6, 4: [1] * 6}
    inten = {1: [300, 310, 140, 0, 0, 0], 2: [0, 0, 170, 320, 290, 305], 3: [200] * 6, 4: [250] * 6}
    t = pd.DataFrame({
        "synapse_id": np.repeat([1, 2, 3, 4], 6), "session": [f"s{i}" for i in range(6)] * 4,
        "day": list(range(0, 24, 4)) * 4, "detected": sum(det.values(), []),
        "z_um": 5.0, "y_um": [10.0] * 6 + [10.2] * 6 + [20.0] * 6 + [20.3] * 6, "x_um": 3.0,
        "intensity": np.array(sum(inten.values(), []), float)})
    t["snr"] = t["intensity"] / 10.0
    merged, n = merge_fragments(t, max_distance_um=0.5)
    assert n == 1
    assert sorted(merged["synapse_id"].unique()) == [2, 3, 4]     # the id of the longer piece
    one = merged[merged["synapse_id"] == 2].sort_values("day")
    assert one["detected"].tolist() == [1] * 6
    # the split session carries the synapse's whole light, in units of the same noise
    assert one["intensity"].tolist() == [300, 310, 310, 320, 290, 305]
    assert one["snr"].tolist() == pytest.approx([30, 31, 31, 32, 29, 30.5])


def test_a_repeat_session_on_the_same_day_shares_its_days_state():
    """Repeat imaging (two sessions on one day, for the noise estimate) is one time step of
    the HMM: calls there agree, and a synapse dim in one of the two is present in both."""
    rng = np.random.default_rng(5)
    states = np.vstack([_background(rng), [1, 1, 1, 1, 1, 1]])
    t = _cell(states, rng)
    sid = len(states)
    first = t[t["session"] == "s0"].assign(session="s0r")
    first["snr"] = first["snr"] + rng.normal(0, TAU, len(first))    # a new look, new noise
    first.loc[first["synapse_id"] == sid, ["snr", "detected"]] = [1.0, 0]   # dim in the repeat
    t = pd.concat([t, first], ignore_index=True)
    out, _ = call_presence(t.drop(columns="truth"))
    both = out[out["day"] == 0].pivot(index="synapse_id", columns="session", values="p_present")
    assert np.allclose(both["s0"], both["s0r"])
    assert both.loc[sid, "s0r"] > 0.5
    # the time steps are the days: the fit is the one of the same table without the repeat
    # but with the two looks' evidence combined; a synapse absent on day 0 stays absent there
    truth = t[t["session"] == "s0"].set_index("synapse_id")["truth"]
    called = (both["s0"] >= 0.5).astype(int)
    assert (called == truth.reindex(called.index)).mean() > 0.95


def test_a_session_whose_places_without_a_synapse_measure_high_is_named():
    """One session's background estimated 0.8 count per voxel low (what a whole-count median
    did on a dim 16-bit session): every place there measures +2.5 SDs, absent synapses look
    present.  The summary names that session, and no other."""
    rng = np.random.default_rng(11)
    k, shift = 6, 2.5 * TAU
    t = _cell(_background(rng, k=k), rng)
    sessions = np.repeat([f"s{i}" for i in range(k)], 90)
    null = rng.normal(0, TAU, len(sessions))
    high = t["session"] == "s3"
    t.loc[high, "snr"] += shift
    null[sessions == "s3"] += shift
    _, summary = call_presence(t, null_snr=null, null_sessions=sessions)
    named = [w for w in summary["warnings"] if "places without a synapse" in w]
    assert len(named) == 1 and "session s3:" in named[0], summary["warnings"]
    assert summary["absent_departure"]["s3"] == pytest.approx(2.5, abs=0.5)
    # the same cell without the shift: nothing named
    null[sessions == "s3"] -= shift
    t.loc[high, "snr"] -= shift
    _, calm = call_presence(t, null_snr=null, null_sessions=sessions)
    assert not [w for w in calm["warnings"] if "places without a synapse" in w]
    assert max(abs(d) for d in calm["absent_departure"].values()) < 0.5


def test_an_absent_state_that_was_not_measured_is_named():
    """Absent synapses on a bright shaft measure +6 (its light in their aperture).  With no
    null places measured (no dendrite seen, or a single-channel run before the weights stage
    measured them) the model assumes absent = 0 and calls the lost synapses present: the
    failure must reach the warnings.  Measured null places: the losses are found, no warning.
    A spines cell without its places beside the shaft is named too, as such (its absent state
    is then fitted to the spines' own rows)."""
    rng = np.random.default_rng(5)
    states = _background(rng, n=200, k=6)
    signal = np.exp(rng.normal(3.0, 0.5, (200, 1))) * np.ones(6)
    offset = 6.0
    table = _cell(states, rng, signal=signal + offset)
    table["snr"] = np.where(table["truth"] == 1, table["snr"], table["snr"] + offset)
    table["detected"] = (table["truth"] == 1).astype(int)
    lost = (table["truth"] == 0).to_numpy()
    null = offset + rng.normal(0, TAU, 300)
    calls, notes = {}, {}
    for name, nulls, target in (("unmeasured", [], "puncta"), ("measured", null, "puncta"),
                                ("spines", [], "spines"), ("spines measured", null, "spines")):
        out, summary = call_presence(table, null_snr=np.asarray(nulls), target=target)
        out = out.set_index(["synapse_id", "session"]).loc[
            list(zip(table["synapse_id"], table["session"]))]
        calls[name] = (out["present"].to_numpy()[lost] == 1).mean()
        notes[name] = [w for w in summary["warnings"] if "absent state was not measured" in w]
    assert calls["unmeasured"] > 0.5, calls                    # the failure: lost called present
    assert calls["measured"] < 0.1, calls
    assert len(notes["unmeasured"]) == 1 and "cell c1" in notes["unmeasured"][0]
    assert notes["measured"] == [] and notes["spines measured"] == []
    assert len(notes["spines"]) == 1 and "beside the shaft without a spine" in notes["spines"][0]
    assert "PSD-95" not in notes["spines"][0] and "cell c1" in notes["spines"][0]


def _bright_and_dim_cell(seed, *, places=2400, on_shaft=0.15):
    """Tracks of which a random half lie on a bright textured shaft, where an absent synapse
    measures with 2.5x the SD of the cell's dim parts, and null places of which ``on_shaft``
    lie there (most places lie off the shaft synapses crowd): (table, truth, bright, null
    snr, null sessions, null levels)."""
    rng = np.random.default_rng(seed)
    n, k = 240, 8
    states = _background(rng, n=n, k=k)
    bright = rng.random(n) < 0.5
    width = np.where(bright, 2.5, 1.0)[:, None]
    signal = np.exp(rng.normal(2.5, 0.5, (n, 1))) * np.ones(k)
    t = _cell(states, rng, signal=signal)
    t["snr"] = (states * signal + width * rng.normal(0, 1, (n, k))).ravel()
    t["intensity"] = 100 * t["snr"]
    t["morphology_level"] = np.repeat(np.where(bright, 2.5, 1.0), k)
    there = rng.random(places) < on_shaft
    levels = np.where(there, rng.uniform(2.2, 2.8, places), rng.uniform(0.8, 1.2, places))
    null = np.where(there, 2.5, 1.0) * rng.normal(0, 1, places)
    sessions = np.tile([f"s{i}" for i in range(k)], places // k + 1)[:places]
    return t, states, bright, signal, null, sessions, levels


def test_the_absent_state_widens_where_the_cell_is_bright_and_textured():
    """A bright textured shaft: places without a synapse there scatter 2.5x as widely as on
    the cell's dim parts (channel_departure's null places: SDs of 2.1-2.6 against 1.1).  With
    one absent width for the cell, absent synapses there are called present in their noisiest
    sessions (early births, late losses); with ``absent_by_brightness`` their absent state
    is as wide as the null places at their brightness show.  What it gives up is synapses
    too dim to tell from absence at such a place (true signal within 4 of its absent SDs)."""
    from pipeline.core.absent_width import absent_sd_factor

    false_present = {False: 0, True: 0}
    for seed in range(3):
        t, states, bright, signal, null, sessions, levels = _bright_and_dim_cell(seed)
        n, k = states.shape
        # the factor: 1 on the dim parts, 2.5 less the tolerance on the shaft (the largest of
        # the shaft's bins' estimates, a few hundred places each: 2.26-2.84 over ten draws),
        # 1 without a level or with too few places
        f = absent_sd_factor(np.array([1.0, 2.5, np.nan]), levels, null)
        assert f[0] == pytest.approx(1.0, abs=0.07) and f[1] == pytest.approx(2.4, rel=0.2)
        assert f[2] == 1.0 and np.all(absent_sd_factor([2.5], levels[:50], null[:50]) == 1.0)
        calls, wrong_dim = {}, {}
        for on in (False, True):
            out, summary = call_presence(t, null_snr=null, null_sessions=sessions,
                                         null_levels=levels, absent_by_brightness=on)
            assert summary["absent_sd_factor"]["largest"] == pytest.approx(f[1] if on else 1.0,
                                                                            abs=1e-3)
            out = out.sort_values(["synapse_id", "day"])
            calls[on] = out["present"].to_numpy().reshape(n, k)
            factor = out.groupby("synapse_id")["absent_sd_factor"].first().to_numpy()
            assert np.allclose(factor[~bright], 1.0, atol=0.07)
            assert np.allclose(factor[bright], f[1]) if on else np.all(factor == 1)
            false_present[on] += int(((calls[on] == 1) & (states == 0))[bright].sum())
            wrong_dim[on] = int((calls[on] != states)[~bright].sum())
        assert wrong_dim[True] <= wrong_dim[False], (seed, wrong_dim)   # dim parts: no worse
        given_up = (calls[False] == 1) & (calls[True] == 0) & (states == 1)
        assert not given_up[~bright].any()
        assert np.all(signal[given_up] < 4 * 2.5), signal[given_up]
    # 29 absent rows on the shaft called present without it, 8 with it
    assert false_present[True] <= false_present[False] / 3, false_present


def test_a_spines_cell_whose_calls_rest_mostly_on_undetected_rows_is_named():
    """``presence.warn_spines_undetected`` (0.25): a cell of spines where most rows called
    present were not detected (the detector found only the brightest) is named with its share;
    the same cell with every present spine detected is not, nor a cell of puncta with the
    same calls (the warning's evidence is from spines)."""
    rng = np.random.default_rng(3)
    states = _background(rng)
    hidden = _cell(states, rng, detect_above=40.0)        # most present rows undetected
    seen = _cell(states, rng, detect_above=6.0)
    _, spines = call_presence(hidden.drop(columns="truth"), target="spines")
    _, spines_seen = call_presence(seen.drop(columns="truth"), target="spines")
    _, puncta = call_presence(hidden.drop(columns="truth"), target="puncta")

    def named(summary):
        return [w for w in summary["warnings"] if "were not detected in that session" in w]

    assert spines["undetected_present_share"] > 0.25
    assert len(named(spines)) == 1 and named(spines)[0].startswith("cell c1: "), spines["warnings"]
    assert f"{100 * spines['undetected_present_share']:.0f} %" in named(spines)[0]
    assert spines_seen["undetected_present_share"] < 0.25 and not named(spines_seen)
    assert not named(puncta)
    _, off = call_presence(hidden.drop(columns="truth"), target="spines",
                           warn_spines_undetected=None)
    assert not named(off)
