"""Reading imaging stacks into ``(channel, z, y, x)`` arrays with their voxel size.

Supported inputs: multi-page TIFF, OME-TIFF and ImageJ hyperstacks (any axis order the
metadata states), ScanImage TIFFs (interleaved channels, several frames per slice averaged), and
folders of single-plane TIFF/PNG slices sorted by name.  Header-only
probing (:func:`probe_stack`) lets the pipeline reject bad files before reading pixels.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..core.errors import InputError

SLICE_SUFFIXES = (".tif", ".tiff", ".png")
_UM_PER_UNIT = {"um": 1.0, "µm": 1.0, "\u00b5m": 1.0, "micron": 1.0, "microns": 1.0,
                "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "mm": 1e3}


@dataclass(frozen=True)
class StackInfo:
    """What a stack's header says, without reading its pixels."""

    path: Path
    n_channels: int
    n_planes: int
    plane_shape: tuple[int, int]
    dtype: str
    voxel_um: tuple[float | None, float | None, float | None]
    axes: str = ""                    # as the file's metadata states them ('' for slice folders)
    shape: tuple[int, ...] = ()
    time_points: int = 1              # beside the z axis


# --------------------------------------------------------------------------- axes
def _axes_plan(axes: str, shape: tuple[int, ...], path: Path) -> tuple[str, str]:
    """Return (channel axis letter or '', z axis letter or '') for a tifffile series."""
    chan = [a for a in axes if a in "CS" and shape[axes.index(a)] > 1]
    if len(chan) > 1:
        raise InputError(f"{path}: both a channel (C) and a sample (S) axis in {axes} {shape}; "
                         "save the stack with one channel axis")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"{path}: no Y/X image axes in {axes}; is this an image stack?")
    z = "Z" if "Z" in axes else next((a for a in "IQT" if a in axes), "")
    return (chan[0] if chan else ""), z


#: what to do with a time axis beside the z axis (sheet column ``time_axis``)
TIME_AXIS_CHOICES = ("error", "first", "mean")


def _time_points(axes: str, shape: tuple[int, ...]) -> int:
    """Time points beside a z axis (1 when none): the pipeline reads one volume per session."""
    if "Z" not in axes or "T" not in axes:
        return 1
    return shape[axes.index("T")]


def _to_czyx(data: np.ndarray, axes: str, path: Path, time_axis: str = "error") -> np.ndarray:
    c_ax, z_ax = _axes_plan(axes, data.shape, path)
    n_t = _time_points(axes, data.shape)
    if n_t > 1:
        if time_axis == "error":
            raise InputError(_time_axis_message(path, axes, data.shape))
        if time_axis == "first":
            data = np.take(data, [0], axis=axes.index("T"))
    order = [axes.index(a) for a in (c_ax, z_ax, "Y", "X") if a]
    rest = [i for i in range(data.ndim) if i not in order]
    arr = np.transpose(data, rest + order)
    if rest:  # frames per slice (e.g. repeated acquisitions): average them
        arr = arr.reshape((-1,) + arr.shape[len(rest):]).mean(axis=0, dtype=np.float32)
    if not c_ax:
        arr = arr[np.newaxis]
    if not z_ax:
        arr = arr[:, np.newaxis]
    return arr


def _time_axis_message(path, axes: str, shape) -> str:
    return (f"{path}: has a time axis of {shape[axes.index('T')]} points besides its "
            f"{shape[axes.index('Z')]} z planes (axes {axes}, shape {tuple(shape)}); the pipeline "
            "reads one volume per session. Save each time point as its own session, or set the "
            "sheet's time_axis column to 'first' (keep the first volume) or 'mean' (average "
            "them, e.g. repeated frames of one acquisition)")


#: fewer z planes than this is not a z-stack (a 2-D image or a projection)
MIN_PLANES = 3


