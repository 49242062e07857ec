"""A Markov chain over an absent state and weight bins, pooled over session pairs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..params import StatsParams


def weight_states(table: pd.DataFrame, *, n_bins: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """State per synapse and session: 0 absent, 1..n_bins quantile bins of ln weight, -1 not
    observed (no transition into or out of such a session is counted).

    Bin edges are quantiles of ln w over all present observations of the table.  Returns the
    table with ``state`` and the bin edges in ln w (outer edges -inf, inf).
    """
    lw = np.log(table.loc[table["present"] == 1, "w"])
    inner = np.quantile(lw, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    state = np.where(table["present"].isna(), -1, 0)
    pres = (table["present"] == 1).to_numpy()
    state[pres] = np.searchsorted(inner, np.log(table.loc[pres, "w"]), side="right") + 1
    return table.assign(state=state), edges


def _sequences(t: pd.DataFrame):
    """Per synapse: index, states in day order, and the step (session index from the cell's first)."""
    t = t.sort_values(["cell", "synapse_id", "day"], kind="stable")
    syn = t.groupby(["cell", "synapse_id"], sort=False).ngroup().to_numpy()
    step = t.groupby("cell")["day"].rank(method="dense").to_numpy(int) - 1
    return syn, t["state"].to_numpy(), step, t


def stationary(P: np.ndarray) -> np.ndarray:
    """Stationary distribution pi = pi P (least squares with sum 1)."""
    k = len(P)
    A = np.vstack([P.T - np.eye(k), np.ones(k)])
    pi, *_ = np.linalg.lstsq(A, np.concatenate([np.zeros(k), [1.0]]), rcond=None)
    pi = np.clip(pi, 0, None)
    return pi / pi.sum()


def _chain(syn, state, step, n_states, n_steps, weights):
    """Transition matrix, stationary law and predicted/observed survival for synapse weights."""
    same = (syn[1:] == syn[:-1]) & (state[:-1] >= 0) & (state[1:] >= 0)
    frm, to, s_idx = state[:-1][same], state[1:][same], syn[:-1][same]
    counts = np.bincount(frm * n_states + to, weights=weights[s_idx],
                         minlength=n_states ** 2).reshape(n_states, n_states)
    rows = counts.sum(axis=1, keepdims=True)
    P = np.divide(counts, rows, out=np.full_like(counts, np.nan), where=rows > 0)
    P = np.where(np.isnan(P), np.eye(n_states), P)  # a state never left stays put
    pi = stationary(P)
    # first-session synapses: their bins at step 0, then presence at each later step
    first = (step == 0) & (state > 0)
    first_syn = np.zeros(syn.max() + 1, bool)
    first_syn[syn[first]] = True
    v = np.bincount(state[first], weights=weights[syn[first]], minlength=n_states)
    n0 = v.sum()
    v = v / n0
    predicted, observed = [], []
    for k in range(n_steps):
        sel = first_syn[syn] & (step == k) & (state >= 0)     # observed that session
        wk = weights[syn[sel]]
        observed.append((wk * (state[sel] > 0)).sum() / wk.sum() if wk.sum() > 0 else np.nan)
        predicted.append(1 - v[0])
        v = v @ P
    return counts, P, pi, np.array(predicted), np.array(observed)


def markov_chain(table: pd.DataFrame, *, n_bins: int = StatsParams.markov_bins,
                 n_boot: int = StatsParams.n_boot,
                 rng: np.random.Generator, alpha: float = 0.05) -> dict:
    """Fit the chain for one cell type with percentile CIs from a bootstrap over synapses.

    ``table`` is the prepared long table (column ``w``) of one cell type, one session per day.
    Returns DataFrames ``transition``, ``stationary`` and ``survival``.
    """
    t, edges = weight_states(table, n_bins=n_bins)
    syn, state, step, t = _sequences(t)
    n_states, n_steps, n_syn = n_bins + 1, step.max() + 1, syn.max() + 1
    est = _chain(syn, state, step, n_states, n_steps, np.ones(n_syn))
    boots = [[] for _ in range(4)]
    for _ in range(n_boot):
        w = np.bincount(rng.integers(0, n_syn, n_syn), minlength=n_syn).astype(float)
        _, P, pi, pred, obs = _chain(syn, state, step, n_states, n_steps, w)
        for store, val in zip(boots, (P, pi, pred, obs)):
            store.append(val)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    lo_hi = [np.nanpercentile(np.array(b), q, axis=0) if n_boot else np.full((2,) + e.shape, np.nan)
             for b, e in zip(boots, est[1:])]
    counts, P, pi, pred, obs = est
    bounds = np.exp(edges)
    labels = ["absent"] + [f"w {bounds[i]:.3g}-{bounds[i + 1]:.3g}" for i in range(n_bins)]
    i, j = np.divmod(np.arange(n_states ** 2), n_states)
    transition = pd.DataFrame({"from_state": i, "to_state": j, "from_label": np.take(labels, i),
                               "to_label": np.take(labels, j), "count": counts.ravel(),
                               "probability": P.ravel(), "ci_low": lo_hi[0][0].ravel(),
                               "ci_high": lo_hi[0][1].ravel()})
    pres = t["state"] > 0
    obs_share = np.bincount(t.loc[pres, "state"], minlength=n_states)[1:] / pres.sum()
    last = pres.to_numpy() & (step == step.max())
    last_share = np.bincount(t["state"].to_numpy()[last], minlength=n_states)[1:] / max(last.sum(), 1)
    boot_pi = np.array(boots[1])[:, 1:] if n_boot else np.full((1, n_bins), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_cond = boot_pi / boot_pi.sum(axis=1, keepdims=True)
    stat = pd.DataFrame({"state": np.arange(n_states), "label": labels,
                         "ln_w_low": np.r_[np.nan, edges[:-1]],
                         "ln_w_high": np.r_[np.nan, edges[1:]],
                         "stationary": pi, "stationary_ci_low": lo_hi[1][0],
                         "stationary_ci_high": lo_hi[1][1],
                         "stationary_present": np.r_[np.nan, pi[1:] / pi[1:].sum()],
                         "stationary_present_ci_low": np.r_[np.nan, np.nanpercentile(boot_cond, q[0], axis=0)],
                         "stationary_present_ci_high": np.r_[np.nan, np.nanpercentile(boot_cond, q[1], axis=0)],
                         "observed_present": np.r_[np.nan, obs_share],
                         "observed_present_last_session": np.r_[np.nan, last_share]})
    days = (t.assign(rel=t["day"] - t.groupby("cell")["day"].transform("min"), step=step)
            .groupby("step")["rel"].median())
    surv = pd.DataFrame({"step": np.arange(n_steps), "day": days.reindex(range(n_steps)).to_numpy(),
                         "predicted": pred, "predicted_ci_low": lo_hi[2][0],
                         "predicted_ci_high": lo_hi[2][1], "observed": obs,
                         "observed_ci_low": lo_hi[3][0], "observed_ci_high": lo_hi[3][1]})
    return {"transition": transition, "stationary": stat, "survival": surv}
