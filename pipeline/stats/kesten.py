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


# --------------------------------------------------------------------------- the kesten table
#: below this many cells the bootstrap resamples synapses instead of cells
MIN_BOOT_CELLS = 5


def _groups(labels: pd.Series) -> list[np.ndarray]:
    """Row indices of each group (cell or synapse), the bootstrap's resampling units."""
    codes, _ = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def kesten_fits(pairs: pd.DataFrame, *, noise: dict | None = None, n_boot: int,
                rng: np.random.Generator, alpha: float = 0.05,
                models=tuple(MODELS)) -> tuple[dict, dict, dict]:
    """ML fits of the nested models for one cell type, with bootstrap CIs.

    The bootstrap resamples cells when there are at least ``MIN_BOOT_CELLS``, otherwise
    synapses.  With a ``noise`` estimate (``noise.noise_estimate``), ``both_corrected`` is the
    noise-corrected full model; its
    CI is the bootstrap CI of ``both`` shifted by the correction (refitting the slower
    errors-in-variables model per resample would take minutes).  Returns (fits, cis, info).
    """
    from .noise import fit_kesten_ml_noisy

    w, y = pairs["w_t"].to_numpy(float), pairs["w_next"].to_numpy(float)
    fits = {m: fit_kesten_ml(w, y, model=m) for m in models}
    by_cell = pairs["cell"].nunique() >= MIN_BOOT_CELLS
    units = pairs["cell"] if by_cell else pairs["cell"] + "/" + pairs["synapse_id"].astype(str)
    groups = _groups(units.reset_index(drop=True))
    draws = {m: [] for m in models}
    for _ in range(n_boot):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        for m in models:
            try:
                f = fit_kesten_ml(w[idx], y[idx], model=m,
                                  start={k: fits[m][k] for k in MODELS[m]})
            except ValueError:
                continue
            draws[m].append([f[k] for k in PARAMS])
    # percentile intervals from a dozen cells are too narrow (measured coverage 0.85-0.89 for
    # nominal 0.95 over 200 simulated tables); the bootstrap SE with the small-sample factor
    # G/(G-1) and a t quantile on G-1 degrees of freedom restores it
    g = len(groups)
    t_q = stats.t.ppf(1 - alpha / 2, g - 1) * np.sqrt(g / (g - 1))
    cis = {}
    for m, d in draws.items():
        est = np.array([fits[m][k] for k in PARAMS])
        half = t_q * np.array(d).std(axis=0, ddof=1) if len(d) > 1 else np.full(4, np.nan)
        free = np.isin(PARAMS, MODELS[m])
        lo = np.where(free, est - half, 0.0)
        lo[2:] = np.maximum(lo[2:], 0.0)  # variance terms
        cis[m] = np.vstack([lo, np.where(free, est + half, 0.0)])
    if noise is not None and "both" in fits:
        fits["both_corrected"] = fit_kesten_ml_noisy(w, y, p=noise["p"], q=noise["q"],
                                                     log_var=noise["log_var"], start=fits["both"])
        shift = np.array([fits["both_corrected"][k] - fits["both"][k] for k in PARAMS])
        cis["both_corrected"] = cis["both"] + shift
    unit = "cells" if by_cell else "synapses"
    info = {"ci_method": f"bootstrap SE over {g} {unit} ({n_boot} resamples), t on {g - 1} df",
            "noise": noise,
            "n_cells": pairs["cell"].nunique(),
            "draws": {m: np.array(d).reshape(-1, 4) for m, d in draws.items()}}
    return fits, cis, info


def _fit_note(fit: dict) -> str:
    notes = [] if fit["converged"] else ["optimiser did not converge"]
    if fit["a"] <= -1 + 1e-6:
        notes.append("a at its bound -1: w' | w fits only as a half-normal; compare this model "
                     "by AIC/LRT, do not read its parameters")
    return "; ".join(notes)


def kesten_table(pairs: pd.DataFrame, noise_by_type: dict, *, n_bins: int = 20,
                 n_boot: int = 500, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Per cell type: the published binned fit and the ML fits of nested models (see module)."""
    rows, plot_fits = [], {}
    for ct, grp in pairs.groupby("cell_type"):
        noise = noise_by_type.get(ct)
        note_noise = ("none" if noise is None else
                      f"errors-in-variables likelihood, noise var {noise['p']:.3g}*w^2 + "
                      f"{noise['q']:.3g} from {noise['n_repeat_pairs']} repeat pairs")
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
        try:
            fits, cis, info = kesten_fits(grp, noise=noise, n_boot=n_boot, rng=rng)
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
                   "ci_method": info["ci_method"] + (", shifted by the noise correction"
                                                     if m == "both_corrected" else ""),
                   "noise_correction": note_noise if m == "both_corrected" else "none",
                   "note": _fit_note(f)}
            if m in MODELS:
                row.update(loglik=f["loglik"], n_params=f["n_params"], aic=f["aic"],
                           delta_aic=f["aic"] - best_aic)
            if m == "both":
                row.update(lrt_additive_stat=lr_add[0], lrt_additive_p=lr_add[1],
                           lrt_multiplicative_stat=lr_mult[0], lrt_multiplicative_p=lr_mult[1])
            rows.append(row)
    return pd.DataFrame(rows), plot_fits
