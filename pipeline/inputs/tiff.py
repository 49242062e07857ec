"""TIFF stacks: multi-page TIFF, OME-TIFF and ImageJ hyperstacks (any axis order the metadata
states), ScanImage TIFFs (interleaved channels, several frames per slice averaged), and folders of
single-plane TIFF/PNG slices sorted by name."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..core.errors import InputError
from .layout import StackInfo, layout_info, override_axes, to_czyx, um_per_unit

SLICE_SUFFIXES = (".tif", ".tiff", ".png")


# --------------------------------------------------------------------------- metadata
def _ome_voxel(xml: str) -> tuple[float | None, float | None, float | None]:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return (None, None, None)
    out = []
    for ax in "ZYX":
        val = pixels.get(f"PhysicalSize{ax}")
        scale = um_per_unit(pixels.get(f"PhysicalSize{ax}Unit"))
        out.append(float(val) * scale if val is not None and scale else None)
    return tuple(out)


def _imagej_voxel(tif: tifffile.TiffFile) -> tuple[float | None, float | None, float | None]:
    meta = tif.imagej_metadata or {}
    scale = um_per_unit(meta.get("unit"))
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


# --------------------------------------------------------------------------- readers
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



def _axes_and_shape(series, path: Path, axes: str) -> tuple[str, tuple[int, ...]]:
    shape = tuple(series.shape)
    if not axes:
        return series.axes, shape
    if "S" in series.axes:
        raise InputError(f"{path}: RGB pages (axes {series.axes}); the sheet's axes column "
                         "applies to grey-level pages only")
    return override_axes(axes, shape, path)


def probe_tiff(path: Path, *, axes: str = "") -> StackInfo:
    """Header of a TIFF stack; ``axes`` (the sheet's column) overrides the file's own axes."""
    with tifffile.TiffFile(path) as tif:
        if _is_scanimage(tif) and not axes:
            si = _scanimage_layout(tif, path)
            page = tif.pages[0]
            return StackInfo(path, si.n_channels, si.n_planes, tuple(page.shape[:2]),
                             str(page.dtype), si.voxel_um, format="ScanImage TIFF")
        series = tif.series[0]
        names, shape = _axes_and_shape(series, path, axes)
        kind = "OME-TIFF" if tif.is_ome else "ImageJ TIFF" if tif.is_imagej else "TIFF"
        return layout_info(path, names, shape, series.dtype, voxel_from_tiff(tif),
                           format=kind + (f" read as {names}" if axes else ""))


def read_tiff(path: Path, channels: list[int], *, axes: str = "",
              time_axis: str = "error") -> np.ndarray:
    """``(len(channels), z, y, x)`` of a TIFF stack."""
    with tifffile.TiffFile(path) as tif:
        if _is_scanimage(tif) and not axes:
            return _read_scanimage(tif, _scanimage_layout(tif, path), channels)
        series = tif.series[0]
        names, shape = _axes_and_shape(series, path, axes)
        data = series.asarray().reshape(shape)
    return to_czyx(data, names, path, time_axis)[channels]


def probe_slices(folder: Path) -> StackInfo:
    files = _slice_files(folder)
    first = _read_plane(files[0])
    n_c = first.shape[-1] if first.ndim == 3 else 1
    return StackInfo(folder, n_c, len(files), first.shape[:2], str(first.dtype),
                     (None, None, None), format="folder of slices")


def read_slices(folder: Path, channels: list[int]) -> np.ndarray:
    planes = np.stack([_read_plane(f) for f in _slice_files(folder)])  # z, y, x[, s]
    czyx = planes[np.newaxis] if planes.ndim == 3 else np.moveaxis(planes, -1, 0)
    return czyx[channels]
