"""Quality-control figures (PNG)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402


def _norm(img):
    lo, hi = np.percentile(img, [1, 99.7])
    return np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)


def registration_figure(reference, moving, result, *, spacing, reference_spacing, path):
    """Max projections of the reference (magenta) and the session (green), before and after
    (the session resampled into the reference frame by the full transform)."""
    from .review import reference_projection

    ref = reference.max(axis=0)
    sy, sx = np.asarray(spacing)[1:] / np.asarray(reference_spacing)[1:]
    mov = moving.max(axis=0)
    if not np.allclose((sy, sx), 1, rtol=0.01):
        mov = ndimage.zoom(mov, (sy, sx), order=1)
    before = np.zeros(ref.shape)
    ny, nx = min(mov.shape[0], ref.shape[0]), min(mov.shape[1], ref.shape[1])
    before[:ny, :nx] = _norm(mov)[:ny, :nx]
    after = _norm(reference_projection(moving, result["matrix"], spacing=spacing,
                                       reference_spacing=reference_spacing,
                                       reference_shape=reference.shape))
    r = _norm(ref)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, img, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        ax.imshow(np.stack([r, img, r], axis=-1))
        ax.set_title(f"{title} (reference magenta, session green)")
        ax.axis("off")
    fig.suptitle(f"{result.get('cell', '')} {result.get('session', '')}: shift "
                 f"{np.round(result['shift_um'], 2)} um (z, y, x), rotation "
                 f"{result.get('rotation_deg', 0.0):.1f} deg, {result['n_matches']} matched puncta, "
                 f"residual {result['residual_um']:.2f} um, reliable={result['reliable']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)
