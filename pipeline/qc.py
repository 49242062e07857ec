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
    """Max projections of the reference (magenta) and the session (green), before and after."""
    ref = reference.max(axis=0)
    mov = moving.max(axis=0)
    sy, sx = np.asarray(spacing)[1:] / np.asarray(reference_spacing)[1:]
    if not np.allclose((sy, sx), 1, rtol=0.01):
        mov = ndimage.zoom(mov, (sy, sx), order=1)
    canvas = np.zeros((max(ref.shape[0], mov.shape[0]), max(ref.shape[1], mov.shape[1])))
    before = canvas.copy()
    before[:mov.shape[0], :mov.shape[1]] = _norm(mov)   # normalise before padding/shifting
    shift_px = np.asarray(result["shift_um"])[1:] / np.asarray(reference_spacing)[1:]
    after = ndimage.shift(before, shift_px, order=1, cval=0.0)
    r = canvas.copy()
    r[:ref.shape[0], :ref.shape[1]] = _norm(ref)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, img, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        rgb = np.stack([r, img, r], axis=-1)
        ax.imshow(rgb)
        ax.set_title(f"{title} (reference magenta, session green)")
        ax.axis("off")
    fig.suptitle(f"{result.get('cell', '')} {result.get('session', '')}: shift "
                 f"{np.round(result['shift_um'], 2)} um (z, y, x), "
                 f"{result['n_matches']} matched puncta, reliable={result['reliable']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)
