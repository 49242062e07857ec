"""The report's formatted tables of the statistics (rounded, with units; empty cells explained).

Each table shows the columns a reader needs; the CSV beside it (linked) has every column.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .results_text import ci, html_table, pm

ONE_CELL = "a single cell: no spread over cells"
NOT_ESTIMATED = "not estimated (see the note column of the CSV)"


def _interval(r) -> str:
    return f"{r['day']:g} to {r['day_next']:g}"


def turnover_table(df: pd.DataFrame) -> str:
    return html_table(df, [
        ("cell_type", "cell type", None), (_interval, "days", None),
        (pm("added", "added_sem"), "added (% ± SEM)", None),
        (pm("lost", "lost_sem"), "lost (% ± SEM)", None),
        (pm("dynamic", "dynamic_sem"), "turnover (% ± SEM)", None),
        ("n_cells", "cells", "{:.0f}")],
        empty={})


def survival_table(df: pd.DataFrame) -> str:
    return html_table(df, [
        ("cell_type", "cell type", None), ("day", "day", "{:g}"),
        (pm("survival", "sem"), "present of first-session synapses (% ± SEM)", None),
        ("n_cells", "cells", "{:.0f}"), ("n_synapses", "synapses observed", "{:.0f}"),
        ("n_not_observed", "not observed", "{:.0f}"),
        ("km_survival", "Kaplan-Meier", "{:.3f}"),
        (ci("km_ci_low", "km_ci_high", "{:.3f}"), "95 % CI", None)],
        empty={"Kaplan-Meier": "no synapse at risk that day",
               "95 % CI": "no synapse at risk that day"})


def lognormal_table(df: pd.DataFrame) -> str:
    def best(r):
        aic = {k: r.get(f"aic_{k}") for k in ("lognormal", "gamma", "normal")}
        aic = {k: v for k, v in aic.items() if pd.notna(v)}
        return min(aic, key=aic.get) if aic else ""
    return html_table(df, [
        ("cell_type", "cell type", None), ("day", "day", "{:g}"), ("n", "synapses", "{:.0f}"),
        ("mu", "mean ln w", "{:.2f}"), ("sigma", "SD ln w", "{:.2f}"),
        (ci("sigma_ci_low", "sigma_ci_high", "{:.2f}"), "95 % CI of SD", None),
        ("ks_p", "KS p (log-normal)", "{:.2g}"), (best, "best fit by AIC", None),
        ("sigma_noise_corrected", "SD ln w, noise-corrected", "{:.2f}")],
        empty={"SD ln w, noise-corrected": "no repeat imaging of this cell type (a session "
               "imaged twice on one day) to estimate the measurement noise",
               "95 % CI of SD": "too few synapses", "KS p (log-normal)": "too few synapses",
               "best fit by AIC": "too few synapses"})


def kesten_table(df: pd.DataFrame) -> str:
    def name(r):
        return ("binned moments (published)" if r.get("method") == "binned_moments"
                else "ML, " + {"both": "combined"}.get(r.get("model"), str(r.get("model", ""))))
    return html_table(df, [
        ("cell_type", "cell type", None), (name, "fit", None),
        ("a", "a (mean slope)", "{:.3f}"), (ci("a_ci_low", "a_ci_high"), "95 % CI of a", None),
        ("c", "c (mean offset)", "{:.3f}"),
        ("b", "b (multiplicative var.)", "{:.3f}"), (ci("b_ci_low", "b_ci_high"), "95 % CI of b", None),
        ("d", "d (additive var.)", "{:.3f}"), (ci("d_ci_low", "d_ci_high"), "95 % CI of d", None),
        ("n_pairs", "pairs", "{:.0f}"), ("delta_aic", "ΔAIC", "{:.1f}"),
        ("lrt_additive_p", "p, additive term", "{:.2g}")],
        empty={"95 % CI of a": "no bootstrap CI for the binned fit",
               "95 % CI of b": "no bootstrap CI for the binned fit",
               "95 % CI of d": "no bootstrap CI for the binned fit",
               "ΔAIC": "AIC compares the maximum-likelihood models only",
               "p, additive term": "the test is reported once, on the combined model's row",
               "a (mean slope)": NOT_ESTIMATED, "b (multiplicative var.)": NOT_ESTIMATED,
               "c (mean offset)": NOT_ESTIMATED, "d (additive var.)": NOT_ESTIMATED,
               "pairs": NOT_ESTIMATED})


def hazard_table(df: pd.DataFrame) -> str:
    return html_table(df[df["term"] != "intercept"] if "term" in df.columns else df, [
        ("cell_type", "cell type", None), ("model", "model", None), ("term", "term", None),
        ("ratio", "odds / hazard ratio per unit ln w", "{:.2f}"),
        (ci("ratio_ci_low", "ratio_ci_high", "{:.2f}"), "95 % CI", None), ("p", "p", "{:.2g}"),
        ("n_intervals", "intervals", "{:.0f}"), ("n_losses", "losses", "{:.0f}"),
        ("n_cells", "cells", "{:.0f}")],
        empty={"odds / hazard ratio per unit ln w": "too few losses to fit",
               "95 % CI": "too few losses to fit", "p": "too few losses to fit"})


def comparison_table(df: pd.DataFrame) -> str:
    def diff(r):
        d = r.get("difference")
        if not pd.notna(d):
            return ""
        band = ci("ci_low", "ci_high")(r)
        return f"{d:.3g}" + (f" {band}" if band else "")
    return html_table(df, [
        ("quantity", "quantity", None), ("cell_type_a", "type a", None),
        ("value_a", "a", "{:.3g}"), ("cell_type_b", "type b", None), ("value_b", "b", "{:.3g}"),
        (diff, "b - a [95 % CI]", None), ("test", "test", None), ("p", "p", "{:.2g}"),
        ("p_type_by_animal", "type x animal p", "{:.2g}"),
        ("n_a", "n a", "{:.0f}"), ("n_b", "n b", "{:.0f}"), ("note", "note", None)],
        empty={"p": "no test: too few cells or animals per type (see the note)",
               "type x animal p": "not tested: the types were not compared within animals, or no "
                                  "animal holds two cells of a type",
               "note": "nothing to note"})


def summary_table(df: pd.DataFrame) -> str:
    return html_table(df, [
        ("cell_type", "cell type", None), ("quantity", "quantity", None),
        ("estimate", "estimate", "{:.3g}"), (ci("ci_low", "ci_high", "{:.3g}"), "95 % CI", None),
        ("n_cells", "cells", "{:.0f}"), ("n_animals", "animals", "{:.0f}"),
        ("n_sessions", "sessions", "{:.0f}"), ("note", "note", None)],
        empty={"95 % CI": "fewer than 3 cells (or animals, where cells share them): no "
                          "interval", "note": "nothing to note"})


def density_table(df: pd.DataFrame) -> str:
    return html_table(df, [
        ("cell_type", "cell type", None), ("day", "day", "{:g}"), ("n_cells", "cells", "{:.0f}"),
        ("density_per_um", "synapses per um", "{:.3f}"),
        (ci("ci_low", "ci_high", "{:.3f}"), "95 % CI", None),
        ("change_from_first", "change from the first session", "{:+.1%}"),
        (ci("change_ci_low", "change_ci_high", "{:+.1%}"), "95 % CI of the change", None)],
        empty={"95 % CI": "fewer than 3 cells (or animals): no interval",
               "95 % CI of the change": "first session, or fewer than 3 cells (or animals)"})


#: stats table -> (heading, formatter)
TABLES = {"summary": ("Headline quantities with 95 % CIs", summary_table),
          "density": ("Synapse density per um of dendrite", density_table),
"turnover": ("Turnover per interval", turnover_table),
          "survival": ("Survival of first-session synapses", survival_table),
          "lognormal": ("Log-normal fits per session", lognormal_table),
          "kesten": ("Kesten fits of weight changes", kesten_table),
          "hazard": ("Loss hazard against weight", hazard_table),
          "celltype_comparison": ("Cell types compared", comparison_table)}


def stats_tables(stats: Path, rel) -> list[str]:
    """HTML of every formatted table, with links to every CSV (``rel``: path -> link)."""
    parts = []
    for name, (heading, fmt) in TABLES.items():
        path = stats / f"{name}.csv"
        if path.exists():
            parts.append(f"<h3>{heading} <small>(<a href='{rel(path)}'>{name}.csv</a>)</small>"
                         f"</h3>" + fmt(pd.read_csv(path)))
    rest = [p for p in sorted(stats.glob("*.csv")) if p.stem not in TABLES]
    if rest:
        parts.append("<p>Further tables: " + ", ".join(
            f"<a href='{rel(p)}'>{p.name}</a>" for p in rest) + " (columns: docs/outputs.md).</p>")
    return parts
