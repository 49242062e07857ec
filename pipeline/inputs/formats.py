"""Microscope formats read through their community's reader library (the optional extra
``formats``: ``pip install '.[formats]'`` or ``make formats``).

===========  =========================  ==============================================
format       file                       library
===========  =========================  ==============================================
Zeiss CZI    ``.czi``                   pylibCZIrw (Zeiss's own reader and writer)
Leica LIF    ``.lif``                   readlif
Nikon ND2    ``.nd2``                   nd2
OME-Zarr     folder ``*.zarr``          zarr (OME-NGFF 0.4 and 0.5 metadata read here)
===========  =========================  ==============================================

A file holding several images (LIF series, CZI scenes, ND2 positions, bioformats2raw
series) needs the sheet's ``series`` column; the error lists what the file holds.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .layout import StackInfo, layout_info, to_czyx, um_per_unit

#: the extra's install command, named in every "library missing" error
INSTALL_FORMATS = "pip install 'synapse-pipeline[formats]' (or, in a clone: make formats)"
SUFFIX_FORMATS = {".czi": "czi", ".lif": "lif", ".nd2": "nd2"}
_LIBRARY = {"czi": "pylibCZIrw.czi", "lif": "readlif.reader", "nd2": "nd2", "zarr": "zarr"}
_FORMAT_NAME = {"czi": "Zeiss CZI", "lif": "Leica LIF", "nd2": "Nikon ND2", "zarr": "OME-Zarr"}


def library(fmt: str):
    """The reader module of ``fmt``; an error naming the extra's install command if missing."""
    name = _LIBRARY[fmt]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InputError(f"reading {_FORMAT_NAME[fmt]} files needs the Python package "
                         f"'{name.split('.')[0]}', which is not installed: "
                         f"{INSTALL_FORMATS}") from exc


def format_of(path: Path) -> str | None:
    """'czi', 'lif', 'nd2' or 'zarr' for a path these readers take, else None."""
    if path.suffix.lower() in SUFFIX_FORMATS and path.is_file():
        return SUFFIX_FORMATS[path.suffix.lower()]
    if path.is_dir() and (path.suffix.lower() == ".zarr" or (path / ".zattrs").is_file()
                          or (path / "zarr.json").is_file()):
        return "zarr"
    return None


def _pick(path: Path, names: list[str], series: int | None, what: str) -> int:
    if series is None:
        if len(names) > 1:
            listed = ", ".join(f"{i} = {n}" for i, n in enumerate(names))
            raise InputError(f"{path}: holds {len(names)} {what}s ({listed}); set the sheet's "
                             f"series column to the one of this session")
        return 0
    if not 0 <= series < len(names):
        raise InputError(f"{path}: series {series} requested but the file holds {len(names)} "
                         f"{what}(s) (0..{len(names) - 1})")
    return series


# --------------------------------------------------------------------------- ND2
def _nd2(path: Path, series: int | None, *, pixels: bool):
    nd2 = library("nd2")
    with nd2.ND2File(str(path)) as f:
        sizes = dict(f.sizes)
        n_pos = sizes.get("P", 1)
        pos = _pick(path, [f"position {i}" for i in range(n_pos)], series, "position")
        vox = f.voxel_size()
        names = tuple(ch.channel.name for ch in f.metadata.channels) if f.metadata else ()
        data = np.asarray(f.asarray(position=pos if n_pos > 1 else None)) if pixels else None
        dtype = f.dtype
    sizes.pop("P", None)
    axes = "".join(sizes)
    return axes, tuple(sizes.values()), dtype, (vox.z, vox.y, vox.x), names, data


# --------------------------------------------------------------------------- LIF
def _lif(path: Path, series: int | None, *, pixels: bool):
    reader = library("lif")
    lif = reader.LifFile(str(path))
    names = [img["name"] for img in lif.image_list]
    image = lif.get_image(_pick(path, names, series, "image"))
    dims = image.dims
    if dims.m > 1:
        raise InputError(f"{path}: image '{image.name}' is a mosaic of {dims.m} tiles; stitch "
                         "it in LAS X and export the stitched stack")
    shape = (dims.t, dims.z, image.channels, dims.y, dims.x)
    scale = list(image.scale[:3])               # pixels per um (x, y, z); None when unknown
    voxel = tuple(1 / abs(s) if s else None for s in (scale[2], scale[1], scale[0]))
    data = None
    if pixels:
        data = np.stack([np.stack([np.stack([np.asarray(image.get_frame(z=z, t=t, c=c))
                                             for c in range(image.channels)])
                                   for z in range(dims.z)]) for t in range(dims.t)])
    dtype = data.dtype if data is not None else (np.uint8 if max(image.bit_depth) <= 8
                                                 else np.uint16)
    return "TZCYX", shape, dtype, voxel, (), data


