"""The cluster path, for real: a one-node SLURM cluster on this machine runs data_sample/ through
Snakemake's SLURM executor with profiles/slurm, and its tables equal those of a local run.

It needs root: it installs Debian's slurm-wlm and munge when they are missing and starts munged,
slurmctld and slurmd itself (stopped by their process ids and their state removed afterwards).
Where that is impossible the test is skipped and says why.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE, job_stats, same_tables, snakemake

# Job steps started inside the batch jobs did not find a configuration named by SLURM_CONF
# (executor plugin 2.8.0), so the file goes where SLURM looks by default; one written by this test
# carries MARK, and a configuration without it (a real cluster's) is never touched.
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by tests/test_slurm.py (removed when the test ends)"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "sinfo", "scancel")
# Test-only executor flags (not in the profile users copy): this cluster has no accounting
# database, so job states come from squeue and jobs have no account; poll every few seconds;
# keep the SLURM logs of successful jobs so that the test can read which rules ran inside them.
TEST_FLAGS = ["--slurm-no-account", "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]


def _install_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("not root: installing slurm-wlm/munge and starting munged, slurmctld and slurmd "
                    "needs root")
    if SLURM_CONF.exists() and MARK not in SLURM_CONF.read_text(errors="replace"):
        pytest.skip(f"{SLURM_CONF} exists and was not written by this test: this machine belongs to a "
                    "real SLURM cluster, whose configuration the test does not touch")
    if all(shutil.which(b) for b in DAEMONS):
        return
    if shutil.which("apt-get") is None:
        pytest.skip("slurm-wlm and munge are not installed and there is no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if res.returncode != 0:
            pytest.skip(f"could not install slurm-wlm and munge ({' '.join(cmd)} exited "
                        f"{res.returncode}): {res.stderr.strip()[-400:]}")
    missing = [b for b in DAEMONS if shutil.which(b) is None]
    if missing:
        pytest.skip(f"after installing slurm-wlm and munge, still missing: {', '.join(missing)}")


def _memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        total_kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:"))
    # below what slurmd measures, or the node is drained for having less memory than configured
    return int(total_kb / 1024 * 0.9)


def _slurm_conf(state: Path, host: str) -> str:
    return "\n".join([
        MARK,
        "ClusterName=pipelinetest",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={state / 'munge.socket'}",
        "SlurmctldPort=16817",
        "SlurmdPort=16818",
        f"StateSaveLocation={state / 'ctld'}",
        f"SlurmdSpoolDir={state / 'spool'}",
        f"SlurmctldPidFile={state / 'slurmctld.pid'}",
        f"SlurmdPidFile={state / 'slurmd.pid'}",
        f"SlurmctldLogFile={state / 'slurmctld.log'}",
        f"SlurmdLogFile={state / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} "
        "State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node SLURM cluster (munged, slurmctld, slurmd) with its state in a temporary folder."""
    _install_or_skip()
    # short path: a unix socket's path must stay below 108 bytes
    state = Path(tempfile.mkdtemp(prefix="slurm-test-", dir="/tmp"))
    state.chmod(0o755)  # munged wants every directory above its socket traversable
    for sub in ("ctld", "spool"):
        (state / sub).mkdir()
    key = state / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(_slurm_conf(state, host))
    procs: list[subprocess.Popen] = []
    out = open(state / "daemons.out", "w")
    try:
        procs.append(subprocess.Popen(
            ["munged", "--foreground", "--force", f"--socket={state / 'munge.socket'}",
             f"--key-file={key}", f"--pid-file={state / 'munged.pid'}",
             f"--seed-file={state / 'munged.seed'}", f"--log-file={state / 'munged.log'}"],
            stdout=out, stderr=subprocess.STDOUT))
        _wait_for(lambda: (state / "munge.socket").exists(), "munged's socket", state)
        procs.append(subprocess.Popen(["slurmctld", "-D", "-c"], stdout=out, stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(["slurmd", "-D"], stdout=out, stderr=subprocess.STDOUT))
        _wait_for(lambda: _node_state() == "idle", "the node to become idle in sinfo", state)
        yield state
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, timeout=30)
        _stop(procs)
        out.close()
        if SLURM_CONF.exists() and MARK in SLURM_CONF.read_text(errors="replace"):
            SLURM_CONF.unlink()
        shutil.rmtree(state, ignore_errors=True)


def _node_state() -> str:
    res = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True,
                         timeout=30)
    return res.stdout.strip()


def _wait_for(ready, what: str, state: Path, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(1)
    logs = "".join(p.read_text(errors="replace")[-1500:] for p in sorted(state.glob("*.log")))
    logs += (state / "daemons.out").read_text(errors="replace")[-1500:]
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; daemon logs:\n{logs}")


def _rules_in(log_text: str) -> list[str]:
    """Rules a SLURM job's log shows executing (the job step runs each as a local rule)."""
    return re.findall(r"^local(?:rule|checkpoint) (\w+):", log_text, flags=re.M)


def test_pipeline_runs_through_slurm_and_its_tables_equal_a_local_run(slurm_cluster, sample_run,
                                                                       tmp_path):
    results = tmp_path / "results"
    work = tmp_path / "work"
    res = snakemake(work, "--profile", str(ROOT / "profiles" / "slurm"), *TEST_FLAGS,
                    "--config", f"sessions={sample_run.sheet}", f"results={results}",
                    timeout=1500)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]

    # every job went through the scheduler: the profile groups a cell's jobs into one SLURM job and
    # collect/stats/report into another; each id Snakemake reports was submitted to and completed
    # by this slurmctld, and the rules run inside those SLURM jobs are every job of the workflow
    # except the target rule `all`, which has no command
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    n_cells = len({line.split("\t")[0] for line in (SAMPLE / "sessions.tsv").read_text().splitlines()[1:]
                   if line.strip()})
    assert len(job_ids) == n_cells + 1, log[-4000:]
    ctld = (slurm_cluster / "slurmctld.log").read_text(errors="replace")
    for jid in job_ids:
        assert f"_slurm_rpc_submit_batch_job: JobId={jid} " in ctld
        assert f"_job_complete: JobId={jid} done" in ctld
    local_rules = re.findall(r"^local(?:rule|checkpoint) (\w+):", log, flags=re.M)
    assert local_rules == ["all"], local_rules
    counts = job_stats(log)
    assert counts.get("ingest") == 12, counts
    expected = sorted(rule for rule, n in counts.items() if rule != "all" for _ in range(n))
    slurm_logs = list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} == set(job_ids)
    ran_in_slurm = sorted(rule for p in slurm_logs for rule in _rules_in(p.read_text(errors="replace")))
    assert ran_in_slurm == expected

    # same tables, byte for byte: every CSV and JSON the local run wrote (per-stage tables, the
    # transforms, synapses.csv and the statistics)
    n_tables, different = same_tables(sample_run.results, results)
    assert n_tables > 40
    assert different == [], f"tables that differ between the SLURM and the local run: {different}"
