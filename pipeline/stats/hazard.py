"""Loss hazard as a function of ln weight: discrete-time logistic and Cox regression."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg

from .table import weighed_pairs

#: below this many cells, standard errors are not clustered by cell (too few clusters)
MIN_CLUSTERS = 5


def at_risk_intervals(pairs: pd.DataFrame) -> pd.DataFrame:
    """Intervals in which a synapse could be lost: present at the start (w_t > 0) with its
    weight measured there (``measured_t``).

    Adds ``ln_w`` (at the start) and ``lost`` (absent at the end: a synapse present at the
    end, measured or not, persisted).  Leaving out the intervals whose start weight is
    unknown selects on the regressor, which leaves the slope unbiased.
    """
    r = weighed_pairs(pairs)
    r = r[r["w_t"] > 0].copy()
    r["ln_w"] = np.log(r["w_t"])
    r["lost"] = (r["w_next"] <= 0).astype(int)
    return r


def _row(model, term, coef, se, lo, hi, p, r, cov):
    return {"model": model, "term": term, "coef": coef, "se": se, "ci_low": lo, "ci_high": hi,
            "p": p, "ratio": np.exp(coef), "ratio_ci_low": np.exp(lo), "ratio_ci_high": np.exp(hi),
            "n_intervals": len(r), "n_losses": int(r["lost"].sum()),
            "n_cells": r["cell"].nunique(), "se_type": cov}


def fit_loss_logistic(r: pd.DataFrame, *, link: str = "logit", alpha: float = 0.05) -> list[dict]:
    """g(P(lost over an interval)) = b0 + b1 * ln w.  SEs clustered by cell when possible.

    ``link="logit"`` is the discrete-time logistic model; ``link="cloglog"`` is the
    grouped-time proportional-hazards model (the Cox model for data seen only at sessions),
    whose slope is a log hazard ratio.
    """
    X = sm.add_constant(r["ln_w"].to_numpy())
    fam = sm.families.Binomial(link=sm.families.links.CLogLog() if link == "cloglog" else None)
    model = sm.GLM(r["lost"].to_numpy(), X, family=fam)
    groups = pd.factorize(r["cell"])[0]
    with warnings.catch_warnings():
        # the cloglog inverse link overflows harmlessly during the first iterations
        warnings.simplefilter("ignore", RuntimeWarning)
        if r["cell"].nunique() >= MIN_CLUSTERS:
            # t on (cells - 1) df: with a dozen clusters normal quantiles under-cover
            res = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
            cov = f"cluster(cell), t on {r['cell'].nunique() - 1} df"
        else:
            res, cov = model.fit(), "model"
    ci = res.conf_int(alpha)
    name = "logistic" if link == "logit" else "grouped_cox_cloglog"
    return [_row(name, term, res.params[i], res.bse[i], ci[i, 0], ci[i, 1], res.pvalues[i],
                 r, cov) for i, term in enumerate(("intercept", "ln_w"))]


def fit_loss_cox(r: pd.DataFrame, *, alpha: float = 0.05) -> list[dict]:
    """Cox proportional hazards of loss on ln w, in counting-process form.

    Each interval is a row entering at ``day`` and ending at ``day_next`` (lost or censored),
    so ln w is updated every session; ties by Efron's method.  With sessions days apart
    nearly all times are tied and Efron's approximation pulls the coefficient toward 0
    (measured: -0.58 to -0.64 where the grouped-time model gives -0.69); prefer the
    ``grouped_cox_cloglog`` row for a hazard ratio.
    """
    model = PHReg(r["day_next"].to_numpy(float), r[["ln_w"]].to_numpy(), status=r["lost"].to_numpy(),
                  entry=r["day"].to_numpy(float), ties="efron")
    clustered = r["cell"].nunique() >= MIN_CLUSTERS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # Newton's method from 0 can overshoot where the partial likelihood is flat; BFGS does not
        res = model.fit(groups=pd.factorize(r["cell"])[0] if clustered else None, method="bfgs",
                        disp=False)
    ci = np.asarray(res.conf_int(alpha))
    return [_row("cox", "ln_w", res.params[0], res.bse[0], ci[0, 0], ci[0, 1], res.pvalues[0], r,
                 "cluster(cell)" if clustered else "model")]


def hazard_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Both hazard models per cell type."""
    rows = []
    for ct, grp in pairs.groupby("cell_type"):
        r = at_risk_intervals(grp)
        if r["lost"].sum() < 2 or r["lost"].sum() > len(r) - 2:
            rows.append({"cell_type": ct, "model": "logistic", "note": "too few losses to fit"})
            continue
        for row in fit_loss_logistic(r) + fit_loss_logistic(r, link="cloglog") + fit_loss_cox(r):
            rows.append({"cell_type": ct, **row, "note": ""})
    return pd.DataFrame(rows)
