"""HTML of the review pages: one page per cell and one index of all synapses.

Static files only (no server, no network): the pages embed their own CSS and JavaScript and link
PNG files beside them.  The JavaScript sorts and filters tables, switches sessions, adjusts the
contrast of each channel (CSS filters, so it also works on file:// pages) and copies curation
rows.  Ids in curation rows are track ids (``track_id``), as `pipeline.stages.curate` expects.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ..contract import CURATION_FILE_COLUMNS
from ..core.similarity import median_similarity
from . import curation_ui as ui

CURATION_HEADER = "\t".join(CURATION_FILE_COLUMNS)

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em;margin:0}
table.t{border-collapse:collapse;font-size:12px}
table.t td,table.t th{padding:2px 7px;border-bottom:1px solid #ddd;text-align:left}
table.sortable th{cursor:pointer;background:#f2f2f2;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
td.flags{color:#a33}.pat{letter-spacing:1px;font-family:monospace}
.controls{display:flex;flex-wrap:wrap;gap:1.2em;align-items:center;margin:.6em 0;font-size:13px}
.viewport{overflow:auto;max-width:100%;max-height:85vh;display:inline-block;cursor:grab;
 border:1px solid #444}
.view{position:relative;display:inline-block;background:#000;line-height:0}
.view svg a{cursor:pointer}
.view img{display:block;image-rendering:pixelated}
.view img.ch+img.ch{position:absolute;left:0;top:0;mix-blend-mode:screen}
.view svg{position:absolute;left:0;top:0}
.session{display:none}.session.on{display:block}
.tabs button{margin-right:3px}.tabs button.on{font-weight:bold;background:#ffd400}
.syn{border-top:1px solid #ccc;padding:.7em 0}.syn:target{background:#fff8d0}
.strip img{image-rendering:pixelated;display:block}
.labels{display:flex;font-size:11px;color:#555}.labels div{text-align:center;overflow:hidden}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start;margin-top:.4em}
pre.cur{background:#f6f6f6;padding:4px 6px;margin:2px 0;font-size:11px;display:inline-block}
button.copy{font-size:11px}.bad{color:#b00;font-weight:bold}
"""

