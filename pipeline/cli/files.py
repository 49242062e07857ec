"""Files at the edges: every output is written to a temporary name and renamed, so an
interrupted command leaves nothing that looks complete."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..core.errors import InputError


def _shared_mode(path, mode: int) -> None:
    # mkstemp/mkdtemp make private files; results are shared like any file the user writes
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _shared_mode(tmp, 0o666)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder next to ``path``; it replaces ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        _shared_mode(tmp, 0o777)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_table(table: pd.DataFrame, path: str | Path, *, float_format: str = "%.6g",
                columns=None) -> None:
    """A CSV table, atomically (``columns``: which and in what order)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format, columns=columns)


def write_json(data, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def read_table(path) -> pd.DataFrame:
    """A user's CSV table, with an error naming the file when it cannot be read."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({exc})") from None
