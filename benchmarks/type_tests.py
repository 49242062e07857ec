"""The cell-type comparison's two tests (``stats.type_test``) on the truth tables of
``science_benchmark.py``'s studies: how often each finds what the study holds.

    python benchmarks/type_tests.py [--seeds 20] [--more-null 180] [--images WORKDIR]
                                    [--out BENCHMARKS_TYPE_TESTS.md]

Each seed's two studies (effect, null; 6 pyramidal + 6 PV cells, 2 of each type in each of 3
animals) are simulated as ``science_benchmark.py`` simulates them, without rendering their
images: the simulator's dynamics do not draw from the renderer's random numbers, so the truth
tables are the ones its report scores (seeds null 1 and effect 7 compared: the same rows,
weights equal to the 5e-6 the CSV keeps).  Per study, test and quantity: the difference
pyramidal minus PV and its p from ``pipeline.stats.compare.celltype_comparison`` with each
``type_test``; the report counts the studies where a test found the effect (right sign,
p < 0.05) and, in the null studies, any difference.  ``--more-null N``: N further null studies
(the seeds after the last), for the false-positive rate.  With ``--images WORKDIR`` (a
``science_benchmark.py --workdir``), each study run there is scored from its images too
(``results/synapses.csv``, the table ``pipeline stats`` reads), with both tests.

A second table draws per-cell values (normal, cell SD 1) for the same design, 3 animals of 2 + 2
cells, with an animal shift common to both types and a difference that varies between animals
(the type x animal interaction the within-animal test assumes away): how often each test calls
a difference at 5 % where there is none, and finds one of 2.4 cell SDs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.params import TYPE_TESTS  # noqa: E402
from pipeline.stats.compare import (_over_animals, _within_animals,  # noqa: E402
                                    celltype_comparison)
from pipeline.stats.survival import turnover_per_cell  # noqa: E402
from pipeline.stats.table import prepare_table, split_repeats  # noqa: E402
from science_benchmark import (ALPHA, binom_above, conclusion_rows,  # noqa: E402
                               study_cells)


def study_truth(seed: int, kind: str) -> pd.DataFrame:
    """A study's truth table with each cell's animal, simulated without its images (the
    renderer replaced by an empty stack)."""
    from unittest import mock

    from pipeline.truth import simulate

    empty = np.zeros((2, 1, 1, 1), np.uint16)
    parts = []
    with mock.patch.object(simulate, "_render_session", lambda *a, **k: empty):
        for animal, cell, params in study_cells(seed, kind):
            truth = simulate.simulate_cell(params, cell=cell).truth
            parts.append(truth.assign(animal=animal))
    cols = ["cell", "cell_type", "synapse_id", "session", "day", "present", "weight", "animal"]
    return pd.concat(parts, ignore_index=True)[cols]


def study_rows(table: pd.DataFrame, seed: int, kind: str, source: str) -> list[dict]:
    t, _ = split_repeats(prepare_table(table))
    per_cell = turnover_per_cell(t)
    rows = []
    for type_test in TYPE_TESTS:
        comp = celltype_comparison(t, per_cell, {}, type_test=type_test)
        rows += [{"seed": seed, "study": kind, "source": source, **row}
                 for row in conclusion_rows(comp)]
    return rows


def _seeds(seeds: pd.Series) -> str:
    s = sorted(set(int(x) for x in seeds))
    return f"{s[0]}-{s[-1]}" if s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s))


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    keys = ["study", "source", "test", "type_test"]
    for (kind, source, test, type_test), g in rows.groupby(keys, sort=True):
        hit = g["significant"] & g["right_sign"]
        out.append({"study": kind, "source": source, "test": test, "type_test": type_test,
                    "n_studies": len(g), "seeds": _seeds(g["seed"]),
                    "found (right sign, p < 0.05)": hit.mean(),
                    "significant either sign": g["significant"].mean(),
                    "p (one-sided binomial: rate above 5 %)": (
                        binom_above(int(g["significant"].sum()), len(g), ALPHA)
                        if kind == "null" else float("nan")),
                    "type x animal p < 0.05": (g["p_type_by_animal"] < ALPHA).mean()
                    if g["p_type_by_animal"].notna().any() else float("nan")})
    return pd.DataFrame(out)


#: (difference, SD of the animals' shift, SD of the difference between animals), cell SD 1
SCENARIOS = [(0.0, 0.0, 0.0), (0.0, 2.0, 0.0), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0), (0.0, 0.0, 2.0),
             (2.4, 0.0, 0.0), (2.4, 2.0, 0.0), (2.4, 0.0, 1.0)]


def synthetic(draws: int, seed: int = 0) -> pd.DataFrame:
    """Rates at which each test calls a difference (p < 0.05) on drawn per-cell values."""
    rng = np.random.default_rng(seed)
    animal = np.repeat(np.arange(3), 2)
    names_a, names_b = [f"a{k}" for k in range(6)], [f"b{k}" for k in range(6)]
    of = pd.Series(np.r_[animal, animal].astype(str), index=names_a + names_b)
    groups_a = {str(k): names_a[2 * k:2 * k + 2] for k in range(3)}
    groups_b = {str(k): names_b[2 * k:2 * k + 2] for k in range(3)}
    rows = []
    for diff, shift_sd, by_animal_sd in SCENARIOS:
        within = means = interaction = 0
        for _ in range(draws):
            shift, extra = rng.normal(0, shift_sd, 3), rng.normal(0, by_animal_sd, 3)
            xa = pd.Series(shift[animal] + rng.normal(0, 1, 6), index=names_a)
            xb = pd.Series(shift[animal] + diff + extra[animal] + rng.normal(0, 1, 6),
                           index=names_b)
            w = _within_animals(xa, xb, of, alpha=0.05, min_animals=2)
            within += w[4] < 0.05
            interaction += w[5] < 0.05
            means += _over_animals(xa, xb, groups_a, groups_b, alpha=0.05)[4] < 0.05
        rows.append({"difference (cell SDs)": diff, "animal shift SD": shift_sd,
                     "SD of the difference between animals": by_animal_sd, "draws": draws,
                     "within_animals: p < 0.05": within / draws,
                     "animal_means: p < 0.05": means / draws,
                     "type x animal p < 0.05": interaction / draws})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--workdir", default=str(ROOT / "results" / "bench_type_tests"),
                    help="where every study's rows are written (type_tests.csv)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS_TYPE_TESTS.md"))
    ap.add_argument("--draws", type=int, default=4000, help="per scenario of the second table")
    ap.add_argument("--more-null", type=int, default=0, metavar="N",
                    help="N more null studies, simulated without rendering")
    ap.add_argument("--images", default=None, metavar="WORKDIR",
                    help="a science_benchmark.py --workdir: score its studies' images too")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        for kind in ("effect", "null"):
            rows += study_rows(study_truth(seed, kind), seed, kind, "truth_table")
            ran = Path(args.images or "/nonexistent") / f"{kind}_{seed}" / "results"
            if (ran / "synapses.csv").exists():
                rows += study_rows(pd.read_csv(ran / "synapses.csv"), seed, kind, "images")
    for seed in range(seeds.stop, seeds.stop + args.more_null):
        rows += study_rows(study_truth(seed, "null"), seed, "null", "truth_table")
    rows = pd.DataFrame(rows)
    rows.to_csv(work / "type_tests.csv", index=False)
    drawn = synthetic(args.draws)
    minutes = (time.perf_counter() - started) / 60
    cmd = (f"python benchmarks/type_tests.py --seeds {args.seeds} --first-seed "
           f"{args.first_seed}" + (f" --images {args.images}" if args.images else "")
           + (f" --more-null {args.more_null}" if args.more_null else ""))
    lines = ["# The cell-type comparison's tests on the science studies' truth tables", "",
             f"_`{cmd}` ({minutes:.1f} min, {time.strftime('%Y-%m-%d')}). Seeds "
             f"{seeds.start}-{seeds.stop - 1} of `make bench-science`"
             + (f" and null seeds {seeds.stop}-{seeds.stop + args.more_null - 1}"
                if args.more_null else "")
             + ", their truth tables (every synapse seen: what the design can find with "
             "perfect image stages; `images`: the studies' images run through the workflow, "
             "`python benchmarks/science_benchmark.py --kinds effect --workdir WORKDIR "
             "--record WORKDIR/runs`, and scored here from its synapses.csv); "
             "`within_animals`: the cells, each animal a block (the default); "
             "`animal_means`: Welch's t on each type's three animal means (the default until "
             "this test was added)._", "",
             summary(rows).round(3).to_markdown(index=False), "",
             "Every study: `" + str(Path(args.workdir) / "type_tests.csv") + "`.", "",
             "## Drawn per-cell values: where the within-animal test assumes too much", "",
             f"_The same command; {args.draws} draws per row. Per-cell values normal with SD 1 "
             "in 3 animals of 2 + 2 cells: an animal shift common to both types, and the "
             "difference b - a varying between animals with the SD given (the type x animal "
             "interaction)._", "", drawn.round(3).to_markdown(index=False), ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
