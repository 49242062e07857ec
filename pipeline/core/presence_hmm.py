"""The presence stage's model: a two-state hidden Markov model of each track's signal.

A track's signal in each session (``snr``: integrated PSD-95 over local background, in units of
its noise) is what an absent synapse measures (a Gaussian: the absent state, measured at places
on the cell without a synapse) or a present one (a log-normal of true signal plus that noise).
Absent -> present (birth) and present -> absent (loss) are rare, so a synapse seen before and
after a dim session is called present there, and a faint one-off blob is not.  The parameters
(initial presence, birth and loss rates, the present signal's log-normal) are fitted to the
cell's own tracks by expectation-maximisation (:func:`fit_presence`); the lost-for-good and
signal-memory calls that follow it are :mod:`pipeline.core.signal_markov`'s.  Arrays in,
arrays and a dict of parameters out; the stage (:mod:`pipeline.stages.presence`) turns tables
into these arrays and the config's settings into the keywords.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from .noise import MAD_TO_SD
from .signal_markov import fit_signal_markov

#: grid of true signal (snr units) over which the log-normal of present synapses is integrated
_S_GRID = np.geomspace(0.05, 5000, 150)
#: fewer null measurements than this: the absent state is not measured but assumed (near 0)
MIN_NULL_PLACES = 30
#: a session is clearly present this many absent-state SDs above the absent state's centre;
#: a present one below that measured within the noise of absence (``weight_at_noise``)
CLEAR_SDS = 2.0
#: dim_present: bounds of the dim component's share of present sessions
DIM_SHARE_MIN, DIM_SHARE_MAX = 1e-3, 0.25
#: own_signal_reach: pseudo-sessions of the cell's log-normal beside a track's own sessions
OWN_SIGNAL_SHRINK = 1.0
#: own_signal_reach: floor of the pooled within-track SD of ln signal
OWN_SIGNAL_MIN_SD = 0.15


# --------------------------------------------------------------------------- emissions
def _log_signal_prior(params):
    """log P(true signal in each cell of _S_GRID | present): ln s ~ N(m1, s1^2), mixed with
    the dim component (:func:`_log_dim_prior`) at share ``params["dim"]`` where there is one."""
    m1, s1 = params["m1"], params["s1"]
    log_ln = (-0.5 * ((np.log(_S_GRID) - m1) / s1) ** 2 - np.log(s1 * _S_GRID)
              - 0.5 * np.log(2 * np.pi) + np.log(np.gradient(_S_GRID)))
    return _with_dim(log_ln, params)


def _log_dim_prior(params):
    """log P(true signal in each cell of _S_GRID | present and dim): uniform between 0 and the
    log-normal's 2.5th percentile, exp(m1 - 2 s1) (at least the grid's first cell).  A present
    synapse in a dim session (shrinking before it goes, or a low point of its drift) measures
    there, down to what an absent one measures; the log-normal alone gives such sessions
    almost no chance."""
    top = max(float(np.exp(params["m1"] - 2 * params["s1"])), _S_GRID[1])
    step = np.gradient(_S_GRID)
    inside = _S_GRID <= top
    out = np.full(_S_GRID.shape, -np.inf)
    out[inside] = np.log(step[inside] / step[inside].sum())
    return out


def _with_dim(log_prior, params):
    """``log_prior`` mixed with the dim component at share ``params["dim"]`` (none: unchanged)."""
    dim = float(params.get("dim", 0.0))
    if dim <= 0:
        return log_prior
    if dim >= 1:
        return _log_dim_prior(params) + np.zeros_like(log_prior)
    return np.logaddexp(np.log1p(-dim) + log_prior, np.log(dim) + _log_dim_prior(params))


def _tau(params, width, shape):
    """The absent SD of each element: ``tau0`` times its ``width`` (default 1)."""
    return params["tau0"] * (np.ones(shape) if width is None
                             else np.broadcast_to(np.asarray(width, float), shape))


def _log_emissions(z, params, width=None):
    """log p(z | absent) and log p(z | present) for an array of snr values (``width``, shaped
    like ``z``: each one's absent SD in units of ``tau0``; default 1)."""
    mu0 = params["mu0"]
    tau = _tau(params, width, np.shape(z))
    log_e0 = -0.5 * ((z - mu0) / tau) ** 2 - np.log(tau) - 0.5 * np.log(2 * np.pi)
    # present: z = s + noise; integrate over s on a log grid
    log_prior = _log_signal_prior(params)
    zf, tf = z.ravel(), tau.ravel()[:, None]
    log_noise = (-0.5 * ((zf[:, None] - mu0 - _S_GRID[None, :]) / tf) ** 2 - np.log(tf)
                 - 0.5 * np.log(2 * np.pi))
    log_e1 = special.logsumexp(log_noise + log_prior[None, :], axis=1).reshape(z.shape)
    return log_e0, log_e1


def clearly_present(z, observed, p_present, params, width=None) -> np.ndarray:
    """Sessions where the cell-wide fit saw the synapse: observed, called present, and at least
    ``CLEAR_SDS`` absent-state SDs (its own, ``width`` times ``tau0``) above its centre."""
    return (observed & (p_present > 0.5)
            & (z > params["mu0"] + CLEAR_SDS * _tau(params, width, np.shape(z))))


def neighbour_log_signal(log_s, clear, *, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (track, session): the mean of ``log_s`` over the track's ``clear`` sessions within
    ``reach`` sessions on either side, that session itself left out, and how many there are
    (0 where none: the mean is then 0)."""
    n_t = log_s.shape[1]
    sums, counts = np.zeros(log_s.shape), np.zeros(log_s.shape)
    kept = np.where(clear, log_s, 0.0)
    for d in range(-reach, reach + 1):
        if d == 0:
            continue
        lo, hi = max(0, -d), min(n_t, n_t - d)
        sums[:, lo:hi] += kept[:, lo + d:hi + d]
        counts[:, lo:hi] += clear[:, lo + d:hi + d]
    return sums / np.maximum(counts, 1), counts


def own_signal_prior(z, clear, params, *, reach: int,
                     shrink: float = OWN_SIGNAL_SHRINK) -> tuple[np.ndarray, np.ndarray, float]:
    """The log-normal of a present synapse's true signal per (track, session), from its own
    clearly present neighbouring sessions instead of the whole cell.

    Centre: the mean ln(z - mu0) over the track's ``clear`` sessions within ``reach``
    (:func:`neighbour_log_signal`; the session scored is left out, so a dim session cannot
    pull its own prior down), shrunk to the cell's ``m1`` by ``shrink`` pseudo-sessions.
    SD: the within-track SD of ln(z - mu0) about that centre, pooled over all tracks (at least
    :data:`OWN_SIGNAL_MIN_SD`), shrunk alike to the cell's ``s1``.  A track with no clear
    neighbour keeps the cell's log-normal.  Returns the centres, SDs and the pooled SD."""
    log_s = np.log(np.maximum(z - params["mu0"], 1e-6))
    near, k = neighbour_log_signal(log_s, clear, reach=reach)
    used = clear & (k > 0)
    sd = float(np.sqrt((((log_s - near) * used) ** 2).sum() / max(used.sum(), 1)))
    sd = max(sd, OWN_SIGNAL_MIN_SD)
    centre = (k * near + shrink * params["m1"]) / (k + shrink)
    spread = np.sqrt((sd ** 2 * k + params["s1"] ** 2 * shrink) / (k + shrink))
    return centre, spread, sd


def _log_present_emission(z, centre, spread, params, *, chunk: int = 4096,
                          width=None) -> np.ndarray:
    """log p(z | present) with a log-normal prior of its own per element (``centre``,
    ``spread``: arrays shaped like ``z``), integrated over the signal grid in chunks of
    ``chunk`` elements (memory ~ chunk x grid); ``width`` as :func:`_log_emissions`."""
    zf, cf, sf = (np.asarray(a, float).ravel() for a in (z, centre, spread))
    tf = _tau(params, width, np.shape(z)).ravel()
    out = np.empty(zf.shape)
    log_grid, log_step = np.log(_S_GRID), np.log(np.gradient(_S_GRID))
    mu0 = params["mu0"]
    for a in range(0, len(zf), chunk):
        b = slice(a, a + chunk)
        log_prior = _with_dim(-0.5 * ((log_grid[None] - cf[b, None]) / sf[b, None]) ** 2
                              - np.log(sf[b, None] * _S_GRID[None]) + log_step[None]
                              - 0.5 * np.log(2 * np.pi), params)
        log_noise = -0.5 * ((zf[b, None] - mu0 - _S_GRID[None]) / tf[b, None]) ** 2
        out[b] = special.logsumexp(log_noise + log_prior, axis=1)
    return (out - np.log(tf) - 0.5 * np.log(2 * np.pi)).reshape(np.shape(z))


# --------------------------------------------------------------------------- HMM
def _forward_backward(log_e, observed, pi1, birth, loss):
    """Posterior P(present) per track and session, and expected transition counts.

    ``log_e``: (2, n, T) log emissions; ``observed``: (n, T) bool, False = no evidence.
    """
    n, T = observed.shape
    log_e = np.where(observed[None], log_e, 0.0)
    logA = np.log(np.array([[1 - birth, birth], [loss, 1 - loss]]))
    la = np.empty((n, T, 2))
    la[:, 0] = np.log([1 - pi1, pi1]) + log_e[:, :, 0].T
    for t in range(1, T):
        la[:, t] = special.logsumexp(la[:, t - 1, :, None] + logA[None], axis=1) + log_e[:, :, t].T
    lb = np.zeros((n, T, 2))
    for t in range(T - 2, -1, -1):
        lb[:, t] = special.logsumexp(logA[None] + (log_e[:, :, t + 1].T + lb[:, t + 1])[:, None, :],
                                     axis=2)
    loglik = special.logsumexp(la[:, -1], axis=1)
    post = np.exp(la + lb - loglik[:, None, None])
    xi = np.zeros((2, 2))
    for t in range(T - 1):
        x = (la[:, t, :, None] + logA[None] + (log_e[:, :, t + 1].T + lb[:, t + 1])[:, None, :]
             - loglik[:, None, None])
        xi += np.exp(x).sum(axis=0)
    return post[:, :, 1], xi, float(loglik.sum())


def posterior_signal(z, params, width=None) -> np.ndarray:
    """E[true signal | z, present] in snr units: positive even where the measurement is not
    (``width``: as :func:`_log_emissions`)."""
    z = np.asarray(z, float)
    tau = _tau(params, width, z.shape)
    log_w = (_log_signal_prior(params)[None, :]
             - 0.5 * ((z[:, None] - params["mu0"] - _S_GRID[None, :]) / tau[:, None]) ** 2)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return (w * _S_GRID).sum(axis=1) / w.sum(axis=1)


def absent_state(null_snr) -> tuple[float, float]:
    """Centre (median) and robust SD (scaled MAD) of measurements where no synapse is: what
    an absent synapse measures."""
    null = np.asarray(null_snr, float)
    null = null[np.isfinite(null)]
    centre = float(np.median(null))
    return centre, float(MAD_TO_SD * np.median(np.abs(null - centre)))


def _by_step(log_e, obs, steps):
    """Log emissions and evidence per time step: sessions of one step (a repeat session on
    the same day) are independent looks at one state, their log emissions added."""
    n_steps = int(steps.max()) + 1
    le = np.zeros((2, obs.shape[0], n_steps))
    ob = np.zeros((obs.shape[0], n_steps), bool)
    for j, k in enumerate(steps):
        le[:, :, k] += np.where(obs[None, :, j], log_e[:, :, j], 0.0)
        ob[:, k] |= obs[:, j]
    return le, ob


def fit_presence(snr, observed, *, null_snr=None, n_iter: int = 100, tol: float = 1e-6,
                 birth_prior: float = 1.0, loss_prior: float = 1.0,
                 min_null: int = MIN_NULL_PLACES,
                 steps=None, own_signal_reach: int, dim_present: bool,
                 signal_memory: bool, lost_for_good: bool = True, width=None,
                 null_width=None, detection=None) -> dict:
    """Fit the two-state HMM to tracks x sessions of snr and return posteriors and parameters.

    Parameters
    ----------
    snr : (n_tracks, n_sessions) array
        Signal at each track's position in each session over its noise.
    observed : (n_tracks, n_sessions) bool array
        False where there is no evidence (position outside the stack).
    null_snr : array, optional
        The same measurement at places on the cell without a synapse.  With at least
        ``min_null`` values, the absent state is their median and robust SD (fixed): what
        an absent synapse measures is then taken from the data, offset included.  Without,
        it is centred on 0 with the spread of the negative values.
    birth_prior, loss_prior : float
        Pseudo-counts added to the expected births and losses (and 10x as many to the
        expected non-events), a weak prior that keeps rates away from 0 and 1.
    steps : (n_sessions,) int array, optional
        The time step of each session (0, 1, ...; default: one each).  Sessions sharing a step
        (a repeat imaging on one day) see the same hidden state: no birth or loss between them.
    own_signal_reach : int
        0: a present synapse's signal is scored against the cell's log-normal throughout.
        N > 0: after the fit, the calls are made again with each track's present state centred
        on its own clearly present sessions within N sessions (:func:`own_signal_prior`), so
        one dim session of a bright synapse is not called absent.
    dim_present : bool
        The present state's signal is the cell's log-normal mixed with a dim component
        (:func:`_log_dim_prior`), its share ``dim`` fitted with the rest (at most
        :data:`DIM_SHARE_MAX`): a present synapse may measure as low as an absent one.  The
        final calls allow a dim session only next to a session where the track was clearly
        present (above the absent state by 2 of its SDs, called present by the fit).
    signal_memory, lost_for_good : after the two-state fit (which starts it), the calls are
        made by the model of :func:`pipeline.core.signal_markov.fit_signal_markov`: its present
        state carries the signal, which drifts from session to session (``signal_memory``;
        False: each session's from one log-normal, as here), and with ``lost_for_good`` a
        synapse once lost does not return.  Not combined with ``own_signal_reach`` or
        ``dim_present`` (the two-state model's refinements).
    width : (n_tracks, n_sessions) array, optional
        Each row's absent-state SD in units of the cell's (``tau0``; :mod:`pipeline.core.absent_width`):
        a place where the cell's places without a synapse scatter more widely.  Default 1.
    null_width : array like ``null_snr``, optional
        Each null measurement's width alike: they are scaled by it about their median before
        the absent state's centre and spread are taken, so ``tau0`` is the width of the
        places where ``width`` is 1.
    detection : (n_tracks, n_sessions, 2) array, optional
        Each row's log P(detection outcome | absent) and log P(outcome | present)
        (:func:`pipeline.core.detection_evidence.detection_log_factors`), added to its log
        emissions; default none.

    Returns
    -------
    dict with ``p_present`` (n_tracks, n_sessions) and the fitted ``params``; with
    ``signal_memory`` or ``lost_for_good`` also ``signal``, each row's expected true signal if
    present (snr units, from all the track's sessions).
    """
    grid_model = signal_memory or lost_for_good
    if grid_model and (own_signal_reach > 0 or dim_present):
        raise ValueError("presence: own_signal_reach and dim_present belong to the two-state model; "
                         "with either, set presence.lost_for_good: false (on by default) and "
                         "presence.signal_memory: false")
    z = np.asarray(snr, float)
    obs = np.asarray(observed, bool) & np.isfinite(z)
    z = np.where(obs, z, 0.0)
    width = np.ones(z.shape) if width is None else np.asarray(width, float)
    steps = np.arange(z.shape[1]) if steps is None else np.asarray(steps, int)
    zo, wo = z[obs], width[obs]
    # the detection evidence, (2, n, T) like the stacked emissions; none: 0 added
    evidence = 0.0 if detection is None else np.moveaxis(np.asarray(detection, float), -1, 0)
    # The absent state is background-subtracted signal: centred on 0, with its spread taken
    # from the negative values, which mostly absent positions produce.  Fitted from all values
    # (centre free, or fixed at 0) it widened over dim present synapses: tau0 4.5-10 instead
    # of ~2.9 on data_sample's PV cell, and calls got worse.
    null = np.asarray([] if null_snr is None else null_snr, float)
    null_w = np.ones(null.shape) if null_width is None else np.asarray(null_width, float)
    finite = np.isfinite(null)
    null, null_w = null[finite], null_w[finite]
    fixed_null = len(null) >= min_null
    if fixed_null:
        centre = float(np.median(null))
        mu0, tau0 = absent_state(centre + (null - centre) / null_w)
    else:
        neg = (zo / wo)[zo < 0]
        mu0, tau0 = 0.0, float(np.sqrt(np.mean(neg ** 2))) if len(neg) >= 5 else 1.0
    hi = zo[zo > mu0 + 3 * tau0 * wo]
    params = {"pi1": 0.8, "birth": 0.05, "loss": 0.05, "mu0": mu0, "tau0": max(tau0, 0.3),
              "m1": float(np.log(np.median(hi))) if len(hi) else 2.0, "s1": 1.0}
    if dim_present:
        params["dim"] = 0.02
    prev = -np.inf
    for it in range(n_iter):
        log_e, ob = _by_step(np.stack(_log_emissions(z, params, width)) + evidence, obs, steps)
        p1, xi, loglik = _forward_backward(log_e, ob, params["pi1"], params["birth"],
                                           params["loss"])
        p1 = p1[:, steps]
        # M-step
        params["pi1"] = float(np.clip(p1[:, 0].mean(), 1e-3, 1 - 1e-3))
        params["birth"] = float((xi[0, 1] + birth_prior) / (xi[0].sum() + 11 * birth_prior))
        params["loss"] = float((xi[1, 0] + loss_prior) / (xi[1].sum() + 11 * loss_prior))
        w0, w1 = (1 - p1)[obs], p1[obs]
        if not fixed_null and (zo < 0).sum() >= 5:  # half-normal on the negative side, weighted by P(absent)
            neg, zs = zo < 0, zo / wo
            params["tau0"] = float(max(np.sqrt((w0[neg] * zs[neg] ** 2).sum() / w0[neg].sum()), 0.3))

        if dim_present:   # the dim component's share of the present sessions
            _, le_dim = _log_emissions(zo, {**params, "dim": 1.0}, wo)
            _, le_all = _log_emissions(zo, params, wo)
            r = np.exp(np.log(params["dim"]) + le_dim - le_all)
            params["dim"] = float(np.clip((w1 * r).sum() / max(w1.sum(), 1e-9),
                                          DIM_SHARE_MIN, DIM_SHARE_MAX))

        def nll(th):
            _, le1 = _log_emissions(zo, {**params, "m1": th[0], "s1": th[1]}, wo)
            return -(w1 * le1).sum() / max(w1.sum(), 1e-9)

        res = optimize.minimize(nll, [params["m1"], params["s1"]], method="L-BFGS-B",
                                bounds=[(-3, 9), (0.1, 4)], options={"maxiter": 20})
        params["m1"], params["s1"] = map(float, res.x)
        if abs(loglik - prev) < tol * abs(loglik):
            break
        prev = loglik
    log_e0, log_e1 = _log_emissions(z, params, width)
    log_e, ob = _by_step(np.stack([log_e0, log_e1]) + evidence, obs, steps)
    p1, _, loglik = _forward_backward(log_e, ob, params["pi1"], params["birth"], params["loss"])
    params = {**params, "loglik": loglik, "iterations": it + 1}
    if grid_model:
        # tracks the two-state fit never saw clearly (detections of noise, a neighbour's
        # flank) keep its calls: fitted with the synapses, they teach the model that synapses
        # are born faint and die young, and are then called present in their noisiest session
        seen = clearly_present(z, obs, p1[:, steps], params, width).any(axis=1)
        p_out, signal = p1[:, steps].copy(), np.full(z.shape, np.nan)
        if seen.any():
            fit = fit_signal_markov(z[seen], obs[seen], mu0=params["mu0"], tau0=params["tau0"],
                                    init=params, steps=steps, lost=lost_for_good,
                                    iid=not signal_memory, width=width[seen],
                                    evidence=None if detection is None
                                    else np.asarray(detection, float)[seen])
            p_out[seen], signal[seen] = fit["p_present"], fit["signal"]
            params = {**params, "grid_model": fit["params"]}
        unseen = np.broadcast_to(~seen[:, None], z.shape)
        signal[unseen] = posterior_signal(z[unseen], params, width[unseen])
        return {"p_present": p_out, "signal": signal, "params": params}
    if own_signal_reach > 0 or dim_present:
        clear = clearly_present(z, obs, p1[:, steps], params, width)
        if own_signal_reach > 0:
            centre, spread, params["own_signal_sd"] = own_signal_prior(
                z, clear, params, reach=own_signal_reach)

            def present(prm):
                return _log_present_emission(z, centre, spread, prm, width=width)
        else:
            def present(prm):
                return _log_emissions(z, prm, width)[1]
        log_e1 = present(params)
        if dim_present:
            # a dim session only beside one where the synapse was clearly seen: a weak track
            # never seen clearly (a false detection that persists) is not made present by it
            _, beside = neighbour_log_signal(np.zeros(z.shape), clear, reach=1)
            log_e1 = np.where(beside > 0, log_e1, present({**params, "dim": 0.0}))
        log_e, ob = _by_step(np.stack([log_e0, log_e1]) + evidence, obs, steps)
        p1, _, params["loglik"] = _forward_backward(log_e, ob, params["pi1"], params["birth"],
                                                    params["loss"])
    return {"p_present": p1[:, steps], "params": params}
