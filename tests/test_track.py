import numpy as np
import pandas as pd
import pytest

from pipeline.stages.detect import detect_puncta
from pipeline.truth.evaluate import match_points, score_links
from pipeline.core.frames import transform_points
from pipeline.stages.register import register_session
from pipeline.stages.track import link_sessions

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


def test_link_confidence_is_lower_for_an_ambiguous_pair_than_for_an_isolated_one():
    rng = np.random.default_rng(3)
    isolated = np.column_stack([np.full(20, 5.0), np.arange(20) * 3.0, np.full(20, 10.0)])
    pair = np.array([[5.0, 70.0, 10.0], [5.0, 70.4, 10.0]])      # two tracks 0.4 um apart
    s0 = np.vstack([isolated, pair])
    # session 1: the isolated ones jittered, one punctum half-way between the pair
    s1 = np.vstack([isolated + rng.normal(0, 0.08, isolated.shape), [[5.0, 70.2, 10.0]]])
    out = link_sessions(_puncta_table([s0, s1]))
    s1_rows = out[out.session_index == 1]
    ambiguous = s1_rows[s1_rows.y_um == 70.2]["link_confidence"].item()
    iso = s1_rows[s1_rows.y_um != 70.2]["link_confidence"]
    assert ambiguous < 0.6
    assert iso.min() > 0.9 and ambiguous < iso.min()
    # a track's first punctum has no link and no confidence
    assert out[out.session_index == 0]["link_confidence"].isna().all()


def test_wrong_links_concentrate_at_low_confidence_in_a_dense_field():
    rng = np.random.default_rng(1)
    n = 1500                                          # ~0.4 synapses per um^3, 0.15 um jitter
    pts = rng.uniform([0, 0, 0], [10, 20, 20], (n, 3))
    s1 = pts + rng.normal(0, 0.15, pts.shape)
    table = pd.concat([pd.DataFrame(p, columns=["z_um", "y_um", "x_um"])
                       .assign(session_index=k, truth=np.arange(n))
                       for k, p in enumerate((pts, s1))], ignore_index=True)
    out = link_sessions(table, z_scale=1.0)
    first = out[out.session_index == 0].set_index("synapse_id")["truth"]
    links = out[(out.session_index == 1) & out["link_confidence"].notna()]
    right = first.reindex(links["synapse_id"]).to_numpy() == links["truth"].to_numpy()
    conf = links["link_confidence"].to_numpy()
    assert 0.95 < right.mean() < 1.0                 # some links are wrong: the test has teeth
    high, low = conf >= 0.9, conf < 0.6
    assert right[high].mean() >= 0.99
    assert (1 - right[low].mean()) >= 5 * (1 - right[high].mean() + 1e-3)
    assert conf.mean() <= right.mean() + 0.01       # not over-confident on average


def test_a_new_punctum_does_not_push_a_neighbour_onto_another_track():
    # tracks A (y=0) and B (y=0.9); next session A is missing, B's punctum is in place and a
    # new punctum appears 0.9 um beyond B.  Linking as many pairs as possible would give
    # A <- B's punctum and B <- the new one (two 0.9 um links); the right answer is B <- its
    # own punctum (0 um) and a new track.
    s0 = np.array([[5.0, 0.0, 0.0], [5.0, 0.9, 0.0]])
    s1 = np.array([[5.0, 0.9, 0.0], [5.0, 1.8, 0.0]])
    out = link_sessions(_puncta_table([s0, s1]), max_distance_um=1.0)
    b0 = out[(out.session_index == 0) & (out.y_um == 0.9)]["synapse_id"].item()
    b1 = out[(out.session_index == 1) & (out.y_um == 0.9)]["synapse_id"].item()
    new = out[(out.session_index == 1) & (out.y_um == 1.8)]["synapse_id"].item()
    assert b1 == b0
    assert new not in set(out[out.session_index == 0]["synapse_id"])


def test_a_link_where_registration_is_uncertain_is_less_sure():
    from pipeline.stages.track import link_confidence

    d, rival = np.array([0.15, 0.15]), np.array([0.7, 0.7])
    conf = link_confidence(d, rival, gate_um=1.0, sigma_um=0.1, extra_sd_um=[0.05, 0.6])
    assert conf[0] > 0.95 and conf[1] < 0.75, conf
    # without an error estimate (NaN) the link keeps its confidence
    same = link_confidence(d, rival, gate_um=1.0, sigma_um=0.1, extra_sd_um=[np.nan, 0.0])
    assert same[0] == pytest.approx(same[1])


