"""Log-normal fits of synapse weights."""
from __future__ import annotations

import numpy as np
from scipy import stats

_EMPTY = ("mu", "mu_ci_low", "mu_ci_high", "sigma", "sigma_ci_low", "sigma_ci_high",
          "ks_stat", "ks_p", "aic_lognormal", "aic_gamma", "aic_normal")


def fit_lognormal(weights, *, alpha: float = 0.05) -> dict:
    """MLE of ln-weight mean and SD with exact CIs, KS test, and AIC of log-normal vs gamma vs normal.

    The CIs are those of a normal sample (t for the mean, chi-square for the SD); they assume
    independent synapses.  The KS p-value is approximate because mu and sigma are fitted.
    """
    w = np.asarray(weights, float)
    w = w[w > 0]
    n = len(w)
    if n < 3:
        return {"n": n, **{k: np.nan for k in _EMPTY}}
    lw = np.log(w)
    mu, sigma = lw.mean(), lw.std(ddof=0)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * lw.std(ddof=1) / np.sqrt(n)
    # n * sigma_mle**2 / sigma**2 ~ chi2(n - 1)
    chi_hi, chi_lo = stats.chi2.ppf([1 - alpha / 2, alpha / 2], n - 1)
    ks = stats.kstest(lw, "norm", args=(mu, sigma))
    ll_logn = stats.lognorm.logpdf(w, sigma, scale=np.exp(mu)).sum()
    ga, _, gscale = stats.gamma.fit(w, floc=0)
    ll_gamma = stats.gamma.logpdf(w, ga, scale=gscale).sum()
    ll_norm = stats.norm.logpdf(w, w.mean(), w.std(ddof=0)).sum()
    return {"n": n, "mu": mu, "mu_ci_low": mu - half, "mu_ci_high": mu + half,
            "sigma": sigma, "sigma_ci_low": np.sqrt(n * sigma ** 2 / chi_hi),
            "sigma_ci_high": np.sqrt(n * sigma ** 2 / chi_lo),
            "ks_stat": ks.statistic, "ks_p": ks.pvalue,
            "aic_lognormal": 4 - 2 * ll_logn, "aic_gamma": 4 - 2 * ll_gamma,
            "aic_normal": 4 - 2 * ll_norm}
