"""Acquisition folders of two-photon rigs, read with the rig's own XML.

* Bruker PrairieView ``ZSeries-*`` folders: one (OME-)TIFF per plane and channel, named in the
  folder's ``<PVScan>`` XML with each frame's stage position; ``micronsPerPixel`` gives x and y.
* Thorlabs ThorImageLS experiment folders: ``Experiment.xml`` beside one ``Image_*.raw`` file
  (16-bit, volumes of planes of interleaved channels, flyback frames after each volume) or
  ``ChanA_0001_0001_0001_0001.tif``-style TIFFs (channel, ..., plane, time point).

Channel indices follow the rig's numbering: PrairieView ``Ch1``, ``Ch2``, ... are 0, 1, ...;
ThorImage ``ChanA``, ``ChanB``, ... are 0, 1, ...  A channel the acquisition did not record
keeps its index (and an empty name), so the sheet's indices do not shift when one is off.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..core.errors import InputError
from .layout import StackInfo, to_czyx


@dataclass(frozen=True)
class FolderLayout:
    """Where each (time point, plane, channel) of an acquisition folder is stored."""

    info: StackInfo
    #: (t, z, c) -> (file, page); pages are 0-based
    planes: dict[tuple[int, int, int], tuple[Path, int]]


def _xml_root(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{path}: the acquisition's XML cannot be read ({exc}); is the folder "
                         "complete?") from exc


def _starts_with(path: Path, tag: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return f"<{tag}".encode() in fh.read(4096)
    except OSError:
        return False


def _info(folder: Path, planes, n_t: int, n_z: int, names: dict[int, str], voxel,
          fmt: str) -> StackInfo:
    file, page = planes[min(planes)]
    with tifffile.TiffFile(file) as tif:
        first = tif.pages[page]
        yx, dtype = tuple(first.shape[:2]), str(first.dtype)
    n_c = max(names) + 1
    shape = ((n_t,) if n_t > 1 else ()) + (n_z, n_c) + yx
    return StackInfo(folder, n_c, n_z, yx, dtype, voxel,
                     axes=("T" if n_t > 1 else "") + "ZCYX", shape=shape, time_points=n_t,
                     format=fmt, channel_names=tuple(names.get(i, "") for i in range(n_c)))


# --------------------------------------------------------------------------- PrairieView
def prairieview_xml(folder: Path) -> Path | None:
    """The folder's PrairieView XML (``<PVScan>``), None when it is not a PrairieView folder."""
    named = folder / f"{folder.name}.xml"
    candidates = [named] if named.is_file() else sorted(folder.glob("*.xml"))
    return next((p for p in candidates if _starts_with(p, "PVScan")), None)


def _pv_state(element: ET.Element, key: str) -> dict[str, float]:
    """A ``PVStateValue`` (PrairieView 5.2+) or ``Key`` (earlier) entry under ``element``'s
    own ``PVStateShard``, as {index: value}; for ``positionCurrent`` the sub-indexed values of
    an axis (several z drives, e.g. motor and piezo) are summed."""
    out: dict[str, float] = {}
    for shard in element.findall("PVStateShard"):
        for val in shard.findall(f"PVStateValue[@key='{key}']"):
            for item in val:
                idx = item.get("index", "")
                if item.get("value") is not None:
                    out[idx] = float(item.get("value"))
                subs = [float(s.get("value")) for s in item.findall("SubindexedValue")
                        if s.get("value") is not None]
                if subs:
                    out[idx] = sum(subs)
        for val in shard.findall("Key"):
            m = re.fullmatch(rf"{key}_(\w+)", val.get("key", ""))
            if m and val.get("value") is not None:
                out[m.group(1)] = float(val.get("value"))
    return out


