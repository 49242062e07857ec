"""Kesten process w' = w + a*w + c + sqrt(b*w^2 + d)*xi fitted to weight changes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def fit_kesten_binned(w_t: np.ndarray, w_next: np.ndarray, *, n_bins: int = 20) -> dict:
    """Binned-moment fit of the Kesten process (the published procedure).

    Pairs with ``w_t > 0`` are sorted by ``w_t`` and cut into bins of ``ceil(n / n_bins)``
    pairs (the last, partial bin kept).  Per bin: mean ``w_t``, mean of ``dw = w_next - w_t``
    and its variance (ddof 0).  Least squares then gives ``mean dw = a*w + c`` and
    ``var dw = b*w**2 + d``.  An elimination enters as ``w_next = 0``.
    """
    w_t = np.asarray(w_t, float)
    w_next = np.asarray(w_next, float)
    keep = w_t > 0
    w_t, w_next = w_t[keep], w_next[keep]
    n = len(w_t)
    if n < 2 * n_bins:
        raise ValueError(f"{n} pairs are too few for a {n_bins}-bin Kesten fit")
    order = np.argsort(w_t, kind="stable")
    w_t, dw = w_t[order], (w_next - w_t)[order]
    size = math.ceil(n / n_bins)
    starts = np.arange(0, n, size)
    mean_w = np.array([w_t[i:i + size].mean() for i in starts])
    mean_dw = np.array([dw[i:i + size].mean() for i in starts])
    var_dw = np.array([dw[i:i + size].var() for i in starts])
    a, c = np.polyfit(mean_w, mean_dw, 1)
    b, d = np.polyfit(mean_w ** 2, var_dw, 1)
    return {"a": a, "c": c, "b": b, "d": d, "n_pairs": n, "n_bins": len(starts),
            "bin_size": size, "bins": pd.DataFrame({"mean_w": mean_w, "mean_dw": mean_dw,
                                                    "var_dw": var_dw})}
