"""The sample check: a random sample of field tiles for a person to check by eye.

A lab with no annotations estimates precision and recall of a whole run from a sample: the field
of every cell and session is cut into square tiles on the reference grid; tiles are drawn at
random (each tile's place in the order is a hash of the run's seed and its name, so the sample
stays put when a rerun changes the detections); in each tile the page shows the synapses the
pipeline calls present, the person marks the wrong ones, clicks the ones it missed and ticks the
tile checked.  :mod:`pipeline.truth.sample_check` turns the checked tiles into estimates.

Every tile of the field can be drawn, empty ones too: a tile where the pipeline found nothing
may hold synapses it missed, and leaving such tiles out would inflate recall.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

TILE_COLUMNS = ["tile", "order", "cell", "session", "y0_um", "y1_um", "x0_um", "x1_um"]


def _rank(seed: int, cell: str, session: str, iy: int, ix: int) -> float:
    """A uniform number in [0, 1) fixed by the tile's name and the seed."""
    digest = hashlib.blake2b(f"{seed}/{cell}/{session}/{iy}/{ix}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def draw_tiles(fields: dict[str, tuple[float, float]], sessions: dict[str, list[str]], *,
               tile_um: float, n: int, seed: int) -> pd.DataFrame:
    """A simple random sample of ``n`` tiles from every cell's sessions, in the order to check.

    Parameters
    ----------
    fields : cell -> (height, width) of its reference field in um
    sessions : cell -> its sessions
    tile_um : side of a tile; tiles at the far edges are cut to the field
    n : tiles drawn (all of them when the run has fewer)
    seed : picks the sample; the same seed draws the same tiles

    Returns
    -------
    DataFrame with :data:`TILE_COLUMNS`, ``order`` 1..n (the order in which to check them).
    """
    rows = []
    for cell, (height, width) in fields.items():
        ny, nx = int(np.ceil(height / tile_um)), int(np.ceil(width / tile_um))
        for session in sessions[cell]:
            for iy in range(ny):
                for ix in range(nx):
                    rows.append({"tile": f"{cell}/{session}/{iy}-{ix}", "cell": cell,
                                 "session": session, "rank": _rank(seed, cell, session, iy, ix),
                                 "y0_um": iy * tile_um, "y1_um": min((iy + 1) * tile_um, height),
                                 "x0_um": ix * tile_um, "x1_um": min((ix + 1) * tile_um, width)})
    if not rows:                    # no cell reached its review page
        return pd.DataFrame(columns=TILE_COLUMNS)
    drawn = pd.DataFrame(rows).sort_values("rank", kind="stable").head(n)
    drawn["order"] = np.arange(1, len(drawn) + 1)
    return drawn[TILE_COLUMNS].reset_index(drop=True)


def tile_claims(table: pd.DataFrame, tiles: pd.DataFrame) -> pd.DataFrame:
    """The synapses called present in each tile: ``tile``, ``synapse_id``, ``y_um``, ``x_um``.

    ``table`` has synapses.csv's columns (``cell, session, synapse_id, present, y_um, x_um``);
    a tile holds the rows of its cell and session whose position lies in ``[y0, y1) x [x0, x1)``.
    """
    on = table[table["present"] == 1].assign(cell=lambda t: t["cell"].astype(str),
                                             session=lambda t: t["session"].astype(str))
    tiles = tiles.astype({"cell": str, "session": str})
    joined = tiles[["tile", "cell", "session", "y0_um", "y1_um", "x0_um", "x1_um"]].merge(
        on[["cell", "session", "synapse_id", "y_um", "x_um"]], on=["cell", "session"])
    inside = ((joined["y_um"] >= joined["y0_um"]) & (joined["y_um"] < joined["y1_um"])
              & (joined["x_um"] >= joined["x0_um"]) & (joined["x_um"] < joined["x1_um"]))
    out = joined.loc[inside, ["tile", "synapse_id", "y_um", "x_um"]]
    return out.astype({"synapse_id": int}).sort_values(["tile", "synapse_id"]).reset_index(drop=True)
