"""Curation in the review pages: the controls, the merge suggestions and the script behind them.

A person clicks an action (or presses a key) on a synapse; the edit is staged in the page's local
storage (kept across reloads, shared by every page of the run), listed with an undo button, and
saved in one click as a complete curation file: posted to ``python -m pipeline review RESULTS``
(:mod:`pipeline.review.server`) when the page is served, downloaded when it is opened as a file.
The rows already in effect come from ``review/curation.js``, written by the report rule
(:func:`curation_script`); staged rows found there are dropped (they were saved and applied).
Ids are track ids, as :mod:`pipeline.stages.curate` expects.
"""
from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..contract import CURATION_FILE_COLUMNS

#: merge candidates: tracks whose centres lie within this distance (um)
MERGE_RADIUS_UM = 5.0
#: at most this many candidates are offered per track, nearest first
MERGE_CHOICES = 5


def _detected(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One cell's detected rows, and the column naming their track (``track_id`` where the
    presence stage joined pieces, else ``synapse_id``)."""
    key = "track_id" if "track_id" in table.columns else "synapse_id"
    return table[table.get("detected", pd.Series(1, index=table.index)) == 1], key


def merge_suggestions(table: pd.DataFrame) -> dict[int, list[dict]]:
    """Per track of one cell: the tracks it could be merged with, nearest first.

    A candidate lies within :data:`MERGE_RADIUS_UM` (centres of the detected positions, in the
    reference frame) and was never detected in the same session (the curate stage refuses a
    merge of pieces that share a session).  Each is ``{"id", "distance_um", "sessions"}``.
    """
    det, key = _detected(table)
    if det.empty:
        return {}
    centres = det.groupby(key)[["z_um", "y_um", "x_um"]].mean()
    seen = det.groupby(key)["session"].agg(lambda s: frozenset(s.astype(str)))
    ids = centres.index.to_numpy()
    xyz = centres.to_numpy(float)
    pairs = cKDTree(xyz).query_pairs(MERGE_RADIUS_UM, output_type="ndarray")
    out: dict[int, list[dict]] = {int(i): [] for i in ids}
    order = {s: k for k, s in enumerate(pd.unique(table.sort_values("day")["session"].astype(str)))}
    for a, b in pairs:
        if seen.iloc[a] & seen.iloc[b]:
            continue
        d = float(np.linalg.norm(xyz[a] - xyz[b]))
        for i, j in ((a, b), (b, a)):
            sessions = sorted(seen.iloc[j], key=lambda s: order.get(s, 0))
            out[int(ids[i])].append({"id": int(ids[j]), "distance_um": round(d, 2),
                                     "sessions": sessions})
    return {i: sorted(v, key=lambda c: c["distance_um"])[:MERGE_CHOICES] for i, v in out.items()}


def track_anchors(table: pd.DataFrame) -> dict[int, str]:
    """Per track of one cell: its mean detected position in the reference frame, "z y x" (um),
    the ``at_um`` a curation row made on the page carries (the curate stage checks that the id
    still names the synapse at that place)."""
    det, key = _detected(table)
    centres = det.groupby(key)[["z_um", "y_um", "x_um"]].mean()
    return {int(i): " ".join(f"{v:.2f}" for v in xyz)
            for i, xyz in zip(centres.index, centres.to_numpy(float))}


def curation_script(rows: pd.DataFrame, *, path: str, rerun: str, key: str) -> str:
    """``review/curation.js``: the rows in effect, where they are read from, how to rerun."""
    data = {"rows": rows.reindex(columns=CURATION_FILE_COLUMNS).fillna("").astype(str)
            .to_dict("records"),
            "path": path, "rerun": rerun, "key": key, "columns": CURATION_FILE_COLUMNS}
    return "window.CURATION = " + json.dumps(data) + ";\n"


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def synapse_controls(cell: str, tracks: list[int], suggestions: dict[int, list[dict]],
                     anchors: dict[int, str] | None = None) -> str:
    """The action bar of one synapse: reject each of its tracks, merge with a suggestion.
    ``anchors``: each track's position (:func:`track_anchors`), carried by its rows."""
    at = anchors or {}
    buttons = "".join(
        f"<button type='button' class='act' data-action='reject' data-cell='{_esc(cell)}' "
        f"data-id='{t}' data-at='{_esc(at.get(t, ''))}' title='the track is not a synapse "
        "(key r)'>reject"
        f"{f' track {t}' if len(tracks) > 1 else ''}</button>" for t in tracks)
    options = "".join(
        f"<option value='{c['id']}'>track {c['id']}: {c['distance_um']:.1f} um, seen in "
        f"{_esc(', '.join(c['sessions']))}</option>"
        for c in suggestions.get(tracks[0], []))
    merge = (f"<label>merge {tracks[0]} with <select class='merge-with'>{options}</select></label>"
             f"<button type='button' class='act' data-action='merge' data-cell='{_esc(cell)}' "
             f"data-id='{tracks[0]}' data-at='{_esc(at.get(tracks[0], ''))}' "
             "title='the two tracks are one synapse (key m)'>merge</button>"
             if options else "<span class='muted'>no merge candidate within "
             f"{MERGE_RADIUS_UM:g} um</span>")
    return f"<div class='curate'>{buttons} {merge}</div>"