def prairieview_layout(folder: Path) -> FolderLayout:
    """Planes, channels and voxel size of a PrairieView ``ZSeries`` folder from its XML.

    Planes are ordered by the stage position each frame records (so stacks taken top-down and
    bottom-up agree), by frame index when no position is recorded; each ``Sequence`` (cycle)
    with frames is one time point.
    """
    xml = prairieview_xml(folder)
    if xml is None:
        raise InputError(f"{folder}: no PrairieView XML (<PVScan>) in the folder")
    root = _xml_root(xml)
    microns = _pv_state(root, "micronsPerPixel")
    z_global = _pv_state(root, "positionCurrent").get("ZAxis")
    planes: dict[tuple[int, int, int], tuple[Path, int]] = {}
    names: dict[int, str] = {}
    steps: list[float] = []
    sequences = [s for s in root.findall("Sequence") if s.findall("Frame")]
    if not sequences:
        raise InputError(f"{xml}: the XML lists no frames; the acquisition may have been "
                         "aborted before its first plane")
    n_z = len(sequences[0].findall("Frame"))
    for t, seq in enumerate(sequences):
        z_here = _pv_state(seq, "positionCurrent").get("ZAxis", z_global)
        frames = []
        for k, frame in enumerate(seq.findall("Frame")):
            z_here = _pv_state(frame, "positionCurrent").get("ZAxis", z_here)
            frames.append((z_here, int(frame.get("index", k + 1)), frame))
        if len(frames) != n_z:
            raise InputError(f"{xml}: cycle {t + 1} has {len(frames)} frames, the first "
                             f"{n_z}; the acquisition was stopped part-way: remove the "
                             "incomplete cycle's frames from the XML or re-acquire")
        known = all(z is not None for z, _, _ in frames)
        frames.sort(key=lambda f: (f[0], f[1]) if known else f[1])
        if known and len(frames) > 1:
            steps.extend(np.diff([z for z, _, _ in frames]))
        for z, (_, _, frame) in enumerate(frames):
            for f in frame.findall("File"):
                c = int(f.get("channel", "1")) - 1
                names[c] = f.get("channelName") or f"Ch{c + 1}"
                file = folder / f.get("filename", "")
                if not file.is_file():
                    raise InputError(f"{folder}: {file.name} (cycle {t + 1}, frame "
                                     f"{frame.get('index')}, {names[c]}) is listed in "
                                     f"{xml.name} but missing from the folder")
                planes[(t, z, c)] = (file, int(f.get("page", "1")) - 1)
    # rounded to 1 pm: the positions are sums of drive readings with float round-off
    step = round(float(np.median(np.abs(steps))), 6) if steps else 0.0
    z_um = step if step > 0 else None
    voxel = (z_um, microns.get("YAxis"), microns.get("XAxis"))
    return FolderLayout(_info(folder, planes, len(sequences), n_z, names, voxel,
                              "Bruker PrairieView folder"), planes)


# --------------------------------------------------------------------------- ThorImage
THORIMAGE_XML = "Experiment.xml"
_THOR_TIFF = re.compile(r"Chan([A-H])_(\d+)_(\d+)_(\d+)_(\d+)\.tiff?$", re.I)


def is_thorimage(folder: Path) -> bool:
    return _starts_with(folder / THORIMAGE_XML, "ThorImageExperiment")


def _attr(root: ET.Element, tag: str, name: str, default=None):
    el = root.find(tag)
    return el.get(name, default) if el is not None else default


@dataclass(frozen=True)
class ThorImageLayout:
    """A ThorImage experiment: TIFF planes (``tiff``) or one raw file (``raw``)."""

    info: StackInfo
    tiff: FolderLayout | None
    raw: Path | None
    flyback: int
    channels_in_raw: tuple[int, ...]