JS = r"""
function cellValue(td){const v=td.dataset.v;if(v!==undefined&&v!==''&&!isNaN(+v))return +v;
 return td.textContent.trim().toLowerCase();}
function sortTable(table,col,th){
 const body=table.tBodies[0];const rows=Array.from(body.rows);
 const asc=!th.classList.contains('asc');
 table.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));
 th.classList.add(asc?'asc':'desc');
 rows.sort((a,b)=>{const x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
  const nx=typeof x==='number',ny=typeof y==='number';
  if(nx&&!ny)return -1;if(ny&&!nx)return 1;   // empty values last
  return (x<y?-1:x>y?1:0)*(asc?1:-1);});
 rows.forEach(r=>body.appendChild(r));}
function filterTable(id){
 const t=document.getElementById(id);const q=(document.getElementById(id+'-q').value||'').toLowerCase();
 const flagged=document.getElementById(id+'-flagged').checked;
 const sel=document.getElementById(id+'-cell');const cell=sel?sel.value:'';
 let shown=0;
 Array.from(t.tBodies[0].rows).forEach(r=>{
  const ok=(!q||r.textContent.toLowerCase().includes(q))&&(!flagged||r.dataset.flags!=='')
   &&(!cell||r.dataset.cell===cell);
  r.style.display=ok?'':'none';if(ok)shown++;});
 document.getElementById(id+'-n').textContent=shown;}
function setContrast(){
 document.querySelectorAll('.contrast').forEach(box=>{
  const ch=box.dataset.ch;const g=box.querySelector('.gain').value,c=box.querySelector('.con').value;
  document.querySelectorAll('img.ch-'+ch).forEach(im=>{im.style.filter=`brightness(${g}) contrast(${c})`;});
  box.querySelector('.val').textContent=`gain ${(+g).toFixed(1)}, contrast ${(+c).toFixed(1)}`;});}
function showSession(k){
 document.querySelectorAll('.session').forEach((d,i)=>d.classList.toggle('on',i===k));
 document.querySelectorAll('.tabs button').forEach((b,i)=>b.classList.toggle('on',i===k));}
function copyRow(btn){
 const text=btn.previousElementSibling.textContent;
 const done=()=>{btn.textContent='copied';setTimeout(()=>btn.textContent='copy',1200);};
 const fallback=()=>{const r=document.createRange();r.selectNodeContents(btn.previousElementSibling);
  const s=window.getSelection();s.removeAllRanges();s.addRange(r);
  try{document.execCommand('copy');done();}catch(e){btn.textContent='select + Ctrl-C';}};
 if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(text).then(done,fallback);}
 else fallback();}
function setZoom(z,cx,cy){
 const vps=document.querySelectorAll('.viewport');if(!vps.length)return;
 const old=+(vps[0].dataset.zoom||1);z=Math.min(8,Math.max(1,z));
 vps.forEach(vp=>{const view=vp.querySelector('.view');const w=+view.dataset.w,h=+view.dataset.h;
  vp.dataset.zoom=z;view.querySelectorAll('img').forEach(i=>i.style.width=(w*z)+'px');
  const svg=view.querySelector('svg');svg.setAttribute('width',w*z);svg.setAttribute('height',h*z);
  const r=vp.getBoundingClientRect();
  const px=cx===undefined?r.width/2:cx-r.left,py=cy===undefined?r.height/2:cy-r.top;
  vp.scrollLeft=(vp.scrollLeft+px)*z/old-px;vp.scrollTop=(vp.scrollTop+py)*z/old-py;});
 document.querySelectorAll('.zoom-val').forEach(e=>e.textContent=z.toFixed(1)+'x');}
function initZoom(){
 const vps=document.querySelectorAll('.viewport');
 vps.forEach(vp=>{
  vp.addEventListener('wheel',e=>{e.preventDefault();
   setZoom(+(vp.dataset.zoom||1)*(e.deltaY<0?1.25:0.8),e.clientX,e.clientY);},{passive:false});
  vp.addEventListener('scroll',()=>vps.forEach(o=>{if(o!==vp&&(o.scrollLeft!==vp.scrollLeft||
   o.scrollTop!==vp.scrollTop)){o.scrollLeft=vp.scrollLeft;o.scrollTop=vp.scrollTop;}}));
  let drag=null;
  vp.addEventListener('mousedown',e=>{drag={x:e.clientX,y:e.clientY,l:vp.scrollLeft,t:vp.scrollTop,moved:false};
   e.preventDefault();});
  window.addEventListener('mousemove',e=>{if(!drag)return;const dx=e.clientX-drag.x,dy=e.clientY-drag.y;
   if(Math.abs(dx)+Math.abs(dy)>3)drag.moved=true;vp.scrollLeft=drag.l-dx;vp.scrollTop=drag.t-dy;});
  window.addEventListener('mouseup',()=>{if(drag&&drag.moved)vp.dataset.dragged='1';drag=null;});
  vp.addEventListener('click',e=>{if(vp.dataset.dragged){e.preventDefault();e.stopPropagation();
   delete vp.dataset.dragged;}},true);});
 document.querySelectorAll('button.zoom').forEach(b=>b.addEventListener('click',()=>{
  const z=+(vps[0]?.dataset.zoom||1);setZoom(b.dataset.f==='fit'?1:z*(+b.dataset.f));}));
 document.querySelectorAll('select.strip-size').forEach(s=>s.addEventListener('input',()=>{
  document.querySelectorAll('.strip').forEach(d=>d.style.zoom=s.value);}));
 document.querySelectorAll('input.smooth').forEach(c=>c.addEventListener('change',()=>{
  document.querySelectorAll('.strip img').forEach(i=>i.style.imageRendering=c.checked?'auto':'pixelated');}));}
document.addEventListener('DOMContentLoaded',()=>{
 document.querySelectorAll('table.sortable').forEach(t=>{
  Array.from(t.tHead.rows[0].cells).forEach((th,i)=>th.addEventListener('click',()=>sortTable(t,i,th)));});
 document.querySelectorAll('.contrast input').forEach(i=>i.addEventListener('input',setContrast));
 document.querySelectorAll('.markers-toggle').forEach(c=>c.addEventListener('change',()=>{
  document.querySelectorAll('.view svg').forEach(s=>s.style.display=c.checked?'':'none');}));
 const tabs=document.querySelectorAll('.tabs button');
 tabs.forEach((b,i)=>b.addEventListener('click',()=>showSession(i)));
 document.addEventListener('keydown',e=>{if(!tabs.length||e.target.tagName==='INPUT')return;
  const k=Array.from(tabs).findIndex(b=>b.classList.contains('on'));
  if(e.key==='ArrowRight')showSession(Math.min(k+1,tabs.length-1));
  if(e.key==='ArrowLeft')showSession(Math.max(k-1,0));});
 if(tabs.length)showSession(0);
 document.querySelectorAll('button.copy').forEach(b=>b.addEventListener('click',()=>copyRow(b)));
 document.querySelectorAll('.filterbox').forEach(f=>{const id=f.dataset.table;
  f.querySelectorAll('input,select').forEach(i=>i.addEventListener('input',()=>filterTable(id)));
  filterTable(id);});
 setContrast();initZoom();if(typeof initCuration==='function')initCuration();});
"""

