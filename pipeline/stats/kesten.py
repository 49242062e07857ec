"""The Kesten table: per cell type, the binned and maximum-likelihood fits of
w' = w + a*w + c + sqrt(b*w^2 + d)*xi with bootstrap CIs (estimators in :mod:`.kesten_models`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..params import StatsParams
from .kesten_models import MODELS, PARAMS, fit_kesten_binned, fit_kesten_ml, lrt_boundary
from .noise import fit_kesten_ml_noisy
from .replication import cells_by_animal, hierarchical_sample, shares_animals


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
    synapses; where cells share animals (column ``animal_unit``, see :mod:`.replication`), it
    resamples animals and then cells within each drawn animal.  With a ``noise`` estimate (``noise.noise_estimate``), ``both_corrected`` is the
    noise-corrected full model; its
    CI is the bootstrap CI of ``both`` shifted by the correction (refitting the slower
    errors-in-variables model per resample would take minutes).  Returns (fits, cis, info).
    """
    w, y = pairs["w_t"].to_numpy(float), pairs["w_next"].to_numpy(float)
    fits = {m: fit_kesten_ml(w, y, model=m) for m in models}
    by_cell = pairs["cell"].nunique() >= MIN_BOOT_CELLS
    by_animal = ("animal_unit" in pairs.columns and shares_animals(pairs)
                 and pairs["animal_unit"].nunique() > 1)
    units = pairs["cell"] if by_cell or by_animal else (
        pairs["cell"] + "/" + pairs["synapse_id"].astype(str))
    groups = _groups(units.reset_index(drop=True))
    if by_animal:
        animals = cells_by_animal(pairs)
        rows_of = dict(zip(pd.unique(units), groups))     # _groups numbers units as they come
    draws = {m: [] for m in models}
    for _ in range(n_boot):
        if by_animal:
            idx = np.concatenate([rows_of[c] for c in hierarchical_sample(rng, animals)])
        else:
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
    g = pairs["animal_unit"].nunique() if by_animal else len(groups)
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
    unit = "animals, then cells" if by_animal else "cells" if by_cell else "synapses"
    info = {"ci_method": f"bootstrap SE over {g} {unit} ({n_boot} resamples), t on {g - 1} df",
            "noise": noise,
            "n_cells": pairs["cell"].nunique(), "resampled": unit,
            "draws": {m: np.array(d).reshape(-1, 4) for m, d in draws.items()}}
    return fits, cis, info


def _fit_note(fit: dict) -> str:
    notes = [] if fit["converged"] else ["optimiser did not converge"]
    if fit["a"] <= -1 + 1e-6:
        notes.append("a at its bound -1: w' | w fits only as a half-normal; compare this model "
                     "by AIC/LRT, do not read its parameters")
    return "; ".join(notes)


def kesten_table(pairs: pd.DataFrame, noise_by_type: dict, *,
                 n_bins: int = StatsParams.kesten_bins, n_boot: int = StatsParams.n_boot, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
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
        plot_fits[ct].update(ml=fits["both"], draws=info["draws"]["both"],
                             resampled=info["resampled"])
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
