"""Temporary (issue 20, the package move): every CSV and JSON of a run on data_sample/ is
byte-identical to the digests stored before the move. Removed once the move is complete."""
import hashlib
from pathlib import Path

HERE = Path(__file__).parent


def test_sample_run_tables_identical_to_before_the_move(sample_run):
    stored = dict(line.split("  ")[::-1] for line in
                  (HERE / "data" / "sample_digests_before_move.txt").read_text().splitlines())
    found = {}
    for p in sorted(sample_run.results.rglob("*")):
        if p.suffix in (".csv", ".json") and "benchmarks" not in p.relative_to(sample_run.results).parts:
            data = p.read_bytes().replace(str(sample_run.imaging).encode(), b"<imaging>")
            found[p.relative_to(sample_run.results).as_posix()] = hashlib.sha256(data).hexdigest()
    differ = sorted(k for k in stored if found.get(k) != stored[k])
    extra = sorted(set(found) - set(stored))
    print(f"{len(stored)} tables compared; differ: {differ}; new: {extra}")
    assert not differ and not extra
