"""Registration alone, per session, on the benchmark's regimes: the residual of every true
synapse in view (lateral and axial), per session and the worst session, and whether QC flagged
the session.

    python benchmarks/registration_benchmark.py [--regimes hard_registration,...] [--seed N] [--out FILE]
    make bench-registration          # every regime, into BENCHMARKS_REGISTRATION.md
    python benchmarks/registration_benchmark.py --runs W [--regimes ...]   # workflow runs

With ``--runs W``, the same figures from the register stage's outputs of finished workflow runs
in ``W`` (a ``presence_benchmark.py`` work folder: ``W/<regime>/data`` with ``truth/`` and
``W/<regime>/results``), every cell of each regime, nothing recomputed.

Each regime's cell is simulated in memory exactly as ``make bench`` simulates it (same options,
same seed), detected and registered with the stage functions the workflow calls.  Prints a
markdown table (and writes it with ``--out``); ``make bench`` reports the same figures from its
full runs.
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


def simulated_cell(args: list[str]):
    """The first cell of ``python -m pipeline simulate`` with these options, in memory."""
    from pipeline.cli.parser import build_parser, simulation_overrides
    from pipeline.truth.simulate import SimulationParams, simulate_cell

    ns = build_parser().parse_args(["simulate", "--out", "unused", *args])
    cell_type = ns.cells.split(",")[0]
    prm = SimulationParams(cell_type=cell_type, seed=ns.seed, **simulation_overrides(ns))
    return simulate_cell(prm, cell=f"{cell_type}01")


def _in_view(truth: pd.DataFrame, session: str) -> pd.DataFrame:
    """True synapses present and in view in ``session`` (all present ones for older truth
    tables without ``in_view``)."""
    view = truth.in_view == 1 if "in_view" in truth.columns else True
    return truth[(truth.session == session) & (truth.present == 1) & view]


def session_residuals(truth: pd.DataFrame, session: str, transform, spacing) -> pd.DataFrame:
    """Per true synapse present and in view in ``session``: its registration residual (um),
    lateral (y, x) and axial (z)."""
    from pipeline.core.frames import to_reference

    t = _in_view(truth, session)
    mapped = to_reference(transform, t[["z", "y", "x"]].to_numpy() * spacing)
    d = mapped - t[["z_um", "y_um", "x_um"]].to_numpy()
    return pd.DataFrame({"synapse_id": t.synapse_id.to_numpy(),
                         "lateral_um": np.linalg.norm(d[:, 1:], axis=1),
                         "axial_um": np.abs(d[:, 0])})


def session_row(truth: pd.DataFrame, session: str, result: dict, spacing, true_matrix) -> dict:
    """One session's figures: residuals of the true synapses in view, the angle found against
    the truth's, and how QC judged it (session and rows)."""
    from pipeline.core.frames import registration_error_at
    from pipeline.core.similarity import median_similarity

    res = session_residuals(truth, session, result, spacing)
    t = _in_view(truth, session)
    error = result.get("error")
    estimate = (registration_error_at(result, t[["z_um", "y_um", "x_um"]].to_numpy())
                if error else np.full(len(t), np.nan))
    flagged = estimate > (error or {}).get("limit_um", np.inf)
    wrong = (res.lateral_um > 0.5).to_numpy()
    true_angle = np.degrees(np.arctan2(true_matrix[2, 1], true_matrix[1, 1]))
    return {"session": session, "n": len(res), "lateral_median_um": res.lateral_um.median(),
            "lateral_p95_um": res.lateral_um.quantile(0.95),
            "axial_p95_um": res.axial_um.quantile(0.95),
            "true_rotation_deg": true_angle, "rotation_deg": result["rotation_deg"],
            "model": result.get("model"), "n_matches": result["n_matches"],
            "reliable": result["reliable"],
            "flagged_regions": len(result.get("misregistered_regions") or []),
            "similarity_median": median_similarity(result),
            "unlike_regions": len(result.get("dissimilar_regions") or []),
            "rows_wrong": int(wrong.sum()), "wrong_flagged": int((wrong & flagged).sum()),
            "right_flagged": int((~wrong & flagged).sum())}


def pipeline_sessions(data: Path, results: Path) -> pd.DataFrame:
    """:func:`session_row` for every session but the reference of every cell of a workflow run
    on a simulated dataset (``data``: its folder with ``truth/``)."""
    import json

    from pipeline.contract import Layout

    truth = pd.read_csv(data / "truth" / "synapses.csv")
    params = json.loads((data / "truth" / "params.json").read_text())
    true = json.loads((data / "truth" / "transforms.json").read_text())["cells"]
    rows = []
    for cell, tcell in truth.groupby("cell"):
        for session in sorted(tcell.session.unique())[1:]:
            result = json.loads(Layout(results).path("register", cell=cell, session=session)
                                .read_text())
            rows.append({"cell": cell, **session_row(
                tcell, session, result, np.asarray(params[cell]["spacing"]),
                np.asarray(true[cell][session]["matrix"]))})
    return pd.DataFrame(rows)


def register_cell(sim, params=None) -> pd.DataFrame:
    """Detect and register every session of a simulated cell; one row per session."""
    from pipeline.params import DetectParams, RegisterParams
    from pipeline.stages.detect import detect_session
    from pipeline.stages.register import register_to_reference

    params = params or RegisterParams()
    spacing = np.asarray(sim.params.spacing)
    stacks = [img.astype(np.float32) for img in sim.images]
    puncta = [detect_session(s, spacing=spacing, params=DetectParams())[["z_um", "y_um", "x_um"]]
              .to_numpy() for s in stacks]
    rows = []
    for k, stack in enumerate(stacks[1:], start=1):
        session = f"s{k:02d}"

        def register():
            return register_to_reference(stacks[0], stack, spacing=spacing,
                                         reference_spacing=spacing, cell="c", session=session,
                                         reference_session="s00",
                                         reference_points_um=puncta[0],
                                         moving_points_um=puncta[k], params=params)
        t0 = time.perf_counter()
        result = register()
        secs = time.perf_counter() - t0
        rows.append({**session_row(sim.truth, session, result, spacing, sim.transforms[k]),
                     "seconds": secs,
                     **(allocated_over_stack(register, stack) if k == 1 else {})})
    return pd.DataFrame(rows)


