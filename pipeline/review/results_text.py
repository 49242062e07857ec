"""The report's words: a results paragraph per cell type, formatted tables, and the Methods.

Every number in a paragraph is read from ``stats/*.csv`` (and the cell, animal and synapse counts
from ``synapses.csv``) and carries its unrounded value in ``data-v`` beside its key, so a test can
check the words against the tables.  Tables show rounded values with units; an empty cell is
explained in a note under its table (no NaN, None or inf is ever shown).
"""
from __future__ import annotations

import html
import math
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def num(key: str, value, text: str) -> str:
    """A number in the words, with its key and unrounded value for checking."""
    v = repr(float(value)) if _finite(value) else ""
    return f"<span class='num' data-key='{_esc(key)}' data-v='{v}'>{_esc(text)}</span>"


def _pct(v, digits=1) -> str:
    return f"{100 * float(v):.{digits}f} %" if _finite(v) else ""


# --------------------------------------------------------------------------- per cell type
def type_summaries(stats: Path, synapses: pd.DataFrame) -> list[dict]:
    """The headline numbers of each cell type, from the statistics' tables."""
    read = lambda name: pd.read_csv(stats / f"{name}.csv") if (stats / f"{name}.csv").exists() \
        else pd.DataFrame(columns=["cell_type"])  # noqa: E731
    surv, turn, logn, kest = (read(n) for n in ("survival", "turnover", "lognormal", "kesten"))
    out = []
    for ct, rows in synapses.groupby("cell_type"):
        s = {"cell_type": ct, "cells": rows["cell"].nunique(),
             "synapses": rows.groupby(["cell", "synapse_id"]).ngroups,
             "animals": rows.loc[rows["animal"].astype(str).str.len() > 0, "animal"].nunique()
             if "animal" in rows.columns and rows["animal"].notna().any() else 0}
        sv = surv[surv["cell_type"] == ct].sort_values("day")
        if len(sv):
            last = sv.iloc[-1]
            s.update(last_day=float(last["day"]), survival=last["survival"], survival_sem=last["sem"],
                     km=last["km_survival"], km_low=last["km_ci_low"], km_high=last["km_ci_high"])
        tv = turn[turn["cell_type"] == ct]
        if len(tv):
            s.update(turnover=tv["dynamic"].mean(), added=tv["added"].mean(),
                     lost=tv["lost"].mean(), interval=float((tv["day_next"] - tv["day"]).mean()))
        lv = logn[logn["cell_type"] == ct].sort_values("day")
        if len(lv):
            first = lv.iloc[0]
            s.update(sigma=first["sigma"], sigma_low=first["sigma_ci_low"],
                     sigma_high=first["sigma_ci_high"], ks_p=first["ks_p"])
        kv = kest[(kest["cell_type"] == ct) & (kest.get("method") == "maximum_likelihood")]
        if len(kv) and "delta_aic" in kv.columns and kv["delta_aic"].notna().any():
            best = kv.loc[kv["delta_aic"].idxmin()]
            both = kv[kv["model"] == "both"]
            s.update(kesten_best=str(best["model"]),
                     additive_p=both["lrt_additive_p"].iloc[0] if len(both) else np.nan)
        out.append(s)
    return out


