import numpy as np
import pandas as pd
import pytest

from pipeline.truth.simulate import kesten_step
from pipeline.cli import main as cli_main
from pipeline.contract import STATS_PLOTS as PLOTS
from pipeline.contract import STATS_TABLES as TABLES
from pipeline.stats import TableError, prepare_table, run_stats
from pipeline.stats.distributions import fit_lognormal
from pipeline.stats.kesten_models import fit_kesten_binned
from pipeline.stats.survival import survival, survival_by_quartile, turnover
from pipeline.stats.table import consecutive_pairs


# ----------------------------------------------------------------- the published figures
def test_binned_kesten_on_reference_equals_published_values(reference_table):
    pairs = consecutive_pairs(prepare_table(reference_table))
    fit = fit_kesten_binned(pairs["w_t"], pairs["w_next"])
    assert fit["n_pairs"] == 3281 and fit["bin_size"] == 165 and fit["n_bins"] == 20
    assert round(fit["a"], 3) == -0.053
    assert round(fit["c"], 3) == 0.040
    assert round(fit["b"], 3) == 0.068
    assert round(fit["d"], 3) == 0.113


def test_survival_on_reference_matches_readme(reference_table):
    t = prepare_table(reference_table)
    s = survival(t).set_index("day")
    assert round(s.loc[24, "survival"], 3) == 0.738
    assert round(s.loc[24, "sem"], 3) == 0.030
    assert s.loc[24, "n_cells"] == 14
    q = survival_by_quartile(t)
    q24 = q[q["day"] == 24].sort_values("quartile")["survival"].round(2).tolist()
    assert q24 == [0.50, 0.61, 0.81, 0.98]


def test_lognormal_sd_on_reference_matches_readme(reference_table):
    t = prepare_table(reference_table)
    day0 = t[(t["day"] == 0) & (t["present"] == 1)]["weight"]
    fit = fit_lognormal(day0)
    assert fit["n"] == 496 and round(fit["sigma"], 2) == 0.92


# ----------------------------------------------------------------- known parameters
@pytest.mark.parametrize("params", [(-0.05, 0.04, 0.07, 0.11), (-0.17, 0.17, 0.04, 0.04)])
def test_binned_kesten_recovers_known_parameters(params):
    a, c, b, d = params
    rng = np.random.default_rng(5)
    w = np.exp(rng.normal(0, 0.6, 40000))
    w_next = kesten_step(w, a, c, b, d, rng)
    fit = fit_kesten_binned(w, w_next)
    # 40 000 pairs: sampling error of each coefficient is well below these tolerances
    assert fit["a"] == pytest.approx(a, abs=0.01)
    assert fit["c"] == pytest.approx(c, abs=0.01)
    assert fit["b"] == pytest.approx(b, abs=0.01)
    assert fit["d"] == pytest.approx(d, abs=0.01)


def test_lognormal_fit_recovers_sigma_and_prefers_lognormal():
    rng = np.random.default_rng(0)
    fit = fit_lognormal(np.exp(rng.normal(0.3, 0.8, 3000)))
    assert fit["mu"] == pytest.approx(0.3, abs=0.05)
    assert fit["sigma"] == pytest.approx(0.8, abs=0.05)
    assert fit["aic_lognormal"] < fit["aic_gamma"] < fit["aic_normal"]
    assert fit["ks_p"] > 0.01


def _table(presence, weights=None, cell="c1", cell_type="pyr"):
    presence = np.asarray(presence)
    n, k = presence.shape
    weights = np.ones_like(presence, float) if weights is None else weights
    return pd.DataFrame({"cell": cell, "cell_type": cell_type,
                         "synapse_id": np.repeat(np.arange(1, n + 1), k),
                         "session": np.tile([f"s{i}" for i in range(k)], n),
                         "day": np.tile(np.arange(k) * 4, n),
                         "present": presence.ravel(), "weight": (weights * presence).ravel()})