def _meta(session, shape=(34, 512, 512), voxel=(0.8, 0.09, 0.09)):
    return {"cell": "c1", "session": session, "shape_czyx": [2, *shape], "voxel_um": list(voxel)}


def test_implausible_numbers_of_detections_are_named_with_the_fix():
    from pipeline.stages.track import detection_counts

    metas = [_meta(f"s{k}") for k in range(5)]       # 34x512x512 at 0.8/0.09 um: 56,400 um3
    ok = detection_counts([100, 110, 95, 105, 120], metas)
    assert ok["warnings"] == [] and not any(r["implausible"] for r in ok["sessions"])
    out = detection_counts([100, 110, 95, 105, 400], metas)     # one session 3.8x its cell's
    assert [r["implausible"] for r in out["sessions"]] == [False] * 4 + [True]
    (w,) = out["warnings"]
    assert "session s4: 400 detections" in w and "3.8x the cell's median of 105" in w
    assert "detect.threshold" in w and "registration failed" not in w
    # the real single-channel case: 13,000 detections in every session, 22 M voxels
    big = [_meta(f"s{k}", shape=(40, 740, 740), voxel=(1.0, 0.1, 0.1)) for k in range(3)]
    out = detection_counts([13000, 12800, 13300], big, unreliable=["s1", "s2"])
    assert len(out["warnings"]) == 3                             # every session, by density
    assert all("per 1000 um3 (bound 20" in w for w in out["warnings"])
    assert "registration failed" in out["warnings"][1] and "registration failed" not in out["warnings"][0]
    # an empty session (no signal, the wrong channel) is named too
    (w,) = detection_counts([100, 110, 0, 105, 120], metas)["warnings"]
    assert "session s2: 0 detections" in w and "implausibly few" in w
    # two sessions: no median to depart from, only the density bound applies
    assert detection_counts([100, 400], metas[:2])["warnings"] == []


def test_sessions_whose_threshold_rose_on_a_textured_bright_shaft_are_named_in_one_warning():
    from pipeline.stages.track import detection_counts, session_texture

    metas = [_meta(f"s{k}") for k in range(5)]
    counts = [100, 110, 95, 105, 120]
    # a smooth shaft's factors (PV_typical's sessions read 1.03-1.17) and one unmeasured
    smooth = detection_counts(counts, metas, textures=[1.0, 1.17, np.nan, 1.1, 1.03])
    assert smooth["warnings"] == []
    assert [r["texture_factor"] for r in smooth["sessions"]] == [1.0, 1.17, None, 1.1, 1.03]
    out = detection_counts(counts, metas, textures=[1.1, 2.4, 1.5, np.nan, 1.2])
    (w,) = out["warnings"]
    assert "cell c1: a textured bright shaft in 2 of 4 sessions (s1 2.4x, s2 1.5x" in w
    assert "most in s1" in w and "track.warn_texture_factor" in w
    assert detection_counts(counts, metas, textures=[1.1, 2.4, 1.5, np.nan, 1.2],
                            warn_texture=None)["warnings"] == []
    # from a detect table: the session's column; a table without it (or empty) is unmeasured
    assert session_texture(pd.DataFrame({"snr": [9.0, 5.0], "texture_factor": [1.8, 1.8]})) == 1.8
    assert np.isnan(session_texture(pd.DataFrame({"snr": [9.0]})))
    assert np.isnan(session_texture(pd.DataFrame(columns=["snr", "texture_factor"])))


