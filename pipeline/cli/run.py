"""``python -m pipeline run SHEET --results DIR``: the whole workflow on a lab's data.

Snakemake runs with ``--keep-going`` (one broken cell never stops the others) and its log goes to
``<results>/logs/run-<time>.log``; the terminal gets one line per finished or failed job and a
closing summary: cells done, cells failed with their first real error, sessions flagged, and
where the outputs are.  The report is written even when every cell failed.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

from ..contract import Layout
from ..core.errors import InputError

_JOB = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):")
_FIELD = re.compile(r"^\s+(jobid|wildcards|log): (.*)$")
_DONE = re.compile(r"^Finished jobid: (\d+)")
_ERROR = re.compile(r"^Error in rule (\w+):")
_STEPS = re.compile(r"^(\d+) of (\d+) steps")


def snakefile() -> Path:
    """The workflow's Snakefile (the package lives beside it in the repository)."""
    path = Path(__file__).resolve().parents[2] / "Snakefile"
    if not path.exists():
        raise InputError(f"{path}: not found; `pipeline run` runs the workflow of the repository "
                         "the package was installed from (clone it, then `make venv`)")
    return path


def snakemake_command(sheet: Path, results: Path, *, cores: int, profile: str | None = None,
                      configfile: str | None = None, extra=(), exclude=()) -> list[str]:
    """The Snakemake command line of a run (the interpreter running this, so nothing needs
    activating; Snakemake's working folder inside the results)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile()),
           "--directory", str(results), "--cores", str(cores), "--keep-going",
           "--rerun-incomplete", "--printshellcmds"]
    if profile:
        cmd += ["--profile", str(Path(profile).resolve())]
    if configfile:
        cmd += ["--configfile", str(Path(configfile).resolve())]
    config = [f"sessions={sheet}", f"results={results}"]
    if exclude:
        config.append(f"exclude_cells={','.join(exclude)}")
    return cmd + ["--config", *config, *extra]


class Progress:
    """Reads Snakemake's log line by line; returns a short line per finished or failed job."""

    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.current: dict | None = None
        self.failed: list[dict] = []
        self.total = 0

    def feed(self, line: str) -> str | None:
        if m := _JOB.match(line):
            self.current = {"rule": m.group(1), "what": "", "log": ""}
            return None
        if self.current is not None and (m := _FIELD.match(line)):
            key, value = m.groups()
            if key == "jobid" and self.current.get("error"):     # the job that failed
                job = self.jobs.get(value, self.current)
                self.failed.append(job)
                self.current = None
                return f"  FAILED  {job['rule']:<9} {job['what']}   (log: {job['log']})"
            elif key == "jobid":
                self.jobs[value] = self.current
            elif key == "wildcards":
                self.current["what"] = " ".join(v.split("=", 1)[1] for v in value.split(", "))
            else:
                self.current["log"] = value.split(",")[0].split(" (")[0].strip()
            return None
        if m := _STEPS.match(line):
            self.total = int(m.group(2))
            return None
        if m := _DONE.match(line):
            job = self.jobs.get(m.group(1), {"rule": "?", "what": ""})
            return f"  done    {job['rule']:<9} {job['what']}"
        if m := _ERROR.match(line):
            self.current = {"rule": m.group(1), "what": "", "log": "", "error": True}
            return None
        return None


def first_error(log: str | Path) -> str:
    """The real cause in a job's log: our `error:` line, else the last line of a traceback."""
    try:
        lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines()
                 if ln.strip()]
    except OSError:
        return "no log"
    mine = [ln for ln in lines if ln.startswith("error:")]
    if mine:
        return mine[0].removeprefix("error:").strip()
    return lines[-1] if lines else "empty log"


def failures_by_cell(results: Path, failed: list[dict]) -> dict[str, str]:
    """cell -> the first real cause of its failure: a bad input file (the check stage's
    record), else the first failed job's own error line.  Jobs of all cells (collect, stats,
    report) count only when no cell's failure explains them."""
    by_cell = {}
    for js in sorted(Layout(results).stage_folder("check").glob("*.json")):
        rec = json.loads(js.read_text())
        errors = [f"session {s['session']}: {s['error']}" for s in rec["sessions"] if not s["ok"]]
        if errors:
            by_cell[rec["cell"]] = errors[0]
    for job in failed:
        cell = job["what"].split(" ")[0] if job["what"] else ""
        if cell and cell not in by_cell:
            by_cell[cell] = f"{job['rule']}: {first_error(job['log'])}" if job["log"] else job["rule"]
    if not by_cell:
        by_cell.update({"(all cells)": f"{j['rule']}: {first_error(j['log'])}"
                        for j in failed[:1]})
    return by_cell


