"""``python -m pipeline review RESULTS``: the review pages served on this computer, with saving.

The pages work as files too (``file://``; the page then downloads the curation file).  Served,
they save the person's staged edits straight to the curation file and can start the rerun:

``GET  /...``            a file under the results folder, nothing outside it (``..``, encoded or
                         not, and links leading out are refused)
``GET  /api/curation``   the rows of the curation file the workflow reads now, and its path
``POST /api/curation``   a complete curation file; saved only when it parses and names only
                         cells of this run; the previous version is kept beside it
                         (``curation.tsv.~<time>~``)
``GET  /api/sample-check``  the sample-check file's text (review/check.html's marks), if saved
``POST /api/sample-check``  the complete sample-check file; saved to ``RESULTS/sample_check.tsv``
                         when it parses, the previous version kept beside it
``POST /api/rerun``      ``python -m pipeline run SHEET --results RESULTS`` in the background
``GET  /api/rerun``      whether it runs, its exit status and the end of its output

The server binds to 127.0.0.1 only and refuses writes that come from another site's page.
Nothing is ever written into the imaging directory: only the curation file, the sample-check
file and the rerun's log.
"""
from __future__ import annotations

import datetime as dt
import json
import mimetypes
import posixpath
import shutil
import subprocess
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from ..contract import CURATION_FILE_COLUMNS, Layout
from ..core.errors import InputError
from ..inputs.check_marks import parse_marks
from ..inputs.curation import curation_path, parse_curation, read_curation

MAX_BODY = 2_000_000    # bytes: a curation file of tens of thousands of rows


def run_record(results: Path) -> dict:
    """What ``pipeline run`` recorded of the last run into ``results`` (sheet, config), if any."""
    path = Path(results) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


class Rerun:
    """One background ``pipeline run`` at a time, its output kept in the results' logs."""

    def __init__(self, command: list[str] | None, log: Path):
        self.command, self.log = command, log
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def start(self) -> dict:
        with self.lock:
            if self.command is None:
                raise InputError("the sessions sheet of this run is not known: start the server "
                                 "with --sheet SHEET, or run `python -m pipeline run SHEET "
                                 "--results RESULTS` yourself")
            if self.proc is not None and self.proc.poll() is None:
                return self.status()
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log, "w")
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
            out.close()
            return self.status()

    def status(self) -> dict:
        if self.proc is None:
            return {"state": "idle", "command": self.command}
        rc = self.proc.poll()
        tail = self.log.read_text(errors="replace").splitlines()[-25:] if self.log.exists() else []
        return {"state": "running" if rc is None else "finished", "returncode": rc,
                "command": self.command, "log": str(self.log), "tail": tail}


