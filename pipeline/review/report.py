"""The HTML report: one page linking the tables, plots and QC figures."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd

from ..contract import STATS_PLOTS, Layout
from ..stats.plots import CAPTIONS
from .report_tables import stats_tables
from .results_text import html_table, methods_paragraph, summary_paragraph, type_summaries


def input_failures(results: Path) -> list[str]:
    """'cell / session: reason' for every session that failed the input checks (check/*.json)."""
    out = []
    for js in sorted(Layout(results).stage_folder("check").glob("*.json")):
        rec = json.loads(js.read_text())
        out += [f"cell {rec['cell']}, session {s['session']}: {s['error']}"
                for s in rec["sessions"] if not s["ok"]]
    return out


def input_warnings(results: Path) -> list[str]:
    """What the check stage found suspicious but not fatal (e.g. channels that look swapped)."""
    out = []
    for js in sorted(Layout(results).stage_folder("check").glob("*.json")):
        rec = json.loads(js.read_text())
        out += [f"cell {rec['cell']}, session {s['session']}: {w}"
                for s in rec["sessions"] for w in s.get("warnings", [])]
    return out


def registration_warnings(results: Path) -> list[str]:
    """Each session whose registration the register stage judged unreliable, where it
    estimates its own error above its limit somewhere, or where its morphology channel stays
    unlike the reference's after registration (the regions, in the reference frame)."""
    out = []
    layout = Layout(results)
    for folder in layout.cell_folders("register"):
        for js in sorted(folder.glob("*.json")):
            r = json.loads(js.read_text())
            where = f"cell {r.get('cell', folder.name)}, session {r.get('session', js.stem)}"
            if not r.get("reliable", True):
                out.append(f"{where}: registration unreliable ({r.get('n_matches')} matched "
                           f"puncta of {r.get('expected_matches')} expected, overlap "
                           f"{r.get('overlap', float('nan')):.2f}); its puncta are not tracked")
            regions = r.get("misregistered_regions") or []
            if regions:
                limit = (r.get("error") or {}).get("limit_um", 0.5)
                boxes = "; ".join(f"y {g['y_um'][0]:.0f}-{g['y_um'][1]:.0f} um, x "
                                  f"{g['x_um'][0]:.0f}-{g['x_um'][1]:.0f} um (up to "
                                  f"{g['error_um']:.1f} um)" for g in regions)
                out.append(f"{where}: registration error estimated above {limit:g} um in "
                           f"{len(regions)} region(s) of the reference frame: {boxes}; rows "
                           "there carry the quality flag 'misregistered' (see its QC figure)")
            unlike = r.get("dissimilar_regions") or []
            if unlike:
                boxes = "; ".join(f"y {g['y_um'][0]:.0f}-{g['y_um'][1]:.0f} um, x "
                                  f"{g['x_um'][0]:.0f}-{g['x_um'][1]:.0f} um (similarity "
                                  f"{g['similarity']:.2f})" for g in unlike)
                out.append(f"{where}: after registration the morphology channel is unlike the "
                           f"reference's in {len(unlike)} region(s) of the reference frame: "
                           f"{boxes}; misregistered there, or the dendrite left the stack's "
                           "depth or changed: look at its QC figure before trusting rows there")
    return out


def detection_warnings(results: Path) -> list[str]:
    """Each session with implausibly many or few detections for its volume or its cell (the
    track stage's ``track/<cell>/detections.json``)."""
    layout = Layout(results)
    found = (layout.path("track_detections", cell=f.name)
             for f in layout.cell_folders("track_detections"))
    return [w for js in found if js.exists()
            for w in json.loads(js.read_text()).get("warnings", [])]


def _channels_lines(results: Path, key: str) -> list[str]:
    """The lines under ``key`` of every cell's channels-stage record."""
    folder = Layout(results).path("channels", cell="x").parent
    return [line for js in sorted(folder.glob("*.json"))
            for line in json.loads(js.read_text()).get(key, [])]


def channel_warnings(results: Path) -> list[str]:
    """Each session whose morphology share departed from its cell's (the channels stage)."""
    return _channels_lines(results, "warnings")


def stats_warnings(results: Path, *, alpha: float = 0.05) -> list[str]:
    """Each cell-type difference compared within animals whose size the animals' own
    differences doubt (type x animal interaction p below ``alpha``): its p assumes one
    difference in every animal."""
    path = Layout(results).stats / "celltype_comparison.csv"
    if not path.exists():
        return []
    comp = pd.read_csv(path)
    if "p_type_by_animal" not in comp.columns:
        return []
    return [f"statistics, {r.quantity} ({r.cell_type_b} - {r.cell_type_a}): the difference "
            f"varies between animals (type x animal p = {r.p_type_by_animal:.2g}); its p "
            "(within animals) assumes it does not: read it beside stats.type_test: animal_means"
            for r in comp[comp["p_type_by_animal"] < alpha].itertuples()]


def channel_notes(results: Path) -> list[str]:
    """What detection did for each cell without a morphology channel (the channels stage)."""
    return _channels_lines(results, "notes")


REPORT_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222;"
       "line-height:1.45}table.t{border-collapse:collapse;font-size:12px}table.t td,table.t th"
       "{padding:2px 7px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
       "table.t td.n{text-align:right;font-variant-numeric:tabular-nums}div.wide{overflow-x:auto}"
       "figure{margin:1.2em 0}figure img{max-width:100%}figcaption{font-size:13px;max-width:"
       "900px}p.note{font-size:12px;color:#555}p.summary,p.methods{max-width:900px}"
       "h3 small{font-weight:normal}")


def _figure(png: Path, rel) -> str:
    """A statistics figure with its caption and the link to its vector twin."""
    title, caption = CAPTIONS.get(png.stem, (png.stem.replace("_", " "), ""))
    svg = png.with_suffix(".svg")
    vector = f" <a href='{rel(svg)}'>SVG</a>" if svg.exists() else ""
    return (f"<figure><img src='{rel(png)}' alt='{html.escape(title)}'><figcaption><b>"
            f"{html.escape(title)}.</b> {html.escape(caption)}{vector}</figcaption></figure>")


def _presence_table(summaries, presence) -> str:
    rows = pd.DataFrame([{"cell": sm.get("cell", js.parent.name), "model": sm["model"],
                          "rows": sm["rows"], "to_present": sm["changed_to_present"],
                          "to_absent": sm["changed_to_absent"], "uncertain": sm["uncertain"],
                          "imputed": sm.get("weights_imputed", 0),
                          "at_noise": sm.get("weights_at_noise", 0),
                          "merged": sm["fragments_merged"], "split": sm["synapses_split"],
                          "never": sm["never_present"]} for js, sm in zip(summaries, presence)])
    return html_table(rows, [
        ("cell", "cell", None), ("model", "model", None), ("rows", "synapse-sessions", "{:.0f}"),
        ("to_present", "absent to present (vs per-session detection)", "{:.0f}"),
        ("to_absent", "present to absent", "{:.0f}"), ("uncertain", "uncertain calls", "{:.0f}"),
        ("imputed", "weights imputed", "{:.0f}"),
        ("at_noise", "present, measured at noise level", "{:.0f}"),
        ("merged", "track pieces joined", "{:.0f}"),
        ("split", "synapses split at gaps", "{:.0f}"),
        ("never", "tracks never present", "{:.0f}")])


def left_out_sessions(results: Path, table: pd.DataFrame) -> str:
    """A sentence naming every session no synapse was observed in (so every statistic left it
    out), with the register stage's reason when it judged the registration unreliable."""
    seen = table.assign(_obs=table["present"].notna()).groupby(["cell", "session"])["_obs"].any()
    gone = [(c, s) for (c, s), ok in seen.items() if not ok]
    if not gone:
        return ""
    items = []
    for cell, session in gone:
        reg = Layout(results).path("register", cell=cell, session=session)
        why = "no synapse observed"
        if reg.exists() and not json.loads(reg.read_text()).get("reliable", True):
            r = json.loads(reg.read_text())
            why = (f"registration unreliable: {r.get('n_matches')} of "
                   f"{r.get('expected_matches')} expected puncta matched")
        items.append(f"cell {html.escape(str(cell))}, session {html.escape(str(session))} "
                     f"({html.escape(why)})")
    return ("<p class='summary'><b>Sessions left out of every statistic</b>: "
            + "; ".join(items) + ". See the warnings above.</p>")


EVALUATION_MARKS = ("<!-- evaluation:annotations -->", "<!-- /evaluation:annotations -->")


def annotation_section(results: Path, *, worst: int = 15) -> str:
    """Agreement with the lab's annotations (``evaluate --annotations``), if it was scored:
    per cell and pooled, and the synapses agreeing least, linked to their review strips."""
    path = Path(results) / "evaluation" / "annotations.csv"
    if not path.exists():
        return ""
    table = pd.read_csv(path)
    cols = [("cell", "cell", None), ("annotated_points", "annotated points", "{:.0f}"),
            ("recall", "recall", "{:.3f}"), ("precision", "precision", "{:.3f}"),
            ("unannotated_detections", "detections not annotated", "{:.0f}"),
            ("link_agreement", "link agreement", "{:.3f}"), ("link_recall", "link recall", "{:.3f}"),
            ("presence_agreement", "presence agreement", "{:.3f}"),
            ("added_error_pp", "added, error (pp)", "{:.2f}"),
            ("lost_error_pp", "lost, error (pp)", "{:.2f}"), ("log_weight_r", "r of ln weight", "{:.3f}")]
    out = ("<h2>Agreement with your annotations</h2><p>From <code>python -m pipeline evaluate "
           "--annotations</code> (<a href='evaluation/annotations.csv'>annotations.csv</a>; the "
           "pooled row is the mean over cells, its 95 % bootstrap CI over cells in the CSV).</p>"
           + html_table(table, cols, empty={
               "precision": "the annotation does not cover every synapse (run with --complete)",
               "detections not annotated": "the annotation covers every synapse: see precision",
               "r of ln weight": "the annotation has no intensities"}))
    syn_path = path.with_name("annotations_synapses.csv")
    if syn_path.exists():
        syn = pd.read_csv(syn_path).sort_values(["agreement", "sessions_compared"],
                                                ascending=[True, False]).head(worst)
        items = "".join(
            f"<li><a href='review/{html.escape(str(r.cell))}/index.html#syn-{int(r.synapse_id)}'>"
            f"{html.escape(str(r.cell))} synapse {int(r.synapse_id)}</a> (annotation "
            f"{int(r.annotation_id)}): {int(r.sessions_agreeing)} of {int(r.sessions_compared)} "
            "sessions agree</li>" for r in syn.itertuples())
        out += f"<h3>The synapses agreeing least</h3><ul>{items}</ul>"
    return out


def sample_check_section(results: Path) -> str:
    """Precision and recall of the run from the sample check (``evaluate --sample-check``)."""
    path = Path(results) / "evaluation" / "sample_check.csv"
    if not path.exists():
        return ""
    table = pd.read_csv(path)
    for q in ("precision", "recall"):
        table[f"{q}_ci"] = [f"{lo:.3f}-{hi:.3f}" if lo == lo else "" for lo, hi in
                            zip(table[f"{q}_ci_low"], table[f"{q}_ci_high"])]
    cols = [("cell", "cell", None), ("tiles_checked", "tiles checked", "{:.0f}"),
            ("tiles_skipped", "skipped", "{:.0f}"), ("tiles_stale", "changed since", "{:.0f}"),
            ("shown", "synapses shown", "{:.0f}"), ("wrong", "not synapses", "{:.0f}"),
            ("missed", "missed", "{:.0f}"), ("precision", "precision", "{:.3f}"),
            ("precision_ci", "precision 95 % CI", None), ("recall", "recall", "{:.3f}"),
            ("recall_ci", "recall 95 % CI", None)]
    notes = []
    skipped = int(table["tiles_skipped"].iloc[-1])
    stale = int(table["tiles_stale"].iloc[-1])
    if skipped:
        notes.append(f"{skipped} tile(s) before the last one checked were skipped: the sample is "
                     "random only if tiles are checked in order; check them")
    if stale:
        notes.append(f"{stale} checked tile(s) changed in a rerun and are not scored: check them "
                     "again (review/check.html marks them)")
    synapses = Layout(results).synapses
    if synapses.exists() and synapses.stat().st_mtime > path.stat().st_mtime:
        notes.append("the run changed after this was scored: run evaluate --sample-check again")
    return ("<h2>Sample check</h2><p>Precision and recall of the whole run estimated from the "
            "tiles a person checked on <a href='review/check.html'>the sample-check page</a> "
            "(<code>python -m pipeline evaluate --sample-check</code>; the row <i>all</i> is the "
            "run, the intervals Wilson's with the design effect of tiles).</p>"
            + html_table(table, cols) + "".join(f"<p class='summary'><b>Note</b>: "
                                                f"{html.escape(n)}.</p>" for n in notes))


def refresh_evaluation_sections(results: Path) -> bool:
    """Put the current agreement and sample-check sections into an existing report.html (True
    if it did)."""
    report = Layout(results).report
    if not report.exists():
        return False
    text = report.read_text()
    start, end = EVALUATION_MARKS
    if start not in text:
        return False
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1] if end in rest else rest
    report.write_text(head + start + annotation_section(results) + sample_check_section(results)
                      + end + tail)
    return True


def write_report(results: Path, out: Path, *, failures=(), settings: dict | None = None) -> None:
    """Write ``report.html`` for a results folder (links are relative to the folder).

    It reads like a results section: a paragraph per cell type, one figure per finding with its
    caption, formatted tables, the failures and flagged sessions, and a Methods paragraph made
    from the run (``settings``: the run's configuration; the settings that differ from the
    defaults are named).
    """
    results = Path(results)
    layout = Layout(results)
    rel = lambda p: os.path.relpath(p, results)  # noqa: E731
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Synapse "
             f"pipeline report</title><style>{REPORT_CSS}</style></head><body>"
             "<h1>Synapse pipeline report</h1>"]
    failures = list(failures) + input_failures(results)
    summaries = [p for p in (f / "summary.json" for f in layout.cell_folders("presence_summary"))
                 if p.exists()]
    presence = [json.loads(js.read_text()) for js in summaries]
    warnings = (input_warnings(results) + channel_warnings(results)
                + detection_warnings(results) + registration_warnings(results)
                + [w for sm in presence for w in sm.get("warnings", [])]
                + stats_warnings(results))
    if failures:
        parts.append("<h2>Failures</h2><p>Cells left out of synapses.csv and the statistics "
                     "(their jobs failed with the same message; fix the file or remove the "
                     "rows from the sessions sheet, then rerun):</p><ul>" + "".join(
                         f"<li>{html.escape(f)}</li>" for f in failures) + "</ul>")
    if warnings:
        parts.append("<h2>Warnings: sessions flagged</h2><ul>" + "".join(
            f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    notes = channel_notes(results)
    if notes:
        parts.append("<h2>Cells imaged in one channel</h2><ul>" + "".join(
            f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    syn = layout.synapses
    table = pd.read_csv(syn) if syn.exists() else None
    stats = layout.stats
    if table is not None and len(table):
        parts.append("<h2>Results</h2>" + "".join(
            summary_paragraph(s) for s in type_summaries(stats, table))
            + left_out_sessions(results, table))
    if stats.exists():
        figures = [stats / f"{name}.png" for name in STATS_PLOTS if (stats / f"{name}.png").exists()]
        parts.append("<h2>Figures</h2>" + "".join(_figure(png, rel) for png in figures))
        parts.append("<h2>Tables</h2>" + "".join(stats_tables(stats, rel)))
    if table is not None:
        per_cell = table.groupby(["cell_type", "cell"]).agg(
            sessions=("session", "nunique"), synapses=("synapse_id", "nunique"),
            present=("present", "sum")).reset_index()
        parts.append(f"<h3>Synapses per cell <small>(<a href='{rel(syn)}'>synapses.csv</a>, "
                     f"{len(table)} rows)</small></h3>" + html_table(per_cell, [
                         ("cell_type", "cell type", None), ("cell", "cell", None),
                         ("sessions", "sessions", "{:.0f}"), ("synapses", "synapses", "{:.0f}"),
                         ("present", "present synapse-sessions", "{:.0f}")]))
    if presence:
        parts.append("<h3>Presence calls</h3><p>How the joint calls (all sessions' evidence) "
                     "differ from per-session detection; <code>p_present</code> and "
                     "<code>present_detected</code> in synapses.csv hold both.</p>"
                     + _presence_table(summaries, presence))
        censored = pd.DataFrame([{"cell": sm.get("cell", ""), "synapses": sm["synapses"],
                                  **sm["not_observed"]} for sm in presence if "not_observed" in sm])
        if len(censored):
            parts.append("<h3>Not observed (censored)</h3><p>Synapses of each cell outside a "
                         "session's stack or in a session not reliably registered, per session: "
                         "<code>present</code> is empty there and every statistic leaves those "
                         "synapse-sessions out (a synapse is not counted lost because it was "
                         "not imaged).</p>" + html_table(censored.fillna(0), [
                             (c, c, "{:.0f}" if c != "cell" else None) for c in censored.columns]))
    start, end = EVALUATION_MARKS
    parts.append(start + annotation_section(results) + sample_check_section(results) + end)
    parts.append("<h2>Methods</h2>" + methods_paragraph(
        settings, sessions=None if table is None else table[["cell", "session"]],
        spine_cells=_channels_lines(results, "spine_cells")))
    review = sorted(p.parent.name for p in layout.review.glob("*/index.html"))
    if review:
        parts.append("<h2>Review</h2><p><a href='review/index.html'>Every synapse</a> (sortable, "
                     "least certain first) · cells: " + " · ".join(
                         f"<a href='review/{html.escape(c)}/index.html'>{html.escape(c)}</a>"
                         for c in review) + "</p><p>Each cell's page shows its sessions in the "
                     "reference frame with every synapse marked, the registration QC, and each "
                     "synapse's crops across sessions with curation actions (served by "
                     "<code>python -m pipeline review RESULTS</code>, edits are saved and the "
                     "workflow rerun from the page).</p><p>No annotations of your own? <a "
                     "href='review/check.html'>The sample check</a> shows tiles drawn at random; "
                     "mark what is wrong and what is missed in some of them, save, and <code>"
                     "python -m pipeline evaluate --sample-check --results RESULTS</code> "
                     "estimates precision and recall of the whole run.</p>")
    registered = [js for f in layout.cell_folders("register") for js in sorted(f.glob("*.json"))]
    if registered:
        rows = []
        for js in registered:
            r = json.loads(js.read_text())
            rows.append({"cell": r["cell"], "session": r["session"],
                         "shift": ", ".join(f"{v:.2f}" for v in r["shift_um"]),
                         "rotation": r.get("rotation_deg", 0.0), "matched": r["n_matches"],
                         "expected": r.get("expected_matches"), "residual": r["residual_um"],
                         "reliable": "yes" if r["reliable"] else "NO",
                         "regions": len(r.get("misregistered_regions") or []),
                         "figure": rel(js.with_name(js.stem + "_qc.png"))})
        qc = html_table(pd.DataFrame(rows), [
            ("cell", "cell", None), ("session", "session", None),
            ("shift", "shift z, y, x (um)", None), ("rotation", "rotation (deg)", "{:.2f}"),
            ("matched", "matched puncta", "{:.0f}"), ("expected", "expected", "{:.0f}"),
            ("residual", "residual (um)", "{:.3f}"), ("reliable", "reliable", None),
            ("regions", "misregistered regions", "{:.0f}"), ("figure", "QC figure", None)],
            empty={"expected": "the reference session", "residual (um)": "no matched puncta"})
        # the figure column as links
        for r in rows:
            qc = qc.replace(f"<td>{html.escape(r['figure'])}</td>",
                            f"<td><a href='{html.escape(r['figure'])}'>QC</a></td>", 1)
        parts.append("<h2>Registration QC</h2>" + qc)
    parts.append("</body></html>")
    Path(out).write_text("\n".join(parts))
