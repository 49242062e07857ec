"""Reading imaging stacks into ``(channel, z, y, x)`` arrays with their voxel size.

Supported inputs (README "Input formats"): multi-page TIFF, OME-TIFF and ImageJ hyperstacks,
ScanImage TIFFs, folders of single-plane TIFF/PNG slices (:mod:`.tiff`); Bruker PrairieView and
Thorlabs ThorImage acquisition folders (:mod:`.vendors`); Zeiss CZI, Leica LIF, Nikon ND2 and
OME-Zarr through the optional ``formats`` extra (:mod:`.formats`).  Header-only probing
(:func:`probe_stack`) lets the pipeline reject bad files before reading pixels.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import tifffile

from ..core.errors import InputError
from .formats import format_of, probe_format, read_format
from .layout import TIME_AXIS_CHOICES, StackInfo, time_axis_message
from .tiff import SLICE_SUFFIXES, probe_slices, probe_tiff, read_slices, read_tiff
from .vendors import is_acquisition_folder, probe_folder, read_folder

__all__ = ["StackInfo", "TIME_AXIS_CHOICES", "SLICE_SUFFIXES", "MIN_PLANES", "probe_stack",
           "read_stack", "resolve_voxel", "voxel_and_source", "write_stack", "load_ingested",
           "saturated_fraction", "unusual_voxel", "USUAL_VOXEL_UM", "safe_name"]

#: fewer z planes than this is not a z-stack (a 2-D image or a projection)
MIN_PLANES = 3


def probe_stack(path: str | Path, *, time_axis: str = "error", axes: str = "",
                series: int | None = None) -> StackInfo:
    """Read only the header of a stack (file or folder) and refuse what is not a z-stack of one
    time point: fewer than ``MIN_PLANES`` planes (a 2-D image or a projection), or a time axis
    beside the z axis (unless ``time_axis`` is 'first' or 'mean').  ``axes`` overrides a TIFF's
    own axes (:func:`.layout.override_axes`); ``series`` picks one image of a file holding
    several (CZI, LIF, ND2, OME-Zarr)."""
    info = _probe(Path(path), axes=axes, series=series)
    if info.n_planes < MIN_PLANES:
        raise InputError(f"{path}: {info.n_planes} plane(s) of {info.plane_shape[0]}x"
                         f"{info.plane_shape[1]} pixels; the pipeline needs a z-stack of at least "
                         f"{MIN_PLANES} planes (is this a 2-D image, a projection, or a stack "
                         "whose planes were saved as channels or time points?)"
                         + ("; if the file's axes are wrong, the sheet's axes column can say "
                            "how it stores its planes (e.g. ZCYX)"
                            if not axes and info.format.endswith("TIFF") else ""))
    if info.time_points > 1 and time_axis == "error":
        raise InputError(time_axis_message(path, info.axes, info.shape))
    return info


def _kind(path: Path) -> str:
    """Which reader takes ``path``: 'vendor', 'slices', 'czi', 'lif', 'nd2', 'zarr' or 'tiff'."""
    if not path.exists():
        raise InputError(f"{path}: does not exist; check the 'path' column of the sessions sheet")
    fmt = format_of(path)
    if fmt:
        return fmt
    if path.is_dir():
        return "vendor" if is_acquisition_folder(path) else "slices"
    return "tiff"


def _refuse_options(path: Path, kind: str, axes: str, series) -> None:
    if axes and kind != "tiff":
        raise InputError(f"{path}: the sheet's axes column applies to TIFF files; this "
                         f"{'folder' if path.is_dir() else 'file'} states its own axes: "
                         "clear the column for this row")
    if series is not None and kind in ("tiff", "slices", "vendor"):
        raise InputError(f"{path}: the sheet's series column applies to CZI, LIF, ND2 and "
                         "OME-Zarr files holding several images; clear it for this row")


def _probe(path: Path, *, axes: str = "", series: int | None = None) -> StackInfo:
    kind = _kind(path)
    _refuse_options(path, kind, axes, series)
    try:
        if kind == "vendor":
            return probe_folder(path)
        if kind == "slices":
            return probe_slices(path)
        if kind == "tiff":
            return probe_tiff(path, axes=axes)
        return probe_format(path, kind, series=series)
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
               time_axis: str = "error", axes: str = "",
               series: int | None = None) -> np.ndarray:
    """Read the requested channels of a stack as float32 ``(len(channels), z, y, x)``.

    Raises :class:`InputError` naming the file for unreadable files, channel indices out of
    range, NaN/inf values, stacks that hold no signal (all one value), and channels with more
    of their voxels at the detector's full scale than ``max_saturated_fraction[channel]``
    (e.g. ``{psd95_channel: 0.01}``: weights are read from that channel).  ``time_axis``,
    ``axes`` and ``series`` as in :func:`probe_stack`.
    """
    path = Path(path)
    info = probe_stack(path, time_axis=time_axis, axes=axes, series=series)
    for c in channels:
        if not 0 <= c < info.n_channels:
            raise InputError(f"{path}: channel {c} requested but the stack has {info.n_channels} "
                             f"channel(s) (0..{info.n_channels - 1}); fix psd95_channel/"
                             "morphology_channel in the sessions sheet")
        if info.channel_names and not info.channel_names[c]:
            held = ", ".join(f"{i} = {n}" for i, n in enumerate(info.channel_names) if n)
            raise InputError(f"{path}: channel {c} was not recorded in this acquisition (it "
                             f"holds {held}); fix psd95_channel/morphology_channel in the "
                             "sessions sheet")
    kind = _kind(path)
    try:
        if kind == "vendor":
            czyx = read_folder(path, list(channels), time_axis=time_axis)
        elif kind == "slices":
            czyx = read_slices(path, list(channels))
        elif kind == "tiff":
            czyx = read_tiff(path, list(channels), axes=axes, time_axis=time_axis)
        else:
            czyx = read_format(path, kind, list(channels), series=series, time_axis=time_axis)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: pixel data cannot be read ({type(exc).__name__}: {exc}); "
                         "the file may be truncated or corrupt") from exc
    out = czyx.astype(np.float32, copy=False)
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