def make_handler(root: Path, *, read_path, save_path: Path, cells: set[str],
                 rerun: Rerun, host: str, check_path: Path | None = None):
    """The request handler class serving ``root`` (see the module's description);
    ``read_path()`` gives the curation file the workflow reads now (it changes on the first save)."""
    root = root.resolve()
    check_path = check_path or Layout(root).path("sample_check")

    class Handler(BaseHTTPRequestHandler):
        server_version = "synapse-review"

        def log_message(self, fmt, *args):      # quiet: one line per write, not per picture
            pass

        # ---------------------------------------------------------------- helpers
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _file(self, url_path: str) -> Path | None:
            """The file a URL path names, or None when it lies outside the results folder."""
            path = urllib.parse.unquote(url_path)
            if "\x00" in path or "\\" in path:
                return None
            parts = [p for p in path.split("/") if p]
            if any(p in ("..", ".") for p in parts):
                return None
            target = (root / posixpath.join(*parts)) if parts else root
            try:
                target = target.resolve()
            except OSError:
                return None
            if target != root and root not in target.parents:
                return None
            if target.is_dir():
                target = target / "index.html"
            return target

        def _same_site(self) -> bool:
            """A write must come from our own pages (browsers send Origin on cross-site POSTs)."""
            origin = self.headers.get("Origin")
            return origin in (None, "null", f"http://{host}", f"http://localhost:{host.split(':')[1]}")

        # ---------------------------------------------------------------- GET
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/api/curation":
                source = read_path()
                try:
                    rows = read_curation(source) if source.exists() else None
                except InputError as exc:
                    return self._json(409, {"error": str(exc)})
                rows = [] if rows is None else (rows[CURATION_FILE_COLUMNS].to_dict("records"))
                return self._json(200, {"path": str(save_path), "read_from": str(source),
                                        "rows": rows})
            if url.path == "/api/rerun":
                return self._json(200, rerun.status())
            if url.path == "/api/sample-check":
                text = check_path.read_text(encoding="utf-8") if check_path.exists() else ""
                return self._json(200, {"path": str(check_path), "text": text})
            if url.path == "/favicon.ico":     # browsers ask for it; there is none
                return self._send(204, b"", "image/x-icon")
            if url.path in ("", "/"):
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", "/review/index.html")
                self.end_headers()
                return None
            target = self._file(url.path)
            if target is None:
                return self._send(403, b"outside the results folder", "text/plain")
            if not target.is_file():
                return self._send(404, b"not found", "text/plain")
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return self._send(200, target.read_bytes(), ctype)

        do_HEAD = do_GET

        # ---------------------------------------------------------------- POST
        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            if not self._same_site():
                return self._json(403, {"error": "writes are accepted only from the review pages"})
            if url.path == "/api/rerun":
                try:
                    return self._json(202, rerun.start())
                except InputError as exc:
                    return self._json(409, {"error": str(exc)})
            if url.path not in ("/api/curation", "/api/sample-check"):
                return self._json(404, {"error": f"no such action {url.path}"})
            size = int(self.headers.get("Content-Length") or 0)
            if size <= 0 or size > MAX_BODY:
                return self._json(400, {"error": f"a file of 1 to {MAX_BODY} bytes"})
            text = self.rfile.read(size).decode("utf-8", errors="replace")
            if url.path == "/api/sample-check":
                return self._save_check(text)
            try:
                rows = parse_curation(text, source="the saved curation file")
                unknown = sorted(set(rows["cell"]) - cells)
                if unknown:
                    raise InputError(f"cell(s) {', '.join(unknown)} are not cells of this run "
                                     f"({', '.join(sorted(cells))})")
            except InputError as exc:
                return self._json(400, {"error": str(exc)})
            backup = save_text(save_path, text)
            print(f"saved {len(rows)} curation row(s) to {save_path}"
                  + (f" (previous version: {backup})" if backup else ""), flush=True)
            return self._json(200, {"saved": str(save_path), "rows": len(rows),
                                    "backup": str(backup) if backup else None})

        def _save_check(self, text: str) -> None:
            try:
                marks = parse_marks(text, source="the saved sample-check file")
            except InputError as exc:
                return self._json(400, {"error": str(exc)})
            backup = save_text(check_path, text)
            print(f"saved {len(marks)} sample-check mark(s) to {check_path}", flush=True)
            return self._json(200, {"saved": str(check_path), "rows": len(marks),
                                    "backup": str(backup) if backup else None})

    return Handler


def save_text(path: Path, text: str) -> Path | None:
    """Write ``text`` to ``path`` atomically; the previous version, if any, is kept beside it.
    Returns the backup's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.~{dt.datetime.now():%Y%m%d-%H%M%S-%f}~")
        shutil.copy2(path, backup)
    tmp = path.with_name(f".{path.name}.saving")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return backup


def make_server(results: Path, *, port: int = 8765, sheet: Path | None = None,
                curation: Path | None = None) -> ThreadingHTTPServer:
    """A server of ``results`` on 127.0.0.1:``port`` (0: any free port); not yet serving."""
    results = Path(results).resolve()
    layout = Layout(results)
    if not layout.path("review_index").exists():
        raise InputError(f"{results}: no review pages (review/index.html); run the workflow "
                         "into this folder first")
    record = run_record(results)
    sheet = Path(sheet) if sheet else (Path(record["sheet"]) if record.get("sheet") else None)
    configured = Path(curation) if curation else (Path(record["curation"])
                                                  if record.get("curation") else None)
    save_path = curation_path(results, sheet=sheet, configured=configured)[1]

    def read_path() -> Path:
        return curation_path(results, sheet=sheet, configured=configured)[0]

    cells = set(pd.read_csv(layout.synapses, usecols=["cell"])["cell"].astype(str))
    command = None
    if sheet is not None:
        command = [sys.executable, "-m", "pipeline", "run", str(sheet), "--results", str(results)]
        for key, flag in (("configfile", "--configfile"), ("profile", "--profile")):
            if record.get(key):
                command += [flag, str(record[key])]
    log = results / "logs" / f"rerun-{dt.datetime.now():%Y%m%d-%H%M%S}.log"
    server = ThreadingHTTPServer(("127.0.0.1", port), None)
    host = f"127.0.0.1:{server.server_address[1]}"
    server.RequestHandlerClass = make_handler(results, read_path=read_path, save_path=save_path,
                                              cells=cells, rerun=Rerun(command, log), host=host)
    server.save_path, server.rerun_command = save_path, command
    return server


def serve(args) -> int:
    """The ``review RESULTS`` command: serve until Ctrl-C."""
    server = make_server(Path(args.results), port=args.port, sheet=args.sheet,
                         curation=args.curation)
    url = f"http://127.0.0.1:{server.server_address[1]}/review/index.html"
    print(f"review pages of {args.results} at {url}\n"
          f"edits are saved to {server.save_path}"
          + ("" if server.rerun_command else "\n(the sessions sheet is not known: the page shows "
             "the rerun command; start with --sheet SHEET to rerun from the page)")
          + "\nCtrl-C stops the server", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
