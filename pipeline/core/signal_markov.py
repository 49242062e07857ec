"""Presence with a memory of the synapse's signal: a hidden Markov model whose present state
carries the signal itself, drifting from session to session.

The two-state model (:func:`pipeline.stages.presence.fit_presence`) scores each session's
measurement against the log-normal of the whole cell's present synapses.  A synapse that was
bright last session and measures faintly now is then judged against every synapse, not
against its own past; a large one on its way down reads as lost.  Here the hidden state is
*absent*, or *present with true signal s* on a log grid, and:

- the log signal of a present synapse follows a first-order autoregression towards the cell's
  centre, ``ln s' = m + rho (ln s - m) + q xi`` (multiplicative steps: the weight dynamics of
  Melander et al. 2021 in its simplest form);
- a present synapse is lost with probability ``expit(alpha + beta ln s)`` per step (large
  synapses persist longer), an absent one is born with probability ``birth`` at a log-normal
  signal ``N(mb, sb)``;
- what a session measures is ``z = mu0 + s + e``, ``e ~ N(0, tau0^2 + (r s)^2)``; absent:
  ``N(mu0, tau0^2)``.

Every parameter but the absent state (``mu0``, ``tau0``: fixed from places without a synapse
where there are enough) is fitted to the cell's own tracks by expectation-maximisation.  The
structure is the ideal observer's (:mod:`pipeline.truth.ideal_observer`), the dynamics are not
known but fitted; no parameter of the simulator is in it.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

#: log-signal grid points of the present state
N_GRID = 60
#: bounds of the fitted parameters (per step: rho, q; loss logit slope beta; relative SD r)
RHO_BOUNDS = (0.0, 1.0)
Q_MIN = 0.05
BETA_BOUNDS = (-6.0, 2.0)
R_BOUNDS = (0.0, 1.0)
#: pseudo-counts that keep the birth rate and the initial share off 0 and 1
PSEUDO = 1.0


def signal_grid(z, mu0: float, tau0: float, n: int = N_GRID) -> np.ndarray:
    """Log-spaced true-signal grid (snr units) from a fifth of the absent state's SD to twice
    the largest measurement above its centre."""
    top = max(float(np.nanmax(np.asarray(z, float) - mu0)) * 2.0, 10.0 * tau0)
    return np.geomspace(0.2 * tau0, top, n)


def log_normal_on_grid(log_grid, centre, sd):
    """A normal density of ln s discretised on ``log_grid`` (sums to 1)."""
    step = np.gradient(log_grid)
    p = stats.norm.pdf(log_grid, centre, sd) * step
    return p / max(p.sum(), 1e-300)


def transition_matrix(log_grid, prm) -> np.ndarray:
    """(G+1, G+1) transitions: state 0 absent, 1.. present at ``exp(log_grid)``; with
    ``prm["lost"]`` (G+2, G+2): 0 not yet born, 1 lost (for good), 2.. present."""
    if prm.get("lost"):
        a = transition_matrix(log_grid, {**prm, "lost": False})
        out = np.zeros((len(a) + 1, len(a) + 1))
        out[0, 0], out[0, 2:] = a[0, 0], a[0, 1:]
        out[1, 1] = 1.0
        out[2:, 1], out[2:, 2:] = a[1:, 0], a[1:, 1:]
        return out
    g = len(log_grid)
    edges = np.r_[-np.inf, 0.5 * (log_grid[:-1] + log_grid[1:]), np.inf]
    mean = prm["m"] + prm["rho"] * (log_grid - prm["m"])
    kernel = np.diff(stats.norm.cdf((edges[None, :] - mean[:, None]) / prm["q"]), axis=1)
    kernel /= np.maximum(kernel.sum(axis=1, keepdims=True), 1e-300)
    loss = special.expit(prm["alpha"] + prm["beta"] * log_grid)
    a = np.zeros((g + 1, g + 1))
    a[0, 0] = 1 - prm["birth"]
    a[0, 1:] = prm["birth"] * log_normal_on_grid(log_grid, prm["mb"], prm["sb"])
    a[1:, 0] = loss
    a[1:, 1:] = (1 - loss)[:, None] * kernel
    return a


def start_vector(log_grid, prm) -> np.ndarray:
    """Probability of each state at a track's first step (states as :func:`transition_matrix`)."""
    lost = [0.0] if prm.get("lost") else []
    first = log_normal_on_grid(log_grid, prm["m0"], prm["s0"])
    return np.r_[1 - prm["pi1"], lost, prm["pi1"] * first]