INDEX_COLUMNS = [("cell", "cell"), ("cell_type", "type"), ("synapse_id", "synapse"),
           ("track_ids", "track ids"), ("present", "present"), ("pattern", "sessions"),
           ("certainty", "certainty"), ("max_link_um", "max link (um)"),
           ("min_link_confidence", "link confidence"),
           ("median_weight", "median weight"), ("max_snr", "max SNR"), ("flags", "flags")]


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v, fmt="{:.3g}") -> tuple[str, str]:
    """(shown text, sort value) of a number; NaN shows empty and sorts last."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "", ""
    return fmt.format(v), repr(float(v))


def page(title: str, body: str, *, curation_js: str | None = None) -> str:
    """A complete page; with ``curation_js`` (the relative URL of ``review/curation.js``) it
    carries the staged-edits box and the curation script (:mod:`pipeline.review.curation_ui`)."""
    head = f"<style>{CSS}{ui.CURATION_CSS}</style>"
    if curation_js:
        head += f"<script src='{_esc(curation_js)}'></script>"
        body += ui.staged_panel()
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}"
            f"</title>{head}<script>{JS}{ui.CURATION_JS}</script></head><body>{body}</body></html>")


def synapse_table(summary: pd.DataFrame, *, table_id: str, href) -> str:
    """Sortable, filterable table of :func:`pipeline.review.summarise_synapses` rows;
    ``href(row)`` gives each synapse's link.  Sorted least certain first."""
    summary = summary.sort_values(["certainty", "cell", "synapse_id"], kind="stable")
    cells = sorted(summary["cell"].unique())
    pick = ""
    if len(cells) > 1:
        pick = (f"<label>cell <select id='{table_id}-cell'><option value=''>all</option>"
                + "".join(f"<option>{_esc(c)}</option>" for c in cells) + "</select></label>")
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in INDEX_COLUMNS)
    rows = []
    for r in summary.itertuples(index=False):
        tds = []
        for col, _ in INDEX_COLUMNS:
            v = getattr(r, col)
            if col == "synapse_id":
                tds.append(f"<td data-v='{v}'><a href='{_esc(href(r))}'>{v}</a></td>")
            elif col in ("certainty", "max_link_um", "min_link_confidence", "median_weight",
                         "max_snr"):
                text, key = _num(v, "{:.2f}" if col in ("certainty", "min_link_confidence")
                                 else "{:.3g}")
                tds.append(f"<td data-v='{key}'>{text}</td>")
            elif col == "pattern":
                tds.append(f"<td class='pat'>{_esc(v)}</td>")
            elif col == "flags":
                tds.append(f"<td class='flags'>{_esc(v)}</td>")
            else:
                tds.append(f"<td>{_esc(v)}</td>")
        rows.append(f"<tr data-cell='{_esc(r.cell)}' data-flags='{_esc(r.flags)}'>"
                    + "".join(tds) + "</tr>")
    return (f"<div class='filterbox controls' data-table='{table_id}'>"
            f"<label>filter <input id='{table_id}-q' type='search' placeholder='text in any column'>"
            f"</label>{pick}<label><input id='{table_id}-flagged' type='checkbox'> flagged only"
            f"</label><span><span id='{table_id}-n'>{len(summary)}</span> of {len(summary)} "
            f"synapses shown; click a column to sort</span></div>"
            f"<table id='{table_id}' class='t sortable'><thead><tr>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def index_page(summary: pd.DataFrame, *, cells: list[str]) -> str:
    """``review/index.html``: every synapse of every cell, least certain first."""
    links = " · ".join(f"<a href='{_esc(c)}/index.html'>{_esc(c)}</a>" for c in cells)
    body = (f"<h1>Review: {len(summary)} synapses in {len(cells)} cells</h1>"
            f"<p><a href='../report.html'>report</a> · cells: {links}</p>"
            "<p>Certainty is the least sure presence call of a synapse (1 = every session's call "
            "has posterior 0 or 1). Start at the top; a synapse link opens its crops across "
            "sessions and the curation rows to copy into <code>curation.tsv</code>.</p>"
            + synapse_table(summary, table_id="all",
                            href=lambda r: f"{r.cell}/index.html#syn-{r.synapse_id}"))
    return page("Synapse review", body, curation_js="curation.js")


def weight_plot(days, weights, present, *, y_max: float, width=230, height=80) -> str:
    """Inline SVG of a synapse's weight over time (filled: present, hollow: absent)."""
    days = np.asarray(days, float)
    w = np.asarray(weights, float)
    span = max(days.max() - days.min(), 1e-9)
    px = 28 + (days - days.min()) / span * (width - 36)
    py = height - 16 - np.clip(np.nan_to_num(w), 0, y_max) / y_max * (height - 24)
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y, v in zip(px, py, w) if np.isfinite(v))
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{'#1a7f37' if p else 'white'}' "
        f"stroke='#1a7f37'><title>day {d:g}: weight {v:.3g}</title></circle>"
        for x, y, v, p, d in zip(px, py, w, present, days) if np.isfinite(v))
    return (f"<svg class='wplot' width='{width}' height='{height}' role='img' "
            f"aria-label='weight over time'><line x1='28' y1='{height - 16}' x2='{width - 8}' "
            f"y2='{height - 16}' stroke='#999'/><line x1='28' y1='4' x2='28' y2='{height - 16}' "
            f"stroke='#999'/><text x='2' y='12' font-size='9'>{y_max:.2g}</text>"
            f"<text x='14' y='{height - 13}' font-size='9'>0</text>"
            f"<text x='28' y='{height - 3}' font-size='9'>day {days.min():g}</text>"
            f"<text x='{width - 40}' y='{height - 3}' font-size='9'>day {days.max():g}</text>"
            f"<polyline points='{pts}' fill='none' stroke='#1a7f37' stroke-width='1'/>{dots}</svg>")


