"""Out of view is censored, never lost; statistics that refuse pseudo-replication (issue 21)."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.stats import run_stats
from pipeline.stats.compare import celltype_comparison
from pipeline.stats.survival import spells, survival, turnover, turnover_per_cell
from pipeline.stats.table import consecutive_pairs, prepare_table
from pipeline.truth.evaluate import censoring_comparison
from pipeline.truth.simulate import SimulationParams, simulate_cell


def _table(n_cells=1, n_syn=10, n_sessions=4, cell_type="pyr", animal=None, lost=()):
    """Every synapse present in every session, except (cell, synapse, session) in ``lost``."""
    rows, rng = [], np.random.default_rng(0)
    for c in range(n_cells):
        for s in range(1, n_syn + 1):
            for k in range(n_sessions):
                gone = any(c == lc and s == ls and k >= lk for lc, ls, lk in lost)
                rows.append({"cell": f"{cell_type}{c}", "cell_type": cell_type, "synapse_id": s,
                             "session": f"s{k}", "day": 4 * k, "present": 0 if gone else 1,
                             "weight": float(np.exp(rng.normal(0, 0.5))),
                             "animal": animal(c) if animal else ""})
    return pd.DataFrame(rows)


def _hide(table, session, ids):
    """Session ``session`` did not image synapses ``ids``: present empty, observed 0."""
    t = table.copy()
    hit = (t["session"] == session) & t["synapse_id"].isin(ids)
    t["present"] = t["present"].astype(float).mask(hit)
    t["observed"] = (~hit).astype(int)
    return t


# --------------------------------------------------------------------------- statistics
def test_unobserved_synapses_are_not_counted_lost():
    full = _table()
    cut = _hide(full, "s2", range(1, 6))          # half the synapses outside session 2's stack
    t = prepare_table(cut)
    assert t.loc[t["session"] == "s2", "observed"].sum() == 5
    surv = survival(t)
    assert np.allclose(surv["survival"], 1.0)
    assert surv.loc[surv["day"] == 8, "n_synapses"].item() == 5
    assert surv.loc[surv["day"] == 8, "n_not_observed"].item() == 5
    assert np.allclose(surv["km_survival"].dropna(), 1.0)
    turn = turnover(t)
    assert np.allclose(turn[["added", "lost"]], 0.0)
    # an interval counts a synapse only where it was observed at both ends
    per = turnover_per_cell(t)
    assert len(per) == 3
    assert len(consecutive_pairs(t)) == 10 * 3 - 2 * 5


def test_a_loss_seen_after_an_unobserved_session_is_still_a_loss():
    t = prepare_table(_hide(_table(lost=[(0, 1, 3)]), "s2", [1]))
    sp = spells(t).set_index("synapse_id")
    assert sp.loc[1, "event"] == 1 and sp.loc[1, "exit"] == 12
    # censored at its last observed session when never seen again
    t = prepare_table(_hide(_hide(_table(), "s2", [2]), "s3", [2]).assign(
        observed=lambda d: ((d["present"].notna())).astype(int)))
    sp = spells(t).set_index("synapse_id")
    assert sp.loc[2, "event"] == 0 and sp.loc[2, "exit"] == 4


def test_the_encoding_is_read_back_from_a_users_table(tmp_path):
    """`present` empty (or `observed` 0) is read as not observed by `pipeline stats`."""
    t = _table(n_cells=2)
    t["present"] = t["present"].astype(object)
    t.loc[(t["session"] == "s3") & (t["synapse_id"] <= 4), "present"] = ""   # empty cells
    path = tmp_path / "mine.csv"
    t.to_csv(path, index=False)
    out = tmp_path / "stats"
    res = subprocess.run([sys.executable, "-m", "pipeline", "stats", str(path), "--out",
                          str(out), "--n-boot", "20"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    surv = pd.read_csv(out / "survival.csv")
    last = surv[surv["day"] == 12].iloc[0]
    assert last["survival"] == 1.0 and last["n_synapses"] == 12 and last["n_not_observed"] == 8
    assert pd.read_csv(out / "turnover.csv")["lost"].max() == 0.0


# --------------------------------------------------------------------------- replication
def test_one_cell_per_type_gives_no_p_values_and_says_why(tmp_path):
    t = pd.concat([_table(cell_type="pyr", lost=[(0, s, 2) for s in range(1, 5)]),
                   _table(cell_type="PV")])
    res = run_stats(t, tmp_path, n_boot=50)
    comp = res["celltype_comparison"]
    assert len(comp) and comp["p"].isna().all() and comp["ci_low"].isna().all()
    assert comp["note"].str.contains("1 cell").all()
    assert comp["note"].str.contains("not independent").all()
    assert (comp["n_synapses_a"] == 10).all()


def _study(n_cells, animals_pyr, animals_pv):
    pyr = _table(n_cells=n_cells, cell_type="pyr", animal=animals_pyr,
                 lost=[(c, s, 2) for c in range(n_cells) for s in range(1, 5)])
    pv = _table(n_cells=n_cells, cell_type="PV", animal=animals_pv,
                lost=[(c, 1, 3) for c in range(n_cells)])
    return prepare_table(pd.concat([pyr, pv]))


def _comparison(t):
    return celltype_comparison(t, turnover_per_cell(t), {}).set_index("quantity")


def test_cells_of_one_animal_do_not_count_as_independent():
    one_each = _comparison(_study(4, lambda c: "mouseA", lambda c: "mouseB"))
    assert one_each["p"].isna().all()
    assert one_each["note"].str.contains("1 animal").all()
    assert (one_each["n_animals_a"] == 1).all() and (one_each["n_a"] == 4).all()
    # cells of three animals per type: Welch's t over the animals' means gives the p-values
    three = _comparison(_study(6, lambda c: f"m{c % 3}", lambda c: f"m{3 + c % 3}"))
    row = three.loc["turnover_dynamic_per_interval"]
    assert row["test"] == "Welch t over animal means" and row["note"] == ""
    assert row["n_animals_a"] == 3 and np.isfinite(row["p"])
    # without animals, the cells are the replicates (Welch over cells)
    cells = _comparison(_study(4, None, None)).loc["turnover_dynamic_per_interval"]
    assert cells["test"] == "Welch t over cells" and np.isfinite(cells["p"])
    assert cells["n_animals_a"] == 0


# --------------------------------------------------------------------------- simulator regime
def test_the_simulator_crops_a_session_to_fewer_planes():
    kw = dict(cell_type="pyr", shape=(34, 128, 128), n_sessions=3, seed=5)
    full = simulate_cell(SimulationParams(**kw))
    cut = simulate_cell(SimulationParams(**kw, crop_sessions=(1,), crop_depth_fraction=0.5))
    assert cut.images[1].shape[1] == 17 and cut.images[2].shape == full.images[2].shape
    assert np.array_equal(cut.images[2], full.images[2])    # the other sessions are unchanged
    assert np.array_equal(cut.images[1], full.images[1][:, :17])
    t = cut.truth[cut.truth["session"] == "s01"]
    assert 0 < t["in_view"].mean() < 1
    assert (t.loc[t["in_view"] == 0, "z"] > 16.5).all()


# --------------------------------------------------------------------------- through the images
@pytest.fixture(scope="module")
def cropped_run(tmp_path_factory, sample_run):
    """data_sample with session s02 of both cells imaged shallower: its top 12 of 20 planes
    (the synapses lie at planes 6-12: about half of them end up outside or at the face)."""
    import shutil

    import tifffile

    from conftest import SAMPLE

    tmp = tmp_path_factory.mktemp("cropped")
    data = tmp / "data"
    shutil.copytree(SAMPLE, data)
    for cell in ("pyr01", "PV02"):
        path = data / "images" / cell / "s02.tif"
        with tifffile.TiffFile(path) as tif:
            img = tif.asarray()                               # (z, c, y, x)
            z_um = tif.imagej_metadata["spacing"]
            xres = tif.pages[0].tags["XResolution"].value
        tifffile.imwrite(path, img[:12], imagej=True, resolution=(xres[0] / xres[1],) * 2,
                         metadata={"spacing": z_um, "unit": "um", "axes": "ZCYX"},
                         compression="zlib")
    # through `pipeline run` with nothing activated: a bare PATH, the venv's interpreter
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(data / "sessions.tsv"),
                          "--results", str(tmp / "results"), "--cores", "2"],
                         capture_output=True, text=True, cwd=tmp,
                         env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return tmp / "results", sample_run.results, res.stdout


def test_a_shallower_session_is_censored_not_lost(cropped_run):
    cut_dir, full_dir, _ = cropped_run
    cut = pd.read_csv(cut_dir / "synapses.csv")
    full = pd.read_csv(full_dir / "synapses.csv")
    s02 = cut[cut["session"] == "s02"]
    # a good share of each cell's synapses lies outside (or at the face), and none is present
    for cell, g in s02.groupby("cell"):
        assert 0.2 < (g["observed"] == 0).mean() < 0.95, cell
    assert s02.loc[s02["observed"] == 0, "present"].isna().all()
    assert cut.loc[cut["observed"] == 1, "present"].notna().all()
    comp = censoring_comparison(cut, full).set_index("cell_type")
    print(comp.T)
    # per cell type, the censored run agrees with the full-depth run on the same synapses ...
    assert (comp[["survival_difference", "added_difference", "lost_difference"]].abs()
            <= 0.03).all().all(), comp.T
    # ... where counting the unobserved as absent would have made them losses
    assert (comp["lost_unobserved_counted_absent"] > comp["lost_full_same_synapses"] + 0.03).all()
    # the report names the session and the censored counts
    report = (cut_dir / "report.html").read_text()
    assert "Not observed (censored)" in report
    assert "session s02" in report and "not observed" in report


def test_pipeline_run_shows_progress_and_a_summary_naming_the_flagged_session(cropped_run):
    cut_dir, _, stdout = cropped_run
    assert "  done    detect    pyr01 s02" in stdout
    tail = stdout.split("summary:")[1]
    assert "cells done: 2 (PV02, pyr01)" in tail
    assert "sessions flagged: 2" in tail and "session s02:" in tail and "not observed" in tail
    assert f"report:            {cut_dir / 'report.html'}" in tail
    assert (cut_dir / "logs").glob("run-*.log")


def test_pipeline_run_writes_the_report_when_the_only_cell_fails(tmp_path):
    """A one-cell sheet with a channel out of range: exit 1, the real cause in the summary and
    in report.html (not collect's 'expected at least one argument')."""
    from conftest import SAMPLE

    rows = (SAMPLE / "sessions.tsv").read_text().splitlines()
    head = rows[0].split("\t")
    lines = ["\t".join(head)]
    for row in rows[1:]:
        f = dict(zip(head, row.split("\t")))
        if f["cell"] == "pyr01":
            f["path"] = str(SAMPLE / f["path"])
            f["morphology_channel"] = "5"
            lines.append("\t".join(f[h] for h in head))
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(sheet), "--results",
                          str(tmp_path / "results")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1
    tail = res.stdout.split("summary:")[1]
    assert "cells failed: 1" in tail and "channel 5 requested but the stack has 2 channel(s)" in tail
    assert "expected at least one argument" not in res.stdout
    report = (tmp_path / "results" / "report.html").read_text()
    assert "channel 5 requested" in report


def test_a_cell_failing_after_its_checks_does_not_hold_back_the_others(tmp_path):
    """pyr01's curation row names a synapse it does not have: its curate job fails, and PV02
    still reaches synapses.csv, the statistics and the report, which name pyr01's cause."""
    import shutil

    from conftest import SAMPLE

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    (data / "curation.tsv").write_text("action\tcell\tsynapse_id\tsession\tother_synapse_id\t"
                                       "note\nreject\tpyr01\t999\t\t\t\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(data / "sessions.tsv"),
                          "--results", str(tmp_path / "results")], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 1
    assert "again without the failed cell(s) pyr01" in res.stdout
    tail = res.stdout.split("summary:")[1]
    assert "cells done: 1 (PV02)" in tail and "cells failed: 1" in tail
    assert "pyr01: curate: curation line 2 (reject synapse 999 of cell pyr01): no such synapse" in tail
    synapses = pd.read_csv(tmp_path / "results" / "synapses.csv")
    assert set(synapses["cell"]) == {"PV02"}
    assert (tmp_path / "results" / "stats" / "survival.csv").exists()
    report = (tmp_path / "results" / "report.html").read_text()
    assert "cell pyr01: curate: curation line 2" in report


def test_a_session_of_pure_noise_is_named_not_dropped_silently(tmp_path):
    """PV02's s03 replaced by noise of the same brightness: the run ends, and its summary and
    report name that session, with the reasons (no puncta, registration failed, censored)."""
    import shutil

    import numpy as np
    import tifffile

    from conftest import SAMPLE

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    path = data / "images" / "PV02" / "s03.tif"
    with tifffile.TiffFile(path) as tif:
        stack, ij = tif.asarray(), tif.imagej_metadata
        res = (tif.pages[0].tags["XResolution"].value, tif.pages[0].tags["YResolution"].value)
    rng = np.random.default_rng(0)
    noise = np.stack([rng.normal(stack[:, c].mean(), stack[:, c].std(), stack[:, c].shape)
                      for c in range(stack.shape[1])], axis=1).clip(0, 65535).astype(stack.dtype)
    tifffile.imwrite(path, noise, imagej=True, resolution=res, compression="zlib",
                     metadata={"spacing": ij["spacing"], "unit": "um", "axes": "ZCYX"})
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(data / "sessions.tsv"),
                          "--results", str(tmp_path / "results")], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    tail = res.stdout.split("summary:")[1]
    named = [ln for ln in tail.splitlines() if "cell PV02, session s03" in ln]
    assert any("0 detections" in ln and "implausibly few" in ln for ln in named), tail
    assert any("registration unreliable" in ln for ln in named), tail
    import re

    assert not re.search(r"cell PV02, session s0[01245]", tail), tail   # its siblings are not
    report = (tmp_path / "results" / "report.html").read_text()
    assert "Sessions left out of every statistic" in report and "session s03" in report


