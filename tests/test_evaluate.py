"""The scorer itself: a perfect result scores 1.0 (or zero error), a wrong one does not."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.truth.evaluate import (evaluate_results, match_points, registration_error_um,
                               score_detection, score_links, turnover_error_pp,
                               wrong_links)

from conftest import ROOT

SAMPLE = ROOT / "data_sample"
SPACING = np.array([0.8, 0.0887, 0.0887])


def test_match_points_gate_scales_z_by_psf_anisotropy():
    a = np.array([[0.0, 0.0, 0.0]])
    assert len(match_points(a, a + [2.0, 0.0, 0.0])[0]) == 1   # 2 um in z = 0.4 lateral-equivalent
    assert len(match_points(a, a + [0.0, 0.7, 0.0])[0]) == 0   # 0.7 um lateral > 0.6 gate
    assert len(match_points(a, np.empty((0, 3)))[0]) == 0


def test_matching_is_one_to_one():
    a = np.array([[0.0, 0.0, 0.0]])
    b = np.array([[0.0, 0.1, 0.0], [0.0, -0.1, 0.0]])
    ia, ib = match_points(a, b)
    assert len(ia) == 1


def test_detection_perfect_and_shifted():
    pts = np.array([[5.0, 10.0, 10.0], [6.0, 40.0, 12.0], [7.0, 20.0, 50.0]])
    assert score_detection(pts, pts, SPACING)["f1"] == 1.0
    shifted = pts + [0, 0.8 / SPACING[1], 0]  # 0.8 um lateral
    assert score_detection(shifted, pts, SPACING)["f1"] == 0
    half = score_detection(pts[:2], pts, SPACING)
    assert half["precision"] == 1.0 and half["recall"] == pytest.approx(2 / 3)


def test_registration_error_is_the_residual_shift():
    pts = np.random.default_rng(0).uniform(0, 20, (10, 3))
    m = np.eye(4)
    assert registration_error_um(m, pts, pts).max() == 0
    m[:3, 3] = [0.0, 0.3, 0.4]
    np.testing.assert_allclose(registration_error_um(m, pts, pts), 0.5)


def _tracks(ids_per_session):
    rows = [{"synapse_id": sid, "session_index": k, "session": f"s{k}"}
            for k, ids in enumerate(ids_per_session) for sid in ids]
    return pd.DataFrame(rows)


def test_links_perfect_and_swapped():
    tr = _tracks([[1, 2], [1, 2], [1, 2]])
    true_id = tr["synapse_id"].to_numpy()
    true_links = {(1, 0), (2, 0), (1, 1), (2, 1)}
    assert score_links(tr, true_id, true_links)["f1"] == 1.0
    swapped = tr.copy()
    swapped.loc[swapped.session_index == 1, "synapse_id"] = [2, 1]
    s = score_links(swapped, true_id, true_links)
    assert s["precision"] == 0 and s["recall"] == 0
    assert wrong_links(tr, true_id) == {"links_wrong_false_end": 0, "links_wrong_swapped": 0}
    assert wrong_links(swapped, true_id) == {"links_wrong_false_end": 0, "links_wrong_swapped": 4}
    # a false detection (true id -1) linked in sessions 1 and 2: both its links have that end
    false_end = true_id.copy()
    false_end[tr.index[(tr.synapse_id == 2) & (tr.session_index == 1)]] = -1
    assert wrong_links(tr, false_end) == {"links_wrong_false_end": 2, "links_wrong_swapped": 0}


def _perfect_results(tmp_path):
    """A results folder that reproduces data_sample's truth exactly."""
    truth = pd.read_csv(SAMPLE / "truth" / "synapses.csv")
    transforms = json.loads((SAMPLE / "truth" / "transforms.json").read_text())["cells"]
    res = tmp_path / "results"
    for cell, tc in truth.groupby("cell"):
        sessions = list(tc.sort_values("day")["session"].drop_duplicates())
        frames = []
        for k, sess in enumerate(sessions):
            p = tc[(tc.session == sess) & (tc.present == 1)]
            (res / "detect" / cell).mkdir(parents=True, exist_ok=True)
            (res / "register" / cell).mkdir(parents=True, exist_ok=True)
            p[["z", "y", "x"]].to_csv(res / "detect" / cell / f"{sess}.csv", index=False)
            (res / "register" / cell / f"{sess}.json").write_text(
                json.dumps({"matrix": transforms[cell][sess]["matrix"]}))
            frames.append(p.assign(session_index=k))
        (res / "track" / cell).mkdir(parents=True, exist_ok=True)
        pd.concat(frames)[["synapse_id", "session", "session_index", "z", "y", "x"]].to_csv(
            res / "track" / cell / "tracks.csv", index=False)
    truth.to_csv(res / "synapses.csv", index=False)
    return res, truth


