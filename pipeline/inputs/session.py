"""One session of the sessions sheet read as the ingest stage stores it: the PSD-95 channel (and
the morphology channel, if any) as a (c, z, y, x) array, its voxel size and its metadata."""
from __future__ import annotations

import pandas as pd

from ..core.channels import fragmentation
from ..core.errors import InputError
from .sheet import parse_voxel, read_options
from .stacks import probe_stack, read_stack, resolve_voxel, saturated_fraction


def session_row(sessions: pd.DataFrame, sheet, cell: str, session: str) -> pd.Series:
    """The sheet's row of one session (an error naming the sheet when it has none)."""
    sel = sessions[(sessions["cell"] == cell) & (sessions["session"] == session)]
    if sel.empty:
        raise InputError(f"{sheet}: no row for cell {cell} session {session}")
    return sel.iloc[0]


def swapped_channels_warning(stack, path) -> str:
    """'' unless the PSD-95 channel (0) looks like a cell fill and the morphology channel (1)
    like puncta: the sheet's channel indices are then probably the wrong way round."""
    if stack.shape[0] < 2:
        return ""
    psd, morph = fragmentation(stack[0]), fragmentation(stack[1])
    if morph <= psd:
        return ""
    return (f"{path}: the channels look swapped: the morphology channel's brightest voxels fall "
            f"into {morph:.2f} pieces per 100 voxels (puncta) and the PSD-95 channel's into "
            f"{psd:.2f} (a cell fill); check psd95_channel and morphology_channel in the sheet "
            "(ingest.swapped_channels: warn | error | off)")


#: above this share of PSD-95 voxels at the channel's lowest value, its dark level was clipped
CLIPPED_FLOOR_SHARE = 0.5


def clipped_floor_warning(stack, path) -> str:
    """'' unless most of the PSD-95 channel's voxels sit at its lowest value: the dark level
    was subtracted and clipped (or the offset set too low), the background's noise survives
    only as sparse specks, and a noise estimate made on it is too low for any threshold in
    noise units."""
    from ..core.noise import subsample

    values = subsample(stack[0])
    low = values.min()
    share = float((values == low).mean())
    if share <= CLIPPED_FLOOR_SHARE:
        return ""
    return (f"{path}: {100 * share:.0f} % of the PSD-95 channel's voxels sit at its lowest value "
            f"({low:g}): the dark level was clipped, so the background's noise is mostly cut "
            "away and detection's noise estimate is too low (a simulated stack clipped so that "
            "91 % of its voxels were 0 gave 390 detections for 78 synapses, precision 0.19). "
            "Export the stacks without subtracting the offset or clipping at zero, or raise "
            "detect.threshold and check the detections on the review pages")


def load_session(row: pd.Series, *, config_voxel, max_saturated: float,
                 config_voxel_first: bool = False, swapped: str = "warn"):
    """Every input check of one session (the ingest and check stages share it): returns
    ``(stack, voxel_um, source_channels, warnings)``; with ``swapped='error'`` channels that
    look swapped raise."""
    info = probe_stack(row["abs_path"], **read_options(row))
    voxel = resolve_voxel(parse_voxel(row["voxel_um"]), info.voxel_um, config_voxel,
                          path=row["abs_path"], config_first=config_voxel_first)
    channels = [int(row["psd95_channel"])]
    if row.get("target") == "spines":   # the fill alone: the morphology channel if named
        channels = [int(row["morphology_channel"])] if int(row["morphology_channel"]) >= 0 \
            else channels
    elif int(row["morphology_channel"]) >= 0:
        channels.append(int(row["morphology_channel"]))
    stack = read_stack(row["abs_path"], channels=channels,
                       max_saturated_fraction={channels[0]: max_saturated},
                       **read_options(row))
    warnings = []
    if swapped != "off" and (why := swapped_channels_warning(stack, row["abs_path"])):
        if swapped == "error":
            raise InputError(why)
        warnings.append(why)
    if why := clipped_floor_warning(stack, row["abs_path"]):
        warnings.append(why)
    return stack, voxel, channels, warnings


def session_metadata(row: pd.Series, stack, channels: list[int]) -> dict:
    """What the ingest stage records beside the stack (the stages downstream read it)."""
    frac, top = saturated_fraction(stack[0], probe_stack(row["abs_path"],
                                                         **read_options(row)).dtype)
    return {"cell": row["cell"], "cell_type": row["cell_type"], "session": row["session"],
            "day": float(row["day"]), "animal": row["animal"], "source": row["abs_path"],
            "channels": (["fill"] if row.get("target") == "spines" else
                         ["psd95"] + (["morphology"] if len(channels) > 1 else [])),
            "source_channels": channels,
            # puncta (PSD-95) or spines (a cell fill): what the detect and weights stages find
            "target": row.get("target", "puncta"),
            # the detector's full scale when some PSD-95 voxels reach it (weights flag them)
            "psd95_saturation_level": top if frac > 0 else None}
