"""Log-normal fits of synapse weights."""
from __future__ import annotations

import numpy as np
from scipy import stats


def fit_lognormal(weights) -> dict:
    """MLE of ln-weight mean and SD, KS test, and AIC of log-normal vs gamma vs normal."""
    w = np.asarray(weights, float)
    w = w[w > 0]
    n = len(w)
    if n < 3:
        return {"n": n, "mu": np.nan, "sigma": np.nan, "ks_stat": np.nan, "ks_p": np.nan,
                "aic_lognormal": np.nan, "aic_gamma": np.nan, "aic_normal": np.nan}
    lw = np.log(w)
    mu, sigma = lw.mean(), lw.std(ddof=0)
    ks = stats.kstest(lw, "norm", args=(mu, sigma))
    ll_logn = stats.lognorm.logpdf(w, sigma, scale=np.exp(mu)).sum()
    ga, _, gscale = stats.gamma.fit(w, floc=0)
    ll_gamma = stats.gamma.logpdf(w, ga, scale=gscale).sum()
    ll_norm = stats.norm.logpdf(w, w.mean(), w.std(ddof=0)).sum()
    return {"n": n, "mu": mu, "sigma": sigma, "ks_stat": ks.statistic, "ks_p": ks.pvalue,
            "aic_lognormal": 4 - 2 * ll_logn, "aic_gamma": 4 - 2 * ll_gamma,
            "aic_normal": 4 - 2 * ll_norm}