def log_emissions(z, grid, prm, width=None) -> np.ndarray:
    """(..., states) log p(z | state) for measurements ``z`` (any shape); states as
    :func:`transition_matrix`.  ``width`` (shaped like ``z``, default 1): each measurement's
    absent SD in units of ``tau0`` (:mod:`pipeline.core.absent_width`)."""
    z = np.asarray(z, float)[..., None]
    tau = prm["tau0"] * (1.0 if width is None else np.asarray(width, float)[..., None])
    absent = stats.norm.logpdf(z, prm["mu0"], tau)
    spread = np.sqrt(tau ** 2 + (prm["r"] * grid) ** 2)
    present = stats.norm.logpdf(z, prm["mu0"] + grid, spread)
    return np.concatenate([absent] * (2 if prm.get("lost") else 1) + [present], axis=-1)


def _step_emissions(z, observed, steps, grid, prm, width=None,
                    evidence=None) -> tuple[np.ndarray, float]:
    """(n, n_steps, states) emission likelihoods per time step (sessions of one step
    multiplied, unobserved ones carrying no evidence), each scaled to a maximum of 1 (the scale
    cancels in the posteriors) and floored at 1e-300 (a state the evidence all but excludes
    stays possible, so a track the model cannot explain does not divide by zero), and the sum
    of the log scales (the log-likelihood's share of them)."""
    n_steps = int(steps.max()) + 1
    le = np.zeros((z.shape[0], n_steps, len(grid) + (2 if prm.get("lost") else 1)))
    all_le = log_emissions(z, grid, prm, width)
    if evidence is not None:    # (n, T, 2): the absent states' and the present states' factor
        n_absent = 2 if prm.get("lost") else 1
        all_le = np.concatenate([all_le[..., :n_absent] + evidence[..., :1],
                                 all_le[..., n_absent:] + evidence[..., 1:]], axis=-1)
    for j, k in enumerate(steps):
        le[:, k] += np.where(observed[:, j, None], all_le[:, j], 0.0)
    top = le.max(axis=2, keepdims=True)
    return np.maximum(np.exp(le - top), 1e-300), float(top.sum())


def forward_backward(emit, trans, start, *, counts: bool = True):
    """Posteriors (n, T, S) and, with ``counts``, the expected transitions (S, S) summed over
    tracks and steps, and the log-likelihood up to the emissions' scaling."""
    n, T, S = emit.shape
    fwd = np.empty((n, T, S))
    scale = np.empty((n, T))
    x = start[None] * emit[:, 0]
    scale[:, 0] = x.sum(axis=1)
    fwd[:, 0] = x / scale[:, 0, None]
    for t in range(1, T):
        x = (fwd[:, t - 1] @ trans) * emit[:, t]
        scale[:, t] = x.sum(axis=1)
        fwd[:, t] = x / scale[:, t, None]
    bwd = np.ones((n, T, S))
    for t in range(T - 2, -1, -1):
        bwd[:, t] = ((emit[:, t + 1] * bwd[:, t + 1]) @ trans.T) / scale[:, t + 1, None]
    post = fwd * bwd
    post /= post.sum(axis=2, keepdims=True)
    xi = np.zeros((S, S))
    if counts:
        for t in range(T - 1):
            right = emit[:, t + 1] * bwd[:, t + 1] / scale[:, t + 1, None]
            xi += trans * (fwd[:, t].T @ right)
    return post, xi, float(np.log(scale).sum())