def test_survival_and_turnover_on_a_hand_made_table():
    # 4 synapses present at day 0; one lost at day 4, one more at day 8; one added at day 8
    presence = [[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1]]
    t = prepare_table(_table(presence))
    s = survival(t).set_index("day")["survival"]
    assert s.tolist() == [1.0, 0.75, 0.5]
    tv = turnover(t).set_index("day")
    assert tv.loc[0, "lost"] == 0.25 and tv.loc[0, "added"] == 0.0
    assert tv.loc[4, "lost"] == pytest.approx(1 / 3) and tv.loc[4, "added"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------- bad input
def test_missing_column_is_named():
    with pytest.raises(TableError, match="weight"):
        prepare_table(_table([[1, 1]]).drop(columns="weight"))


def test_present_without_weight_names_the_rows():
    t = _table([[1, 1], [1, 1]])
    t.loc[2, "weight"] = np.nan
    with pytest.raises(TableError, match="line\\(s\\) 4"):
        prepare_table(t)


def test_non_numeric_day_is_an_error():
    t = _table([[1, 1]])
    t["day"] = t["day"].astype(object)
    t.loc[1, "day"] = "four"
    with pytest.raises(TableError, match="'day'"):
        prepare_table(t)


def test_single_session_cell_is_excluded_with_a_warning():
    t = pd.concat([_table([[1, 1], [1, 0]]), _table([[1]], cell="lonely")])
    with pytest.warns(UserWarning, match="lonely"):
        out = prepare_table(t)
    assert "lonely" not in set(out["cell"])


def test_negative_weight_of_a_present_synapse_names_the_rows():
    t = _table([[1, 1], [1, 1]])
    t.loc[3, "weight"] = -0.5
    with pytest.raises(TableError, match="'weight'.*line\\(s\\) 5"):
        prepare_table(t)


def test_stats_command_on_the_reference_writes_every_table_and_plot(reference_dir, tmp_path):
    out = tmp_path / "stats"
    assert cli_main(["stats", str(reference_dir / "synapses.csv"), "--out", str(out),
                     "--n-boot", "50", "--seed", "1"]) == 0
    for name in TABLES:
        assert len(pd.read_csv(out / f"{name}.csv").columns) > 3, name
    for name in PLOTS:
        assert (out / f"{name}.png").stat().st_size > 10_000, name
    k = pd.read_csv(out / "kesten.csv")
    binned = k[k["method"] == "binned_moments"].iloc[0]
    assert binned[["a", "c", "b", "d"]].astype(float).round(3).tolist() == [-0.053, 0.040, 0.068, 0.113]
    ml = k[(k["method"] == "maximum_likelihood") & (k["model"] == "both")].iloc[0]
    assert ml["lrt_additive_p"] < 1e-3 and ml["n_cells"] == 14
    assert ml["a_ci_low"] < ml["a"] < ml["a_ci_high"]
    hz = pd.read_csv(out / "hazard.csv")
    # large synapses persist longer: loss hazard falls with weight in every model
    assert (hz.loc[hz["term"] == "ln_w", "ci_high"] < 0).all()
    mk = pd.read_csv(out / "markov_survival.csv").set_index("day")
    assert mk.loc[24, "predicted_ci_low"] - 0.05 < mk.loc[24, "observed"] < mk.loc[24, "predicted_ci_high"] + 0.05
    assert pd.read_csv(out / "celltype_comparison.csv").empty  # one cell type


def test_import_matrix_turns_the_reference_matrix_into_its_long_table(reference_dir, tmp_path):
    out = tmp_path / "long.csv"
    assert cli_main(["import-matrix", str(reference_dir / "weight_matrix.csv"), "--out", str(out),
                     "--cell-type", "pyr"]) == 0
    ours = pd.read_csv(out)
    ref = pd.read_csv(reference_dir / "synapses.csv")
    assert len(ours) == len(ref)
    m = ours.merge(ref, on=["cell", "synapse_id", "day"], suffixes=("", "_ref"))
    assert len(m) == len(ref)
    assert (m["present"] == m["present_ref"]).all() and (m["cell_type"] == m["cell_type_ref"]).all()
    assert np.allclose(m["weight"], m["weight_ref"].fillna(0))


def test_import_matrix_errors_name_the_column(tmp_path, capsys):
    bad = tmp_path / "wide.csv"
    pd.DataFrame({"synapse_id": [1, 2], "cell": ["a", "a"], "d0": [1.0, 0.5],
                  "later": [1.0, 2.0]}).to_csv(bad, index=False)
    assert cli_main(["import-matrix", str(bad), "--out", str(tmp_path / "o.csv"),
                     "--cell-type", "pyr"]) == 2
    assert "'later'" in capsys.readouterr().err
    pd.DataFrame({"synapse_id": [1, 2], "cell": ["a", "a"], "d0": [1.0, -0.5],
                  "d4": [1.0, 2.0]}).to_csv(bad, index=False)
    assert cli_main(["import-matrix", str(bad), "--out", str(tmp_path / "o.csv"),
                     "--cell-type", "pyr"]) == 2
    assert "negative" in capsys.readouterr().err
    assert cli_main(["import-matrix", str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    assert "--cell-type" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