def _crossed(rng, *, difference=0.0, animal_sd=0.0, by_animal_sd=0.0, cells=2, animals=3):
    """Per-cell values of two types, ``cells`` of each in each animal: an animal's shift common
    to both types (SD ``animal_sd``), the difference b - a varying between animals
    (SD ``by_animal_sd``), each cell's own scatter SD 1."""
    shift = rng.normal(0, animal_sd, animals)
    extra = rng.normal(0, by_animal_sd, animals)
    animal = np.repeat(np.arange(animals), cells)
    xa = pd.Series(shift[animal] + rng.normal(0, 1, len(animal)),
                   index=[f"a{k}" for k in range(len(animal))])
    xb = pd.Series(shift[animal] + difference + extra[animal] + rng.normal(0, 1, len(animal)),
                   index=[f"b{k}" for k in range(len(animal))])
    of = pd.Series(np.r_[animal, animal].astype(str), index=[*xa.index, *xb.index])
    return xa, xb, of


def test_within_animals_is_the_randomised_block_analysis():
    """The within-animal difference, its CI and p are those of an ordinary least-squares fit
    of value ~ type + animal (statsmodels), and the interaction F test that of the nested
    models' comparison."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    from pipeline.stats.compare import _within_animals

    xa, xb, of = _crossed(np.random.default_rng(3), difference=1.0, animal_sd=2.0,
                          by_animal_sd=1.0)
    diff, lo, hi, stat, p, p_int, df = _within_animals(xa, xb, of, alpha=0.05, min_animals=2)
    d = pd.DataFrame({"y": pd.concat([xa, xb]), "t": np.r_[np.zeros(6), np.ones(6)],
                      "animal": of.reindex([*xa.index, *xb.index]).to_numpy()})
    fit = smf.ols("y ~ t + C(animal)", d).fit()
    assert df == fit.df_resid == 8
    assert np.isclose(diff, fit.params["t"]) and np.isclose(p, fit.pvalues["t"])
    assert np.allclose([lo, hi], fit.conf_int().loc["t"])
    # balanced: the difference is the mean of the animals' own differences
    assert np.isclose(diff, (xb.to_numpy() - xa.to_numpy()).mean())
    full = smf.ols("y ~ t * C(animal)", d).fit()
    assert np.isclose(p_int, anova_lm(fit, full)["Pr(>F)"].iloc[1])
    # one animal holding both types is no comparison within animals
    one = of.where(of == "0", "x" + of)
    one[xb.index] = of[xb.index].where(of[xb.index] == "0", "y" + of[xb.index])
    assert _within_animals(xa, xb, one, alpha=0.05, min_animals=2) is None


def test_within_animals_keeps_the_nominal_rate_and_sees_through_animal_shifts():
    """3 animals x 2 cells of each type.  Types alike, animals shifting both types (SD 2): the
    within-animal test calls a difference at the nominal 5 %; a difference of 2.5 cell SDs is
    found in most studies within animals and rarely over the animal means, whose spread the
    shifts swell.  Where the difference varies between animals the interaction test says so."""
    from pipeline.stats.compare import _over_animals, _within_animals

    rng = np.random.default_rng(11)
    animals_a = {str(k): [f"a{2 * k}", f"a{2 * k + 1}"] for k in range(3)}
    animals_b = {str(k): [f"b{2 * k}", f"b{2 * k + 1}"] for k in range(3)}
    reps = 2000
    null = [_within_animals(*_crossed(rng, animal_sd=2.0), alpha=0.05, min_animals=2)[4]
            for _ in range(reps)]
    assert 0.038 <= np.mean(np.array(null) < 0.05) <= 0.062
    found_within, found_means = 0, 0
    for _ in range(500):
        xa, xb, of = _crossed(rng, difference=2.5, animal_sd=2.0)
        found_within += _within_animals(xa, xb, of, alpha=0.05, min_animals=2)[4] < 0.05
        found_means += _over_animals(xa, xb, animals_a, animals_b, alpha=0.05)[4] < 0.05
    assert found_within / 500 > 0.85 and found_means / 500 < 0.4, (found_within, found_means)
    # the difference 0, +4, -4 cell SDs in the three animals: the interaction is seen
    varying = [_within_animals(*_crossed(rng, by_animal_sd=4.0), alpha=0.05,
                               min_animals=2)[5] for _ in range(200)]
    steady = [_within_animals(*_crossed(rng), alpha=0.05, min_animals=2)[5]
              for _ in range(200)]
    assert np.mean(np.array(varying) < 0.05) > 0.6
    assert np.mean(np.array(steady) < 0.05) < 0.1


def test_a_study_whose_animals_hold_both_types_is_compared_within_animals():
    crossed = _study(6, lambda c: f"m{c % 3}", lambda c: f"m{c % 3}")
    row = _comparison(crossed).loc["turnover_dynamic_per_interval"]
    assert row["test"].startswith("t within animals") and row["note"] == ""
    assert np.isfinite(row["p"]) and np.isfinite(row["p_type_by_animal"])
    means = celltype_comparison(crossed, turnover_per_cell(crossed), {},
                                type_test="animal_means").set_index("quantity")
    assert means.loc["turnover_dynamic_per_interval", "test"] == "Welch t over animal means"
    assert np.isnan(means.loc["turnover_dynamic_per_interval", "p_type_by_animal"])
    with pytest.raises(ValueError, match="type_test"):
        celltype_comparison(crossed, turnover_per_cell(crossed), {}, type_test="pooled")


def test_comparing_over_animals_keeps_the_nominal_false_positive_rate():
    """3 animals x 2 cells per type, both types alike: the test over animal means calls a
    difference no more often than the nominal 5 % (Welch's on 3 + 3 units is a little
    conservative, 3 %; a hierarchical bootstrap over 3 animals called one in 8 %)."""
    from pipeline.stats.compare import _over_animals
    from pipeline.stats.replication import animal_means

    rng = np.random.default_rng(0)
    animals_a = {f"a{k}": [f"c{2 * k}", f"c{2 * k + 1}"] for k in range(3)}
    animals_b = {f"b{k}": [f"d{2 * k}", f"d{2 * k + 1}"] for k in range(3)}
    values = pd.Series([1.0, 3.0, 5.0, np.nan, 2.0, 2.0], index=[f"c{k}" for k in range(6)])
    assert animal_means(values, animals_a).tolist() == [2.0, 5.0, 2.0]
    calls, reps = 0, 2000
    for _ in range(reps):
        # an animal effect (SD 1) on top of the cells' own scatter (SD 1)
        xa = pd.Series(np.repeat(rng.normal(0, 1, 3), 2) + rng.normal(0, 1, 6),
                       index=[f"c{k}" for k in range(6)])
        xb = pd.Series(np.repeat(rng.normal(0, 1, 3), 2) + rng.normal(0, 1, 6),
                       index=[f"d{k}" for k in range(6)])
        calls += _over_animals(xa, xb, animals_a, animals_b, alpha=0.05)[4] < 0.05
    # at most the nominal rate (binomial upper bound for 2000 draws), and not so conservative
    # that a real difference could not show
    assert 0.02 <= calls / reps <= 0.062, calls / reps


def test_a_difference_that_varies_between_animals_is_named_in_the_warnings(tmp_path):
    from pipeline.contract import Layout
    from pipeline.review.report import stats_warnings
    from pipeline.stats.compare import COMPARISON_COLUMNS

    stats_dir = Layout(tmp_path).stats
    stats_dir.mkdir(parents=True)
    rows = pd.DataFrame([{"quantity": "survival_day_28", "cell_type_a": "PV", "cell_type_b": "pyr",
                          "p": 0.01, "p_type_by_animal": 0.004},
                         {"quantity": "sigma_ln_w_first_session", "cell_type_a": "PV",
                          "cell_type_b": "pyr", "p": 0.02, "p_type_by_animal": 0.6},
                         {"quantity": "kesten_a", "cell_type_a": "PV", "cell_type_b": "pyr",
                          "p": 0.3}], columns=COMPARISON_COLUMNS)
    rows.to_csv(stats_dir / "celltype_comparison.csv", index=False)
    warned = stats_warnings(tmp_path)
    assert len(warned) == 1 and "survival_day_28 (pyr - PV)" in warned[0]
    assert "p = 0.004" in warned[0] and "animal_means" in warned[0]
    # a table written before the column existed gives no warning (and no error)
    rows.drop(columns="p_type_by_animal").to_csv(stats_dir / "celltype_comparison.csv",
                                                  index=False)
    assert stats_warnings(tmp_path) == []
