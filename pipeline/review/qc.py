"""Quality-control figures (PNG)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure    # not pyplot: its import alone takes ~1 s per job
from scipy import ndimage


def _norm(img):
    # a resampled image is 0 beyond the session's field: its levels come from the rest
    inside = img[img != 0]
    lo, hi = np.percentile(inside if inside.size > img.size // 10 else img, [1, 99.7])
    return np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)


def _projected_into_reference(moving, matrix, *, spacing, reference_spacing, reference_shape):
    """Max projection of ``moving`` brought into the reference's (y, x) grid in 2D: the
    transform's y-x part, taken at mid-depth.  For a picture: a tilt's share is ignored."""
    inv = np.linalg.inv(np.asarray(matrix, float))
    lin = np.diag(1 / np.asarray(spacing, float)) @ inv[:3, :3] @ np.diag(reference_spacing)
    offset = inv[:3, 3] / np.asarray(spacing, float)
    offset_yx = offset[1:] + lin[1:, 0] * (reference_shape[0] - 1) / 2
    return ndimage.affine_transform(moving.max(axis=0).astype(np.float32), lin[1:, 1:],
                                    offset=offset_yx, output_shape=tuple(reference_shape[1:]),
                                    order=1, cval=0.0)


def _similarity_panel(ax, result, shape, reference_spacing) -> None:
    """The register stage's map of how alike the session's morphology and the reference's are
    after registration, patch by patch (blank: not measured), over the reference field."""
    sim = result.get("similarity") or {}
    ax.set_xlim(-0.5, shape[1] - 0.5)
    ax.set_ylim(shape[0] - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if not sim.get("final"):
        ax.set_title("morphology similarity: not measured")
        return
    values = np.array(sim["final"], dtype=float)
    ry, rx = np.asarray(reference_spacing, float)[1:]
    (oy, ox), (sy, sx) = sim["origin_um"], sim["step_um"]
    ny, nx = values.shape
    extent = [(ox - sx / 2) / rx, (ox + (nx - 0.5) * sx) / rx,
              (oy + (ny - 0.5) * sy) / ry, (oy - sy / 2) / ry]
    shown = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, extent=extent,
                      interpolation="nearest")
    ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    ax.set_title("morphology alike after (r per patch)", fontsize=10)


def registration_figure(reference, moving, result, *, spacing, reference_spacing, path):
    """Max projections of the reference (magenta) and the session (green), before and after
    (the transform's matrix part), and the map of the morphology's similarity after the whole
    transform (:func:`pipeline.core.similarity.similarity_map`)."""
    ref = reference.max(axis=0)
    sy, sx = np.asarray(spacing)[1:] / np.asarray(reference_spacing)[1:]
    mov = moving.max(axis=0)
    if not np.allclose((sy, sx), 1, rtol=0.01):
        mov = ndimage.zoom(mov, (sy, sx), order=1)
    before = np.zeros(ref.shape)
    ny, nx = min(mov.shape[0], ref.shape[0]), min(mov.shape[1], ref.shape[1])
    before[:ny, :nx] = _norm(mov)[:ny, :nx]
    after = _norm(_projected_into_reference(moving, result["matrix"], spacing=spacing,
                                            reference_spacing=reference_spacing,
                                            reference_shape=reference.shape))
    r = _norm(ref)
    fig = Figure(figsize=(15, 5))
    axes = fig.subplots(1, 3)
    for ax, img, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        ax.imshow(np.stack([r, img, r], axis=-1))
        ax.set_title(f"{title} (reference magenta, session green)")
        ax.axis("off")
    # where the register stage estimates its own error above its limit (reference frame)
    from matplotlib.patches import Rectangle

    ry, rx = np.asarray(reference_spacing, float)[1:]
    for region in result.get("misregistered_regions") or []:
        (y0, y1), (x0, x1) = region["y_um"], region["x_um"]
        axes[1].add_patch(Rectangle((x0 / rx, y0 / ry), (x1 - x0) / rx, (y1 - y0) / ry,
                                    fill=False, edgecolor="yellow", linewidth=1.5))
        axes[1].text(x0 / rx, y0 / ry, f"{region['error_um']:.1f} um", color="yellow",
                     fontsize=7, va="bottom")
    _similarity_panel(axes[2], result, r.shape, reference_spacing)
    for region in result.get("dissimilar_regions") or []:
        (y0, y1), (x0, x1) = region["y_um"], region["x_um"]
        for ax in axes[1:]:
            ax.add_patch(Rectangle((x0 / rx, y0 / ry), (x1 - x0) / rx, (y1 - y0) / ry,
                                   fill=False, edgecolor="cyan", linewidth=1.2, linestyle="--"))
    fig.suptitle(f"{result.get('cell', '')} {result.get('session', '')}: shift "
                 f"{np.round(result['shift_um'], 2)} um (z, y, x), rotation "
                 f"{result.get('rotation_deg', 0.0):.1f} deg, {result['n_matches']} matched puncta, "
                 f"residual {result['residual_um']:.2f} um, reliable={result['reliable']}")
    fig.tight_layout(rect=(0, 0, 1, 0.94))   # room for the title
    fig.savefig(path, dpi=80, format="png")