def test_a_synapse_does_not_take_a_missed_neighbours_track():
    # A (y=0) is imaged in every session but missed in sessions 3 and 6; B (y=0.45) appears
    # in session 3.  Linked in order, B takes A's open track in session 3 (its nearest) and
    # A's punctum starts a new one when it is back: the two alternate.  Re-linked against the
    # tracks' positions in the other sessions, each keeps one id and A's track has its gaps.
    a, b = np.array([[5.0, 0.0, 0.0]]), np.array([[5.0, 0.45, 0.0]])
    present = {"A": [0, 1, 2, 4, 5, 7], "B": [3, 4, 5, 6, 7]}
    sessions = [np.vstack([p for name, p in (("A", a), ("B", b)) if s in present[name]])
                for s in range(8)]
    table = _puncta_table(sessions)
    table["truth"] = np.where(table["y_um"] < 0.2, "A", "B")

    def ids_of(out):
        return {name: sorted(set(out.loc[out.truth == name, "synapse_id"])) for name in "AB"}

    in_order = ids_of(link_sessions(table, relink_passes=0))
    assert len(in_order["A"]) > 1 or len(in_order["B"]) > 1       # the failure it fixes
    out = link_sessions(table)
    ids = ids_of(out)
    assert len(ids["A"]) == 1 and len(ids["B"]) == 1 and ids["A"] != ids["B"], ids
    a_rows = out[out.truth == "A"]
    assert sorted(a_rows["session_index"]) == present["A"]
    # ids are numbered by first appearance; link distances are to the track's earlier mean
    assert ids["A"] == [1] and ids["B"] == [2]
    b_rows = out[out.truth == "B"].sort_values("session_index")
    assert np.isnan(b_rows["link_distance_um"].iloc[0])
    assert np.allclose(b_rows["link_distance_um"].iloc[1:], 0.0)


def test_relinking_keeps_gaps_within_max_gap():
    # A at y=0 in sessions 0-1 and 4-5 (a 2-session gap), B at y=3 in every session.  With
    # max_gap=1 no track may span A's gap, whatever the re-linking does.
    a, b = np.array([[5.0, 0.0, 0.0]]), np.array([[5.0, 3.0, 0.0]])
    sessions = [np.vstack([a, b]), np.vstack([a, b]), b, b, np.vstack([a, b]), np.vstack([a, b])]
    out = link_sessions(_puncta_table(sessions), max_gap=1)
    a_ids = out[out.y_um == 0.0].sort_values("session_index")["synapse_id"].to_numpy()
    assert a_ids[0] == a_ids[1] and a_ids[2] == a_ids[3] and a_ids[0] != a_ids[2]
    assert out[out.y_um == 3.0]["synapse_id"].nunique() == 1


def test_a_lost_synapse_and_a_neighbour_born_beside_it_are_two_tracks():
    # A at y=5.0 in sessions 0-2, lost; B born 0.8 um away after a missed session (3): gap
    # closing joins them.  C is missed in session 3 too and reappears where it was (0.1 um
    # localisation jitter).  With max_gap_jump_um the track splits at A's gap, not at C's.
    rng = np.random.default_rng(1)
    a, b, c = np.array([5.0, 5.0, 5.0]), np.array([5.0, 5.8, 5.0]), np.array([5.0, 10.0, 5.0])
    here = [a] * 3 + [None] + [b] * 4
    sessions = [np.empty((0, 3)) if s is None else np.vstack([s, c + rng.normal(0, 0.1, 3)])
                for s in here]
    table = _puncta_table(sessions)
    joined = link_sessions(table, max_gap=1, max_jump_sd=None)
    split = link_sessions(table, max_gap=1, max_gap_jump_um=0.6, max_jump_sd=None)

    def runs(out, y):
        rows = out[(out.y_um - y).abs() < 0.5]
        return sorted(rows.groupby("synapse_id")["session_index"].apply(tuple))

    assert runs(joined, 5.4) == [(0, 1, 2, 4, 5, 6, 7)]          # one track holds A and B
    assert runs(split, 5.4) == [(0, 1, 2), (4, 5, 6, 7)]
    assert runs(split, 10.0) == [(0, 1, 2, 4, 5, 6, 7)]          # C keeps its id across its gap


def test_linking_10000_puncta_per_session_allocates_a_few_megabytes():
    # a dense puncta x tracks matrix would be 10,000 x 10,000 x 8 bytes = 800 MB per session;
    # pairs within the gate grow with the number of puncta
    import tracemalloc

    rng = np.random.default_rng(4)
    pts = rng.uniform([0, 0, 0], [30, 70, 70], (10_000, 3))
    table = _puncta_table([pts + rng.normal(0, 0.1, pts.shape) for _ in range(2)])
    tracemalloc.start()
    out = link_sessions(table)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, f"{peak / 1e6:.0f} MB"
    # and the links are right: ~0.04 puncta per um3 with 0.1 um jitter
    ids = out["synapse_id"].to_numpy().reshape(2, -1)
    assert (ids[0] == ids[1]).mean() > 0.99


