"""Kesten process w' = w + a*w + c + sqrt(b*w^2 + d)*xi fitted to weight changes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, special, stats


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
    bounds = [(None, None) if k in ("a", "c") else (1e-8 if k == "b" and model == "multiplicative"
                                                     else 0.0, None) for k in names]
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


# --------------------------------------------------------------------------- measurement noise
def measurement_noise(w1, w2) -> dict:
    """Measurement-noise variance ``p*w**2 + q`` from two images of the same synapses.

    The difference of two independent measurements has variance ``2 * (p*w**2 + q)``;
    (p, q) >= 0 come from non-negative least squares of ``(w1 - w2)**2 / 2`` on the mean
    weight squared.  ``log_var`` is the noise variance of ln weight, ``Var(ln w1 - ln w2)/2``.
    """
    w1, w2 = np.asarray(w1, float), np.asarray(w2, float)
    mean = (w1 + w2) / 2
    (p, q), _ = optimize.nnls(np.column_stack([mean ** 2, np.ones_like(mean)]), (w1 - w2) ** 2 / 2)
    return {"p": p, "q": q, "log_var": np.var(np.log(w1) - np.log(w2), ddof=1) / 2,
            "n_repeat_pairs": len(w1)}


def correct_for_noise(fit: dict, w_t, *, p: float, q: float) -> dict:
    """Moment correction of Kesten terms for measurement noise of variance ``p*w**2 + q``.

    Noise in w_t dilutes the slope of E[w'|w] by the reliability
    ``lam = 1 - E[noise var] / Var(w_t)``; noise at both ends adds about
    ``(1 + (1+a)**2 * lam) * (p*w**2 + q)`` to Var(dw).  Variance terms are floored at 0.
    """
    x = np.asarray(w_t, float)
    x = x[x > 0]
    lam = float(np.clip(1 - np.mean(p * x ** 2 + q) / np.var(x), 0.05, 1.0))
    slope_obs = 1 + fit["a"]
    slope = slope_obs / lam
    k = 1 + slope ** 2 * lam
    return {**fit, "a": slope - 1, "c": fit["c"] + (slope_obs - slope) * x.mean(),
            "b": max(fit["b"] - k * p, 0.0), "d": max(fit["d"] - k * q, 0.0), "reliability": lam}


# --------------------------------------------------------------------------- the kesten table
#: below this many cells the bootstrap resamples synapses instead of cells
MIN_BOOT_CELLS = 5
MIN_REPEAT_PAIRS = 10


def _groups(labels) -> list[np.ndarray]:
    codes, _ = pd.factorize(pd.Series(list(labels)) if not isinstance(labels, pd.Series) else labels)
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def _noise_for(repeats: pd.DataFrame):
    if len(repeats) < MIN_REPEAT_PAIRS:
        return None
    return measurement_noise(repeats["w1"], repeats["w2"])


def _fit_all(w, y, noise, starts=None):
    fits = {m: fit_kesten_ml(w, y, model=m, start=None if starts is None else
                             {k: starts[m][k] for k in MODELS[m]}) for m in MODELS}
    if noise is not None:
        persisting = (w > 0) & (y > 0)
        fits["both_corrected"] = correct_for_noise(fits["both"], w[persisting],
                                                   p=noise["p"], q=noise["q"])
    return fits


def kesten_fits(pairs: pd.DataFrame, repeats: pd.DataFrame, *, n_boot: int,
                rng: np.random.Generator, alpha: float = 0.05) -> tuple[dict, dict, dict]:
    """ML fits of the nested models for one cell type, with percentile bootstrap CIs.

    The bootstrap resamples cells (with their repeat pairs) when there are at least
    ``MIN_BOOT_CELLS``, otherwise synapses.  Returns (fits, cis, info).
    """
    w, y = pairs["w_t"].to_numpy(float), pairs["w_next"].to_numpy(float)
    noise = _noise_for(repeats)
    fits = _fit_all(w, y, noise)
    by_cell = pairs["cell"].nunique() >= MIN_BOOT_CELLS
    units = pairs["cell"] if by_cell else pairs["cell"] + "/" + pairs["synapse_id"].astype(str)
    groups = _groups(units.reset_index(drop=True))
    rep_groups = {c: g for c, g in repeats.groupby("cell")} if by_cell else {}
    draws = {m: [] for m in fits}
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        idx = np.concatenate([groups[i] for i in pick])
        boot_noise = noise
        if noise is not None and by_cell:
            cells = units.iloc[[groups[i][0] for i in pick]]
            rep = [rep_groups[c] for c in cells if c in rep_groups]
            boot_noise = _noise_for(pd.concat(rep)) if rep else None
            boot_noise = boot_noise or noise
        try:
            b = _fit_all(w[idx], y[idx], boot_noise, starts=fits)
        except ValueError:
            continue
        for m, f in b.items():
            draws[m].append([f[k] for k in PARAMS])
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    cis = {m: np.percentile(np.array(d), q, axis=0) if d else np.full((2, 4), np.nan)
           for m, d in draws.items()}
    unit = "cells" if by_cell else "synapses"
    info = {"ci_method": f"percentile bootstrap over {unit} ({n_boot})", "noise": noise,
            "n_cells": pairs["cell"].nunique(),
            "draws": {m: np.array(d).reshape(-1, 4) for m, d in draws.items()}}
    return fits, cis, info


def kesten_table(pairs: pd.DataFrame, repeats: pd.DataFrame, *, n_bins: int = 20,
                 n_boot: int = 500, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Per cell type: the published binned fit and the ML fits of nested models (see module)."""
    rows, plot_fits = [], {}
    for ct, grp in pairs.groupby("cell_type"):
        rep = repeats[repeats["cell_type"] == ct]
        noise = _noise_for(rep)
        note_noise = ("none" if noise is None else
                      f"moment correction, noise var {noise['p']:.3g}*w^2 + {noise['q']:.3g} "
                      f"from {noise['n_repeat_pairs']} repeat pairs")
        base = {"cell_type": ct, "n_cells": grp["cell"].nunique()}
        try:
            binned = fit_kesten_binned(grp["w_t"], grp["w_next"], n_bins=n_bins)
        except ValueError as exc:
            rows.append({**base, "method": "binned_moments", "note": str(exc)})
            continue
        plot_fits[ct] = {"binned": binned}
        bin_cols = {k: binned[k] for k in ("n_pairs", "n_bins", "bin_size")}
        rows.append({**base, "method": "binned_moments", "model": "both",
                     **{k: binned[k] for k in PARAMS}, **bin_cols,
                     "noise_correction": "none", "note": ""})
        if noise is not None:
            corr = correct_for_noise(binned, grp["w_t"], p=noise["p"], q=noise["q"])
            rows.append({**base, "method": "binned_moments", "model": "both",
                         **{k: corr[k] for k in PARAMS}, **bin_cols,
                         "noise_correction": note_noise, "note": ""})
        try:
            fits, cis, info = kesten_fits(grp, rep, n_boot=n_boot, rng=rng)
        except ValueError as exc:
            rows.append({**base, "method": "maximum_likelihood", "note": str(exc)})
            continue
        plot_fits[ct].update(ml=fits["both"], draws=info["draws"]["both"])
        best_aic = min(fits[m]["aic"] for m in MODELS)
        lr_add = lrt_boundary(fits["both"]["loglik"], fits["multiplicative"]["loglik"],
                              n_free=1, n_boundary=1)
        lr_mult = lrt_boundary(fits["both"]["loglik"], fits["additive"]["loglik"],
                               n_free=0, n_boundary=1)
        for m, f in fits.items():
            model = "both" if m == "both_corrected" else m
            row = {**base, "method": "maximum_likelihood", "model": model,
                   **{k: f[k] for k in PARAMS}, "n_pairs": fits["both"]["n_pairs"],
                   **{f"{k}_ci_{side}": cis[m][i, j] for j, k in enumerate(PARAMS)
                      for i, side in enumerate(("low", "high"))},
                   "ci_method": info["ci_method"],
                   "noise_correction": note_noise if m == "both_corrected" else "none",
                   "note": "" if fits[model]["converged"] else "optimiser did not converge"}
            if m in MODELS:
                row.update(loglik=f["loglik"], n_params=f["n_params"], aic=f["aic"],
                           delta_aic=f["aic"] - best_aic)
            if m == "both":
                row.update(lrt_additive_stat=lr_add[0], lrt_additive_p=lr_add[1],
                           lrt_multiplicative_stat=lr_mult[0], lrt_multiplicative_p=lr_mult[1])
            rows.append(row)
    return pd.DataFrame(rows), plot_fits