def session_controls(cell: str, track: int, session: str, present, *, first: bool,
                     anchor: str = "") -> str:
    """Per session of a synapse: flip its call, split the track from here on (``anchor``: the
    track's position, :func:`track_anchors`)."""
    flip = "absent" if present == 1 else "present"
    out = (f"<button type='button' class='act' data-action='{flip}' data-cell='{_esc(cell)}' "
           f"data-id='{track}' data-at='{_esc(anchor)}' data-session='{_esc(session)}'>"
           f"mark {flip}</button>")
    if not first:
        out += (f" <button type='button' class='act' data-action='split' data-cell='{_esc(cell)}'"
                f" data-id='{track}' data-at='{_esc(anchor)}' data-session='{_esc(session)}'"
                " title='from this session on "
                f"a new synapse'>split here</button>")
    return out


def staged_panel() -> str:
    """The box listing staged edits, with save (and rerun when served)."""
    return ("<aside id='staged' class='staged'><b><span id='staged-n'>0</span> edit(s) staged</b>"
            "<ol id='staged-list'></ol><button type='button' id='save-curation'>save curation "
            "file</button> <button type='button' id='undo-last' title='key u'>undo last</button> "
            "<button type='button' id='rerun' hidden>rerun the workflow</button>"
            "<div id='staged-msg' class='msg'></div></aside>")


CURATION_CSS = """
.curate{margin:.3em 0;font-size:12px;display:flex;gap:.5em;align-items:center;flex-wrap:wrap}
.curate select{font-size:12px;max-width:26em}.muted{color:#888}
button.act{font-size:11px}button.act.done{background:#ffd400}
.staged{position:fixed;right:10px;bottom:10px;width:330px;max-height:45vh;overflow:auto;
 background:#fffbe6;border:1px solid #d9b300;padding:6px 8px;font-size:12px;z-index:10}
.staged ol{margin:.3em 0;padding-left:1.6em}.staged li button{font-size:10px;margin-left:.4em}
.staged .msg{margin-top:.3em;white-space:pre-wrap;font-family:monospace;font-size:11px}
section.syn.selected{outline:2px solid #ffd400}
"""