def _log_moments(w, log_grid) -> tuple[float, float]:
    """Mean and SD (at least :data:`Q_MIN`) of ln s under weights ``w`` on the grid."""
    mean = float((w * log_grid).sum() / max(w.sum(), 1e-12))
    sd = float(np.sqrt((w * (log_grid - mean) ** 2).sum() / max(w.sum(), 1e-12)))
    return mean, max(sd, Q_MIN)


def _m_step(post, xi, first, log_grid, grid, z_obs, post_obs, prm, width_obs=None) -> dict:
    """New parameters from the posteriors (``first``: those of each track's first step) and
    the expected transitions ``xi`` (``width_obs``: the observed rows' absent widths)."""
    out = dict(prm)
    p1 = first[:, 1:]
    out["pi1"] = float((p1.sum() + PSEUDO) / (len(first) + 2 * PSEUDO))
    w0 = p1.sum(axis=0)
    if w0.sum() > 1e-9:
        out["m0"], out["s0"] = _log_moments(w0, log_grid)
    births = xi[0, 1:]
    out["birth"] = float((births.sum() + PSEUDO) / (xi[0].sum() + 20 * PSEUDO))
    if births.sum() > 1.0:      # a birth signal only where births were seen
        out["mb"], out["sb"] = _log_moments(births, log_grid)
    lost, kept = xi[1:, 0], xi[1:, 1:].sum(axis=1)

    def loss_nll(th):
        lam = special.expit(th[0] + th[1] * log_grid)
        return -(lost * np.log(lam + 1e-300) + kept * np.log1p(-lam + 1e-300)).sum()

    res = optimize.minimize(loss_nll, [prm["alpha"], prm["beta"]], method="L-BFGS-B",
                            bounds=[(-15, 10), BETA_BOUNDS])
    out["alpha"], out["beta"] = map(float, res.x)
    # the autoregression: weighted least squares of ln s' on ln s over present -> present
    w = xi[1:, 1:]
    tot = w.sum()
    if tot > 1.0:
        xm = (w.sum(axis=1) * log_grid).sum() / tot
        ym = (w.sum(axis=0) * log_grid).sum() / tot
        dx, dy = log_grid - xm, log_grid - ym
        sxx = (w.sum(axis=1) * dx ** 2).sum()
        sxy = (w * np.outer(dx, dy)).sum()
        rho = float(np.clip(sxy / max(sxx, 1e-12), *RHO_BOUNDS))
        # a random walk (rho 1) has no centre to estimate: the last one is kept
        m = prm["m"] if rho >= 1 - 1e-6 else float((ym - rho * xm) / (1 - rho))
        resid = log_grid[None, :] - (m + rho * (log_grid[:, None] - m))
        q = float(np.sqrt((w * resid ** 2).sum() / tot))
        out["rho"], out["m"], out["q"] = rho, m, max(q, Q_MIN)
    # relative spread of a present measurement around its signal
    wp = post_obs[:, 1:]

    tau = prm["tau0"] * (1.0 if width_obs is None else np.asarray(width_obs, float)[:, None])

    def r_nll(r):
        spread = np.sqrt(tau ** 2 + (r * grid[None]) ** 2)
        return -(wp * stats.norm.logpdf(z_obs[:, None], prm["mu0"] + grid[None], spread)).sum()

    out["r"] = float(optimize.minimize_scalar(r_nll, bounds=R_BOUNDS, method="bounded").x)
    return out


