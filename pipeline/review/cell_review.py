"""One cell's review page: its pictures (projections per session and channel, a strip of crops
per synapse across sessions) and its HTML, as arrays and text; the command writes the files."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage

from ..params import ReviewParams
from . import pictures as rv
from .pages import cell_page


def cell_review(table: pd.DataFrame, sessions: Iterable[tuple[np.ndarray, dict, dict, str]], *,
                reference: dict, params: ReviewParams = ReviewParams()) -> tuple[dict, str]:
    """Pictures and page of one cell.

    ``table`` is the presence stage's table of the cell; ``sessions`` yields, in time order,
    each session's ``(stack, meta, transform, qc_href)`` (a generator keeps one stack in memory);
    ``reference`` is the reference session's ingest metadata.  Returns ``({file name: RGB
    uint8 image}, html)``.
    """
    ref_spacing = np.asarray(reference["voxel_um"], float)
    ref_shape = reference["shape_czyx"][1:]
    summary = rv.summarise_synapses(table)
    px = float(ref_spacing[2])
    names, days, tiles, qc, images = [], [], {}, [], {}
    ids = np.sort(table["synapse_id"].unique())
    for stack, meta, transform, qc_href in sessions:
        spacing = np.asarray(meta["voxel_um"], float)
        name = str(meta["session"])
        names.append(name)
        days.append(float(meta["day"]))
        qc.append({**transform, "has_morphology": stack.shape[0] > 1, "qc_href": qc_href})
        for ch, rgb in ((0, rv.GREEN), (1, rv.MAGENTA))[:stack.shape[0]]:
            proj = rv.reference_projection(stack[ch], transform["matrix"], spacing=spacing,
                                           reference_spacing=ref_spacing,
                                           reference_shape=ref_shape)
            label = "psd95" if ch == 0 else "morphology"
            images[f"proj_{name}_{label}.png"] = rv.to_uint8(
                rv.colour(proj, rgb, levels=rv.display_range(proj)))
        rows = table[table["session"].astype(str) == name].set_index("synapse_id").loc[ids]
        pos = rows[["z", "y", "x"]].to_numpy(float)
        half_z = max(int(round(params.crop_depth_um / spacing[0])), 1)
        half = max(int(round(params.crop_um / spacing[2])), 3)
        xy_rgb = xz_rgb = np.float32(0)
        # PSD-95 at full strength, the morphology dimmer so that puncta stay visible on it
        for ch, rgb, levels, gain in ((0, rv.GREEN, (50, 99.95), 1.0),
                                      (1, rv.MAGENTA, (50, 99.5), 0.6))[:stack.shape[0]]:
            xy, xz = rv.synapse_crops(stack[ch], pos, half_xy=half, half_z=half_z)
            lv = rv.display_range(stack[ch], low=levels[0], high=levels[1])
            xy_rgb = xy_rgb + gain * rv.colour(xy, rgb, levels=lv)
            xz_rgb = xz_rgb + gain * rv.colour(xz, rgb, levels=lv)
        ratio = spacing[2] / px
        if not np.isclose(ratio, 1, rtol=0.01):   # crops shown at the reference's pixel size
            xy_rgb = ndimage.zoom(xy_rgb, (1, ratio, ratio, 1), order=1)
            xz_rgb = ndimage.zoom(xz_rgb, (1, 1, ratio, 1), order=1)
        for k, sid in enumerate(ids):
            tiles.setdefault(sid, {})[name] = rv.session_tile(
                np.clip(xy_rgb[k], 0, 1), np.clip(xz_rgb[k], 0, 1), z_stretch=spacing[0] / px)
        del stack   # before the next session's is read
    width = tile_w = 0
    for sid in ids:
        strip = rv.strip_image([tiles[sid][s] for s in names])
        tile_w = max(tiles[sid][s].shape[1] for s in names)
        width = strip.shape[1]
        images[f"syn_{sid}.png"] = rv.to_uint8(strip)
    html = cell_page(table, summary, cell=str(reference["cell"]), sessions=names, days=days,
                     spacing=ref_spacing, shape_yx=ref_shape[1:], qc=qc, strip_width=width,
                     tile_width=tile_w, gap=3)
    return images, html
