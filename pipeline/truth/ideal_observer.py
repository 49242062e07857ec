"""How well could any presence call do?  An ideal observer on simulated data.

The joint presence calls (``pipeline.stages.presence``) are scored against the simulator's truth.
Part of their error is not the method's: a synapse whose weight has fallen to the simulator's
floor (0.05) just before it is lost, or one born small, measures like an empty place.  Here
the same truth is decoded by the *ideal observer*: a hidden Markov model with the simulator's
own dynamics (Kesten steps of the weight above its floor, loss probability logistic in
ln weight, births at the log-normal birth weights; a lost synapse never returns) and a
measurement model whose noise is taken from the pipeline's own measurements (signal per unit
weight, its relative spread, and the null measurements' centre and spread).  Measurements are
drawn from that model at the true weights, with perfect tracking, and each row is called
present where the posterior is at least 0.5.  The turnover and survival errors of those calls
are a floor for per-row calls at that signal level: what the pipeline loses beyond it is its
own (measurement, tracking, model); what lies below it no method calling rows can recover.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from ..core.noise import MAD_TO_SD
from ..core.signal_markov import forward_backward, log_normal_on_grid
from ..stages.presence import absent_state, fit_presence


def ideal_presence_posterior(snr, observed, *, signal_per_weight, null_centre, null_sd,
                             relative_sd, kesten, loss_logit, min_weight,
                             weight_lognormal, birth_lognormal, p_present_first,
                             birth_probability, n_grid: int = 120,
                             return_states: bool = False) -> np.ndarray:
    """P(present) per track and session under the simulator's generative model.

    Parameters
    ----------
    snr : (n_tracks, n_sessions) array of measurements (signal over noise).
    observed : bool array of the same shape; False: no measurement (no evidence).
    signal_per_weight : per-session snr of a synapse of weight 1 (array of n_sessions).
    null_centre, null_sd : what an absent synapse measures (mean and SD).
    relative_sd : SD of a present synapse's measurement relative to its expected signal.
    kesten : (a, c, b, d) of w' = w + a w + c + sqrt(b w^2 + d) xi per interval.
    loss_logit : (alpha, beta) of logit P(loss) = alpha + beta ln w.
    min_weight : floor of the weight of a present synapse.
    weight_lognormal, birth_lognormal : (mu, sigma) of ln w at the first session and at birth.
    p_present_first : probability that a track is present at its first session (else unborn).
    birth_probability : per interval, the probability that an unborn track is born.

    Returns
    -------
    (n_tracks, n_sessions) posterior probability of presence.
    """
    z = np.asarray(snr, float)
    obs = np.asarray(observed, bool) & np.isfinite(z)
    k = np.broadcast_to(np.asarray(signal_per_weight, float), (z.shape[1],))
    a, c, b, d = kesten
    grid = np.geomspace(min_weight, 40.0, n_grid)
    lw = np.log(grid)

    def density(mu_sigma):      # a log-normal of the weight, discretised on the grid
        return log_normal_on_grid(lw, *mu_sigma)

    # states: 0 unborn, 1 lost (absorbing), 2.. present at weight grid[j]
    edges = np.r_[-np.inf, np.sqrt(grid[:-1] * grid[1:]), np.inf]  # the floor bin takes all below
    mean, sd = grid * (1 + a) + c, np.sqrt(b * grid ** 2 + d)
    step_kernel = np.diff(stats.norm.cdf((edges[None, :] - mean[:, None]) / sd[:, None]), axis=1)
    step_kernel /= step_kernel.sum(axis=1, keepdims=True)
    p_loss = special.expit(loss_logit[0] + loss_logit[1] * lw)
    n_states = n_grid + 2
    trans = np.zeros((n_states, n_states))
    trans[0, 0] = 1 - birth_probability
    trans[0, 2:] = birth_probability * density(birth_lognormal)
    trans[1, 1] = 1.0
    trans[2:, 1] = p_loss
    trans[2:, 2:] = (1 - p_loss)[:, None] * step_kernel
    start = np.r_[1 - p_present_first, 0.0, p_present_first * density(weight_lognormal)]

    # emissions (n, T, states); unobserved sessions carry no evidence
    e_absent = stats.norm.pdf(z, null_centre, null_sd)
    expect = null_centre + k[None, :, None] * grid[None, None, :]
    spread = np.sqrt(null_sd ** 2 + (relative_sd * k[None, :, None] * grid[None, None, :]) ** 2)
    e_present = stats.norm.pdf(z[:, :, None], expect, spread)
    emit = np.concatenate([e_absent[:, :, None], e_absent[:, :, None], e_present], axis=2) + 1e-300
    emit = np.where(obs[:, :, None], emit, 1.0)
    post, _, _ = forward_backward(emit, trans, start, counts=False)
    if return_states:   # (n, T, states): unborn, lost, present at each grid weight
        return post
    return post[:, :, 2:].sum(axis=2)


def measurement_noise(rows: pd.DataFrame, null_snr, *, min_weight: float = 0.3) -> dict:
    """The pipeline's measurement model on one cell, from rows matched to the truth.

    ``rows``: our rows with ``day``, ``snr``, ``detected`` and ``true_weight`` (the matched
    true synapse's weight there, NaN when unmatched).  Uses detected rows of true weight
    above ``min_weight``: per session the median snr per unit weight, and the robust SD of
    ln(snr / expected) pooled.  ``null_snr``: measurements where no synapse is.
    """
    ok = (rows["detected"] == 1) & (rows["true_weight"] > min_weight) & (rows["snr"] > 0)
    ratio = (rows["snr"] / rows["true_weight"])[ok]
    days = np.sort(rows["day"].unique())
    per_day = ratio.groupby(rows.loc[ok, "day"]).median().reindex(days)
    per_day = per_day.fillna(ratio.median())
    log_dev = np.log(ratio) - np.log(per_day.reindex(rows.loc[ok, "day"]).to_numpy())
    centre, sd = absent_state(null_snr)    # as the presence stage fixes its absent state
    return {"signal_per_weight": per_day.to_numpy(),
            "relative_sd": float(MAD_TO_SD * np.median(np.abs(log_dev - np.median(log_dev)))),
            "null_centre": centre, "null_sd": sd}


def simulate_measurements(weights, present, noise: dict, rng) -> np.ndarray:
    """Measurements of true (tracks x sessions) weights under ``noise`` (see
    :func:`measurement_noise`): centre + k w + Gaussian noise of SD sqrt(null_sd^2 + (r k w)^2)."""
    w = np.where(np.asarray(present, bool), np.asarray(weights, float), 0.0)
    k = np.asarray(noise["signal_per_weight"], float)[None, :]
    sd = np.sqrt(noise["null_sd"] ** 2 + (noise["relative_sd"] * k * w) ** 2)
    return noise["null_centre"] + k * w + sd * rng.normal(size=w.shape)


def _birth_hazard(present: np.ndarray) -> float:
    """Births per interval at risk among tracks not yet present (the constant hazard's MLE)."""
    seen = np.maximum.accumulate(present, axis=1)
    at_risk = ~seen[:, :-1]
    born = at_risk & present[:, 1:]
    return float(born.sum() / max(at_risk.sum(), 1))


def ideal_calls(truth_cell: pd.DataFrame, params: dict, noise: dict, rng) -> pd.DataFrame:
    """The truth table of one simulated cell with ``present`` replaced by the ideal observer's
    calls on measurements simulated at ``noise`` (perfect tracking; every session observed)."""
    t, wide_p, z = _measured(truth_cell, noise, rng)
    post = ideal_presence_posterior(
        z, np.ones_like(z, bool), signal_per_weight=noise["signal_per_weight"],
        null_centre=noise["null_centre"], null_sd=noise["null_sd"],
        relative_sd=noise["relative_sd"], kesten=params["kesten"],
        loss_logit=params["loss_logit"], min_weight=params["min_weight"],
        weight_lognormal=params["weight_lognormal"], birth_lognormal=params["birth_lognormal"],
        p_present_first=float(wide_p[:, 0].mean()), birth_probability=_birth_hazard(wide_p))
    return _called(t, post, params)


def model_calls(truth_cell: pd.DataFrame, params: dict, noise: dict, rng, *,
                null_places: int = 300, settings=({},)) -> list[pd.DataFrame]:
    """As :func:`ideal_calls`, but each row called by the presence stage's own model
    (:func:`pipeline.stages.presence.fit_presence`: parameters fitted to the cell's tracks, no
    knowledge of the dynamics) on the same kind of measurements, with ``null_places``
    measurements of the absent state drawn from ``noise``: what the workflow's presence calls
    would do with perfect detection, registration and tracking.  Its errors beside the ideal
    observer's are the presence model's part of ours; ours beside its, the image stages'
    part.  One table per entry of ``settings`` (options of :func:`fit_presence`; ``{}``: its
    defaults), all called on the same measurements."""
    t, _, z = _measured(truth_cell, noise, rng)
    null = noise["null_centre"] + noise["null_sd"] * rng.normal(size=null_places)
    return [_called(t, fit_presence(z, np.ones_like(z, bool), null_snr=null,
                                    **options)["p_present"], params)
            for options in settings]


def _measured(truth_cell: pd.DataFrame, noise: dict, rng):
    """The truth sorted by (synapse, day), its presence (tracks x days) and measurements of
    it drawn under ``noise`` (:func:`simulate_measurements`)."""
    t = truth_cell.sort_values(["synapse_id", "day"]).reset_index(drop=True)
    wide_w = t.pivot(index="synapse_id", columns="day", values="weight")
    wide_p = t.pivot(index="synapse_id", columns="day", values="present").to_numpy() == 1
    return t, wide_p, simulate_measurements(wide_w.to_numpy(), wide_p, noise, rng)


def _called(t: pd.DataFrame, post: np.ndarray, params: dict) -> pd.DataFrame:
    """``t`` (sorted as :func:`_measured` returns it) with ``present`` the calls p >= 0.5."""
    out = t.copy()
    out["present"] = (post >= 0.5).astype(int).ravel()   # rows are (synapse, day) sorted
    # a row called present where the truth has no weight gets a nominal one (turnover only)
    out["weight"] = out["weight"].where(out["weight"] > 0, params["min_weight"])
    return out
