"""From images to the paper's conclusions: simulated studies through the whole workflow.

    python benchmarks/science_benchmark.py [--seeds 20 | --quick] [--out BENCHMARKS_SCIENCE.md]
    python benchmarks/science_benchmark.py --first-seed 16 --seeds 2 --rerun --from-stage weights

(the second form repeats seeds 16-17's runs kept in ``--workdir`` from the weights stage on,
after a change there: the same simulated studies and upstream outputs, new scores.)

Each study: 6 pyramidal and 6 PV cells from 3 animals (2 of each type per animal), 8 sessions
4 days apart plus a repeat session on day 0 (the noise estimate), small stacks so that a study
runs in minutes.  Two studies per seed: ``effect`` (each type with its own generating dynamics,
the simulator's defaults after Melander et al. 2021) and ``null`` (the PV cells given the
pyramidal dynamics: same weights, Kesten terms, loss and birth; their synapses still on the
shaft and the pyramidal ones on spines, so that any difference in how the image stages treat
the two is there to be found).

Every study runs through the Snakemake workflow with the default settings; ``stats/summary.csv``
from the images is compared with the same statistic computed on the simulator's truth table
(``pipeline.stats.run_stats`` on ``truth/synapses.csv``): per quantity the bias, the mean CI
half-width and the coverage of the images' 95 % CI (does it hold the truth table's value), and
where the generating value is known, the coverage of that too.  The conclusions are read from
``stats/celltype_comparison.csv`` and ``stats/kesten.csv`` as a user would.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.truth.simulate import (BIRTH_DEFAULTS, KESTEN_DEFAULTS, LOSS_DEFAULTS,  # noqa: E402
                                     WEIGHT_DEFAULTS, SimulationParams, write_dataset)

#: a study's stacks: 20 planes of 256 x 256 at the usual spacing (a 23 um field holding about
#: 45 synapses); small so that 12 cells x 9 sessions run in minutes on 2 cores
STUDY_SHAPE = (20, 256, 256)
N_SESSIONS = 8
CELLS_PER_ANIMAL = 2        # per cell type
N_ANIMALS = 3
#: the conclusions a study should reach: (celltype_comparison quantity prefix, the sign of
#: pyr minus PV when PV is the more stable, less heterogeneous type)
CONCLUSIONS = {"survival_day": -1, "turnover_dynamic_per_interval": 1, "sigma_ln_w_first_session": 1}
ALPHA = 0.05


def study_cells(seed: int, kind: str) -> list[tuple[str, str, SimulationParams]]:
    """(animal, cell, params) of one study; ``kind`` 'effect' or 'null'."""
    cells = []
    for a in range(N_ANIMALS):
        for ct in ("pyr", "PV"):
            for k in range(CELLS_PER_ANIMAL):
                p = SimulationParams(cell_type=ct, shape=STUDY_SHAPE, n_sessions=N_SESSIONS,
                                     repeat_first_session=True,
                                     seed=seed * 1000 + a * 100 + (ct == "PV") * 10 + k)
                if kind == "null":
                    p = replace(p, kesten=KESTEN_DEFAULTS["pyr"], loss_logit=LOSS_DEFAULTS["pyr"],
                                birth_rate=BIRTH_DEFAULTS["pyr"],
                                weight_lognormal=WEIGHT_DEFAULTS["pyr"])
                cells.append((f"m{a + 1}", f"m{a + 1}_{ct}{k + 1}", p))
    return cells


def write_study(data: Path, seed: int, kind: str) -> None:
    if data.exists():
        shutil.rmtree(data)
    cells = study_cells(seed, kind)
    write_dataset(data, [(cell, p) for _, cell, p in cells])
    animal = {cell: a for a, cell, _ in cells}
    sheet = pd.read_csv(data / "sessions.tsv", sep="\t")
    sheet.insert(1, "animal", sheet["cell"].map(animal))
    sheet.to_csv(data / "sessions.tsv", sep="\t", index=False)


def run_workflow(data: Path, results: Path, cores: int, from_stage: str | None = None) -> float:
    """The whole workflow (or, with ``from_stage``, that rule and everything after it: only
    they, even where a later commit changed an earlier rule's settings, e.g. by adding an
    option, which would otherwise rerun that rule too and label a fuller rerun as partial)."""
    force = (["--forceall"] if from_stage is None
             else ["--forcerun", from_stage, "--rerun-triggers", "mtime"])
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(results.parent / ".snakemake_work"), "--cores", str(cores),
           *force, "--config", f"sessions={data / 'sessions.tsv'}", f"results={results}"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"workflow failed on {data}:\n{res.stderr[-4000:]}")
    return time.perf_counter() - t0


def truth_stats(data: Path, out: Path) -> None:
    """The same statistics on the simulator's truth table (every synapse observed)."""
    from pipeline.stats import run_stats

    truth = pd.read_csv(data / "truth" / "synapses.csv")
    sheet = pd.read_csv(data / "sessions.tsv", sep="\t")
    animal = sheet.drop_duplicates("cell").set_index("cell")["animal"]
    lengths = pd.read_csv(data / "truth" / "dendrites.csv")[["cell", "session", "dendrite_length_um"]]
    table = truth[["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]]
    table = table.merge(lengths, on=["cell", "session"], how="left")
    run_stats(table.assign(animal=table["cell"].map(animal)), out)


def generating_values(kind: str) -> dict:
    """(cell type, quantity) -> generating value, where the generator fixes one."""
    out = {}
    for ct in ("pyr", "PV"):
        src = "pyr" if kind == "null" else ct
        for k, v in zip("acbd", KESTEN_DEFAULTS[src]):
            out[(ct, f"kesten_{k}")] = out[(ct, f"kesten_{k}_noise_corrected")] = v
        out[(ct, "hazard_slope_ln_w")] = LOSS_DEFAULTS[src][1]
    return out


def type_test_of(test: str) -> str:
    """The ``stats.type_test`` a comparison's ``test`` text names (``cells`` where the cells
    are independent, neither of the two crossed-design tests)."""
    return ("within_animals" if "within animals" in test
            else "animal_means" if "animal means" in test else "cells")


def conclusion_rows(comp: pd.DataFrame) -> list[dict]:
    """Per conclusion (:data:`CONCLUSIONS`), from a ``celltype_comparison.csv`` table: the
    difference pyramidal minus PV, its p, whether p < ``ALPHA`` and whether the sign is PV's."""
    rows = []
    for prefix, sign in CONCLUSIONS.items():
        row = comp[comp["quantity"].str.startswith(prefix)].iloc[0]
        # cell_type_a = PV, b = pyr (sorted): difference = pyr - PV
        diff = (1 if row["cell_type_a"] == "PV" else -1) * row["difference"]
        rows.append({"test": prefix, "difference_pyr_minus_PV": diff, "p": row["p"],
                     "significant": bool(row["p"] < ALPHA),
                     "right_sign": bool(np.sign(diff) == sign),
                     "type_test": type_test_of(str(row["test"])),
                     "p_type_by_animal": row.get("p_type_by_animal", np.nan)})
    return rows


def score_study(data: Path, results: Path, truth_out: Path, seed: int, kind: str):
    """Rows of quantities (images vs truth table) and of conclusions for one study."""
    ours = pd.read_csv(results / "stats" / "summary.csv")
    true = pd.read_csv(truth_out / "summary.csv")
    both = ours.merge(true[["cell_type", "quantity", "estimate", "ci_low", "ci_high"]],
                      on=["cell_type", "quantity"], how="left", suffixes=("", "_truth"))
    gen = generating_values(kind)
    both["generating"] = [gen.get((c, q), np.nan) for c, q in zip(both.cell_type, both.quantity)]
    both["covers_truth_table"] = (both["ci_low"] <= both["estimate_truth"]) & (
        both["estimate_truth"] <= both["ci_high"])
    both["covers_generating"] = (both["ci_low"] <= both["generating"]) & (
        both["generating"] <= both["ci_high"])
    both["has_ci"] = both["ci_low"].notna() & both["ci_high"].notna()
    both = both.assign(seed=seed, study=kind)
    conclusions = []
    for source, folder in (("images", results / "stats"), ("truth_table", truth_out)):
        comp = pd.read_csv(folder / "celltype_comparison.csv")
        conclusions += [{"seed": seed, "study": kind, "source": source, **row}
                        for row in conclusion_rows(comp)]
        k = pd.read_csv(folder / "kesten.csv")
        lrt = k[(k.cell_type == "PV") & (k.method == "maximum_likelihood") & (k.model == "both")
                & (k.noise_correction == "none")]["lrt_additive_p"]
        p = float(lrt.iloc[0]) if len(lrt) else np.nan
        conclusions.append({"seed": seed, "study": kind, "source": source,
                            "test": "PV additive term (LRT)", "difference_pyr_minus_PV": np.nan,
                            "p": p, "significant": bool(p < ALPHA), "right_sign": True})
    return both, pd.DataFrame(conclusions)


def density_rows(data: Path, results: Path, seed: int, kind: str) -> pd.DataFrame:
    """Per cell and session: dendrite length and density from the images vs the truth."""
    syn = pd.read_csv(results / "synapses.csv", dtype={"session": str})
    truth = pd.read_csv(data / "truth" / "synapses.csv", dtype={"session": str})
    lengths = pd.read_csv(data / "truth" / "dendrites.csv", dtype={"session": str})
    ours = syn.groupby(["cell", "cell_type", "session"]).agg(
        n=("present", lambda p: int((p == 1).sum())),
        length=("dendrite_length_um", "first")).reset_index()
    true = truth.groupby(["cell", "session"])["present"].sum().rename("n_true").reset_index()
    out = ours.merge(true, on=["cell", "session"]).merge(
        lengths.rename(columns={"dendrite_length_um": "length_true"}), on=["cell", "session"])
    out["density"] = out["n"] / out["length"]
    out["density_true"] = out["n_true"] / out["length_true"]
    out["length_error"] = out["length"] / out["length_true"] - 1
    out["density_error"] = out["density"] / out["density_true"] - 1
    return out.assign(seed=seed, study=kind)


def binom_below(k: int, n: int, p0: float) -> float:
    """One-sided p of k successes in n or fewer under rate p0."""
    return float(sps.binomtest(k, n, p0, alternative="less").pvalue) if n else np.nan


def binom_above(k: int, n: int, p0: float) -> float:
    return float(sps.binomtest(k, n, p0, alternative="greater").pvalue) if n else np.nan


def quantity_table(q: pd.DataFrame) -> pd.DataFrame:
    """Per study kind, cell type and quantity: bias, CI half-width, coverages."""
    q = q.assign(bias=q["estimate"] - q["estimate_truth"],
                 half_width=(q["ci_high"] - q["ci_low"]) / 2)
    rows = []
    for (kind, ct, name), g in q.groupby(["study", "cell_type", "quantity"], sort=True):
        ci = g[g["has_ci"]]
        gen = ci["generating"].notna()
        rows.append({"study": kind, "cell_type": ct, "quantity": name, "n_studies": len(g),
                     "truth_table_mean": g["estimate_truth"].mean(),
                     "images_mean": g["estimate"].mean(), "mean_bias": g["bias"].mean(),
                     "mean_ci_half_width": ci["half_width"].mean(),
                     "bias_below_half_ci": abs(g["bias"].mean()) < 0.5 * ci["half_width"].mean(),
                     "coverage_truth_table": ci["covers_truth_table"].mean() if len(ci) else np.nan,
                     "generating": g["generating"].iloc[0],
                     "coverage_generating": (ci.loc[gen, "covers_generating"].mean()
                                             if gen.any() else np.nan),
                     "n_with_ci": len(ci)})
    return pd.DataFrame(rows)


#: the commit that made ``within_animals`` the cell-type test of a crossed design: records
#: written before ``type_test`` was kept are told apart by their commit
WITHIN_ANIMALS_SINCE = "928ac00"


def _is_ancestor(older: str, commit: str) -> bool:
    res = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", older,
                          commit.split("+")[0]], capture_output=True)
    return res.returncode == 0