def test_a_neighbour_that_takes_a_lost_synapses_track_starts_its_own():
    # A at y=5.0 in sessions 0-3, lost; B born 0.8 um away in session 4, within the gate, so
    # it continues A's track (no session is missed: max_gap_jump_um cannot see it).  C is
    # re-measured with 0.05 um localisation jitter and one 0.25 um outlier.  With max_jump_sd
    # the track splits where B takes over, and C keeps one track.
    rng = np.random.default_rng(2)
    a, b, c = np.array([5.0, 5.0, 5.0]), np.array([5.0, 5.8, 5.0]), np.array([5.0, 10.0, 5.0])
    sessions = []
    for k in range(8):
        c_k = c + rng.normal(0, 0.05, 3) + (np.array([0.0, 0.25, 0.0]) if k == 5 else 0.0)
        sessions.append(np.vstack([a if k < 4 else b, c_k]))
    table = _puncta_table(sessions)

    def runs(out, y):
        rows = out[(out.y_um - y).abs() < 0.5]
        return sorted(rows.groupby("synapse_id")["session_index"].apply(tuple))

    joined = link_sessions(table, max_jump_sd=None)
    assert runs(joined, 5.4) == [tuple(range(8))]
    split = link_sessions(table, max_jump_sd=6)
    assert runs(split, 5.4) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert runs(split, 10.0) == [tuple(range(8))]
    # B's links after the split are measured to B's own puncta, not to A's
    b_rows = split[(split.y_um == 5.8) & (split.session_index > 4)]
    assert np.allclose(b_rows["link_distance_um"], 0.0)


def test_a_jump_where_registration_is_uncertain_is_not_split():
    # the same 0.8 um jump among 10 synapses re-measured with 0.05 um jitter (which set the
    # cell's link width), but the register stage puts its error at A/B's place at 0.3 um:
    # 0.8 um is then under 3 SDs (sqrt(0.05^2 + 0.3^2) = 0.30 um), within one synapse's scatter
    rng = np.random.default_rng(3)
    a, b = np.array([5.0, 5.0, 5.0]), np.array([5.0, 5.8, 5.0])
    others = np.stack([np.full(10, 5.0), 10.0 + 2.0 * np.arange(10), np.full(10, 5.0)], -1)
    table = _puncta_table([np.vstack([a if k < 4 else b, others + rng.normal(0, 0.05, (10, 3))])
                           for k in range(8)])
    near_ab = (table.y_um < 7).to_numpy()

    def ab_tracks(error_at_ab):
        error = np.where(near_ab, error_at_ab, 0.0)
        out = link_sessions(table.assign(registration_error_um=error), max_jump_sd=6)
        assert out.loc[~near_ab, "synapse_id"].nunique() == 10
        return out.loc[near_ab, "synapse_id"].nunique()

    assert ab_tracks(0.0) == 2
    assert ab_tracks(0.3) == 1


