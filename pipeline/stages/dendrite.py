"""Dendrite length per session: the denominator of synapse density (issue 27).

Measured in each session's own stack, the field that session's synapses were counted in, on
the morphology channel (a spines cell: its fill).  PSD-95 alone has no morphology to measure:
the length is left empty and the density with it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.dendrite import dendrite_length
from ..params import DendriteParams

DENDRITE_TABLE = ["cell", "session", "day", "dendrite_length_um", "pieces_um", "channel"]


def morphology_of(stack: np.ndarray, meta: dict) -> tuple[np.ndarray | None, str]:
    """(the channel dendrites are measured on, its name) of an ingested (c, z, y, x) stack."""
    names = meta.get("channels") or ["psd95", "morphology"][:stack.shape[0]]
    for name in ("morphology", "fill"):
        if name in names:
            return stack[names.index(name)], name
    return None, ""


def session_length(stack: np.ndarray, meta: dict, *, params: DendriteParams) -> dict:
    """One row of the cell's dendrite table."""
    row = {"cell": meta["cell"], "session": str(meta["session"]), "day": meta.get("day"),
           "dendrite_length_um": np.nan, "pieces_um": "", "channel": ""}
    image, channel = morphology_of(stack, meta)
    if image is None:
        return row
    res = dendrite_length(image, spacing=meta["voxel_um"], smooth_um=params.smooth_um,
                          line_um=params.line_um, directions=params.directions,
                          orientation_um=params.orientation_um, threshold=params.threshold,
                          prune_um=params.prune_um,
                          min_area_um2=params.min_area_um2,
                          ridge_sigma_um=params.ridge_sigma_um,
                          continuous_share=params.continuous_share,
                          depth_smooth_um=params.depth_smooth_um)
    return {**row, "dendrite_length_um": res["length_um"], "channel": channel,
            "pieces_um": ";".join(f"{p:.2f}" for p in res["pieces_um"])}


def lengths_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=DENDRITE_TABLE)