def _series_layout(series, path: Path) -> tuple[int, int, tuple[int, int]]:
    axes, shape = series.axes, tuple(series.shape)
    c_ax, z_ax = _axes_plan(axes, shape, path)
    n_c = shape[axes.index(c_ax)] if c_ax else 1
    n_z = shape[axes.index(z_ax)] if z_ax else 1
    return n_c, n_z, (shape[axes.index("Y")], shape[axes.index("X")])


# --------------------------------------------------------------------------- metadata
def _unit_scale(unit: str | None) -> float | None:
    if unit is None:
        return 1.0
    return _UM_PER_UNIT.get(str(unit).strip().replace("\\u00B5", "µ").lower())


def _ome_voxel(xml: str) -> tuple[float | None, float | None, float | None]:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return (None, None, None)
    out = []
    for ax in "ZYX":
        val = pixels.get(f"PhysicalSize{ax}")
        scale = _unit_scale(pixels.get(f"PhysicalSize{ax}Unit"))
        out.append(float(val) * scale if val is not None and scale else None)
    return tuple(out)


def _imagej_voxel(tif: tifffile.TiffFile) -> tuple[float | None, float | None, float | None]:
    meta = tif.imagej_metadata or {}
    scale = _unit_scale(meta.get("unit"))
    if not scale:  # 'pixel' or an unknown unit: the file does not know its size
        return (None, None, None)
    page = tif.pages[0]

    def res(tag):
        t = page.tags.get(tag)
        if t is None:
            return None
        num, den = t.value
        return den / num * scale if num else None

    z = meta.get("spacing")
    return (float(z) * scale if z else None, res("YResolution"), res("XResolution"))


def voxel_from_tiff(tif: tifffile.TiffFile) -> tuple[float | None, float | None, float | None]:
    """Voxel size (z, y, x) in um from OME or ImageJ metadata; None where not stated."""
    if tif.is_ome and tif.ome_metadata:
        vox = _ome_voxel(tif.ome_metadata)
        if any(v is not None for v in vox):
            return vox
    if tif.is_imagej:
        return _imagej_voxel(tif)
    return (None, None, None)


# --------------------------------------------------------------------------- ScanImage
@dataclass(frozen=True)
class _ScanImageLayout:
    n_channels: int
    n_planes: int
    frames_per_plane: int
    voxel_um: tuple[float | None, float | None, float | None]