def thorimage_layout(folder: Path) -> ThorImageLayout:
    """Planes, channels and voxel size of a ThorImageLS experiment folder from Experiment.xml."""
    xml = folder / THORIMAGE_XML
    root = _xml_root(xml)
    try:
        width, height = int(_attr(root, "LSM", "pixelX")), int(_attr(root, "LSM", "pixelY"))
        xy_um = float(_attr(root, "LSM", "pixelSizeUM"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{xml}: no LSM pixelX/pixelY/pixelSizeUM; is this a laser-scanning "
                         "(not camera) experiment?") from exc
    n_z = int(_attr(root, "ZStage", "steps", "1") or 1)
    step = abs(float(_attr(root, "ZStage", "stepSizeUM", "0") or 0))
    n_t = max(1, int(_attr(root, "Timelapse", "timepoints", "1") or 1))
    streaming = _attr(root, "Streaming", "enable", "0") == "1" and \
        _attr(root, "Streaming", "zFastEnable", "0") == "1"
    flyback = int(_attr(root, "Streaming", "flybackFrames", "0") or 0) if streaming else 0
    recorded = [w.get("name", "") for w in root.findall("Wavelengths/Wavelength")]
    channels = tuple("ABCDEFGH".index(n[-1].upper()) for n in recorded
                     if re.fullmatch(r"Chan[A-H]", n, re.I))
    if not channels:
        raise InputError(f"{xml}: no recorded channel (Wavelengths/Wavelength ChanA...) named")
    voxel = (step if n_z > 1 and step > 0 else None, xy_um, xy_um)
    names = {c: f"Chan{'ABCDEFGH'[c]}" for c in channels}
    raws = sorted(folder.glob("Image*.raw"))
    if raws:
        n_c = max(channels) + 1
        expected = 2 * width * height * len(channels) * (n_z + flyback) * n_t
        size = raws[0].stat().st_size
        if size != expected:
            raise InputError(f"{raws[0]}: {size} bytes, but Experiment.xml describes {n_t} x "
                             f"{n_z + flyback} frames of {len(channels)} channel(s) of "
                             f"{width}x{height} 16-bit pixels ({expected} bytes); the "
                             "acquisition may have been stopped early")
        shape = ((n_t,) if n_t > 1 else ()) + (n_z, n_c, height, width)
        info = StackInfo(folder, n_c, n_z, (height, width), "uint16", voxel,
                         axes=("T" if n_t > 1 else "") + "ZCYX", shape=shape, time_points=n_t,
                         format="Thorlabs ThorImage raw",
                         channel_names=tuple(names.get(i, "") for i in range(n_c)))
        return ThorImageLayout(info, None, raws[0], flyback, channels)
    planes = {}
    for file in folder.iterdir():
        m = _THOR_TIFF.match(file.name)
        if m:
            c = "ABCDEFGH".index(m.group(1).upper())
            planes[(int(m.group(5)) - 1, int(m.group(4)) - 1, c)] = (file, 0)
            names[c] = f"Chan{m.group(1).upper()}"
    if not planes:
        raise InputError(f"{folder}: {THORIMAGE_XML} but neither an Image_*.raw file nor "
                         "ChanA_0001_0001_0001_0001.tif-style TIFFs")
    n_t = max(t for t, _, _ in planes) + 1
    n_z = max(z for _, z, _ in planes) + 1
    missing = [k for k in np.ndindex(n_t, n_z) for c in sorted({c for *_, c in planes})
               if (*k, c) not in planes]
    if missing:
        raise InputError(f"{folder}: {len(missing)} plane file(s) missing (first: time point "
                         f"{missing[0][0] + 1}, plane {missing[0][1] + 1}); is the folder "
                         "complete?")
    tiff = FolderLayout(_info(folder, planes, n_t, n_z, names, voxel, "Thorlabs ThorImage TIFFs"),
                        planes)
    return ThorImageLayout(tiff.info, tiff, None, 0, channels)


# --------------------------------------------------------------------------- folders
def is_acquisition_folder(folder: Path) -> bool:
    """A PrairieView or ThorImage acquisition folder (one session's stack)."""
    return folder.is_dir() and (prairieview_xml(folder) is not None or is_thorimage(folder))


def acquisition_folder_date(folder: Path) -> dt.date | None:
    """The acquisition date in a PrairieView (``<PVScan date="3/14/2026 10:02:11 AM">``) or
    ThorImage (``<Date date="03/18/2026 14:31:07">``) XML; None when absent or unreadable."""
    try:
        xml = prairieview_xml(folder)
        text = _xml_root(xml).get("date", "") if xml is not None else \
            _attr(_xml_root(folder / THORIMAGE_XML), "Date", "date", "")
        m = re.match(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})", text or "")
        return dt.date(int(m.group(3)), int(m.group(1)), int(m.group(2))) if m else None
    except (InputError, ValueError):
        return None


# --------------------------------------------------------------------------- reading
def _read_planes(layout: FolderLayout, channels: list[int], time_axis: str) -> np.ndarray:
    info = layout.info
    n_t = info.time_points
    out = None
    for (t, z, c), (file, page) in layout.planes.items():
        if c not in channels:
            continue
        with tifffile.TiffFile(file) as tif:   # one page: not the OME multi-file series
            plane = tif.pages[page].asarray()
        if out is None:
            out = np.zeros((n_t, info.n_planes, len(channels)) + plane.shape, plane.dtype)
        out[t, z, channels.index(c)] = plane
    return to_czyx(out, "TZCYX", info.path, time_axis)


def _read_raw(layout: ThorImageLayout, channels: list[int], time_axis: str) -> np.ndarray:
    info = layout.info
    n_t, n_z = info.time_points, info.n_planes
    h, w = info.plane_shape
    frames = np.memmap(layout.raw, dtype="<u2", mode="r").reshape(
        n_t, n_z + layout.flyback, len(layout.channels_in_raw), h, w)[:, :n_z]
    take = [layout.channels_in_raw.index(c) for c in channels]
    return to_czyx(np.asarray(frames[:, :, take]), "TZCYX", info.path, time_axis)


def probe_folder(folder: Path) -> StackInfo:
    """The header of a vendor acquisition folder (:func:`is_acquisition_folder`)."""
    if prairieview_xml(folder) is not None:
        return prairieview_layout(folder).info
    return thorimage_layout(folder).info


def read_folder(folder: Path, channels: list[int], *, time_axis: str = "error") -> np.ndarray:
    """``(len(channels), z, y, x)`` of a vendor acquisition folder."""
    if prairieview_xml(folder) is not None:
        return _read_planes(prairieview_layout(folder), channels, time_axis)
    layout = thorimage_layout(folder)
    if layout.raw is not None:
        return _read_raw(layout, channels, time_axis)
    return _read_planes(layout.tiff, channels, time_axis)