def _top(weights) -> float:
    """Upper end of a weight plot's axis: the synapse's own largest weight, 10 % above."""
    w = np.asarray(weights, float)
    top = np.nanmax(w) if np.isfinite(w).any() else 0.0
    return float(top * 1.1) if top > 0 else 1.0


def place_labels(xy, radius: float, texts: list[str], *, char_w: float = 5.4,
                 height: float = 9.0, pad: float = 2.0) -> np.ndarray:
    """Where to write each marker's label so that no two labels, and no label and marker,
    overlap or touch within ``pad`` ("21" beside "2" reads "212"; greedy, the nearest free
    place of twelve around the marker; when none is free, the one touching least).  Returns
    the (n, 2) text anchors (left, baseline) in the markers' units."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    r = float(radius)
    placed = np.empty((0, 4))                        # boxes: x0, y0, x1, y1
    circles = np.c_[xy - r, xy + r]
    out = np.empty((len(xy), 2))
    for k, ((x, y), text) in enumerate(zip(xy, texts)):
        w = char_w * len(text)
        near = [(x + r + 1, y - r), (x + r + 1, y + r + height - 1), (x - r - 1 - w, y - r),
                (x - r - 1 - w, y + r + height - 1), (x - w / 2, y - r - 2),
                (x - w / 2, y + r + height)]
        step = height + 2 * pad          # a row farther out, for crowded shafts
        options = near + [(ax, ay - step) if ay < y else (ax, ay + step) for ax, ay in near]
        taken = np.vstack([placed, np.delete(circles, k, axis=0)])
        best = np.inf
        for ax, ay in options:      # the first free place, else the one touching least
            box = np.array([ax - pad, ay - height + 1 - pad, ax + w + pad, ay + 1 + pad])
            hit = ((taken[:, 0] < box[2]) & (taken[:, 2] > box[0]) & (taken[:, 1] < box[3])
                   & (taken[:, 3] > box[1]))
            cost = 2 * hit[:len(placed)].sum() + hit[len(placed):].sum()  # label on label: worst
            if cost < best:
                best, out[k] = cost, (ax, ay)
            if best == 0:
                break
        ax, ay = out[k]
        placed = np.vstack([placed, [ax, ay - height + 1, ax + w, ay + 1]])
    return out


def _markers(rows: pd.DataFrame, *, spacing, radius_um=0.6) -> str:
    r = radius_um / spacing[2]
    xy = np.c_[rows["x_um"].to_numpy(float) / spacing[2] + 0.5,
               rows["y_um"].to_numpy(float) / spacing[1] + 0.5]
    anchors = place_labels(xy, r, [str(v) for v in rows["synapse_id"]])
    out = []
    for s, (x, y), (lx, ly) in zip(rows.itertuples(index=False), xy, anchors):
        uncertain = int(getattr(s, "presence_uncertain", 0) or 0)
        on = s.present == 1                     # NaN: not observed, drawn as absent
        colour = "#ff9d00" if uncertain else ("#ffd400" if on else "#66ccff")
        dash = "" if on else " stroke-dasharray='3 2'"
        state = "present" if on else "absent" if s.present == 0 else "not observed"
        out.append(f"<a href='#syn-{s.synapse_id}'><g class='m {state}' data-synapse="
                   f"'{s.synapse_id}'><circle cx='{x:.1f}' "
                   f"cy='{y:.1f}' r='{r:.1f}' fill='none' stroke='{colour}' stroke-width='1.2'"
                   f"{dash}/><text x='{lx:.1f}' y='{ly:.1f}' fill='{colour}' "
                   f"font-size='9'>{s.synapse_id}</text><title>synapse {s.synapse_id}: {state}"
                   f"{' (uncertain)' if uncertain else ''}</title></g></a>")
    return "".join(out)


def _qc_table(qc: list[dict]) -> str:
    rows = []
    for q in qc:
        rel = "yes" if q["reliable"] else "<span class='bad'>NO: not tracked</span>"
        matches = f"{q['n_matches']}" + (f" of {q['expected_matches']}"
                                         if q.get("expected_matches") else "")
        regions = "; ".join(f"y {g['y_um'][0]:.0f}-{g['y_um'][1]:.0f}, x {g['x_um'][0]:.0f}-"
                            f"{g['x_um'][1]:.0f} um ({g['error_um']:.1f} um)"
                            for g in q.get("misregistered_regions") or [])
        unlike = "; ".join(f"y {g['y_um'][0]:.0f}-{g['y_um'][1]:.0f}, x {g['x_um'][0]:.0f}-"
                           f"{g['x_um'][1]:.0f} um ({g['similarity']:.2f})"
                           for g in q.get("dissimilar_regions") or [])
        rows.append(f"<tr><td>{_esc(q['session'])}</td><td>"
                    + ", ".join(f"{v:.2f}" for v in q["shift_um"])
                    + f"</td><td>{_num(q.get('rotation_deg', 0.0), '{:.2f}')[0]}</td>"
                    f"<td>{matches}</td><td>{_num(q.get('residual_um'))[0]}</td>"
                    f"<td>{_num(q.get('overlap'), '{:.2f}')[0]}</td><td>{_num(q.get('peak'))[0]}"
                    f"</td><td>{'yes' if q.get('warp') else ''}</td><td>{rel}</td>"
                    f"<td>{'<span class=bad>' + _esc(regions) + '</span>' if regions else ''}</td>"
                    f"<td>{_num(median_similarity(q), '{:.2f}')[0]}"
                    f"{' <span class=bad>' + _esc(unlike) + '</span>' if unlike else ''}</td>"
                    f"<td><a href='{_esc(q['qc_href'])}'>figure</a></td></tr>")
    return ("<table class='t'><thead><tr><th>session</th><th>shift (z, y, x) um</th>"
            "<th>rotation (deg)</th><th>matched puncta</th><th>residual um</th>"
            "<th>field overlap</th><th>correlation peak</th><th>warp</th><th>reliable</th>"
            "<th>misregistered regions (reference frame, largest error)</th>"
            "<th>morphology similarity after registration (median over patches; patches "
            "unlike the reference)</th><th>QC</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>"
            "<p>Projections show the matrix part of each transform (the local corrections and "
            "the smooth warp, when fitted, move points by a few tenths of a micrometre more). "
            "Rows in a misregistered region carry the quality flag <code>misregistered</code>; "
            "the QC figure outlines the region (yellow) and the patches whose morphology stays "
            "unlike the reference's after registration (cyan), and maps the similarity.</p>")


def curation_rows(cell: str, g: pd.DataFrame,
                  anchors: dict[int, str] | None = None) -> list[tuple[str, str]]:
    """(what it does, tab-separated curation.tsv row) for one synapse's rows (sorted by day);
    ``anchors``: each track's position, the rows' ``at_um``."""
    at = anchors or {}
    tracks = [int(v) for v in pd.unique(g["track_id"] if "track_id" in g.columns
                                        else g["synapse_id"])]
    out = [(f"reject (track {t})", f"reject\t{cell}\t{t}\t\t\t\t{at.get(t, '')}")
           for t in tracks]
    first = tracks[0]
    out.append(("merge with another track (fill in its id)",
                f"merge\t{cell}\t{first}\t\tOTHER_ID\t\t{at.get(first, '')}"))
    tid = g["track_id"] if "track_id" in g.columns else g["synapse_id"]
    for (s, p), t in zip(g[["session", "present"]].itertuples(index=False), tid):
        flip = "absent" if p == 1 else "present"
        out.append((f"mark {flip} in {s}",
                    f"{flip}\t{cell}\t{int(t)}\t{s}\t\t\t{at.get(int(t), '')}"))
    for s, t in list(zip(g["session"], tid))[1:]:
        out.append((f"split from {s} on",
                    f"split\t{cell}\t{int(t)}\t{s}\t\t\t{at.get(int(t), '')}"))
    return out


#: a link below this confidence is marked in the page with the reason
DOUBTFUL_LINK = 0.5


def link_doubt(row) -> str:
    """Why a link is in doubt ('' when its confidence is at least :data:`DOUBTFUL_LINK`):
    a competing punctum nearly as close, a registration uncertain where it lies, or a long link."""
    conf = float(getattr(row, "link_confidence", np.nan))
    d = float(getattr(row, "link_distance_um", np.nan))
    if not np.isfinite(conf) or conf >= DOUBTFUL_LINK:
        return ""
    c = float(getattr(row, "link_competitor_um", np.nan))
    e = float(getattr(row, "registration_error_um", np.nan))
    if np.isfinite(c) and c < max(2 * d, d + 0.6):
        return f"confidence {conf:.2f}: a competitor {c:.1f} um away (link {d:.1f} um)"
    if np.isfinite(e) and e >= 0.25:
        return (f"confidence {conf:.2f}: link {d:.1f} um where registration is uncertain "
                f"(\u00b1{e:.2f} um)")
    return f"confidence {conf:.2f}: link {d:.1f} um, long for this cell's links"


def cell_page(table: pd.DataFrame, summary: pd.DataFrame, *, cell: str, sessions: list[str],
              days: list[float], spacing, shape_yx, qc: list[dict], strip_width: int,
              tile_width: int, gap: int, scale: int = 2) -> str:
    """``review/<cell>/index.html``: projections with markers, QC, table and per-synapse strips.

    Expects beside it ``proj_<session>_psd95.png`` / ``proj_<session>_morphology.png`` (reference
    grid) and ``syn_<id>.png`` (see `pipeline.cli.cmd_review`).
    """
    t = table.sort_values(["synapse_id", "day"])
    has_morph = any(q.get("has_morphology") for q in qc)
    ny, nx = shape_yx
    tabs = "".join(f"<button type='button'>{_esc(s)} (day {d:g})</button>"
                   for s, d in zip(sessions, days))
    panels = []
    for s in sessions:
        rows = t[t["session"].astype(str) == s]
        imgs = ""
        if has_morph:
            imgs += (f"<img class='ch ch-morphology' src='proj_{_esc(s)}_morphology.png' "
                     f"width='{nx * scale}' alt='morphology {_esc(s)}'>")
        imgs += (f"<img class='ch ch-psd95' src='proj_{_esc(s)}_psd95.png' width='{nx * scale}' "
                 f"alt='PSD-95 {_esc(s)}'>")
        n_on = int(rows["present"].sum())
        panels.append(f"<div class='session'><p>{_esc(s)}: {n_on} of {len(rows)} synapses "
                      f"present (solid yellow), absent dashed blue, uncertain orange.</p>"
                      f"<div class='viewport' style='width:{nx * scale + 2}px;height:"
                      f"{ny * scale + 2}px'><div class='view' data-w='{nx * scale}' "
                      f"data-h='{ny * scale}'>{imgs}<svg viewBox='0 0 {nx} {ny}' "
                      f"width='{nx * scale}' height='{ny * scale}'>"
                      f"{_markers(rows, spacing=spacing)}</svg></div></div></div>")
    controls = ("<div class='controls'>" + "".join(
        f"<span class='contrast' data-ch='{ch}'>{label}: <input class='gain' type='range' "
        f"min='0.2' max='5' step='0.1' value='1'> <input class='con' type='range' min='0.5' "
        f"max='4' step='0.1' value='1'> <span class='val'></span></span>"
        for ch, label in (("psd95", "PSD-95 (green)"), ("morphology", "morphology (magenta)"))
        if ch == "psd95" or has_morph)
        + "<label><input class='markers-toggle' type='checkbox' checked> markers</label>"
        + "<span>zoom <button type='button' class='zoom' data-f='1.5'>+</button>"
          "<button type='button' class='zoom' data-f='0.667'>\u2212</button>"
          "<button type='button' class='zoom' data-f='fit'>fit</button> <span class='zoom-val'>"
          "1.0x</span> (wheel zooms, drag pans)</span>"
        + "<span>keys \u2190 \u2192 switch sessions</span></div>")
    labels = "".join(f"<div style='width:{tile_width * scale}px;margin-right:"
                     f"{gap * scale if k < len(sessions) - 1 else 0}px'>{_esc(s)}</div>"
                     for k, s in enumerate(sessions))
    strips = []
    info = summary.set_index("synapse_id")
    suggestions = ui.merge_suggestions(t)
    anchors = ui.track_anchors(t)
    for sid, g in t.groupby("synapse_id", sort=True):
        r = info.loc[sid]
        cols = ["session", "day", "present", "p_present", "detected", "weight", "snr",
                "link_distance_um", "link_confidence", "in_view", "curated", "quality_flags"]
        cols = [c for c in cols if c in g.columns]
        tids = (g["track_id"] if "track_id" in g.columns else g["synapse_id"]).astype(int)
        trs = "".join("<tr>" + "".join(
            f"<td>{_num(v)[0] if isinstance(v, float) else _esc(v)}</td>" for v in vals)
            + f"<td class='flags'>{_esc(link_doubt(row))}</td><td>"
            + ui.session_controls(cell, tid, str(row.session), row.present, first=k == 0,
                                  anchor=anchors.get(tid, ""))
            + "</td></tr>" for k, (vals, row, tid) in enumerate(zip(
                g[cols].itertuples(index=False), g.itertuples(index=False), tids)))
        cur = "".join(f"<div>{_esc(what)}: <pre class='cur'>{_esc(row)}</pre> "
                      f"<button type='button' class='copy'>copy</button></div>"
                      for what, row in curation_rows(cell, g, anchors))
        strips.append(
            f"<section class='syn' id='syn-{sid}'><h3>Synapse {sid} <span class='pat'>"
            f"{_esc(r['pattern'])}</span> tracks {_esc(r['track_ids'])}, certainty "
            f"{r['certainty']:.2f} <span class='flags'>{_esc(r['flags'])}</span></h3>"
            + ui.synapse_controls(cell, [int(v) for v in pd.unique(tids)], suggestions, anchors)
            + f"<div class='row'><div class='strip'><img src='syn_{sid}.png' "
            f"width='{strip_width * scale}' alt='synapse {sid} across sessions'>"
            f"<div class='labels'>{labels}</div></div>"
            f"{weight_plot(g['day'], g['weight'], g['present'] == 1, y_max=_top(g['weight']))}"
            "</div>"
            f"<div class='row'><table class='t'><thead><tr>"
            + "".join(f"<th>{c}</th>" for c in cols)
            + f"<th>link in doubt</th><th>curate</th></tr></thead><tbody>{trs}</tbody>"
            f"</table><details><summary>curation rows to copy</summary><p>The buttons above "
            f"stage these edits for you; by hand, add a row to <code>curation.tsv</code> "
            f"(header: <code>{_esc(CURATION_HEADER)}</code>; tabs or spaces) and rerun.</p>"
            f"{cur}</details></div></section>")
    ctype = _esc(t["cell_type"].iloc[0]) if len(t) else ""
    body = (f"<h1>Cell {_esc(cell)} ({ctype}): {t['synapse_id'].nunique()} synapses, "
            f"{len(sessions)} sessions</h1><p><a href='../index.html'>all synapses</a> · "
            f"<a href='../../report.html'>report</a></p>"
            "<h2>Sessions in the reference frame</h2><p>Maximum projections resampled into the "
            "reference session's frame; every synapse at its tracked position. Click a marker "
            f"for its crops.</p>{controls}<div class='tabs'>{tabs}</div>{''.join(panels)}"
            f"<h2>Registration QC</h2>{_qc_table(qc)}"
            f"<h2>Synapses</h2>"
            + synapse_table(summary, table_id="cell", href=lambda r: f"#syn-{r.synapse_id}")
            + "<h2>Each synapse across sessions</h2><p>Each tile: the plane at the synapse's "
            "z (top) and the x-z section through it (bottom, z stretched to square pixels), "
            "centred on its position in that session; PSD-95 green, morphology magenta, scaled "
            "per session.</p><div class='controls'><label>crop size <select class='strip-size'>"
            "<option value='1'>2x</option><option value='1.5'>3x</option><option value='2'>4x"
            "</option></select></label><label><input class='smooth' type='checkbox'> smooth "
            "pixels</label><span>curate: click an action (keys: r reject, m merge with the "
            "chosen track, u undo) and save the staged edits (box at the bottom right)</span>"
            "</div>" + "".join(strips))
    return page(f"Review {cell}", body, curation_js="../curation.js")