def _numbers(text) -> list[float]:
    return [float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", str(text))]


def _scanimage_values(tif: tifffile.TiffFile) -> dict[str, str]:
    """ScanImage's ``SI.*`` key = value metadata, keys without the ``SI.`` prefix.

    ScanImage 2016 and later store it in the file header (read by tifffile) and in every frame's
    Software tag; ScanImage 5 wrote ``scanimage.SI.*`` lines into the ImageDescription.
    """
    try:
        frame_data = (tif.scanimage_metadata or {}).get("FrameData") or {}
    except Exception:  # no ScanImage header: fall back to the tags
        frame_data = {}
    if frame_data:
        return {re.sub(r"^(scanimage\.)?SI\d*\.", "", k): str(v) for k, v in frame_data.items()}
    page = tif.pages[0]
    out = {}
    for line in f"{page.software or ''}\n{page.description or ''}".splitlines():
        m = re.match(r"\s*(?:scanimage\.)?SI\d*\.([\w.]+)\s*=\s*(.*?)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _scanimage_layout(tif: tifffile.TiffFile, path: Path) -> _ScanImageLayout:
    """Pages are ordered slice, frame, channel (channels interleaved, fastest)."""
    si = _scanimage_values(tif)

    def first(*keys, default=None):
        for key in keys:
            vals = _numbers(si.get(key, ""))
            if vals:
                return vals[0]
        return default

    n_pages = len(tif.pages)
    n_c = max(1, len(_numbers(si.get("hChannels.channelSave", "1"))))
    frames = int(first("hStackManager.framesPerSlice", default=1)
                 // max(1.0, first("hScan2D.logAverageFactor", default=1)))
    frames = max(1, frames)
    if n_pages % (n_c * frames):
        raise InputError(f"{path}: ScanImage file has {n_pages} frames, not a multiple of {n_c} "
                         f"channel(s) x {frames} frame(s) per slice (SI.hChannels.channelSave, "
                         "SI.hStackManager.framesPerSlice / SI.hScan2D.logAverageFactor); the "
                         "acquisition may have been stopped early: re-acquire or trim the file")
    n_z = n_pages // (n_c * frames)
    z_step = first("hStackManager.actualStackZStepSize", "hStackManager.stackZStepSize")
    z_um = abs(z_step) if z_step and n_z > 1 else None
    y_um = x_um = None
    corners = _numbers(si.get("hRoiManager.imagingFovUm", ""))
    if len(corners) >= 4 and len(corners) % 2 == 0:
        xy = np.reshape(corners, (-1, 2))
        height, width = tif.pages[0].shape[:2]
        x_um = float(np.ptp(xy[:, 0])) / first("hRoiManager.pixelsPerLine", default=width)
        y_um = float(np.ptp(xy[:, 1])) / first("hRoiManager.linesPerFrame", default=height)
    return _ScanImageLayout(n_c, n_z, frames, (z_um, y_um or None, x_um or None))


def _read_scanimage(tif: tifffile.TiffFile, layout: _ScanImageLayout,
                    channels: list[int]) -> np.ndarray:
    """``(len(channels), z, y, x)`` float32, frames of a slice averaged, one frame set at a time."""
    n_c, n_z, n_f = layout.n_channels, layout.n_planes, layout.frames_per_plane
    out = np.zeros((len(channels), n_z) + tuple(tif.pages[0].shape[:2]), np.float32)
    for i, c in enumerate(channels):
        for f in range(n_f):
            pages = [(z * n_f + f) * n_c + c for z in range(n_z)]
            out[i] += tif.asarray(key=pages).reshape(out.shape[1:])
    if n_f > 1:
        out /= n_f
    return out


# --------------------------------------------------------------------------- public API
def _is_scanimage(tif: tifffile.TiffFile) -> bool:
    # an ImageJ/OME file re-saved from ScanImage data keeps its own (reliable) axes
    return tif.is_scanimage and not (tif.is_imagej or tif.is_ome)


def _slice_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SLICE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: folder holds no .tif/.tiff/.png slices; "
                         "point 'path' at a stack file or a folder of slices")
    return files


def _read_plane(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio  # installed with scikit-image
        return np.asarray(iio.imread(path))
    return tifffile.imread(path)


def probe_stack(path: str | Path, *, time_axis: str = "error") -> StackInfo:
    """Read only the header of a stack (file or folder of slices) and refuse what is not a
    z-stack of one time point: fewer than ``MIN_PLANES`` planes (a 2-D image or a projection),
    or a time axis beside the z axis (unless ``time_axis`` is 'first' or 'mean')."""
    info = _probe(Path(path))
    if info.n_planes < MIN_PLANES:
        raise InputError(f"{path}: {info.n_planes} plane(s) of {info.plane_shape[0]}x"
                         f"{info.plane_shape[1]} pixels; the pipeline needs a z-stack of at least "
                         f"{MIN_PLANES} planes (is this a 2-D image, a projection, or a stack "
                         "whose planes were saved as channels or time points?)")
    if info.time_points > 1 and time_axis == "error":
        raise InputError(_time_axis_message(path, info.axes, info.shape))
    return info


def _probe(path: Path) -> StackInfo:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: does not exist; check the 'path' column of the sessions sheet")
    try:
        if path.is_dir():
            files = _slice_files(path)
            first = _read_plane(files[0])
            n_c = first.shape[-1] if first.ndim == 3 else 1
            return StackInfo(path, n_c, len(files), first.shape[:2], str(first.dtype),
                             (None, None, None))
        with tifffile.TiffFile(path) as tif:
            if _is_scanimage(tif):
                si = _scanimage_layout(tif, path)
                page = tif.pages[0]
                return StackInfo(path, si.n_channels, si.n_planes, tuple(page.shape[:2]),
                                 str(page.dtype), si.voxel_um)
            series = tif.series[0]
            n_c, n_z, yx = _series_layout(series, path)
            return StackInfo(path, n_c, n_z, yx, str(series.dtype), voxel_from_tiff(tif),
                             axes=series.axes, shape=tuple(series.shape),
                             time_points=_time_points(series.axes, tuple(series.shape)))
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many types for broken files
        raise InputError(f"{path}: cannot be read as an image stack ({type(exc).__name__}: {exc}); "
                         "re-export it as a TIFF stack or a folder of slices") from exc


def saturated_fraction(channel: np.ndarray, dtype: str) -> tuple[float, float]:
    """(fraction of voxels at the detector's full scale, that value); (0, nan) for float data.

    Full scale is the channel's maximum when it is 2**k - 1 (8- to 16-bit detectors, and the
    int16 that ScanImage writes); any other maximum means no voxel reached the top of the range.
    """
    if not np.issubdtype(np.dtype(dtype), np.integer):
        return 0.0, float("nan")
    top = float(channel.max())
    if top < 255 or not float(top + 1).is_integer() or int(top + 1) & int(top):
        return 0.0, top
    return float(np.count_nonzero(channel == top)) / channel.size, top


def read_stack(path: str | Path, *, channels: list[int],
               max_saturated_fraction: dict[int, float] | None = None,
               time_axis: str = "error") -> np.ndarray:
    """Read the requested channels of a stack as float32 ``(len(channels), z, y, x)``.

    Raises :class:`InputError` naming the file for unreadable files, channel indices out of
    range, NaN/inf values, stacks that hold no signal (all one value), and channels with more
    of their voxels at the detector's full scale than ``max_saturated_fraction[channel]``
    (e.g. ``{psd95_channel: 0.01}``: weights are read from that channel).
    """
    path = Path(path)
    info = probe_stack(path, time_axis=time_axis)
    for c in channels:
        if not 0 <= c < info.n_channels:
            raise InputError(f"{path}: channel {c} requested but the stack has {info.n_channels} "
                             f"channel(s) (0..{info.n_channels - 1}); fix psd95_channel/"
                             "morphology_channel in the sessions sheet")
    take = list(channels)
    try:
        if path.is_dir():
            planes = [_read_plane(f) for f in _slice_files(path)]
            data = np.stack(planes)  # z, y, x[, s]
            czyx = data[np.newaxis] if data.ndim == 3 else np.moveaxis(data, -1, 0)
        else:
            with tifffile.TiffFile(path) as tif:
                if _is_scanimage(tif):
                    czyx = _read_scanimage(tif, _scanimage_layout(tif, path), channels)
                    take = list(range(len(channels)))  # already only the requested ones
                else:
                    series = tif.series[0]
                    czyx = _to_czyx(series.asarray(), series.axes, path, time_axis)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: pixel data cannot be read ({type(exc).__name__}: {exc}); "
                         "the file may be truncated or corrupt") from exc
    out = czyx[take].astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise InputError(f"{path}: contains NaN or infinite values; replace them before running")
    for i, c in enumerate(channels):
        if out[i].min() == out[i].max():
            raise InputError(f"{path}: channel {c} is constant ({out[i].min()}); "
                             "the acquisition holds no image")
        limit = (max_saturated_fraction or {}).get(c)
        if limit is not None:
            frac, top = saturated_fraction(out[i], info.dtype)
            if frac > limit:
                raise InputError(f"{path}: channel {c} is saturated: {100 * frac:.1f} % of its "
                                 f"voxels are at the detector's full scale ({top:g}), more than "
                                 f"ingest.max_saturated_fraction = {limit:g}; "
                                 "weights would be clipped. Re-image at lower gain/power, or "
                                 "raise the limit in the config if you accept it")
    return out


def resolve_voxel(sheet_voxel, file_voxel, config_voxel, *, path,
                  config_first: bool = False) -> tuple[float, float, float]:
    """Voxel size (z, y, x) in um: the sheet first, then the file's metadata, then the config;
    with ``config_first`` the config comes before the file (a microscope whose files state a
    wrong calibration)."""
    return voxel_and_source(sheet_voxel, file_voxel, config_voxel, path=path,
                            config_first=config_first)[0]


def voxel_and_source(sheet_voxel, file_voxel, config_voxel, *, path,
                     config_first: bool = False) -> tuple[tuple[float, float, float], str]:
    """:func:`resolve_voxel` and where the size came from ('the sheet', 'the file's
    metadata', 'the config')."""
    named = {"the sheet": sheet_voxel, "the file's metadata": file_voxel,
             "the config": config_voxel}
    order = (["the sheet", "the config", "the file's metadata"] if config_first
             else ["the sheet", "the file's metadata", "the config"])
    for name in order:
        source = named[name]
        if source is not None and all(v is not None for v in source):
            vox = tuple(float(v) for v in source)
            if min(vox) <= 0:
                raise InputError(f"{path}: voxel size {vox} must be positive")
            return vox, name
    raise InputError(f"{path}: voxel size unknown: not in the sheet's 'voxel_um' column, not "
                     "(fully) in the file's metadata, and no 'voxel_um' in the config; add "
                     "voxel_um as 'z,y,x' in micrometres to the sheet or the config")


def write_stack(path: str | Path, stack: np.ndarray, *, voxel_um, metadata: dict) -> None:
    """Write a ``(c, z, y, x)`` float32 stack as an ImageJ-readable TIFF plus a JSON sidecar."""
    path = Path(path)
    c, z, y, x = stack.shape
    data = np.ascontiguousarray(stack.transpose(1, 0, 2, 3))
    # integer-valued data (the usual 8/16-bit camera output) is stored losslessly at half size
    if data.min() >= 0 and data.max() <= 65535 and np.array_equal(data, np.round(data)):
        data = data.astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True,
                     resolution=(1 / voxel_um[2], 1 / voxel_um[1]),
                     metadata={"spacing": voxel_um[0], "unit": "um", "axes": "ZCYX"})
    path.with_suffix(".json").write_text(json.dumps({**metadata, "voxel_um": list(voxel_um),
                                                     "shape_czyx": [c, z, y, x]}, indent=1))


def load_ingested(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read a stack written by :func:`write_stack`: ``(c, z, y, x)`` array and its sidecar."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    data = tifffile.imread(path).astype(np.float32, copy=False)
    c, z, y, x = meta["shape_czyx"]
    return data.reshape(z, c, y, x).transpose(1, 0, 2, 3), meta


def safe_name(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(text)))


#: voxel sizes (um) of two-photon z-stacks of dendrites: outside, the units are likely wrong
USUAL_VOXEL_UM = {"z": (0.1, 5.0), "xy": (0.02, 1.0)}


def unusual_voxel(voxel_um) -> str:
    """Why a voxel size (z, y, x) in um looks wrong ('' when it does not)."""
    z, y, x = voxel_um
    (zlo, zhi), (lo, hi) = USUAL_VOXEL_UM["z"], USUAL_VOXEL_UM["xy"]
    if zlo <= z <= zhi and lo <= y <= hi and lo <= x <= hi:
        return ""
    return (f"voxel size (z, y, x) {tuple(round(v, 4) for v in voxel_um)} um is unusual for a "
            f"two-photon z-stack (z {zlo}-{zhi} um, x and y {lo}-{hi} um): are the units nm or "
            "pixels per um? set voxel_um 'z,y,x' in micrometres in the sheet")
