"""Measurement noise from repeat imaging, and Kesten fits that account for it.

Noise makes weights look more variable and, in w_t, dilutes the slope of E[w'|w]; part of
an apparent additive term can be noise.  With two sessions of a cell on the same day the
noise variance ``p*w**2 + q`` is estimated from the differences, and the Kesten model is
refitted with the true weights as latent variables (an errors-in-variables likelihood).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, special

from .kesten_models import PARAMS, fit_kesten_ml

#: fewer repeat pairs than this give no noise estimate (and no correction)
MIN_REPEAT_PAIRS = 10

#: grid of standardised offsets over which the true w_t is integrated
_GRID = np.linspace(-4, 4, 17)


def measurement_noise(w1, w2) -> dict:
    """Noise variance ``p*w**2 + q`` from two measurements of the same synapses.

    The difference of two independent measurements is normal with variance
    ``2 * (p*w**2 + q)``; (p, q) maximise that likelihood with w the pair's mean.
    ``log_var`` is the noise variance of ln weight, ``Var(ln w1 - ln w2) / 2``.
    """
    w1, w2 = np.asarray(w1, float), np.asarray(w2, float)
    m2, d2 = ((w1 + w2) / 2) ** 2, (w1 - w2) ** 2

    def nll(th):
        v = 2 * (th[0] * m2 + th[1])
        return 0.5 * np.mean(np.log(v) + d2 / v)

    start = [max(np.mean(d2) / (4 * np.mean(m2)), 1e-4), 1e-3]
    res = optimize.minimize(nll, start, bounds=[(0.0, None), (1e-10, None)], method="L-BFGS-B")
    p, q = res.x
    return {"p": p, "q": q, "log_var": np.var(np.log(w1) - np.log(w2), ddof=1) / 2,
            "n_repeat_pairs": len(w1)}


def noise_estimate(repeats: pd.DataFrame) -> dict | None:
    """``measurement_noise`` of a table of repeat pairs (``w1``, ``w2``), or None if too few."""
    if len(repeats) < MIN_REPEAT_PAIRS:
        return None
    return measurement_noise(repeats["w1"], repeats["w2"])


def _posterior_grid(x, p, q, log_var):
    """Grid of plausible true weights for each observed x, with log posterior weights.

    Prior: log-normal fitted to x with the noise variance of ln w (``log_var``) removed.
    """
    lx = np.log(x)
    mu, s2 = lx.mean(), max(lx.var() - log_var, 0.25 * lx.var())
    sd_x = np.sqrt(p * x ** 2 + q)
    w = x[:, None] + sd_x[:, None] * _GRID[None, :]
    ok = w > 0
    wpos = np.where(ok, w, 1.0)
    sd_w = np.sqrt(p * wpos ** 2 + q)
    log_lik = -0.5 * ((x[:, None] - wpos) / sd_w) ** 2 - np.log(sd_w)
    log_prior = -0.5 * (np.log(wpos) - mu) ** 2 / s2 - np.log(wpos)
    log_post = np.where(ok, log_lik + log_prior, -np.inf)
    return wpos, log_post - special.logsumexp(log_post, axis=1, keepdims=True)


def _nll_noisy(theta, w, log_post, y, p, q):
    a, c, b, d = theta
    m = w + a * w + c
    v_k = np.maximum(b * w * w + d, 1e-10)
    v_e = p * np.maximum(m, 0.0) ** 2 + q
    v = v_k + v_e
    # density of y = w' + noise, w' ~ N(m, v_k) truncated to w' > 0, noise ~ N(0, v_e):
    # N(y; m, v) * Phi(mu*/s*) / Phi(m/s_k), the normal convolved with a truncated normal
    mu_star = (m * v_e + y[:, None] * v_k) / v
    s_star = np.sqrt(v_k * v_e / v)
    log_dens = (-0.5 * (y[:, None] - m) ** 2 / v - 0.5 * np.log(2 * math.pi * v)
                + special.log_ndtr(mu_star / s_star) - special.log_ndtr(m / np.sqrt(v_k)))
    return -np.mean(special.logsumexp(log_post + log_dens, axis=1))


def fit_kesten_ml_noisy(w_t, w_next, *, p: float, q: float, log_var: float,
                        start: dict | None = None) -> dict:
    """ML fit of the full Kesten model (a, c, b, d) to noisy weights of persisting synapses.

    The true w_t is integrated over a grid around each observation (prior: log-normal of
    the weights, deconvolved); the true w' given w is the truncated normal of
    ``fit_kesten_ml`` and the observed w' adds noise of variance ``p*w'**2 + q``.
    ``log_var`` is the noise variance of ln w (see ``measurement_noise``).
    """
    w = np.asarray(w_t, float)
    y = np.asarray(w_next, float)
    keep = (w > 0) & (y > 0)
    w, y = w[keep], y[keep]
    grid, post = _posterior_grid(w, p, q, log_var)
    init = start or fit_kesten_ml(w, y)
    x0 = np.array([init[k] for k in PARAMS], float)
    x0[2:] = np.maximum(x0[2:] - np.array([2 * p, 2 * q]), 1e-3)
    res = optimize.minimize(_nll_noisy, x0, args=(grid, post, y, p, q), method="L-BFGS-B",
                            bounds=[(-1.0, None), (None, None), (0.0, None), (0.0, None)])
    est = dict(zip(PARAMS, res.x))
    loglik = -res.fun * len(w)
    return {**est, "loglik": loglik, "n_params": 4, "aic": 8 - 2 * loglik, "n_pairs": len(w),
            "converged": bool(res.success)}


__all__ = ["measurement_noise", "noise_estimate", "fit_kesten_ml_noisy"]