def test_perfect_result_scores_one(tmp_path):
    res, _ = _perfect_results(tmp_path)
    s = evaluate_results(SAMPLE, res)
    cells = s[~s.cell.str.startswith("type:")].pivot(index="cell", columns="metric", values="value")
    for m in ("detection_precision", "detection_recall", "detection_f1", "called_precision",
              "called_recall", "link_precision", "link_recall", "link_f1", "log_weight_r",
              "log_change_r"):
        assert np.allclose(cells[m], 1.0), m
    assert cells["registration_error_um_median"].max() < 1e-4
    assert np.allclose(cells[["added_abs_error_pp", "lost_abs_error_pp"]], 0)
    types = s[s.cell.str.startswith("type:")].set_index(["cell", "metric"])["value"]
    for ct in ("type:pyr", "type:PV"):
        assert types[(ct, "sigma_ours")] == pytest.approx(types[(ct, "sigma_truth_table")])
        assert types[(ct, "kesten_a_ours")] == pytest.approx(types[(ct, "kesten_a_truth_table")])


def test_rows_called_present_where_no_synapse_is_lower_the_called_precision(tmp_path):
    """The final table's rows called present are scored as detections: a lost synapse called
    present (survival's excess) is a false one there, while its detections stay right."""
    res, truth = _perfect_results(tmp_path)
    absent = truth["present"] == 0
    assert absent.sum() > 10
    # every synapse called present in every session (a small weight where it is absent)
    wrong = truth.assign(present=1, weight=truth["weight"].where(~absent, 0.1))
    wrong.to_csv(res / "synapses.csv", index=False)
    s = evaluate_results(SAMPLE, res)
    cells = s[~s.cell.str.startswith("type:")].pivot(index="cell", columns="metric", values="value")
    assert np.allclose(cells["detection_precision"], 1.0)
    assert np.allclose(cells["called_recall"], 1.0)
    expected = truth.groupby(["cell", "session"])["present"].mean().groupby("cell").mean()
    np.testing.assert_allclose(cells["called_precision"], expected.loc[cells.index], atol=1e-9)


def test_shifted_result_does_not_score_one(tmp_path):
    res, truth = _perfect_results(tmp_path)
    for f in (res / "detect").glob("*/*.csv"):
        d = pd.read_csv(f)
        d["y"] += 1.0 / SPACING[1]  # 1 um off: mostly unmatched (some land near a neighbour)
        d.to_csv(f, index=False)
    for f in (res / "register").glob("*/*.json"):
        m = np.array(json.loads(f.read_text())["matrix"])
        m[1, 3] += 0.5
        f.write_text(json.dumps({"matrix": m.tolist()}))
    s = evaluate_results(SAMPLE, res)
    cells = s[~s.cell.str.startswith("type:")].pivot(index="cell", columns="metric", values="value")
    assert (cells["detection_f1"] < 0.5).all()
    np.testing.assert_allclose(cells["registration_error_um_median"], 0.5, atol=1e-4)


def test_detections_far_from_every_synapse_score_zero(tmp_path):
    res, _ = _perfect_results(tmp_path)
    for f in (res / "detect").glob("*/*.csv"):
        d = pd.read_csv(f)
        d["z"] += 40.0  # 32 um deeper: beyond every true synapse
        d.to_csv(f, index=False)
    s = evaluate_results(SAMPLE, res)
    f1 = s[s.metric == "detection_f1"]["value"]
    assert (f1 == 0).all()


def test_turnover_error_counts_false_losses():
    truth = pd.DataFrame({"synapse_id": [1, 1, 2, 2], "session": ["s0", "s1"] * 2, "day": [0, 4] * 2,
                          "present": [1, 1, 1, 1]})
    perfect = _tracks([[1, 2], [1, 2]])
    assert turnover_error_pp(perfect, truth) == {"added_abs_error_pp": 0.0, "lost_abs_error_pp": 0.0}
    missed = _tracks([[1, 2], [1]])
    assert turnover_error_pp(missed, truth)["lost_abs_error_pp"] == pytest.approx(50.0)


