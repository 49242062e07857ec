"""The science record's studies run again, beside their earlier records.

    python benchmarks/science_diff.py --before REV [--after REV] [--record benchmarks/science_runs]
                                      [--kinds effect] [--out FILE]

``make bench-science`` keeps each study's scores in ``benchmarks/science_runs/``; a study run
again (``science_benchmark.py --rerun``) overwrites them, and git keeps the earlier ones.  For
the studies whose record now names another commit than at ``REV``, this prints per cell type
and quantity the mean estimate before and now, the truth table's mean, the mean absolute
error of each against it and how many of their 95 % CIs hold it; and per test how many
studies find the difference (significant with the truth table's sign) before and now.  What
changed between the two commits is what the records' commits say, not only one setting.
``--after REV`` takes the records as git holds them at ``REV`` instead of the working tree's (a
comparison the README quotes stays repeatable after the records move on).
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _read(text: str) -> pd.DataFrame:
    # the study kind "null" must stay a word (read_csv takes it for a missing value)
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def records_at(rev: str, record: Path, name: str, studies: list[tuple[str, int]]) -> pd.DataFrame:
    """The ``name`` records (e.g. ``quantities``) of ``studies`` as git holds them at ``rev``."""
    rel = record.resolve().relative_to(ROOT)
    frames = []
    for kind, seed in studies:
        out = subprocess.run(["git", "show", f"{rev}:{rel.as_posix()}/{kind}_{seed}_{name}.csv"],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode == 0:
            frames.append(_read(out.stdout))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def records_now(record: Path, name: str, studies: list[tuple[str, int]],
                after: str | None = None) -> pd.DataFrame:
    """The ``name`` records of ``studies`` in the working tree, or at git revision ``after``."""
    if after is not None:
        return records_at(after, record, name, studies)
    return pd.concat([_read((record / f"{k}_{s}_{name}.csv").read_text()) for k, s in studies],
                     ignore_index=True)


def rerun_studies(record: Path, rev: str, kinds: list[str],
                  after: str | None = None) -> list[tuple[str, int, str, str]]:
    """(kind, seed, commit before, commit now) of the studies whose record changed commit
    between ``rev`` and the working tree (or revision ``after``)."""
    out = []
    for path in sorted(record.glob("*_study.csv")):
        kind, seed = path.stem.split("_")[:2]
        if kind not in kinds:
            continue
        now = records_now(record, "study", [(kind, int(seed))], after)
        if not len(now):
            continue
        before = records_at(rev, record, "study", [(kind, int(seed))])
        if len(before) and str(before["commit"].iloc[0]) != str(now["commit"].iloc[0]):
            out.append((kind, int(seed), str(before["commit"].iloc[0]), str(now["commit"].iloc[0])))
    return sorted(out, key=lambda s: (s[0], s[1]))


def compare_quantities(before: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    """Per cell type and quantity: mean estimate, |error| against the truth table and CIs
    holding it, before and now (the same studies)."""
    keys = ["study", "seed", "cell_type", "quantity"]
    both = before.merge(now, on=keys, suffixes=("_before", "_now"))
    both["err_before"] = (both["estimate_before"] - both["estimate_truth_now"]).abs()
    both["err_now"] = (both["estimate_now"] - both["estimate_truth_now"]).abs()
    covered = {f"cover_{w}": both[f"covers_truth_table_{w}"].astype(str).eq("True")
               & both[f"has_ci_{w}"].astype(str).eq("True") for w in ("before", "now")}
    both = both.assign(**covered)
    grouped = both.groupby(["cell_type", "quantity"], sort=True)
    table = pd.DataFrame({
        "studies": grouped.size(),
        "mean before": grouped["estimate_before"].mean(),
        "mean now": grouped["estimate_now"].mean(),
        "truth table": grouped["estimate_truth_now"].mean(),
        "|error| before": grouped["err_before"].mean(),
        "|error| now": grouped["err_now"].mean(),
        "CIs holding it, before": grouped["cover_before"].sum().astype(int),
        "now": grouped["cover_now"].sum().astype(int)})
    return table.reset_index()


def compare_conclusions(before: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    """Per test, on the images: studies that find the difference before and now."""
    def found(frame):
        images = frame[frame["source"] == "images"]
        hit = images["significant"].astype(str).eq("True") & images["right_sign"].astype(str).eq("True")
        return images.assign(found=hit).groupby("test")["found"].agg(["size", "sum"])

    b, n = found(before), found(now)
    return pd.DataFrame({"studies": n["size"], "found before": b["sum"].reindex(n.index),
                         "found now": n["sum"]}).reset_index()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, metavar="REV",
                    help="the git revision whose records are the earlier runs")
    ap.add_argument("--after", default=None, metavar="REV",
                    help="the git revision whose records are the later runs (default: the "
                         "working tree's)")
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "science_runs"))
    ap.add_argument("--kinds", default="effect")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    record = Path(args.record).resolve()
    if not record.is_relative_to(ROOT):
        ap.error(f"--record {record}: git holds the earlier records only inside the repository "
                 f"({ROOT})")
    studies = rerun_studies(record, args.before, args.kinds.split(","), args.after)
    if not studies:
        print(f"no study in {record} was run again since {args.before}"
              + (f" by {args.after}" if args.after else ""))
        return 0
    pairs = [(k, s) for k, s, _, _ in studies]
    before = {name: records_at(args.before, record, name, pairs)
              for name in ("quantities", "conclusions")}
    now = {name: records_now(record, name, pairs, args.after)
           for name in ("quantities", "conclusions")}
    lines = [f"Studies run again ({len(studies)}): "
             + "; ".join(f"{k} {s} ({b} -> {n})" for k, s, b, n in studies), "",
             compare_quantities(before["quantities"], now["quantities"]).round(4).to_markdown(index=False),
             "", compare_conclusions(before["conclusions"], now["conclusions"]).to_markdown(index=False)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
