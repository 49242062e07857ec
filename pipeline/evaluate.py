"""Scoring results against the simulator's ground truth."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

# axial/lateral FWHM of the two-photon PSF: z errors are scaled down by this before gating
PSF_ANISOTROPY = 5.0


def match_points(a_um: np.ndarray, b_um: np.ndarray, *, gate_um: float = 0.6,
                 z_scale: float = 1.0 / PSF_ANISOTROPY) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching (Hungarian) of two point sets (z, y, x in um) within a gate.

    Distances are Euclidean after multiplying z differences by ``z_scale``.  Returns the
    index arrays ``(ia, ib)`` of matched pairs.
    """
    a = np.asarray(a_um, float).reshape(-1, 3) * [z_scale, 1, 1]
    b = np.asarray(b_um, float).reshape(-1, 3) * [z_scale, 1, 1]
    if len(a) == 0 or len(b) == 0:
        return np.array([], int), np.array([], int)
    d = cdist(a, b)
    cost = np.where(d <= gate_um, d, 1e6)
    ia, ib = linear_sum_assignment(cost)
    ok = d[ia, ib] <= gate_um
    return ia[ok], ib[ok]


def precision_recall(n_true: int, n_pred: int, n_match: int) -> dict:
    p = n_match / n_pred if n_pred else float("nan")
    r = n_match / n_true if n_true else float("nan")
    f1 = 2 * p * r / (p + r) if n_pred and n_true and (p + r) > 0 else float("nan")
    return {"precision": p, "recall": r, "f1": f1}