def fit_signal_markov(snr, observed, *, mu0: float, tau0: float, init: dict,
                      steps=None, lost: bool = False, iid: bool = False, n_iter: int = 60,
                      tol: float = 1e-6, width=None, evidence=None) -> dict:
    """Fit the model to (tracks x sessions) ``snr`` and return each row's P(present).

    Parameters
    ----------
    snr, observed : (n_tracks, n_sessions) arrays; False in ``observed``: no evidence.
    mu0, tau0 : the absent state's centre and SD (fixed).
    init : starting values from the two-state fit: ``pi1``, ``birth``, ``loss``, ``m1``, ``s1``
        (its share present at the first session, rates, and log-normal of present signal).
    steps : (n_sessions,) time step of each session (repeat sessions of one day share one).
    lost : a synapse once lost does not come back in its track (two absent states: not yet
        born, and lost for good); False: one absent state, left and re-entered at will.
    iid : no memory of the signal: each present session's from one log-normal (the two-state
        model's present state), to measure what the memory adds.
    width : (n_tracks, n_sessions) each row's absent SD in units of ``tau0`` (default 1:
        one absent state; :mod:`pipeline.core.absent_width`).
    evidence : (n_tracks, n_sessions, 2) log factors of each row's absent and present states
        (:mod:`pipeline.core.detection_evidence`), added to the emissions; default none.

    Returns
    -------
    dict with ``p_present`` (n_tracks, n_sessions), ``signal`` (the expected true signal if
    present, from all the track's sessions), ``posterior`` (n_tracks, n_sessions,
    states: absent (with ``lost``: not yet born, lost), then the grid), ``grid`` and the
    fitted ``params``.
    """
    z = np.asarray(snr, float)
    obs = np.asarray(observed, bool) & np.isfinite(z)
    z = np.where(obs, z, mu0)
    width = np.ones(z.shape) if width is None else np.asarray(width, float)
    steps = np.arange(z.shape[1]) if steps is None else np.asarray(steps, int)
    grid = signal_grid(z[obs], mu0, tau0)
    log_grid = np.log(grid)
    loss = float(np.clip(init["loss"], 1e-3, 0.5))
    prm = {"mu0": float(mu0), "tau0": float(tau0), "r": 0.1,
           "pi1": float(init["pi1"]), "m0": float(init["m1"]), "s0": float(init["s1"]),
           "birth": float(np.clip(init["birth"], 1e-3, 0.5)),
           "mb": float(init["m1"] - init["s1"]), "sb": float(init["s1"]),
           "alpha": float(special.logit(loss)), "beta": 0.0,
           "m": float(init["m1"]), "rho": 0.8, "q": float(max(0.6 * init["s1"], Q_MIN)),
           "lost": bool(lost), "iid": bool(iid)}
    prev, it = -np.inf, 0
    for it in range(n_iter):
        emit, offset = _step_emissions(z, obs, steps, grid, prm, width, evidence)
        post, xi, loglik = forward_backward(emit, transition_matrix(log_grid, prm),
                                            start_vector(log_grid, prm))
        loglik += offset
        if lost:    # the M-step sees one absent state: unborn and lost pooled
            full = xi
            xi = np.block([[xi[:1, :1], xi[:1, 2:]], [xi[2:, 1:2], xi[2:, 2:]]])
            post = np.concatenate([post[..., :2].sum(-1, keepdims=True), post[..., 2:]], -1)
        post_rows = post[:, steps]
        prm = _m_step(post, xi, post[:, 0], log_grid, grid, z[obs], post_rows[obs], prm,
                      width[obs])
        if iid:     # no memory: every present session from one log-normal, fitted to all
            m, q = _log_moments(post_rows[obs][:, 1:].sum(axis=0), log_grid)
            prm.update(rho=0.0, m=m, q=q, m0=m, s0=q)
        if lost:    # births from the not yet born only
            prm["birth"] = float((full[0, 2:].sum() + PSEUDO) / (full[0].sum() + 20 * PSEUDO))
        if abs(loglik - prev) < tol * abs(loglik):
            break
        prev = loglik
    emit, offset = _step_emissions(z, obs, steps, grid, prm, width, evidence)
    post, _, loglik = forward_backward(emit, transition_matrix(log_grid, prm),
                                       start_vector(log_grid, prm), counts=False)
    loglik += offset
    post = post[:, steps]
    present = post[:, :, 1 + lost:]
    mass = present.sum(-1)
    return {"p_present": mass, "signal": (present * grid).sum(-1) / np.maximum(mass, 1e-300),
            "posterior": post, "grid": grid,
            "params": {**prm, "loglik": loglik, "iterations": it + 1}}