CURATION_JS = r"""
const CUR={rows:[],path:'curation.tsv',rerun:'',key:location.pathname,columns:[]};
function curKey(){return 'synapse-curation:'+CUR.key;}
function rowText(r){return CUR.columns.map(c=>String(r[c]??'').replace(/[\t\n]/g,' ')).join('\t');}
function staged(){try{return JSON.parse(localStorage.getItem(curKey())||'[]');}catch(e){return [];}}
function setStaged(list){localStorage.setItem(curKey(),JSON.stringify(list));renderStaged();}
function stage(r){const l=staged();const t=rowText(r);
 if(!l.some(x=>rowText(x)===t)){l.push(r);setStaged(l);}
 message(`staged: ${t.replace(/\t+$/,'').replace(/\t/g,' ')}`);}
function message(t){const m=document.getElementById('staged-msg');if(m)m.textContent=t;}
function renderStaged(){
 const l=staged();const ol=document.getElementById('staged-list');if(!ol)return;
 document.getElementById('staged-n').textContent=l.length;ol.innerHTML='';
 l.forEach((r,i)=>{const li=document.createElement('li');
  li.textContent=rowText(r).replace(/\t+$/,'').replace(/\t/g,' ');
  const b=document.createElement('button');b.type='button';b.textContent='undo';b.className='undo';
  b.addEventListener('click',()=>{const k=staged();k.splice(i,1);setStaged(k);});
  li.appendChild(b);ol.appendChild(li);});
 document.querySelectorAll('button.act').forEach(b=>b.classList.toggle('done',
  l.some(r=>rowText(r)===rowText(actionRow(b)))));}
function actionRow(b){
 const r={action:b.dataset.action,cell:b.dataset.cell,synapse_id:b.dataset.id,
  session:b.dataset.session||'',other_synapse_id:'',note:'',at_um:b.dataset.at||''};
 if(r.action==='merge'){const s=b.closest('.curate').querySelector('select.merge-with');
  r.other_synapse_id=s?s.value:'';}
 return r;}
function fileText(base){
 const have=new Set(base.map(rowText));
 const rows=base.concat(staged().filter(r=>!have.has(rowText(r))));
 return [CUR.columns.join('\t')].concat(rows.map(rowText)).join('\n')+'\n';}
async function saveCuration(){
 if(location.protocol==='http:'||location.protocol==='https:'){
  let cur;try{cur=await (await fetch('/api/curation')).json();}
  catch(e){message('the review server does not answer: '+e);return;}
  if(cur.error){message('not saved: '+cur.error);return;}
  const text=fileText(cur.rows);
  const res=await fetch('/api/curation',{method:'POST',headers:{'Content-Type':'text/plain'},body:text});
  const out=await res.json();
  if(!res.ok){message('not saved: '+out.error);return;}
  setStaged([]);document.getElementById('rerun').hidden=false;
  message(`saved ${out.rows} row(s) to ${out.saved}`+(out.backup?`\nprevious version: ${out.backup}`:'')
   +`\nrerun: ${CUR.rerun}`);
 } else {
  const blob=new Blob([fileText(CUR.rows)],{type:'text/tab-separated-values'});
  const a=document.createElement('a');a.href=URL.createObjectURL(blob);a.download='curation.tsv';
  document.body.appendChild(a);a.click();a.remove();
  message(`downloaded curation.tsv: save it as ${CUR.path}, then run\n${CUR.rerun}\n`
   +'(served by `python -m pipeline review RESULTS`, the page saves it there itself)');}}
async function rerun(){
 const res=await fetch('/api/rerun',{method:'POST'});const out=await res.json();
 if(!res.ok){message(out.error);return;}
 const poll=async()=>{const s=await (await fetch('/api/rerun')).json();
  message(`rerun ${s.state}${s.returncode!==null&&s.returncode!==undefined?' (exit '+s.returncode+')':''}\n`
   +(s.tail||[]).slice(-8).join('\n')+(s.state==='finished'?'\nreload the page to see the new calls':''));
  if(s.state==='running')setTimeout(poll,2000);};
 poll();}
function selectSynapse(sec){document.querySelectorAll('section.syn.selected')
 .forEach(s=>s.classList.remove('selected'));if(sec)sec.classList.add('selected');}
function initCuration(){
 Object.assign(CUR,window.CURATION||{});
 const have=new Set(CUR.rows.map(rowText));          // saved and applied: no longer staged
 const left=staged().filter(r=>!have.has(rowText(r)));
 if(left.length!==staged().length)localStorage.setItem(curKey(),JSON.stringify(left));
 document.querySelectorAll('button.act').forEach(b=>b.addEventListener('click',()=>{
  selectSynapse(b.closest('section.syn'));stage(actionRow(b));}));
 const save=document.getElementById('save-curation');if(save)save.addEventListener('click',saveCuration);
 const undo=document.getElementById('undo-last');if(undo)undo.addEventListener('click',()=>{
  const l=staged();l.pop();setStaged(l);});
 const re=document.getElementById('rerun');if(re)re.addEventListener('click',rerun);
 document.querySelectorAll('section.syn').forEach(s=>s.addEventListener('click',()=>selectSynapse(s)));
 const t=location.hash&&document.querySelector(location.hash);if(t&&t.matches('section.syn'))selectSynapse(t);
 window.addEventListener('hashchange',()=>{const s=location.hash&&document.querySelector(location.hash);
  if(s&&s.matches('section.syn'))selectSynapse(s);});
 document.addEventListener('keydown',e=>{
  if(['INPUT','SELECT','TEXTAREA'].includes(e.target.tagName)||e.ctrlKey||e.metaKey||e.altKey)return;
  const sec=document.querySelector('section.syn.selected');
  if(e.key==='u'){const l=staged();l.pop();setStaged(l);return;}
  if(!sec)return;
  const b=sec.querySelector(`.curate button.act[data-action='${{r:'reject',m:'merge'}[e.key]}']`);
  if(b)b.click();});
 renderStaged();}
"""
