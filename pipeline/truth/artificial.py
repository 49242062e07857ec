"""Long per-synapse tables with known parameters, to test the statistics against.

The generating model is the one the statistics fit: log-normal first-session weights, a
logistic loss hazard on ln weight per interval, a Kesten step for persisting synapses
(conditioned on the weight staying positive, i.e. a normal truncated at 0), Poisson births,
and optionally measurement noise with a repeat session on the first day.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from .simulate import kesten_step


def simulate_table(*, n_cells: int = 12, n_synapses: int = 80, n_sessions: int = 8,
                   interval_days: float = 4.0, cell_type: str = "pyr", mu: float = 0.0,
                   sigma: float = 0.8, kesten=(-0.05, 0.04, 0.07, 0.11),
                   loss_logit=(-2.0, -1.0), birth_rate: float = 0.05,
                   noise=(0.0, 0.0), repeat_first: bool = False, seed: int = 0,
                   cell_prefix: str | None = None) -> pd.DataFrame:
    """Simulate a long table (``cell, cell_type, synapse_id, session, day, present, weight``).

    Parameters
    ----------
    kesten : (a, c, b, d)
        ``w' = w + a*w + c + sqrt(b*w**2 + d) * xi`` for synapses that persist.
    loss_logit : (alpha, beta)
        Probability of loss over one interval ``expit(alpha + beta * ln w)``.
    birth_rate : float
        New synapses per interval, as a share of those present.
    noise : (p, q)
        Measurement noise: observed ``w + sqrt(p*w**2 + q) * eps`` (kept positive).
    repeat_first : bool
        Image the first session twice (independent noise), as session ``s00b``.
    """
    a, c, b, d = kesten
    alpha, beta = loss_logit
    p_noise, q_noise = noise
    rng = np.random.default_rng(seed)
    prefix = cell_prefix or cell_type
    frames = []
    for ci in range(n_cells):
        weights = np.full((n_synapses, n_sessions), 0.0)
        weights[:, 0] = np.exp(rng.normal(mu, sigma, n_synapses))
        for s in range(1, n_sessions):
            prev = weights[:, s - 1]
            alive = prev > 0
            lost = rng.random(alive.sum()) < expit(alpha + beta * np.log(prev[alive]))
            nxt = np.zeros_like(prev)
            idx = np.flatnonzero(alive)
            keep = idx[~lost]
            nxt[keep] = kesten_step(prev[keep], a, c, b, d, rng, floor=0.0)
            n_new = rng.poisson(birth_rate * alive.sum())
            born = np.zeros((n_new, n_sessions))
            born[:, s] = np.exp(rng.normal(mu, sigma, n_new))
            weights = np.vstack([weights, born])
            weights[: len(nxt), s] = nxt
        sessions = [f"s{i:02d}" for i in range(n_sessions)]
        days = [i * interval_days for i in range(n_sessions)]
        true = weights
        columns = [true]
        if repeat_first:
            columns.append(true[:, :1])
            sessions.append("s00b")
            days.append(0.0)
        obs = np.hstack(columns)
        if p_noise > 0 or q_noise > 0:
            sd = np.sqrt(p_noise * obs ** 2 + q_noise)
            noisy = obs + sd * rng.normal(size=obs.shape)
            obs = np.where(obs > 0, np.maximum(noisy, 1e-3 * np.maximum(obs, 1e-3)), 0.0)
        n = obs.shape[0]
        frames.append(pd.DataFrame({
            "cell": f"{prefix}{ci:02d}", "cell_type": cell_type,
            "synapse_id": np.repeat(np.arange(1, n + 1), len(sessions)),
            "session": np.tile(sessions, n), "day": np.tile(days, n),
            "present": (obs > 0).astype(int).ravel(), "weight": obs.ravel()}))
    return pd.concat(frames, ignore_index=True)


#: the generating values ``recovery_run`` checks the CIs against
TRUTH = {"sigma": 0.8, "a": -0.05, "c": 0.04, "b": 0.07, "d": 0.11,
         "loss_intercept": -2.0, "loss_ln_w": -1.0}


def recovery_run(seed: int, *, n_cells: int = 12, n_boot: int = 200) -> dict:
    """Simulate one table with ``TRUTH`` and report each estimate, its 95 % CI and coverage.

    Used by the tests and by ``benchmarks/stats_coverage.py`` to check that the CIs cover
    the generating values at the promised rate.
    """
    from ..stats.distributions import fit_lognormal
    from ..stats.hazard import at_risk_intervals, fit_loss_logistic
    from ..stats.kesten import kesten_fits
    from ..stats.noise import noise_estimate
    from ..stats.table import consecutive_pairs, prepare_table, split_repeats, weighed_pairs

    tr = TRUTH
    t = simulate_table(n_cells=n_cells, sigma=tr["sigma"],
                       kesten=(tr["a"], tr["c"], tr["b"], tr["d"]),
                       loss_logit=(tr["loss_intercept"], tr["loss_ln_w"]), seed=seed)
    t, repeats = split_repeats(prepare_table(t))
    pairs = weighed_pairs(consecutive_pairs(t))  # as run_stats fits Kesten
    out = {}
    first = t[(t["day"] == 0) & (t["present"] == 1)]
    ln = fit_lognormal(first["w"])
    out["sigma"] = (ln["sigma"], ln["sigma_ci_low"], ln["sigma_ci_high"])
    fits, cis, _ = kesten_fits(pairs, noise=noise_estimate(repeats), n_boot=n_boot, rng=np.random.default_rng(seed),
                               models=("both",))
    for j, k in enumerate(("a", "c", "b", "d")):
        out[k] = (fits["both"][k], cis["both"][0, j], cis["both"][1, j])
    for row in fit_loss_logistic(at_risk_intervals(pairs)):
        key = "loss_intercept" if row["term"] == "intercept" else "loss_ln_w"
        out[key] = (row["coef"], row["ci_low"], row["ci_high"])
    return {k: {"estimate": est, "ci_low": lo, "ci_high": hi, "truth": tr[k],
                "covered": bool(lo <= tr[k] <= hi)} for k, (est, lo, hi) in out.items()}