# --------------------------------------------------------------------------- CZI
def _czi(path: Path, series: int | None, *, pixels: bool):
    pyczi = library("czi")
    with pyczi.open_czi(str(path)) as doc:
        box = doc.total_bounding_box
        scenes = sorted(doc.scenes_bounding_rectangle) or [None]
        scene = scenes[_pick(path, [f"scene {s}" for s in scenes], series, "scene")]
        rect = doc.scenes_bounding_rectangle[scene] if scene is not None \
            else doc.total_bounding_rectangle
        n_t, n_z, n_c = (box.get(a, (0, 1))[1] - box.get(a, (0, 1))[0] for a in "TZC")
        meta = doc.metadata["ImageDocument"]["Metadata"]
        dist = meta.get("Scaling", {}).get("Items", {}).get("Distance", [])
        dist = dist if isinstance(dist, list) else [dist]
        metres = {d.get("@Id"): float(d["Value"]) for d in dist if d.get("Value")}
        voxel = tuple(metres[a] * 1e6 if metres.get(a) else None for a in "ZYX")
        chans = meta.get("Information", {}).get("Image", {}).get("Dimensions", {}) \
            .get("Channels", {}).get("Channel", [])
        chans = chans if isinstance(chans, list) else [chans]
        names = tuple(c.get("@Name", "") for c in chans)
        data = None
        if pixels:
            planes = [[[doc.read(roi=(rect.x, rect.y, rect.w, rect.h), scene=scene,
                                 plane={"T": t, "Z": z, "C": c})[..., 0]
                        for c in range(n_c)] for z in range(n_z)] for t in range(n_t)]
            data = np.asarray(planes)
        dtype = data.dtype if data is not None else np.uint16
    return "TZCYX", (n_t, n_z, n_c, rect.h, rect.w), dtype, voxel, names, data


# --------------------------------------------------------------------------- OME-Zarr
def _ngff(attrs: dict) -> dict | None:
    return (attrs.get("ome") or attrs).get("multiscales", [None])[0]


def _zarr(path: Path, series: int | None, *, pixels: bool):
    zarr = library("zarr")
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    if _ngff(attrs) is None:                     # bioformats2raw: one group per series
        keys = sorted((k for k in group.group_keys() if k.isdigit()), key=int)
        if not keys:
            raise InputError(f"{path}: a Zarr folder without OME-NGFF 'multiscales' metadata")
        group = group[keys[_pick(path, keys, series, "series")]]
        attrs = dict(group.attrs)
    ms = _ngff(attrs)
    axes = [a if isinstance(a, str) else a["name"] for a in ms.get("axes", [])] or \
        list("tczyx")
    units = [None if isinstance(a, str) else a.get("unit") for a in ms.get("axes", [])] or \
        [None] * len(axes)
    level = ms["datasets"][0]
    scale = [1.0] * len(axes)
    for transform in (level.get("coordinateTransformations", []) +
                      ms.get("coordinateTransformations", [])):
        if transform.get("type") == "scale":
            scale = [s * f for s, f in zip(scale, transform["scale"])]
    array = group[level["path"]]
    letters = "".join(a.upper() for a in axes)

    def size(ax):
        if ax.lower() not in axes:
            return None
        i = axes.index(ax.lower())
        factor = um_per_unit(units[i])
        return scale[i] * factor if factor else None

    voxel = (size("z"), size("y"), size("x"))
    omero = (attrs.get("ome") or attrs).get("omero", {}).get("channels", [])
    names = tuple(c.get("label", "") for c in omero)
    data = np.asarray(array[...]) if pixels else None
    return letters, tuple(array.shape), array.dtype, voxel, names, data


_READERS = {"czi": _czi, "lif": _lif, "nd2": _nd2, "zarr": _zarr}


def _open(path: Path, fmt: str, series: int | None, pixels: bool):
    try:
        return _READERS[fmt](path, series, pixels=pixels)
    except InputError:
        raise
    except (KeyError, ValueError, TypeError, json.JSONDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as {_FORMAT_NAME[fmt]} "
                         f"({type(exc).__name__}: {exc})") from exc


def probe_format(path: Path, fmt: str, *, series: int | None = None) -> StackInfo:
    axes, shape, dtype, voxel, names, _ = _open(path, fmt, series, pixels=False)
    return layout_info(path, axes, shape, dtype, voxel, format=_FORMAT_NAME[fmt],
                       channel_names=names)


def read_format(path: Path, fmt: str, channels: list[int], *, series: int | None = None,
                time_axis: str = "error") -> np.ndarray:
    axes, _, _, _, _, data = _open(path, fmt, series, pixels=True)
    return to_czyx(data, axes, path, time_axis)[channels]