def allocated_over_stack(call, stack: np.ndarray) -> dict:
    """The peak of memory ``call`` allocates (tracemalloc, which numpy reports its arrays to; a
    separate, untimed call), over the size of the (c, z, y, x) float32 ``stack`` it is given.
    The register job also holds its two input stacks (the session and the reference): its
    data then peak at this plus 2 stacks; the interpreter and libraries (~130 MB) come on top."""
    import tracemalloc

    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"allocated_mb": peak / 2 ** 20, "stack_mb": stack.nbytes / 2 ** 20}


def summary(regime: str, per_session: pd.DataFrame) -> dict:
    """Pooled and worst-session figures of one regime."""
    bad = per_session.lateral_p95_um > 0.5
    flagged = ~per_session.reliable | (per_session.flagged_regions > 0)
    return {"regime": regime, "sessions": len(per_session),
            "lateral median (median over sessions)": per_session.lateral_median_um.median(),
            "worst lateral p95": per_session.lateral_p95_um.max(),
            "worst axial p95": per_session.axial_p95_um.max(),
            "sessions p95 > 0.5 um": int(bad.sum()),
            "of which flagged": int((bad & flagged).sum()),
            "rows > 0.5 um": int(per_session.rows_wrong.sum()),
            "of which flagged ": int(per_session.wrong_flagged.sum()),
            "rows <= 0.5 um flagged": int(per_session.right_flagged.sum()),
            **({"sessions with patches unlike the reference":
                int((per_session.unlike_regions > 0).sum())}
               if "unlike_regions" in per_session else {}),
            "rows": int(per_session.n.sum()),
            **({"s per session": per_session.seconds.mean()} if "seconds" in per_session else {}),
            **({"allocated / stack": (per_session.allocated_mb / per_session.stack_mb).max(),
                "with both input stacks / stack":
                    ((per_session.allocated_mb + 2 * per_session.stack_mb)
                     / per_session.stack_mb).max()}
               if "allocated_mb" in per_session else {})}


def main(argv=None) -> int:
    from run_benchmark import COMMON, REGIMES, reseeded

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=None,
                    help="simulate each regime with this seed instead of its own (another "
                         "draw: a cell no development saw)")
    ap.add_argument("--runs", default=None, metavar="W",
                    help="read finished workflow runs in W/<regime>/ instead of simulating")
    args = ap.parse_args(argv)
    lines, sums = [], []
    started = time.perf_counter()
    if args.runs:
        return runs_report(Path(args.runs), args, started)
    for regime in args.regimes.split(","):
        sim = simulated_cell(COMMON + reseeded(REGIMES[regime], args.seed))
        per = register_cell(sim)
        sums.append(summary(regime, per))
        lines += [f"### {regime}", "", per.round(3).to_markdown(index=False), ""]
    command = f"registration_benchmark.py --regimes {args.regimes}" + (
        f" --seed {args.seed}" if args.seed is not None else "")
    write_report("Registration per session", command,
                 started, "Registration alone, in memory: each session's stacks detected and "
                 "registered to the first with the stage functions the workflow calls. Memory: "
                 "what registering the first session allocates (tracemalloc, a separate call) "
                 "over its two-channel float32 stack, and with the two input stacks the "
                 "register job holds (the interpreter and libraries not counted).",
                 sums, lines, args.out)
    return 0


def runs_report(work: Path, args, started: float) -> int:
    """The per-session figures of finished workflow runs (``--runs``), every cell."""
    regimes = [r for r in args.regimes.split(",") if (work / r / "results").is_dir()]
    if not regimes:
        sys.exit(f"--runs: no regime folder with results/ under {work}")
    sums, lines = [], []
    for regime in regimes:
        per = pipeline_sessions(work / regime / "data", work / regime / "results")
        sums.append(summary(regime, per))
        worst = per.sort_values("lateral_p95_um", ascending=False).head(3)
        lines += [f"### {regime}: the three worst sessions", "",
                  worst.round(3).to_markdown(index=False), ""]
    write_report("Registration per session, workflow runs",
                 f"registration_benchmark.py --runs {work} --regimes {','.join(regimes)}",
                 started, "The register stage's outputs of finished workflow runs, every cell "
                 "and session but the reference, scored against the simulator's truth.",
                 sums, lines, args.out)
    return 0


def write_report(title: str, command: str, started: float, what: str, sums: list[dict],
                 lines: list[str], out: str | None) -> None:
    """Print (and write to ``out``) a per-session benchmark: its title, the command, time,
    date and commit that made it, the summary table and the per-regime sections."""
    import datetime
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "pipeline", "benchmarks"],
                           cwd=ROOT, text=True, capture_output=True).stdout.strip()
    made = (f"_`python benchmarks/{command}` ({(time.perf_counter() - started) / 60:.1f} min, "
            f"{datetime.date.today()}, commit {commit}"
            f"{' with uncommitted changes' if dirty else ''}). {what}_")
    table = pd.DataFrame(sums).round(3).to_markdown(index=False)
    text = "\n".join([f"## {title}", "", made, "", table, "", *lines])
    print(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
