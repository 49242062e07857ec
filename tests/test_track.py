import numpy as np
import pandas as pd

from pipeline.detect import detect_puncta
from pipeline.evaluate import match_points, score_links
from pipeline.register import register_session, transform_points
from pipeline.track import link_sessions

from conftest import spacing_of, truth_of


def _puncta_table(positions_per_session):
    frames = [pd.DataFrame(p, columns=["z_um", "y_um", "x_um"]).assign(session_index=k)
              for k, p in enumerate(positions_per_session)]
    return pd.concat(frames, ignore_index=True)


def test_jittered_synapses_keep_their_ids():
    rng = np.random.default_rng(0)
    # 60 synapses on a 1.5 um grid, re-measured 5 times with 0.1 um localisation noise
    grid = np.stack(np.meshgrid([5.0, 8.0], np.arange(10) * 1.5, np.arange(3) * 1.5,
                                indexing="ij"), -1).reshape(-1, 3)
    sessions = [grid + rng.normal(0, 0.1, grid.shape) for _ in range(5)]
    out = link_sessions(_puncta_table(sessions))
    ids = out["synapse_id"].to_numpy().reshape(5, -1)
    assert (ids == ids[0]).all()
    assert out["synapse_id"].nunique() == len(grid)


def test_a_punctum_missing_in_one_session_keeps_its_id_across_the_gap():
    a, b = np.array([[5.0, 2.0, 2.0]]), np.array([[5.0, 6.0, 2.0]])
    sessions = [np.vstack([a, b]), b, np.vstack([a + 0.05, b])]
    out = link_sessions(_puncta_table(sessions), max_gap=1)
    first = out[(out.session_index == 0) & (out.y_um == 2.0)]["synapse_id"].item()
    last = out[(out.session_index == 2) & (out.y_um < 3)]["synapse_id"].item()
    assert first == last
    # with no gap allowed the reappearing punctum becomes a new synapse
    out0 = link_sessions(_puncta_table(sessions), max_gap=0)
    assert out0[(out0.session_index == 2) & (out0.y_um < 3)]["synapse_id"].item() != first


def test_assignment_is_optimal_not_greedy():
    # greedy closest-pair-first links p (x=0.6) to B (x=1.0, d=0.4), leaving q (x=1.7) too far
    # from A (d=1.7 > gate); the optimal assignment links p->A (0.6) and q->B (0.7)
    s0 = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    s1 = np.array([[0.0, 0.0, 0.6], [0.0, 0.0, 1.7]])
    out = link_sessions(_puncta_table([s0, s1]), max_distance_um=1.0)
    ids0 = out[out.session_index == 0].sort_values("x_um")["synapse_id"].to_numpy()
    ids1 = out[out.session_index == 1].sort_values("x_um")["synapse_id"].to_numpy()
    assert list(ids0) == list(ids1)
    assert out["synapse_id"].nunique() == 2


def test_new_punctum_far_from_any_track_starts_a_new_synapse():
    s0 = np.array([[0.0, 0.0, 0.0]])
    s1 = np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 5.0]])
    out = link_sessions(_puncta_table([s0, s1]))
    assert out["synapse_id"].nunique() == 2


def test_links_on_simulated_sessions_are_correct(sim_pyr):
    sp = spacing_of(sim_pyr)
    frames = []
    dets = [detect_puncta(im[0].astype(np.float32), spacing=sp, morphology=im[1])
            for im in sim_pyr.images]
    for s, det in enumerate(dets):
        reg = register_session(sim_pyr.images[0].astype(np.float32),
                               sim_pyr.images[s].astype(np.float32), spacing=sp,
                               reference_points_um=dets[0][["z", "y", "x"]].to_numpy() * sp,
                               moving_points_um=det[["z", "y", "x"]].to_numpy() * sp)
        ref = transform_points(reg["matrix"], det[["z", "y", "x"]].to_numpy() * sp)
        tr = truth_of(sim_pyr, s)
        ia, ib = match_points(det[["z", "y", "x"]].to_numpy() * sp, tr[["z", "y", "x"]].to_numpy() * sp)
        true_id = np.full(len(det), -1)
        true_id[ia] = tr["synapse_id"].to_numpy()[ib]
        frames.append(pd.DataFrame(ref, columns=["z_um", "y_um", "x_um"]).assign(
            session_index=s, true_id=true_id))
    puncta = pd.concat(frames, ignore_index=True)
    tracks = link_sessions(puncta)
    seen = set(zip(puncta.loc[puncta.true_id >= 0, "true_id"], puncta.loc[puncta.true_id >= 0, "session_index"]))
    true_links = {(t, s) for t, s in seen if (t, s + 1) in seen}
    score = score_links(tracks, tracks["true_id"].to_numpy(), true_links)
    assert len(true_links) > 40
    assert score["precision"] > 0.9 and score["recall"] > 0.9, score