def summary(results: Path, by_cell: dict[str, str], started: float) -> tuple[list[str], bool]:
    """Closing lines of a run and whether everything succeeded."""
    from ..review.report import (channel_notes, channel_warnings, detection_warnings,
                                 input_warnings, registration_warnings, stats_warnings)

    layout = Layout(results)
    lines, ok = [], not by_cell
    done = sorted(p.name for p in layout.cell_folders("presence_summary")
                  if (p / "summary.json").exists() and p.name not in by_cell)
    lines.append(f"cells done: {len(done)}" + (f" ({', '.join(done)})" if done else ""))
    if by_cell:
        ok = False
        lines.append(f"cells failed: {len(by_cell)}")
        lines += [f"  {cell}: {why}" for cell, why in sorted(by_cell.items())]
    warnings = (input_warnings(results) + channel_warnings(results)
                + detection_warnings(results) + registration_warnings(results))
    for cell in done:
        sm = json.loads(layout.path("presence_summary", cell=cell).read_text())
        warnings += sm.get("warnings", [])
    warnings += stats_warnings(results)
    if warnings:
        lines.append(f"sessions flagged: {len(warnings)}")
        lines += [f"  {w}" for w in warnings]
    notes = channel_notes(results)
    if notes:
        lines.append("cells imaged in one channel:")
        lines += [f"  {n}" for n in notes]
    for name, path in (("per-synapse table", layout.synapses), ("statistics", layout.stats),
                       ("report", layout.report),
                       ("review pages", layout.path("review_index")),
                       ("sample check", layout.path("review_check"))):
        if path.exists() and path.stat().st_mtime >= started:
            lines.append(f"{name + ':':<19}{path}")
    return lines, ok


def run(args) -> int:
    from ..inputs.sheet import read_sessions
    from ..review.report import write_report

    sheet, results = Path(args.sheet).resolve(), Path(args.results).resolve()
    n_cells = read_sessions(sheet)["cell"].nunique()   # every sheet problem before anything runs
    log = Layout(results).root / "logs" / f"run-{dt.datetime.now():%Y%m%d-%H%M%S}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    options = dict(cores=args.cores, profile=args.profile, configfile=args.configfile,
                   extra=args.snakemake_args)
    cmd = snakemake_command(sheet, results, **options)
    record_run(results, sheet, configfile=args.configfile, profile=args.profile)
    print(f"running the workflow on {sheet} -> {results} (Snakemake's log: {log})", flush=True)
    started = dt.datetime.now().timestamp() - 1
    progress = Progress()
    status = _snakemake(cmd, log, progress)
    broken = sorted({c for c in failures_by_cell(results, progress.failed) if c != "(all cells)"})
    synapses = Layout(results).synapses
    if broken and len(broken) < n_cells and (not synapses.exists()
                                             or synapses.stat().st_mtime < started):
        # the cells that failed held back collect: once more without them, so that every other
        # cell reaches synapses.csv, the statistics and the report
        print(f"again without the failed cell(s) {', '.join(broken)}", flush=True)
        status = _snakemake(snakemake_command(sheet, results, exclude=broken, **options), log,
                            progress, append=True)
    by_cell = failures_by_cell(results, progress.failed)
    if by_cell:
        # the report names every failed cell and its cause, also when no cell got through
        # (bad input files it lists itself, from the check stage's records)
        checked = {c for c, why in by_cell.items() if why.startswith("session ")}
        write_report(results, Layout(results).report,
                     failures=[f"cell {c}: {why}" for c, why in by_cell.items()
                               if c not in checked])
    lines, ok = summary(results, by_cell, started)
    print("\n".join(["", "summary:"] + [f"  {ln}" for ln in lines]), flush=True)
    if status and ok:
        print(f"  Snakemake exited with {status}: see {log}")
    return 0 if ok and status == 0 else 1


def record_run(results: Path, sheet: Path, *, configfile=None, profile=None) -> None:
    """``<results>/run.json``: the sheet and settings of the last run, so that the review server
    can rerun it and knows where the configured curation file is."""
    curation = None
    if configfile:
        import yaml

        curation = (yaml.safe_load(Path(configfile).read_text()) or {}).get("curation")
        if curation:   # relative paths are Snakemake's: relative to the working folder (results)
            curation = str((results / curation).resolve())
    record = {"sheet": str(sheet), "results": str(results),
              "configfile": str(Path(configfile).resolve()) if configfile else None,
              "profile": str(Path(profile).resolve()) if profile else None,
              "curation": curation, "started": dt.datetime.now().isoformat(timespec="seconds")}
    (results / "run.json").write_text(json.dumps(record, indent=1) + "\n")


def _snakemake(cmd: list[str], log: Path, progress: Progress, *, append: bool = False) -> int:
    """Run Snakemake, its output into ``log`` and a line per job onto the terminal."""
    with open(log, "a" if append else "w") as out, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            out.write(line)
            shown = progress.feed(line.rstrip("\n"))
            if shown:
                print(shown, flush=True)
    return proc.returncode
