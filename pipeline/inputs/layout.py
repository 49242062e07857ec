"""Named axes of a stored image and how they become the pipeline's ``(channel, z, y, x)``.

Every reader (TIFF, vendor folders, the optional formats) states its array's axes with the
letters T (time), Z, C (channel), Y, X and others (frames to average); :func:`to_czyx` turns
any such array into ``(c, z, y, x)``.  :func:`override_axes` applies the sheet's ``axes`` column
to a TIFF whose own metadata is missing or wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError

_UM_PER_UNIT = {"um": 1.0, "µm": 1.0, "\u00b5m": 1.0, "micron": 1.0, "microns": 1.0,
                "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3,
                "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3}


def um_per_unit(unit: str | None) -> float | None:
    """Micrometres per ``unit`` (1 when no unit is stated; None for 'pixel' or unknown units)."""
    if unit is None:
        return 1.0
    return _UM_PER_UNIT.get(str(unit).strip().replace("\\u00B5", "µ").lower())


#: what to do with a time axis beside the z axis (sheet column ``time_axis``)
TIME_AXIS_CHOICES = ("error", "first", "mean")


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
    format: str = "TIFF"              # what read it (check-sheet shows it)
    #: the rig's name of each channel index ('' for an index the acquisition did not record)
    channel_names: tuple[str, ...] = ()


def axes_plan(axes: str, shape: tuple[int, ...], path: Path) -> tuple[str, str]:
    """Return (channel axis letter or '', z axis letter or '') for an array with named axes."""
    chan = [a for a in axes if a in "CS" and shape[axes.index(a)] > 1]
    if len(chan) > 1:
        raise InputError(f"{path}: both a channel (C) and a sample (S) axis in {axes} {shape}; "
                         "save the stack with one channel axis")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"{path}: no Y/X image axes in {axes}; is this an image stack?")
    z = "Z" if "Z" in axes else next((a for a in "IQT" if a in axes), "")
    return (chan[0] if chan else ""), z


def time_points(axes: str, shape: tuple[int, ...]) -> int:
    """Time points beside a z axis (1 when none): the pipeline reads one volume per session."""
    if "Z" not in axes or "T" not in axes:
        return 1
    return shape[axes.index("T")]


def layout_info(path: Path, axes: str, shape: tuple[int, ...], dtype, voxel_um, *,
                format: str, channel_names: tuple[str, ...] = ()) -> StackInfo:
    """:class:`StackInfo` of an array with named axes."""
    shape = tuple(int(n) for n in shape)
    c_ax, z_ax = axes_plan(axes, shape, path)
    n_c = shape[axes.index(c_ax)] if c_ax else 1
    n_z = shape[axes.index(z_ax)] if z_ax else 1
    # names only when the file names every channel ('' means "not recorded" to the readers)
    names = tuple(channel_names) if len(channel_names) == n_c and all(channel_names) else ()
    return StackInfo(path, n_c, n_z, (shape[axes.index("Y")], shape[axes.index("X")]),
                     str(np.dtype(dtype)), tuple(voxel_um), axes=axes, shape=shape,
                     time_points=time_points(axes, shape), format=format, channel_names=names)


def time_axis_message(path, axes: str, shape) -> str:
    return (f"{path}: has a time axis of {shape[axes.index('T')]} points besides its "
            f"{shape[axes.index('Z')]} z planes (axes {axes}, shape {tuple(shape)}); the pipeline "
            "reads one volume per session. Save each time point as its own session, or set the "
            "sheet's time_axis column to 'first' (keep the first volume) or 'mean' (average "
            "them, e.g. repeated frames of one acquisition)")


def to_czyx(data: np.ndarray, axes: str, path: Path, time_axis: str = "error") -> np.ndarray:
    """``(c, z, y, x)`` view or copy of ``data`` whose axes are named by ``axes``; axes other
    than C, Z, Y, X (frames of a slice, averaged time points) are averaged."""
    c_ax, z_ax = axes_plan(axes, data.shape, path)
    n_t = time_points(axes, data.shape)
    if n_t > 1:
        if time_axis == "error":
            raise InputError(time_axis_message(path, axes, data.shape))
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


# --------------------------------------------------------------------------- axes override
_OVERRIDE = re.compile(r"^((?:[TZC]\d*)+)YX$")


def parse_axes(spec: str) -> list[tuple[str, int | None]]:
    """The sheet's ``axes`` value, e.g. 'ZCYX' or 'ZC2YX' (2 channels), as
    ``[(letter, count or None), ...]`` for the axes before Y and X."""
    text = str(spec).strip().upper()
    m = _OVERRIDE.match(text)
    letters = re.findall(r"([TZC])(\d*)", m.group(1)) if m else []
    if not m or "Z" not in [a for a, _ in letters] or \
            len({a for a, _ in letters}) != len(letters):
        raise InputError(f"axes '{spec}': use the letters T (time), Z and C (channel), each at "
                         "most once, in the order the file stores its planes, then YX; a count "
                         "after a letter gives that axis's length, e.g. 'ZCYX' or 'ZC2YX'")
    return [(a, int(n) if n else None) for a, n in letters]


def override_axes(spec: str, shape: tuple[int, ...], path) -> tuple[str, tuple[int, ...]]:
    """Axes and shape of a stored array of ``shape`` (its planes in file order, then y, x) read
    as ``spec`` says.

    Without counts, ``spec`` renames the file's own axes and needs as many as the file has
    (e.g. 'ZCYX' over an ImageJ file that calls its planes time points).  With counts on all
    but one axis before YX, the file's planes are regrouped (a plain multi-page TIFF: 68 pages
    read as 'ZC2YX' are 34 planes of 2 channels).
    """
    leading = parse_axes(spec)
    letters = "".join(a for a, _ in leading)
    if len(shape) < 3:
        raise InputError(f"{path}: one image plane of {shape}; axes '{spec}' needs a stack")
    yx = tuple(shape[-2:])
    n_planes = int(np.prod(shape[:-2]))
    unknown = [a for a, n in leading if n is None]
    if len(unknown) <= 1:
        known = int(np.prod([n for _, n in leading if n is not None]))
        if n_planes % known:
            raise InputError(f"{path}: axes '{spec}' asks for {known} planes per group but the "
                             f"file holds {n_planes} planes (shape {tuple(shape)}); check the "
                             "counts in the sheet's axes column")
        sizes = [n if n is not None else n_planes // known for _, n in leading]
        if int(np.prod(sizes)) != n_planes:
            raise InputError(f"{path}: axes '{spec}' gives {int(np.prod(sizes))} planes but the "
                             f"file holds {n_planes} (shape {tuple(shape)})")
        return letters + "YX", tuple(sizes) + yx
    if len(shape) == len(leading) + 2:
        return letters + "YX", tuple(shape)
    raise InputError(f"{path}: the file stores {n_planes} planes as shape {tuple(shape)}; axes "
                     f"'{spec}' names {len(leading)} axes before YX without saying how long "
                     "they are: add counts to all but one of them, e.g. 'ZC2YX' for planes of "
                     "two interleaved channels")
