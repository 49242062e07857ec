# Reads and validates the config and the sessions sheet; helpers shared by the rules.
import json
import os
import shlex
import sys

from snakemake.utils import validate

# the sheet is validated here with the package's own code, wherever snakemake was started
sys.path.insert(0, workflow.basedir)

from pipeline.contract import Layout, stats_files
from pipeline.inputs.sheet import SheetError, read_sessions

validate(config, "../schemas/config.schema.yaml")

# settings the schema cannot check together (e.g. a two-state refinement with the presence
# model that replaces it): named here, before any job runs
from pipeline.core.errors import InputError
from pipeline.params import PresenceParams, from_options

try:
    from_options(PresenceParams, config.get("presence"))
except InputError as exc:
    raise WorkflowError(str(exc)) from None

RESULTS = config["results"].rstrip("/")
SHEET = config["sessions"]

try:
    SESSIONS = read_sessions(SHEET)
except SheetError as exc:
    raise WorkflowError(str(exc)) from None

ALL_CELLS = sorted(SESSIONS["cell"].unique())
# Cells an earlier pass found broken (`pipeline run` sets exclude_cells): left out of this pass,
# so that every other cell reaches synapses.csv, the statistics and the report.
EXCLUDED = {c.strip() for c in str(config.get("exclude_cells") or "").split(",") if c.strip()}
CELLS = [c for c in ALL_CELLS if c not in EXCLUDED]

# How the jobs run `python -m pipeline`: with --use-conda (or a container) the environment's
# python, otherwise the interpreter that runs Snakemake (its folder first on PATH), so that
# `.venv/bin/snakemake` works without activating the venv.  Either way this workflow's own package
# comes first on PYTHONPATH: Snakemake copies envs/pipeline.yaml into .snakemake/conda/, where a
# relative `pip install` of the repository cannot find it, so the environment provides the
# dependencies and the package comes from here.
_ISOLATED = bool(workflow.deployment_settings.deployment_method)
# (the prefix is formatted like a shell command: its braces are doubled)
shell.prefix(
    f"export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + ("" if _ISOLATED else f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; ")
)


# the results layout and the stats command's files (pipeline.contract)
LAYOUT = Layout(RESULTS)
STATS_FILES = [f"{LAYOUT.pattern('stats')}/{name}" for name in stats_files()]

wildcard_constraints:
    cell="[A-Za-z0-9][A-Za-z0-9_.-]*",
    session="[A-Za-z0-9][A-Za-z0-9_.-]*",


def sessions_of(cell):
    """Session names of a cell in time order."""
    return SESSIONS.loc[SESSIONS["cell"] == cell, "session"].tolist()


def target_of(cell):
    """What the cell's synapses are (sheet column target): puncta or spines."""
    return SESSIONS.loc[SESSIONS["cell"] == cell, "target"].iloc[0]


def reference_session(cell):
    choice = config["register"]["reference"]
    names = sessions_of(cell)
    if choice == "first":
        return names[0]
    if choice not in names:
        raise WorkflowError(
            f"register.reference is '{choice}' but cell {cell} has no such session "
            f"(its sessions: {', '.join(names)})"
        )
    return choice


def options(section, keys=None):
    """A config section as JSON for the command line (each stage sees only its section, or
    only ``keys`` of it: a change elsewhere in the section does not rerun the stage)."""
    chosen = {k: v for k, v in config[section].items() if keys is None or k in keys}
    return json.dumps(chosen, sort_keys=True)


def cell_passed_checks(cell):
    """After the cell's `check` checkpoint: True when every session's file passed ingest's checks."""
    with open(checkpoints.check.get(cell=cell).output[0]) as fh:
        return json.load(fh)["ok"]


def checked_cells():
    """Cells whose files all passed the checks (the others fail in ingest, naming the file)."""
    return [c for c in CELLS if cell_passed_checks(c)]


def per_session(pattern):
    """Input function: one path per session of the wildcard's cell, in time order."""
    return lambda wc: [pattern.format(cell=wc.cell, session=s) for s in sessions_of(wc.cell)]


# Curation (pipeline.stages.curate): config `curation`; else <results>/curation.tsv (where the
# review server saves), else curation.tsv beside the sessions sheet (files made by hand before the
# review server existed). Only read, never written by the workflow. Each cell's rows reach its
# jobs as a parameter, so editing one cell's rows reruns that cell's curate/weights/presence and
# what follows, nothing else.
from pipeline.inputs.curation import curation_path, read_curation
from pipeline.core.errors import InputError

CURATION = str(curation_path(RESULTS, sheet=SHEET, configured=config.get("curation"))[0])
if config.get("curation") and not os.path.exists(CURATION):
    raise WorkflowError(f"curation file {CURATION} (config 'curation') does not exist")
try:
    _CURATION = read_curation(CURATION) if os.path.exists(CURATION) else None
except InputError as exc:
    raise WorkflowError(str(exc)) from None
if _CURATION is not None:
    _unknown = sorted(set(_CURATION["cell"]) - set(ALL_CELLS))
    if _unknown:
        _rows = _CURATION.loc[_CURATION["cell"].isin(_unknown), "row"].tolist()
        raise WorkflowError(
            f"{CURATION}: line(s) {', '.join(map(str, _rows))} name cell(s) "
            f"{', '.join(_unknown)} that the sessions sheet does not have"
        )


def curation_all():
    """Every curation row in effect as JSON (the review pages start from them)."""
    return "[]" if _CURATION is None else json.dumps(_CURATION.to_dict("records"))


def curation_of(cell):
    """The cell's curation rows as JSON, passed to its jobs as a parameter
    (so that an edit reruns this cell only)."""
    if _CURATION is None:
        return "[]"
    return json.dumps(_CURATION[_CURATION["cell"] == cell].to_dict("records"))