def with_type_test(c: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """``c`` with every row's ``type_test``; rows recorded without one get the test their
    study's commit used (``animal_means`` before :data:`WITHIN_ANIMALS_SINCE`)."""
    c = c.copy()
    c["type_test"] = c["type_test"].astype(object) if "type_test" in c else None
    commit = studies.set_index(["study", "seed"])["commit"].astype(str)
    test_of = {key: ("within_animals" if _is_ancestor(WITHIN_ANIMALS_SINCE, com)
                     else "animal_means") for key, com in commit.items()}
    missing = c["type_test"].isna() & (c["test"] != "PV additive term (LRT)")
    c.loc[missing, "type_test"] = [test_of[(k, s)] for k, s in
                                   zip(c.loc[missing, "study"], c.loc[missing, "seed"])]
    c["type_test"] = c["type_test"].fillna("")
    return c


def conclusion_table(c: pd.DataFrame) -> pd.DataFrame:
    """Per study kind, source, cell-type test (``type_test``) and conclusion: how often it was
    found, and how often any difference was called."""
    rows = []
    for (kind, source, test, type_test), g in c.groupby(["study", "source", "test",
                                                         "type_test"], sort=True):
        hit = g["significant"] & g["right_sign"]
        rows.append({"study": kind, "source": source, "test": test, "type_test": type_test,
                     "n_studies": len(g),
                     "found (right sign, p < 0.05)": hit.mean(),
                     "significant either sign": g["significant"].mean(),
                     "p (one-sided binomial: rate above 5 %)": (
                         binom_above(int(g["significant"].sum()), len(g), ALPHA)
                         if kind == "null" and test != "PV additive term (LRT)" else np.nan)})
    return pd.DataFrame(rows)


def density_summary(d: pd.DataFrame) -> pd.DataFrame:
    """Per cell type: mean and worst errors of length and density (cell-sessions, and the
    per-study mean density of the type)."""
    rows = []
    for ct, g in d.groupby("cell_type"):
        per_study = g.groupby(["seed", "study"]).agg(dens=("density", "mean"),
                                                     true=("density_true", "mean"))
        err = per_study["dens"] / per_study["true"] - 1
        rows.append({"cell_type": ct, "cell_sessions": len(g),
                     "length error, mean": g["length_error"].mean(),
                     "length error, worst": g["length_error"].abs().max(),
                     "density error, mean": g["density_error"].mean(),
                     "density error, median |.|": g["density_error"].abs().median(),
                     "density error, worst": g["density_error"].abs().max(),
                     "type's mean density per study, mean error": err.mean(),
                     "type's mean density per study, worst error": err.abs().max()})
    return pd.DataFrame(rows)


def write_report(out: Path, quantities: pd.DataFrame, conclusions: pd.DataFrame,
                 densities: pd.DataFrame, studies: pd.DataFrame, args, seconds: float,
                 events: pd.DataFrame | None = None) -> None:
    qt = quantity_table(quantities)
    ct = conclusion_table(with_type_test(conclusions, studies))
    eff = quantities[(quantities["study"] == "effect") & quantities["has_ci"]]
    k, n = int(eff["covers_truth_table"].sum()), len(eff)
    worst = qt[qt["study"] == "effect"].sort_values("coverage_truth_table").head(5)
    failed = studies[studies["failed"].notna()] if "failed" in studies else studies.iloc[:0]
    from_stage = (studies["from_stage"].fillna("").astype(str) if "from_stage" in studies
                  else pd.Series("", index=studies.index))
    label = studies["commit"].astype(str) + np.where(from_stage != "",
                                                     " (repeated from " + from_stage + ")", "")
    by_commit = studies.groupby(label)[["study", "seed"]].apply(
        lambda g: "; ".join(f"{kind} {', '.join(map(str, sorted(set(k['seed']))))}"
                            for kind, k in g.groupby("study")))
    full_runs = studies[from_stage == ""]
    lines = [
        "# Science end to end: simulated studies through the whole workflow", "",
        "Command: `make bench-science` (`python benchmarks/science_benchmark.py --seeds 20`; "
        "each study's scores are kept in `benchmarks/science_runs/` and seeds already there are "
        "not run again, so the seeds can be run a few at a time: `--first-seed K --seeds N`). "
        f"This report pools {len(studies)} studies (seeds by commit: "
        + " | ".join(f"{c}: {v}" for c, v in by_commit.items())
        + f"); a study's whole workflow took {full_runs['wall_min'].median():.1f} min (median) on 2 "
        "cores. Each study: 6 pyramidal + 6 PV cells from 3 animals (2 of each per animal), "
        "8 sessions 4 days apart + a repeat session on day 0, stacks "
        f"{'x'.join(map(str, STUDY_SHAPE))}; the workflow with default settings; "
        "`stats/summary.csv` from the images against the same statistic on the simulator's "
        "truth table.", "",
        f"Studies the workflow could not finish: {len(failed)}"
        + "".join(f"\n- seed {r.seed} {r.study}: {r.failed}" for r in failed.itertuples()), "",
        "## Targets", "",
        f"- pooled coverage of the images' 95 % CIs (effect studies, every quantity with a CI, "
        f"truth-table value): {k}/{n} = {k / max(n, 1):.3f}; one-sided binomial p (below 95 %) "
        f"= {binom_below(k, n, 0.95):.3g} (target: not significant at 0.01)",
        f"- quantities below 80 % coverage: "
        f"{', '.join(f'{r.cell_type} {r.quantity} ({r.coverage_truth_table:.2f})' for r in qt[(qt.study == 'effect') & (qt.coverage_truth_table < 0.8)].itertuples()) or 'none'}",
        f"- |mean bias| below half the mean CI half-width: "
        f"{int(qt[qt.study == 'effect']['bias_below_half_ci'].sum())} of "
        f"{int((qt.study == 'effect').sum())} quantities", "",
        "Lowest coverage (effect studies):", "",
        worst[["cell_type", "quantity", "coverage_truth_table", "mean_bias",
               "mean_ci_half_width"]].round(3).to_markdown(index=False), "",
        "## Conclusions", "",
        "`found`: right sign and p < 0.05 (effect studies: PV more stable, less "
        "heterogeneous; the additive term's LRT in PV). Null studies: `significant either "
        "sign` is the rate of false differences (target: not significantly above 5 %). "
        "`truth_table`: the same tests on the simulator's truth, i.e. what the design "
        "could find with perfect image stages. `type_test`: the comparison the study's run "
        "made (`stats.type_test`: `within_animals`, the default since "
        f"{WITHIN_ANIMALS_SINCE}; `animal_means`, Welch's t on the animals' means, in studies "
        "run before it).", "",
        ct.round(3).to_markdown(index=False), "",
        "## Density per um of dendrite", "",
        "Dendrite length from the morphology channel (the dendrite stage) against the "
        "simulator's centre lines in each session's view; density = synapses called present "
        "over that length, against true synapses present over the true length (target: "
        "within 5 %).", "",
        density_summary(densities).round(4).to_markdown(index=False), ""]
    if events is not None:
        lines += [
            "## Where turnover departs from the truth table", "",
            "Every gain or loss the presence calls make on a synapse matched to a true one "
            "(`python benchmarks/science_events.py STUDY_DIR`; recorded for "
            f"{events[['study', 'seed']].drop_duplicates().shape[0]} studies): `matched` at the "
            "same interval as the truth's; `shifted` within 2 intervals (the same event called "
            "earlier or later, mostly a synapse fading below detection before the truth loses "
            "it: no count bias); `spurious_dim`: the true synapse does not change nearby and its "
            f"true weight is below {EVENTS_DIM:g} where we call it absent (too faint to see, yet "
            "present in the truth table); `spurious_bright`: the same with a synapse bright "
            "enough to see (our failure: identity in dense clusters, deblending, "
            "registration); `unmatched_synapse`: events of synapses matched to no true one. "
            "`excess`: our events over the truth's, minus 1.", "",
            events_table(events).round(3).to_markdown(index=False), ""]
    lines += [
        "## Every quantity", "",
        "`mean_bias`: images minus truth table, mean over studies; `coverage_truth_table`: "
        "share of studies whose 95 % CI from the images holds the truth table's value; "
        "`coverage_generating`: holds the generating value (Kesten terms, hazard slope).", "",
        qt.round(4).to_markdown(index=False), ""]
    out.write_text("\n".join(lines))


#: true weight below which a synapse counts as too faint to see (science_events.py --dim)
EVENTS_DIM = 0.2


def code_commit() -> str:
    """The short commit of the code a run used, ``+changes`` if the pipeline's code or config
    had uncommitted changes."""
    res = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "pipeline", "rules",
                            "Snakefile", "config.yaml"], capture_output=True, text=True).stdout
    return res.stdout.strip() + ("+changes" if dirty.strip() else "")


