"""Whether the detector found a punctum, as evidence for the presence calls.

The presence model reads each session's signal (``snr``); the detector also judged the
session's image by shape (a PSF-sized 3-D spot, not shaft texture) and found a punctum or
not.  At the same signal the two disagree where it matters: a present synapse at 3 noise SDs
that the detector still found, and a textured place on a bright shaft that measures 15 SDs
every session where the detector finds nothing.  So each row's likelihood is multiplied by
``P(detected | present, z)`` or ``P(detected | absent)`` (one minus it where not detected).

``P(detected | present, z)`` is calibrated on the rows that lie strictly between a track's
first and last detected session: present there (a synapse lost does not return), and
detected or not by the detector alone, not by the presence calls (fitting it inside the
model's own iterations let the calls and the calibration pull each other until every
undetected row was absent).  It is bounded (:data:`PRESENT_BOUNDS`) so that no one row is
certain.  ``P(detected | absent)`` is a setting: how often the detector finds a punctum at a
tracked place without a synapse (texture, a neighbour's flank).
"""
from __future__ import annotations

import numpy as np
from scipy import special

#: bounds of P(detected | present, z): a present synapse may be missed (a neighbour merged
#: with it), and a dim one found
PRESENT_BOUNDS = (0.05, 0.98)
#: P(detected | absent) where the setting is 'auto' or 'one_channel': 0.02 and 0.05 gave the same
#: calls within 2 wrong calls per cell on the presence benchmark's PSD-95-alone cells
DEFAULT_ABSENT_RATE = 0.02
#: fewer interior rows (or none detected, or none missed): no calibration, no evidence
MIN_INTERIOR_ROWS = 20


def interior_rows(detected: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(tracks, sessions) bool: observed sessions strictly between a track's first and last
    detected session."""
    det = np.asarray(detected, bool) & np.asarray(observed, bool)
    idx = np.arange(det.shape[1])[None, :]
    any_det = det.any(axis=1, keepdims=True)
    first = np.where(any_det, det.argmax(axis=1)[:, None], det.shape[1])
    last = np.where(any_det, det.shape[1] - 1 - det[:, ::-1].argmax(axis=1)[:, None], -1)
    return (idx > first) & (idx < last) & np.asarray(observed, bool)


def fit_detection_curve(x: np.ndarray, detected: np.ndarray, *, iterations: int = 50,
                        ridge: float = 1e-3) -> tuple[float, float]:
    """Logistic ``P(detected) = expit(a + b x)`` by Newton's method with a small ridge, the
    slope at least 0 (a brighter measurement is not less likely detected)."""
    x = np.asarray(x, float)
    y = np.asarray(detected, float)
    design = np.column_stack([np.ones_like(x), x])
    theta = np.array([special.logit(np.clip(y.mean(), 0.01, 0.99)), 0.0])
    for _ in range(iterations):
        p = special.expit(design @ theta)
        grad = design.T @ (y - p) - ridge * theta
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if theta[1] < 0:            # the slope bound: refit the intercept alone
            theta[1] = 0.0
            theta[0] = special.logit(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        if np.abs(step).max() < 1e-8:
            break
    return float(theta[0]), float(theta[1])


def detection_log_factors(snr: np.ndarray, detected: np.ndarray, observed: np.ndarray, *,
                          absent_rate: float, width=None) -> tuple[np.ndarray, dict]:
    """Per (track, session) the log of P(detection outcome | absent) and of P(outcome |
    present, z): shape (tracks, sessions, 2), 0 where not observed.

    ``snr`` over ``width`` (each row's absent SD factor, default 1: the detector's threshold
    rises alike on a textured shaft) is the curve's covariate.  ``absent_rate``:
    P(detected | absent).  With too few interior rows to calibrate the curve (or no contrast
    in them) every factor is 0: no evidence.  Returns the factors and the calibration (``a``,
    ``b``, ``interior_rows``, or why there is none)."""
    z = np.asarray(snr, float)
    obs = np.asarray(observed, bool) & np.isfinite(z)
    det = np.asarray(detected, float) == 1
    x = z / (1.0 if width is None else np.asarray(width, float))
    inner = interior_rows(det, obs)
    n_inner, n_det = int(inner.sum()), int((det & inner).sum())
    out = np.zeros(z.shape + (2,))
    if n_inner < MIN_INTERIOR_ROWS or n_det in (0, n_inner):
        return out, {"interior_rows": n_inner, "calibrated": False}
    a, b = fit_detection_curve(x[inner], det[inner])
    present = np.clip(special.expit(a + b * np.where(obs, x, 0.0)), *PRESENT_BOUNDS)
    out[..., 0] = np.where(det, np.log(absent_rate), np.log1p(-absent_rate))
    out[..., 1] = np.where(det, np.log(present), np.log1p(-present))
    out[~obs] = 0.0
    return out, {"interior_rows": n_inner, "calibrated": True, "a": a, "b": b}
