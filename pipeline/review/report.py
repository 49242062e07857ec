"""The HTML report: one page linking the tables, plots and QC figures."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd

from ..contract import Layout


def _table_html(path: Path, max_rows: int = 40) -> str:
    df = pd.read_csv(path)
    note = f"<p>{len(df)} rows; first {max_rows} shown.</p>" if len(df) > max_rows else ""
    return note + df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                            border=0, classes="t")


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
    """Each session whose registration the register stage judged unreliable, or where it
    estimates its own error above its limit somewhere (the regions, in the reference frame)."""
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
    return out


def channel_warnings(results: Path) -> list[str]:
    """Each session whose morphology share departed from its cell's (the channels stage)."""
    folder = Layout(results).path("channels", cell="x").parent
    return [w for js in sorted(folder.glob("*.json"))
            for w in json.loads(js.read_text()).get("warnings", [])]


def write_report(results: Path, out: Path, *, failures=()) -> None:
    """Write ``report.html`` for a results folder (links are relative to the folder)."""
    results = Path(results)
    layout = Layout(results)
    rel = lambda p: os.path.relpath(p, results)  # noqa: E731
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Synapse pipeline report"
             "</title><style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table.t{border-collapse:collapse;font-size:12px}table.t td,table.t th"
             "{padding:2px 6px;border-bottom:1px solid #ddd}img{max-width:100%}</style></head>"
             "<body><h1>Synapse pipeline report</h1>"]
    failures = list(failures) + input_failures(results)
    summaries = [p for p in (f / "summary.json" for f in layout.cell_folders("presence_summary"))
                 if p.exists()]
    presence = [json.loads(js.read_text()) for js in summaries]
    warnings = (input_warnings(results) + channel_warnings(results)
                + registration_warnings(results)
                + [w for sm in presence for w in sm.get("warnings", [])])
    if warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(
            f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    if failures:
        parts.append("<h2>Failures</h2><p>Cells left out of synapses.csv and the statistics "
                     "(their jobs failed with the same message; fix the file or remove the "
                     "rows from the sessions sheet, then rerun):</p><ul>" + "".join(
                         f"<li>{html.escape(f)}</li>" for f in failures) + "</ul>")
    review = sorted(p.parent.name for p in layout.review.glob("*/index.html"))
    if review:
        parts.append("<h2>Review</h2><p><a href='review/index.html'>Every synapse</a> (sortable, "
                     "least certain first) · cells: " + " · ".join(
                         f"<a href='review/{html.escape(c)}/index.html'>{html.escape(c)}</a>"
                         for c in review) + "</p><p>Each cell's page shows its sessions in the "
                     "reference frame with every synapse marked, the registration QC, and each "
                     "synapse's crops across sessions with the curation rows to copy.</p>")
    syn = layout.synapses
    if syn.exists():
        df = pd.read_csv(syn)
        summary = df.groupby(["cell_type", "cell"]).agg(
            sessions=("session", "nunique"), synapses=("synapse_id", "nunique"),
            present_rows=("present", "sum")).reset_index()
        parts.append(f"<h2>Per-synapse table</h2><p><a href='{rel(syn)}'>synapses.csv</a> "
                     f"({len(df)} rows)</p>" + summary.to_html(index=False, border=0, classes="t"))
    if presence:
        rows = []
        for js, sm in zip(summaries, presence):
            rows.append({"cell": sm.get("cell", js.parent.name), "model": sm["model"],
                         "rows": sm["rows"],
                         "absent -> present (vs per-session detection)": sm["changed_to_present"],
                         "present -> absent": sm["changed_to_absent"],
                         "uncertain calls": sm["uncertain"],
                         "weights imputed": sm.get("weights_imputed", 0),
                         "track pieces merged": sm["fragments_merged"],
                         "synapses split at gaps": sm["synapses_split"],
                         "tracks never present": sm["never_present"]})
        parts.append("<h2>Presence calls</h2><p>How the joint calls (all sessions' evidence) "
                     "differ from per-session detection; <code>p_present</code> and "
                     "<code>present_detected</code> in synapses.csv hold both.</p>"
                     + pd.DataFrame(rows).to_html(index=False, border=0, classes="t"))
        censored = pd.DataFrame([{"cell": sm.get("cell", ""), "synapses": sm["synapses"],
                                  **sm["not_observed"]} for sm in presence if "not_observed" in sm])
        if len(censored):
            parts.append("<h3>Not observed (censored)</h3><p>Synapses of each cell outside a "
                         "session's stack or in a session not reliably registered: "
                         "<code>present</code> is empty there and every statistic leaves those "
                         "synapse-sessions out (a synapse is not counted lost because it was "
                         "not imaged).</p>"
                         + censored.fillna("").to_html(index=False, border=0, classes="t"))
    stats = layout.stats
    if stats.exists():
        parts.append("<h2>Statistics</h2>")
        for png in sorted(stats.glob("*.png")):
            parts.append(f"<h3>{png.stem}</h3><img src='{rel(png)}'>")
        for csv in sorted(stats.glob("*.csv")):
            parts.append(f"<h3><a href='{rel(csv)}'>{csv.name}</a></h3>" + _table_html(csv))
    registered = [js for f in layout.cell_folders("register") for js in sorted(f.glob("*.json"))]
    if layout.stage_folder("register").exists():
        parts.append("<h2>Registration QC</h2>")
        rows = []
        for js in registered:
            r = json.loads(js.read_text())
            rows.append({"cell": r["cell"], "session": r["session"],
                         "shift_um (z,y,x)": ", ".join(f"{v:.2f}" for v in r["shift_um"]),
                         "rotation_deg": r.get("rotation_deg", 0.0),
                         "matched puncta": r["n_matches"],
                         "expected": r.get("expected_matches", ""),
                         "residual_um": r["residual_um"],
                         "reliable": r["reliable"],
                         "misregistered regions": len(r.get("misregistered_regions") or []),
                         "figure": f"<a href='{rel(js.with_name(js.stem + '_qc.png'))}'>QC</a>"})
        if rows:
            parts.append(pd.DataFrame(rows).to_html(index=False, escape=False, border=0,
                                                    classes="t"))
    parts.append("</body></html>")
    Path(out).write_text("\n".join(parts))