def summary_paragraph(s: dict) -> str:
    """One paragraph of results for a cell type, in words."""
    ct = s["cell_type"]
    k = lambda name: f"{ct}.{name}"  # noqa: E731
    parts = [f"<b>{_esc(ct)}</b>: {num(k('synapses'), s['synapses'], str(s['synapses']))} "
             f"synapses on {num(k('cells'), s['cells'], str(s['cells']))} "
             f"cell{'s' if s['cells'] != 1 else ''}"
             + (f" of {num(k('animals'), s['animals'], str(s['animals']))} "
                f"animal{'s' if s['animals'] != 1 else ''}" if s["animals"] else
                " (animals not given in the sessions sheet)") + "."]
    if _finite(s.get("survival")):
        sem = (f" ± {num(k('survival_sem'), s['survival_sem'], _pct(s['survival_sem']))} (SEM "
               "over cells)" if _finite(s.get("survival_sem")) else " (one cell: no SEM)")
        km = (f"; Kaplan-Meier survival without any absence "
              f"{num(k('km'), s['km'], _pct(s['km']))} (95 % CI "
              f"{num(k('km_low'), s['km_low'], _pct(s['km_low']))} to "
              f"{num(k('km_high'), s['km_high'], _pct(s['km_high']))})"
              if _finite(s.get("km")) else "")
        parts.append(f"Of the synapses present in the first session, "
                     f"{num(k('survival'), s['survival'], _pct(s['survival']))}{sem} were present "
                     f"on day {num(k('last_day'), s['last_day'], '%g' % s['last_day'])}{km}.")
    if _finite(s.get("turnover")):
        parts.append(f"Per interval of {s['interval']:g} days, "
                     f"{num(k('added'), s['added'], _pct(s['added']))} of synapses were new and "
                     f"{num(k('lost'), s['lost'], _pct(s['lost']))} were lost (turnover "
                     f"{num(k('turnover'), s['turnover'], _pct(s['turnover']))}, mean over "
                     "intervals).")
    if _finite(s.get("sigma")):
        ci = (f" (95 % CI {num(k('sigma_low'), s['sigma_low'], '%.2f' % s['sigma_low'])}-"
              f"{num(k('sigma_high'), s['sigma_high'], '%.2f' % s['sigma_high'])})"
              if _finite(s.get("sigma_low")) else "")
        p = s.get("ks_p")
        shape = ("" if not _finite(p) else
                 f", {'consistent with' if p >= 0.05 else 'departing from'} a log-normal "
                 f"distribution (Kolmogorov-Smirnov p = {num(k('ks_p'), p, '%.2g' % p)})")
        parts.append(f"In the first session the SD of ln weight was "
                     f"{num(k('sigma'), s['sigma'], '%.2f' % s['sigma'])}{ci}{shape}.")
    if s.get("kesten_best"):
        p = s.get("additive_p")
        needed = ("needed" if _finite(p) and p < 0.05 else "not needed")
        ptext = (f" (likelihood-ratio test p = {num(k('additive_p'), p, '%.2g' % p)})"
                 if _finite(p) else "")
        model = {"both": "combined (multiplicative and additive)"}.get(s["kesten_best"],
                                                                      s["kesten_best"])
        parts.append(f"Weight changes: of the Kesten models the {_esc(model)} one fits best by "
                     f"AIC; an additive term is {needed}{ptext}.")
    return "<p class='summary'>" + " ".join(parts) + "</p>"


