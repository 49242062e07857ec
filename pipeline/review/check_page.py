"""``review/check.html``: the sample check, a random sample of field tiles to check by eye.

Each tile shows one session's projection (reference grid, from the cell's review page) with the
synapses the pipeline calls present circled.  The person clicks a circle that is not a synapse
(it turns into a red cross; click again to undo), clicks a synapse that has no circle (a blue
plus; click it to remove), and presses "checked" once the whole tile was looked at.  Marks are
kept in the browser and saved as ``sample_check.tsv`` (posted to the review server when served,
downloaded otherwise); ``python -m pipeline evaluate --sample-check`` turns them into precision
and recall (:mod:`pipeline.truth.sample_check`).  Tiles are to be checked in their order: the
sample is random only if the hard ones are not skipped.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from ..contract import SAMPLE_CHECK_COLUMNS, Layout
from ..params import ReviewParams
from .pages import page
from .sample_check import draw_tiles, tile_claims

#: context shown around each tile (um), dimmed, so that a synapse on its edge can be judged
CONTEXT_UM = 1.5
#: a tile is drawn this many screen pixels wide
TILE_SCREEN_PX = 420


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def check_data(tiles: pd.DataFrame, claims: pd.DataFrame, *, fields: dict[str, dict],
               key: str, save_as: str, evaluate: str) -> dict:
    """What the page's script needs: per tile its place, images and the synapses shown.

    ``fields``: cell -> ``{"spacing": (sz, sy, sx) um, "shape_yx": (ny, nx), "morphology": bool}``
    of its reference session.
    """
    out = []
    by_tile = {t: g for t, g in claims.groupby("tile")}
    for t in tiles.itertuples(index=False):
        f = fields[t.cell]
        sy, sx = (float(v) for v in f["spacing"][1:])
        shown = by_tile.get(t.tile, claims.iloc[:0])
        out.append({
            "tile": t.tile, "order": int(t.order), "cell": t.cell, "session": t.session,
            "box_um": [t.y0_um, t.y1_um, t.x0_um, t.x1_um], "spacing": [sy, sx],
            "shape": [int(v) for v in f["shape_yx"]],
            "psd95": f"{t.cell}/proj_{t.session}_psd95.png",
            "morphology": f"{t.cell}/proj_{t.session}_morphology.png" if f["morphology"] else "",
            "shown": [{"id": int(s), "y": round(float(y), 3), "x": round(float(x), 3)}
                      for s, y, x in shown[["synapse_id", "y_um", "x_um"]].to_numpy()]})
    return {"tiles": out, "key": key, "columns": SAMPLE_CHECK_COLUMNS, "save_as": save_as,
            "evaluate": evaluate, "context_um": CONTEXT_UM, "screen_px": TILE_SCREEN_PX}


def check_page(data: dict) -> str:
    """The page; the tiles are drawn by its script from ``data`` (:func:`check_data`)."""
    n = len(data["tiles"])
    cells = sorted({t["cell"] for t in data["tiles"]})
    body = (
        f"<h1>Sample check: {n} tiles drawn at random from {len(cells)} cell(s)</h1>"
        "<p><a href='../report.html'>report</a> · <a href='index.html'>every synapse</a></p>"
        "<p>Each tile is a square of one session's field (maximum projection in the reference "
        "frame; the dimmed band around it is context). <b>Circles</b> are the synapses the "
        "pipeline calls present there. Click a circle that is <b>not a synapse</b> (a red "
        "cross; click again to undo); click a synapse inside the tile that has <b>no circle</b> "
        "(a blue plus; click it to remove); then press <b>checked</b> (key c), which also moves "
        "to the next tile. Check the tiles <b>in order</b>, the hard ones too: the estimate is "
        "fair only for a random sample. Save, then run the command shown to get precision and "
        "recall of the whole run with their 95 % intervals.</p>"
        "<div class='controls'><span class='contrast' data-ch='psd95'>PSD-95 (green): "
        "<input class='gain' type='range' min='0.2' max='5' step='0.1' value='1'> <input "
        "class='con' type='range' min='0.5' max='4' step='0.1' value='1'> <span class='val'>"
        "</span></span><label><input id='show-morph' type='checkbox' checked> morphology</label>"
        "<label><input id='show-marks' type='checkbox' checked> circles</label></div>"
        "<aside class='staged'><b>checked <span id='n-checked'>0</span> of " + str(n)
        + " tiles</b><div id='running'></div><button type='button' id='save-check'>save the "
        "check</button><div id='check-msg' class='msg'></div></aside>"
        "<div id='tiles'></div>"
        f"<script>window.CHECK = {json.dumps(data)};</script>")
    return page("Sample check", body).replace("</style>", CHECK_CSS + "</style>", 1).replace(
        "</body>", f"<script>{CHECK_JS}</script></body>", 1)


def build_check(results: Path, *, params: ReviewParams = ReviewParams()
                ) -> tuple[pd.DataFrame, str]:
    """(the tiles drawn, the page) for a results folder whose review pages exist.

    Each cell's field is its reference session's stack (ingest record); cells without a review
    page (failed) are left out.
    """
    layout = Layout(results)
    table = pd.read_csv(layout.synapses)
    fields, sessions, extent = {}, {}, {}
    for cell, g in table.groupby(table["cell"].astype(str), sort=True):
        if not layout.path("review_cell", cell=cell).is_dir():
            continue
        order = list(dict.fromkeys(g.sort_values("day")["session"].astype(str)))
        reg = json.loads(layout.path("register", cell=cell, session=order[0]).read_text())
        ref = reg.get("reference_session", order[0])
        meta = json.loads(layout.path("ingest_meta", cell=cell, session=ref).read_text())
        shape_yx = meta["shape_czyx"][2:]
        fields[cell] = {"spacing": meta["voxel_um"], "shape_yx": shape_yx,
                        "morphology": meta["shape_czyx"][0] > 1}
        sessions[cell] = order
        extent[cell] = (shape_yx[0] * meta["voxel_um"][1], shape_yx[1] * meta["voxel_um"][2])
    tiles = draw_tiles(extent, sessions, tile_um=params.check_tile_um, n=params.check_tiles,
                       seed=params.check_seed)
    root = Path(results)
    data = check_data(tiles, tile_claims(table, tiles), fields=fields, key=str(root.resolve()),
                      save_as=str(layout.path("sample_check")),
                      evaluate=f"python -m pipeline evaluate --sample-check --results {root}")
    return tiles, check_page(data)


CHECK_CSS = """
.tile{border-top:1px solid #ccc;padding:.6em 0}.tile.done h3::after{content:" \\2713 checked";
 color:#1a7f37}.tile.stale h3::after{content:" (changed since checked: check again)";color:#b00}
.tile.current{background:#fff8d0}
.tbox{position:relative;overflow:hidden;background:#000;line-height:0;cursor:crosshair}
.tbox img{position:absolute;image-rendering:pixelated;max-width:none}
.tbox img.morph{mix-blend-mode:screen;opacity:.7}
.tbox svg{position:absolute;left:0;top:0}
.tile .counts{font-size:12px;margin:.3em 0}
"""

CHECK_JS = r"""
const CK=window.CHECK;
function ckKey(){return 'sample-check:'+CK.key;}
function marks(){try{return JSON.parse(localStorage.getItem(ckKey())||'{}');}catch(e){return {};}}
function setMarks(m){localStorage.setItem(ckKey(),JSON.stringify(m));render();}
function mark(t){const m=marks();return m[t]||{checked:false,claims:'',wrong:[],missed:[]};}
function put(t,v){const m=marks();m[t]=v;setMarks(m);}
function shownIds(tile){return tile.shown.map(s=>s.id).join(';');}
const NS='http://www.w3.org/2000/svg';
function el(name,attrs){const e=document.createElementNS(NS,name);
 Object.entries(attrs).forEach(([k,v])=>e.setAttribute(k,v));return e;}
function drawTile(tile,sec){
 const [y0,y1,x0,x1]=tile.box_um,[sy,sx]=tile.spacing,c=CK.context_um;
 const vx=(x0-c)/sx+0.5,vy=(y0-c)/sy+0.5,vw=(x1-x0+2*c)/sx,vh=(y1-y0+2*c)/sy;
 const z=CK.screen_px/vw;const box=sec.querySelector('.tbox');
 box.style.width=(vw*z)+'px';box.style.height=(vh*z)+'px';
 const img=(src,cls)=>{const i=document.createElement('img');i.src=src;i.className=cls;
  i.style.width=(tile.shape[1]*z)+'px';i.style.left=(-vx*z)+'px';i.style.top=(-vy*z)+'px';
  box.appendChild(i);};
 img(tile.psd95,'ch ch-psd95');if(tile.morphology)img(tile.morphology,'morph');
 const svg=el('svg',{viewBox:`${vx} ${vy} ${vw} ${vh}`,width:vw*z,height:vh*z});
 const bx=x0/sx+0.5,by=y0/sy+0.5,bw=(x1-x0)/sx,bh=(y1-y0)/sy;
 [[vx,vy,vw,by-vy],[vx,by+bh,vw,vy+vh-by-bh],[vx,by,bx-vx,bh],[bx+bw,by,vx+vw-bx-bw,bh]]
  .forEach(([x,y,w,h])=>svg.appendChild(el('rect',{x,y,width:Math.max(w,0),height:Math.max(h,0),
   fill:'rgba(0,0,0,0.55)','pointer-events':'none'})));
 svg.appendChild(el('rect',{x:bx,y:by,width:bw,height:bh,fill:'none',stroke:'#fff',
  'stroke-dasharray':'4 3','stroke-width':1/z*1.5,'pointer-events':'none'}));
 const r=0.6/sx;
 tile.shown.forEach(s=>{const g=el('g',{class:'claim','data-id':s.id});
  g.appendChild(el('circle',{cx:s.x/sx+0.5,cy:s.y/sy+0.5,r,fill:'transparent',stroke:'#ffd400',
   'stroke-width':1.5/z}));
  const d=r*0.7,cx=s.x/sx+0.5,cy=s.y/sy+0.5;
  g.appendChild(el('path',{d:`M${cx-d},${cy-d}L${cx+d},${cy+d}M${cx-d},${cy+d}L${cx+d},${cy-d}`,
   stroke:'#ff3030','stroke-width':2.5/z,class:'cross','pointer-events':'none'}));
  svg.appendChild(g);});
 const missed=el('g',{class:'missed'});svg.appendChild(missed);
 svg.addEventListener('click',e=>{
  const m=mark(tile.tile);const claim=e.target.closest('g.claim');const plus=e.target.closest('g.plus');
  if(claim){const id=+claim.dataset.id;const k=m.wrong.indexOf(id);
   if(k>=0)m.wrong.splice(k,1);else m.wrong.push(id);}
  else if(plus){m.missed.splice(+plus.dataset.k,1);}
  else{const p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;
   const q=p.matrixTransform(svg.getScreenCTM().inverse());
   const yu=(q.y-0.5)*sy,xu=(q.x-0.5)*sx;
   if(yu<y0||yu>=y1||xu<x0||xu>=x1){note('outside the tile: only its inside counts');return;}
   m.missed.push([+yu.toFixed(3),+xu.toFixed(3)]);}
  if(m.checked&&m.claims!==shownIds(tile))m.claims=shownIds(tile);
  put(tile.tile,m);select(sec);});
 box.appendChild(svg);}
function renderTile(tile,sec){
 const m=mark(tile.tile);const svg=sec.querySelector('svg');const [sy,sx]=tile.spacing;
 sec.querySelectorAll('g.claim').forEach(g=>{const w=m.wrong.includes(+g.dataset.id);
  g.querySelector('.cross').style.display=w?'':'none';
  g.querySelector('circle').setAttribute('stroke',w?'#ff3030':'#ffd400');});
 const gm=svg.querySelector('g.missed');gm.innerHTML='';const a=0.5/sx;const z=CK.screen_px*sx;
 m.missed.forEach(([y,x],k)=>{const cx=x/sx+0.5,cy=y/sy+0.5;const g=el('g',{class:'plus','data-k':k});
  g.appendChild(el('circle',{cx,cy,r:a*1.3,fill:'transparent'}));
  g.appendChild(el('path',{d:`M${cx-a},${cy}L${cx+a},${cy}M${cx},${cy-a}L${cx},${cy+a}`,
   stroke:'#3aa0ff','stroke-width':a*0.35}));gm.appendChild(g);});
 sec.classList.toggle('done',m.checked&&m.claims===shownIds(tile));
 sec.classList.toggle('stale',m.checked&&m.claims!==shownIds(tile));
 sec.querySelector('.counts').textContent=`${tile.shown.length} shown, ${m.wrong.length} marked `
  +`not a synapse, ${m.missed.length} missed`;}
function render(){
 const all=marks();let n=0,shown=0,wrong=0,missed=0;
 CK.tiles.forEach(t=>{const sec=document.getElementById('tile-'+t.order);if(sec)renderTile(t,sec);
  const m=all[t.tile];if(m&&m.checked&&m.claims===shownIds(t)){n++;shown+=t.shown.length;
   wrong+=m.wrong.length;missed+=m.missed.length;}});
 document.getElementById('n-checked').textContent=n;
 const right=shown-wrong;
 document.getElementById('running').textContent=n?`so far: precision ${(right/Math.max(shown,1)).toFixed(3)}`
  +`, recall ${(right/Math.max(right+missed,1)).toFixed(3)} (${shown} shown, ${wrong} wrong, ${missed} missed)`:'';}
function note(t){document.getElementById('check-msg').textContent=t;}
function select(sec){document.querySelectorAll('.tile.current').forEach(s=>s.classList.remove('current'));
 if(sec)sec.classList.add('current');}
function checkTile(tile,sec){const m=mark(tile.tile);m.checked=!m.checked||m.claims!==shownIds(tile);
 m.claims=shownIds(tile);put(tile.tile,m);
 if(m.checked){const next=document.getElementById('tile-'+(tile.order+1));
  if(next){select(next);next.scrollIntoView({block:'start'});}}}
function fileText(){
 const rows=[CK.columns.join('\t')];const all=marks();
 CK.tiles.forEach(t=>{const m=all[t.tile];if(!m)return;
  const row=o=>CK.columns.map(c=>String(o[c]??'')).join('\t');
  const base={tile:t.tile,cell:t.cell,session:t.session};
  if(m.checked)rows.push(row({...base,mark:'checked',claims:m.claims}));
  m.wrong.forEach(id=>rows.push(row({...base,mark:'wrong',synapse_id:id})));
  m.missed.forEach(([y,x])=>rows.push(row({...base,mark:'missed',y_um:y,x_um:x})));});
 return rows.join('\n')+'\n';}
function fromFile(text){
 const lines=text.split('\n').filter(l=>l&&!l.startsWith('#'));if(!lines.length)return;
 const head=lines[0].split('\t');const have=marks();const got={};
 lines.slice(1).forEach(l=>{const v=Object.fromEntries(l.split('\t').map((x,i)=>[head[i],x]));
  const m=got[v.tile]||(got[v.tile]={checked:false,claims:'',wrong:[],missed:[]});
  if(v.mark==='checked'){m.checked=true;m.claims=v.claims||'';}
  if(v.mark==='wrong')m.wrong.push(+v.synapse_id);
  if(v.mark==='missed')m.missed.push([+v.y_um,+v.x_um]);});
 Object.entries(got).forEach(([t,m])=>{if(!have[t])have[t]=m;});setMarks(have);}
async function save(){
 const text=fileText();
 if(location.protocol==='http:'||location.protocol==='https:'){
  const res=await fetch('/api/sample-check',{method:'POST',headers:{'Content-Type':'text/plain'},body:text});
  const out=await res.json();
  if(!res.ok){note('not saved: '+out.error);return;}
  note(`saved ${out.rows} mark(s) to ${out.saved}`+(out.backup?`\nprevious version: ${out.backup}`:'')
   +`\nthen run: ${CK.evaluate}`);
 } else {
  const blob=new Blob([text],{type:'text/tab-separated-values'});
  const a=document.createElement('a');a.href=URL.createObjectURL(blob);a.download='sample_check.tsv';
  document.body.appendChild(a);a.click();a.remove();
  note(`downloaded sample_check.tsv: save it as ${CK.save_as}, then run\n${CK.evaluate}`);}}
async function initCheck(){
 const host=document.getElementById('tiles');
 CK.tiles.forEach(t=>{const sec=document.createElement('section');sec.className='tile';
  sec.id='tile-'+t.order;sec.dataset.tile=t.tile;
  const [y0,y1,x0,x1]=t.box_um;
  sec.innerHTML=`<h3>${t.order}. ${t.cell}, session ${t.session}: y ${y0.toFixed(1)}-${y1.toFixed(1)} um, `
   +`x ${x0.toFixed(1)}-${x1.toFixed(1)} um</h3><div class='tbox'></div><div class='counts'></div>`
   +`<button type='button' class='check-tile'>checked</button>`;
  host.appendChild(sec);drawTile(t,sec);
  sec.querySelector('.check-tile').addEventListener('click',()=>checkTile(t,sec));
  sec.addEventListener('mouseenter',()=>select(sec));});
 document.getElementById('save-check').addEventListener('click',save);
 document.getElementById('show-morph').addEventListener('change',e=>
  document.querySelectorAll('img.morph').forEach(i=>i.style.display=e.target.checked?'':'none'));
 document.getElementById('show-marks').addEventListener('change',e=>
  document.querySelectorAll('g.claim').forEach(g=>g.style.display=e.target.checked?'':'none'));
 document.addEventListener('keydown',e=>{if(e.key!=='c'||['INPUT','SELECT'].includes(e.target.tagName))return;
  const sec=document.querySelector('.tile.current');if(!sec)return;
  checkTile(CK.tiles.find(t=>t.tile===sec.dataset.tile),sec);});
 if(location.protocol==='http:'||location.protocol==='https:'){
  try{const r=await fetch('/api/sample-check');if(r.ok)fromFile((await r.json()).text||'');}catch(e){}}
 render();select(document.getElementById('tile-1'));}
document.addEventListener('DOMContentLoaded',initCheck);
"""