def record_events(base: Path, record: Path, seed: int, kind: str) -> None:
    """Each gain/loss of the presence calls against the true synapse's (science_events.py)."""
    from science_events import events

    events(base, dim=EVENTS_DIM).assign(seed=seed, study=kind).to_csv(
        record / f"{kind}_{seed}_events.csv", index=False)


def events_table(ev: pd.DataFrame) -> pd.DataFrame:
    """Per study kind and cell type: events of the truth and ours, by cause."""
    cols = ["truth_events", "ours_events", "matched", "shifted", "spurious_dim",
            "spurious_bright", "unmatched_synapse"]
    out = ev.groupby(["study", "cell_type"])[cols].sum().reset_index()
    out.insert(2, "studies", ev.groupby(["study", "cell_type"])["seed"].nunique().to_numpy())
    out["excess"] = (out["ours_events"] - out["truth_events"]) / out["truth_events"]
    return out


def run_study(work: Path, record: Path, seed: int, kind: str, cores: int,
              from_stage: str | None = None) -> None:
    """Simulate, run and score one study; its rows go to ``record`` (one CSV per table).
    With ``from_stage``, the study's earlier run in ``work`` is repeated from that stage on
    (the same simulated data and upstream outputs) instead."""
    base = work / f"{kind}_{seed}"
    data, results, truth_out = base / "data", base / "results", base / "truth_stats"
    if from_stage is None:
        write_study(data, seed, kind)
    elif not (results / "synapses.csv").exists():
        raise SystemExit(f"{base}: no earlier run to repeat from {from_stage}")
    for d in (results, truth_out) if from_stage is None else (truth_out,):
        if d.exists():
            shutil.rmtree(d)
    study = {"seed": seed, "study": kind, "commit": code_commit(), "from_stage": from_stage or ""}
    try:
        study["wall_min"] = run_workflow(data, results, cores, from_stage) / 60
    except RuntimeError as exc:     # a study the workflow cannot finish is a finding
        study["failed"] = str(exc)[:300].replace("\n", " ")
    else:
        truth_stats(data, truth_out)
        q, c = score_study(data, results, truth_out, seed, kind)
        q.to_csv(record / f"{kind}_{seed}_quantities.csv", index=False)
        c.to_csv(record / f"{kind}_{seed}_conclusions.csv", index=False)
        density_rows(data, results, seed, kind).to_csv(record / f"{kind}_{seed}_density.csv",
                                                       index=False)
        record_events(base, record, seed, kind)
    pd.DataFrame([study]).to_csv(record / f"{kind}_{seed}_study.csv", index=False)
    print(f"seed {seed} {kind}: " + (f"{study['wall_min']:.1f} min" if "wall_min" in study
                                     else "FAILED"), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds first-seed, first-seed + 1, ...")
    ap.add_argument("--quick", action="store_true", help="3 seeds, for development")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--workdir", default=str(ROOT / "results" / "bench_science"))
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "science_runs"),
                    help="each study's scores (kept: a seed already there is not run again "
                         "unless --rerun; the report pools every study there)")
    ap.add_argument("--rerun", action="store_true")
    ap.add_argument("--from-stage", default=None, metavar="RULE",
                    help="with --rerun: repeat each study's run in --workdir from this rule on "
                         "(e.g. weights) instead of simulating and running it all again")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--kinds", default="effect,null",
                    help="the study kinds to run for each seed (default %(default)s)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS_SCIENCE.md"))
    args = ap.parse_args(argv)
    n_seeds = 3 if args.quick else args.seeds
    work, record = Path(args.workdir).resolve(), Path(args.record).resolve()
    record.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + n_seeds):
        for kind in args.kinds.split(","):
            if args.rerun or not (record / f"{kind}_{seed}_study.csv").exists():
                run_study(work, record, seed, kind, args.cores, args.from_stage)

    def pooled(name):
        files = sorted(record.glob(f"*_{name}.csv"))
        # the study kind "null" must stay a word (read_csv takes it for a missing value)
        return pd.concat([pd.read_csv(f, keep_default_na=False, na_values=[""]) for f in files],
                         ignore_index=True) if files else None

    for study_csv in sorted(record.glob("*_study.csv")):    # events of studies run before
        kind, seed = study_csv.stem.split("_")[:2]
        base = work / f"{kind}_{seed}"
        if (not (record / f"{kind}_{seed}_events.csv").exists()
                and (base / "results" / "synapses.csv").exists()):
            record_events(base, record, int(seed), kind)
    studies = pooled("study")
    write_report(Path(args.out), pooled("quantities"), pooled("conclusions"), pooled("density"),
                 studies, args, time.perf_counter() - started, events=pooled("events"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