# --------------------------------------------------------------------------- tables
def html_table(df: pd.DataFrame, columns: list[tuple], *, empty: dict | None = None,
               table_class: str = "t") -> str:
    """A formatted table: ``columns`` is a list of (column or function of the row, header,
    format); a value that is missing or not finite shows empty, and ``empty[header]`` says
    why in a note under the table (only for columns that have empty cells)."""
    empty = empty or {}
    head = "".join(f"<th>{_esc(h)}</th>" for _, h, _ in columns)
    rows, blank = [], set()
    for _, r in df.iterrows():
        tds = []
        for col, header, fmt in columns:
            v = col(r) if callable(col) else r.get(col, None)
            if isinstance(v, str):
                text = v if v not in ("nan", "None", "inf", "-inf") else ""
            elif _finite(v):
                text = fmt.format(float(v)) if fmt else str(v)
            else:
                text = ""
            if text == "":
                blank.add(header)
            cls = " class='n'" if not isinstance(v, str) else ""
            tds.append(f"<td{cls}>{_esc(text)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    notes = [f"{h}: {empty[h]}" for _, h, _ in columns if h in blank and h in empty]
    note = ("<p class='note'>Empty cells: " + "; ".join(_esc(n) for n in notes) + ".</p>"
            if notes else "")
    return (f"<div class='wide'><table class='{table_class}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{note}")


def ci(low: str, high: str, fmt: str = "{:.3g}"):
    """A column function: '[low, high]' of two columns, empty when either is missing."""
    def text(r):
        a, b = r.get(low), r.get(high)
        return f"[{fmt.format(a)}, {fmt.format(b)}]" if _finite(a) and _finite(b) else ""
    return text


def pm(value: str, sem: str, scale: float = 100, fmt: str = "{:.1f}"):
    """A column function: 'value ± sem' (sem left off when missing)."""
    def text(r):
        v, e = r.get(value), r.get(sem)
        if not _finite(v):
            return ""
        return fmt.format(scale * v) + (f" ± {fmt.format(scale * e)}" if _finite(e) else "")
    return text


# --------------------------------------------------------------------------- methods
SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
PATH_KEYS = {"sessions", "results", "curation"}


def defaults() -> dict:
    """Every setting's default, from the config schema (``{section: {key: value}}``)."""
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node):
        if node.get("type") == "object" and "properties" in node:
            return {k: walk(v) for k, v in node["properties"].items()}
        return node.get("default")
    return walk(schema)


