"""The README's "Running on your data" is the tested path: its commands, verbatim, in a fresh
clone with nothing activated, on a copy of data_sample laid out as a lab keeps its data."""
import re
import shutil
import subprocess
import sys

import pandas as pd

from conftest import ROOT, SAMPLE


def readme_commands(section: str = "## Running on your data") -> list[str]:
    """The shell commands of a README section's bash blocks (continuations joined, comments
    and blank lines dropped)."""
    text = (ROOT / "README.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [ln.strip() for ln in joined.splitlines()
                     if ln.strip() and not ln.strip().startswith("#")]
    return commands


def test_the_readme_commands_are_the_ones_tested():
    commands = readme_commands()
    assert [c.split()[3] for c in commands] == ["discover", "check-sheet", "run"], commands
    assert all(c.startswith(".venv/bin/python -m pipeline ") for c in commands)


def test_running_on_your_data_as_written(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(sys.prefix)            # the project's venv, not activated
    exp = tmp_path / "data" / "exp1"
    sheet = pd.read_csv(SAMPLE / "sessions.tsv", sep="\t")
    for row in sheet.itertuples():                       # {animal}/{cell}/{session}/*.tif
        folder = exp / "raw" / "mouse1" / row.cell / f"day{int(row.day):02d}"
        folder.mkdir(parents=True)
        shutil.copy(SAMPLE / row.path, folder / "stack.tif")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    outputs = []
    for command in readme_commands():
        res = subprocess.run(command.replace("/data/exp1", str(exp)), shell=True, cwd=clone,
                             env=env, capture_output=True, text=True, timeout=1800)
        outputs.append(res.stdout)
        assert res.returncode == 0, f"{command}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    written = pd.read_csv(exp / "sessions.tsv", sep="\t")
    assert len(written) == len(sheet) and set(written["day"]) == set(sheet["day"])
    assert "20 planes of 256x256" in outputs[1]
    assert "cells done: 2" in outputs[2]
    results = exp / "results"
    synapses = pd.read_csv(results / "synapses.csv")
    assert set(synapses["cell"]) == {f"mouse1_{c}" for c in sheet["cell"]}   # discover's ids
    assert (results / "report.html").exists() and (results / "review" / "index.html").exists()
    assert not (exp / "raw" / ".snakemake").exists()        # nothing written into the images