def test_normalisation_error_sees_a_population_shift_that_median_ratio_ignores():
    from pipeline.truth.evaluate import normalisation_error_pct

    rng = np.random.default_rng(0)
    w = rng.lognormal(0, 0.8, 80)
    rows = []
    for k, (sess, bright) in enumerate((("s0", 1.0), ("s1", 1.6), ("s2", 0.7))):
        ids = np.arange(80) if sess != "s2" else np.arange(120)   # s2: 40 small newcomers
        ww = np.r_[w, rng.lognormal(np.log(0.2), 0.2, 40)][: len(ids)]
        rows.append(pd.DataFrame({"synapse_id": ids, "true_id": ids, "session": sess,
                                  "day": 4.0 * k, "present": 1, "intensity": 500 * bright * ww,
                                  "weight_true": ww}))
    res = pd.concat(rows, ignore_index=True)
    truth = res.rename(columns={"weight_true": "weight"})[["synapse_id", "session", "present", "weight"]]
    err = normalisation_error_pct(res.drop(columns="weight_true"), truth)
    assert err["median_ratio"] < 0.5, err              # brightness alone: recovered exactly
    assert err["percentile_40_60"] > 5, err            # the newcomers moved the percentile scale


def test_the_simulator_makes_close_pairs_of_independent_synapses():
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    sim = simulate_cell(SimulationParams(cell_type="PV", seed=808, n_sessions=2,
                                         shape=(34, 384, 384), close_pair_fraction=0.14))
    t = sim.truth[sim.truth.session == "s00"].set_index("synapse_id")
    members = t[t.partner_id > 0]
    assert 0.10 <= len(members) / len(t) <= 0.16
    assert (members.loc[members.partner_id, "partner_id"].to_numpy()
            == members.index.to_numpy()).all()                  # mates of each other
    xyz = ["z_um", "y_um", "x_um"]
    d = np.linalg.norm(members[xyz].to_numpy() - members.loc[members.partner_id, xyz].to_numpy(),
                       axis=1)
    assert d.min() >= 0.3 - 1e-9 and d.max() <= 0.4 + 1e-9
    assert "partner_id" not in simulate_cell(SimulationParams(
        cell_type="PV", seed=808, n_sessions=2, shape=(34, 128, 128))).truth.columns


def test_pair_scores_count_a_link_to_the_other_member_as_an_alternation():
    from pipeline.truth.evaluate import pair_scores

    # synapses 1 and 2 are mates, 3 is alone; all present in sessions s0-s2
    truth = pd.DataFrame({"synapse_id": [1, 2, 3] * 3, "partner_id": [2, 1, 0] * 3,
                          "session": ["s0"] * 3 + ["s1"] * 3 + ["s2"] * 3, "present": 1})
    # track 10 is one spot for the pair (matched to 1, then 2, then 1); track 11 follows 3
    tracks = pd.DataFrame({"synapse_id": [10, 10, 10, 11, 11, 11],
                           "session_index": [0, 1, 2, 0, 1, 2],
                           "session": ["s0", "s1", "s2"] * 2, "true_id": [1, 2, 1, 3, 3, 3]})
    s = pair_scores(tracks, truth)
    assert s["pair_links"] == 2 and s["pair_link_precision"] == 0.0
    assert s["pair_unit_link_precision"] == 1.0       # one spot for both: its links are right
    assert s["pair_switch_tracks"] == 0
    # resolved apart (another track has the mate in each session): now a real alternation
    other = pd.DataFrame({"synapse_id": [12, 12, 12], "session_index": [0, 1, 2],
                          "session": ["s0", "s1", "s2"], "true_id": [2, 1, 2]})
    s = pair_scores(pd.concat([tracks, other], ignore_index=True), truth)
    assert s["pair_unit_link_precision"] == 0.0 and s["pair_switch_tracks"] == 2
    tracks.loc[1, "true_id"] = 1
    s = pair_scores(tracks, truth)
    assert s["pair_link_precision"] == 1.0 and s["pair_switch_tracks"] == 0
