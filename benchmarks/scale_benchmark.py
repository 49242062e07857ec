"""Peak memory and time per job on large stacks (issue: 1024x1024x100 two-channel 16-bit < 3 GB).

    python benchmarks/scale_benchmark.py --workdir results/bench_scale --out BENCHMARKS_SCALE.md

Simulates one cell with two sessions of the given shape (16-bit, two channels), runs the whole
workflow on it with Snakemake and reads every job's wall time and max RSS from Snakemake's
``benchmark:`` files.  Every figure in the written file comes from this run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 3000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="results/bench_scale")
    ap.add_argument("--out", default="BENCHMARKS_SCALE.md")
    ap.add_argument("--shape", default="100,1024,1024", help="z,y,x voxels per session")
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.workdir).resolve()
    data, results = work / "data", work / "results"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])

    t0 = time.perf_counter()
    reused = (data / "sessions.tsv").exists()
    if not reused:
        subprocess.run([sys.executable, "-m", "pipeline", "simulate", "--out", str(data),
                        "--cells", "pyr", "--sessions", str(args.sessions), "--shape", args.shape,
                        "--seed", "404"], check=True, env=env)
    sim_s = time.perf_counter() - t0
    stack_files = sorted((data / "images").rglob("*.tif"))
    file_mb = max(p.stat().st_size for p in stack_files) / 1e6
    # in memory a session is two 16-bit channels, whatever the file's compression
    stack_mb = 2 * 2 * np.prod([int(v) for v in args.shape.split(",")]) / 1e6

    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                          "--directory", str(work / "snakemake"), "--cores", str(args.cores),
                          "--forceall", "--config", f"sessions={data / 'sessions.tsv'}",
                          f"results={results}"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"workflow failed:\n{res.stderr[-3000:]}")

    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        tab = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "s": float(tab["s"].iloc[0]), "max_rss": float(tab["max_rss"].iloc[0])})
    jobs = pd.DataFrame(rows).groupby("rule", sort=False).agg(
        jobs=("s", "size"), max_s=("s", "max"), max_rss_mb=("max_rss", "max")).reset_index()
    peak = jobs["max_rss_mb"].max()

    shape = args.shape.replace(",", "x")
    lines = [
        "# Scale benchmark: peak memory per job on large stacks",
        "",
        f"Command: `make bench-scale` (= `python benchmarks/scale_benchmark.py --workdir "
        f"{args.workdir} --out {args.out} --shape {args.shape} --sessions {args.sessions} "
        f"--cores {args.cores}`), run {dt.date.today()} on {platform.node()} "
        f"({os.cpu_count()} cores). Every number below was written by that run.",
        "",
        f"One simulated pyramidal cell, {args.sessions} sessions of {shape} (z x y x x) voxels, two "
        f"channels, 16-bit: {stack_mb:.0f} MB per session in memory ({file_mb:.0f} MB compressed "
        f"file). " + ("Simulated data reused from an earlier run of this command"
                      if reused else f"Simulation {sim_s:.0f} s (not part of the pipeline)")
        + f"; whole workflow {wall:.0f} s on {args.cores} cores.",
        "",
        "| rule | jobs | longest job (s) | peak memory of a job (MB) | peak / session size in memory |",
        "|---|---|---|---|---|",
    ]
    for r in jobs.itertuples():
        lines.append(f"| {r.rule} | {r.jobs} | {r.max_s:.1f} | {r.max_rss_mb:.0f} | "
                     f"{r.max_rss_mb / stack_mb:.1f} |")
    verdict = "meets" if peak < LIMIT_MB else "misses"
    lines += ["", f"Largest job: {peak:.0f} MB; this {verdict} the limit of {LIMIT_MB} MB per job "
              f"for {shape} two-channel 16-bit stacks.", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
