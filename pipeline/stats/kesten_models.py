"""Estimators of the Kesten process w' = w + a*w + c + sqrt(b*w^2 + d)*xi: the published binned
moments, maximum likelihood of nested models, and their likelihood-ratio test."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ..params import StatsParams


def fit_kesten_binned(w_t: np.ndarray, w_next: np.ndarray, *,
                      n_bins: int = StatsParams.kesten_bins) -> dict:
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


# --------------------------------------------------------------------------- likelihood fits
PARAMS = ("a", "c", "b", "d")
#: free parameters of the nested models of w' given w.  The Kesten step is w' = eps*w + eta;
#: "multiplicative" has no additive part (eta = 0: c = d = 0), "additive" a deterministic
#: factor (Var eps = 0: b = 0).
MODELS = {"multiplicative": ("a", "b"), "additive": ("a", "c", "d"), "both": ("a", "c", "b", "d")}
_VAR_FLOOR = 1e-10


def _nll(theta, free, w, y):
    p = np.zeros(4)
    p[free] = theta
    a, c, b, d = p
    m = w + a * w + c
    v = np.maximum(b * w * w + d, _VAR_FLOOR)
    s = np.sqrt(v)
    r, z = m / s, (y - m) / s
    log_cdf = special.log_ndtr(r)
    ll = -0.5 * z * z - 0.5 * np.log(v) - 0.5 * math.log(2 * math.pi) - log_cdf
    lam = np.exp(-0.5 * r * r - 0.5 * math.log(2 * math.pi) - log_cdf)  # inverse Mills ratio
    g_m = (z - lam) / s
    g_v = (z * z - 1 + lam * r) / (2 * v)
    grad = np.array([(g_m * w).sum(), g_m.sum(), (g_v * w * w).sum(), g_v.sum()])
    n = len(w)
    return -ll.sum() / n, -grad[free] / n


def _start(w, y, model):
    dw = y - w
    if model == "multiplicative":
        a = (w * dw).sum() / (w * w).sum()
        return {"a": a, "b": max(np.mean(((dw - a * w) / w) ** 2), 1e-3)}
    a, c = np.polyfit(w, dw, 1)
    res2 = (dw - a * w - c) ** 2
    if model == "additive":
        return {"a": a, "c": c, "d": max(res2.mean(), 1e-3)}
    b, d = np.polyfit(w * w, res2, 1)
    return {"a": a, "c": c, "b": max(b, 1e-3), "d": max(d, 1e-3)}


def fit_kesten_ml(w_t, w_next, *, model: str = "both", start: dict | None = None) -> dict:
    """Maximum-likelihood fit of w' given w for persisting synapses (both weights > 0).

    w' is normal with mean ``w + a*w + c`` and variance ``b*w**2 + d``, truncated to w' > 0
    (a synapse that persists keeps a positive weight).  ``model`` picks the free parameters
    (see ``MODELS``); the others are 0.  Returns a, c, b, d, loglik, n_params, aic, n_pairs.
    """
    w = np.asarray(w_t, float)
    y = np.asarray(w_next, float)
    keep = (w > 0) & (y > 0)
    w, y = w[keep], y[keep]
    names = MODELS[model]
    if len(w) < 3 * len(names):
        raise ValueError(f"{len(w)} persisting pairs are too few for the {model} model")
    free = np.array([PARAMS.index(k) for k in names])
    init = start or _start(w, y, model)
    x0 = np.array([init[k] for k in names], float)
    # 1 + a is the mean of the multiplicative factor on a positive weight, so a >= -1; the
    # variances are >= 0 (b > 0 when it is the only one)
    lower = {"a": -1.0, "c": None, "b": 1e-8 if model == "multiplicative" else 0.0, "d": 0.0}
    bounds = [(lower[k], None) for k in names]
    res = optimize.minimize(_nll, x0, args=(free, w, y), jac=True, method="L-BFGS-B",
                            bounds=bounds)
    est = dict.fromkeys(PARAMS, 0.0)
    est.update(zip(names, res.x))
    loglik = -res.fun * len(w)
    return {**est, "loglik": loglik, "n_params": len(names), "aic": 2 * len(names) - 2 * loglik,
            "n_pairs": len(w), "converged": bool(res.success)}


def lrt_boundary(ll_full: float, ll_nested: float, *, n_free: int, n_boundary: int) -> tuple:
    """Likelihood-ratio statistic and p-value when some tested parameters sit on a boundary.

    ``n_free`` tested parameters are unrestricted and ``n_boundary`` (0 or 1) are variances
    tested at 0; the null distribution is then the 50:50 mixture of chi-square with
    ``n_free`` and ``n_free + 1`` degrees of freedom (Self & Liang 1987).
    """
    lr = max(2 * (ll_full - ll_nested), 0.0)
    if n_boundary == 0:
        return lr, float(stats.chi2.sf(lr, n_free))
    lo = stats.chi2.sf(lr, n_free) if n_free > 0 else float(lr <= 0)
    return lr, float(0.5 * lo + 0.5 * stats.chi2.sf(lr, n_free + 1))