def test_the_track_command_names_a_textured_session_and_the_report_reads_it(tmp_path):
    """The detect tables' ``texture_factor`` reaches ``track/<cell>/detections.json`` through
    ``python -m pipeline track``, and from there the warnings the run's summary and the
    report gather (:func:`pipeline.review.report.detection_warnings`)."""
    import json

    from pipeline.cli import main
    from pipeline.contract import Layout
    from pipeline.review.report import detection_warnings

    results = tmp_path / "results"
    layout = Layout(results)
    rng = np.random.default_rng(0)
    places = rng.uniform([5, 50, 50], [25, 450, 450], (6, 3))
    args = {"--puncta": [], "--transforms": [], "--meta": []}
    for k, texture in enumerate((1.1, 2.2, 1.0)):
        p = pd.DataFrame(places + rng.normal(0, 0.3, places.shape), columns=["z", "y", "x"])
        for ax, sp in zip("zyx", (0.8, 0.09, 0.09)):
            p[f"{ax}_um"] = p[ax] * sp
        p["snr"], p["intensity"], p["texture_factor"] = 20.0, 500.0, texture
        files = {"--puncta": tmp_path / f"s{k}.csv", "--transforms": tmp_path / f"s{k}_reg.json",
                 "--meta": tmp_path / f"s{k}.json"}
        p.to_csv(files["--puncta"], index=False)
        files["--transforms"].write_text(json.dumps({"matrix": np.eye(4).tolist(),
                                                     "reliable": True}))
        files["--meta"].write_text(json.dumps({**_meta(f"s{k}"), "day": 4 * k}))
        for flag, path in files.items():
            args[flag].append(str(path))
    out = layout.path("track_detections", cell="c1")
    out.parent.mkdir(parents=True)
    argv = ["track", "--out", str(tmp_path / "tracks.csv"), "--detections-out", str(out)]
    for flag, paths in args.items():
        argv += [flag, *paths]
    assert main(argv) == 0
    sessions = json.loads(out.read_text())["sessions"]
    assert [s["texture_factor"] for s in sessions] == [1.1, 2.2, 1.0]
    (w,) = detection_warnings(results)
    assert w.startswith("cell c1: a textured bright shaft in 1 of 3 sessions (s1 2.2x")


def test_sessions_with_a_bright_shaft_imaged_alone_are_named_in_one_warning():
    from pipeline.stages.track import detection_counts, session_texture

    metas = [_meta(f"s{k}") for k in range(4)]
    counts = [100, 110, 95, 105]
    dim = detection_counts(counts, metas, shaft_snrs=[1.0, 1.1, np.nan, 0.9])
    assert dim["warnings"] == []
    assert [r["shaft_snr"] for r in dim["sessions"]] == [1.0, 1.1, None, 0.9]
    # make bench's PSD-95-alone cells read 1.5 (pyramidal) and 1.9-2.4 (PV, its puncta crowded
    # along the shaft), its bright-shaft cell 4.3
    (w,) = detection_counts(counts, metas, shaft_snrs=[2.4, 4.3, 3.0, np.nan])["warnings"]
    assert "cell c1: a bright shaft in 2 of 3 sessions" in w and "(s1 4.3, s2 3.0 noise SDs" in w
    assert "most in s1" in w and "track.warn_shaft_snr" in w and "bright_shaft.py" in w
    assert detection_counts(counts, metas, shaft_snrs=[2.4, 4.3, 3.0, np.nan],
                            warn_shaft=None)["warnings"] == []
    table = pd.DataFrame({"snr": [9.0], "shaft_snr": [3.5], "texture_factor": [np.nan]})
    assert session_texture(table, "shaft_snr") == 3.5 and np.isnan(session_texture(table))


def test_the_tracks_carry_each_detections_size_for_the_weights_stage():
    """The weights stage gives each synapse a template its own size from the tracks table
    (``weights.own_size``): track_cell copies each detection's ``size_um``; a detect table
    without the column (an older run's) gives NaN, the typical size."""
    from pipeline.stages.track import track_cell

    identity = {"matrix": np.eye(4).tolist(), "reliable": True}
    metas = [{"cell": "c1", "session": f"s{k}", "day": 4.0 * k} for k in range(2)]

    def puncta(sizes):
        pos = np.array([[5.0, 10.0, 10.0], [5.0, 30.0, 30.0]])
        table = pd.DataFrame({"z": pos[:, 0], "y": pos[:, 1], "x": pos[:, 2],
                              "z_um": pos[:, 0] * 0.8, "y_um": pos[:, 1] * 0.1,
                              "x_um": pos[:, 2] * 0.1, "snr": 20.0, "intensity": 1000.0})
        return table if sizes is None else table.assign(size_um=sizes)

    tracks, _ = track_cell([puncta([0.5, 0.8]), puncta([0.55, 0.75])], [identity] * 2, metas)
    got = tracks.sort_values(["session", "y"])["size_um"].to_numpy()
    np.testing.assert_allclose(got, [0.5, 0.8, 0.55, 0.75])
    assert tracks.groupby("synapse_id").size().tolist() == [2, 2]
    older, _ = track_cell([puncta(None), puncta(None)], [identity] * 2, metas)
    assert older["size_um"].isna().all()