def changed_settings(settings: dict, base: dict | None = None, prefix: str = "") -> list[tuple]:
    """(dotted key, value, default) of every setting that differs from its default."""
    base = defaults() if base is None else base
    out = []
    for key, value in settings.items():
        if not prefix and key in PATH_KEYS:
            continue
        name = f"{prefix}{key}"
        default = base.get(key) if isinstance(base, dict) else None
        if isinstance(value, dict):
            out += changed_settings(value, default if isinstance(default, dict) else {},
                                    name + ".")
        elif _norm(value) != _norm(default):
            out.append((name, value, default))
    return out


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def versions() -> dict:
    """The software a run used (the pipeline's own version and commit first)."""
    out = {}
    for name in ("synapse-pipeline", "snakemake", "numpy", "scipy", "scikit-image", "pandas",
                 "statsmodels", "tifffile", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    repo = Path(__file__).resolve().parents[2]
    head = repo / ".git" / "HEAD"
    if head.exists():           # the commit, read without running git
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            target = repo / ".git" / ref[5:]
            packed = repo / ".git" / "packed-refs"
            if target.exists():
                ref = target.read_text().strip()
            elif packed.exists():
                ref = next((ln.split()[0] for ln in packed.read_text().splitlines()
                            if ln.endswith(" " + ref[5:])), "")
        if ref:
            out["synapse-pipeline"] = f"{out.get('synapse-pipeline', '')} (commit {ref[:10]})"
    return out


STATS_DEFINITIONS = (
    "Survival is the share of the synapses present in a cell's first session that are present "
    "on a later day, among those observed that day, averaged over cells (mean ± SEM); the "
    "Kaplan-Meier estimate counts a synapse lost at its first absence, synapses born later "
    "entering late. Turnover per interval is the share of synapses new (of those present after) "
    "plus the share lost (of those present before), over the synapses observed at both ends, "
    "averaged over cells. Log-normality was tested per session (Kolmogorov-Smirnov; AIC against "
    "gamma and normal fits). Weight changes between consecutive sessions were fitted by a "
    "Kesten process (mean a*w + c, variance b*w^2 + d): binned moments as published, and by "
    "maximum likelihood on persisting pairs with multiplicative, additive and combined models "
    "compared by AIC and likelihood-ratio tests (bootstrap CIs over synapses). A Markov chain over "
    "absence and equal-count bins of ln weight gives transition probabilities, the stationary "
    "distribution and predicted survival. The loss hazard against ln weight is a logistic and a "
    "grouped-time Cox (complementary log-log) regression. Censoring: a synapse-session outside "
    "the stack, or in a session not reliably registered, is not observed; it has no call and "
    "every statistic leaves it out (it is never counted lost). Cell types are compared over "
    "cells as replicates (at least stats.min_cells_per_type cells per type).")


def methods_paragraph(settings: dict | None, *, sessions: pd.DataFrame | None = None,
                      spine_cells=()) -> str:
    """Methods text generated from a run: stages, changed settings, software, definitions
    (``spine_cells``: cells whose synapses are spines of a cell fill)."""
    changed = changed_settings(settings) if settings else None
    data = ""
    if sessions is not None and len(sessions):
        per_cell = sessions.groupby("cell")["session"].nunique()
        data = (f"{len(per_cell)} cells were imaged in {int(per_cell.min())}"
                + (f"-{int(per_cell.max())}" if per_cell.max() != per_cell.min() else "")
                + " sessions each. ")
    stages = (
        "Image stacks were analysed with synapse-pipeline, a Snakemake workflow. Per cell, each "
        "session's stack was registered to the first session (rotation search and phase "
        "correlation, an affine fit to matched puncta, block-wise local corrections measured on "
        "the images and a smooth warp; the registration's own error was estimated over the "
        "field). PSD-95 puncta were detected after subtracting the morphology channel's share "
        "of the PSD-95 channel (for a cell imaged in the PSD-95 channel alone: the shaft's "
        "diffuse PSD-95, estimated from that channel by openings with in-plane lines, with the "
        "threshold in the noise around each peak and puncta kept near the dendrite it "
        "outlines), linked across sessions by optimal assignment with a distance gate "
        "and gap closing, and corrected by hand where needed (curation file). Each synapse's "
        "weight in every session is its background-subtracted integrated PSD-95 fluorescence in "
        "an ellipsoidal aperture at its registered position, normalised per cell and session; "
        "presence in each session was called from all sessions' evidence by a hidden Markov "
        "model per synapse fitted to the cell's own data: a two-state model (a present "
        "synapse's signal log-normal over the cell; with <code>presence.dim_present</code> true "
        "below, mixed, beside sessions where the synapse was clearly seen, with a dim component "
        "down to what an absent one measures), then, in cells of PSD-95 puncta, for synapses "
        "it saw clearly at least once, a model fitted alike with two absent states, not yet "
        "born and lost, in which a lost synapse did not return in its track (with "
        "<code>presence.lost_for_good</code> true below also in cells of spines; false below: "
        "in none, and without <code>presence.signal_memory</code> the two-state calls stood; "
        "with signal_memory true below, the present state carried the synapse's own signal, "
        "drifting between sessions by a multiplicative Markov step with losses likelier for "
        "small synapses). In cells imaged in the PSD-95 channel alone and in cells whose shaft "
        "the run names as textured (with <code>presence.detection_evidence</code> a number "
        "below: in every cell; one_channel: the first only; null: in none), "
        "whether the detector found a punctum in each session entered the calls beside its "
        "signal, the probability of finding a present synapse at each signal calibrated on the "
        "cell's sessions between a synapse's first and last detection. ")
    if spine_cells:
        stages += (
            f"For {', '.join(map(_esc, sorted(spine_cells)))} (dendritic spines of a cell fill) spine heads were "
            "detected instead in a matched-filtered projection along z, beside the shaft "
            "estimated as the median along its own direction, with the shaft's core left out "
            "and the threshold in the photon noise at the shaft's level; each spine's weight is "
            "its head's intensity over its shaft's. ")
    if changed is None:
        setting = "The run's settings were not recorded with this report. "
    elif changed:
        setting = ("Settings that differ from the defaults: "
                   + "; ".join(f"<code>{_esc(k)}</code> = {_esc(v)} (default {_esc(d)})"
                               for k, v, d in changed) + ". ")
    else:
        setting = "All settings were the defaults. "
    soft = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in versions().items())
    return (f"<p class='methods'>{data}{stages}{setting}Software: {soft}. "
            f"{_esc(STATS_DEFINITIONS)}</p>")
