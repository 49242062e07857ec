"""One punctum or two?  Shape tests of a bright spot in a (y, x) patch.

:func:`fit_pairs` fits every patch of a stack at once: the models are the same for all and
the patches the same size, so one damped Gauss-Newton iteration (Levenberg-Marquardt, bounds
kept by clipping) is a few array operations for all of them.  Fitting them one by one with
``scipy.optimize.least_squares`` cost ~30 ms a patch in Python overhead: 10-15 s of a crowded
stack's detection (issue 24's cost target).
"""
from __future__ import annotations

import numpy as np

from .threads import thread_map

#: iterations of the damped Gauss-Newton fit (each one evaluation of model and Jacobian)
ITERATIONS = 60
#: patches fitted together
CHUNK = 1024


def border_median(patch: np.ndarray) -> np.ndarray:
    """Median of each (..., y, x) patch's outermost rows and columns: its background."""
    p = np.asarray(patch)
    edge = np.concatenate([p[..., 0, :], p[..., -1, :], p[..., :, 0], p[..., :, -1]], -1)
    return np.median(edge, -1)


def _as_stack(patches) -> tuple[np.ndarray, bool]:
    """(n, y, x) float patches, and whether one (y, x) patch was given."""
    stack = np.asarray(patches, float)
    return stack.reshape((-1,) + stack.shape[-2:]), stack.ndim == 2


def elongation(patches: np.ndarray, *, sigma_px: float):
    """Ratio of the major to the minor axis of the spot centred in each (y, x) patch (or in
    a stack of them, (n, y, x)), from the second moments of its background-subtracted,
    Gaussian-windowed intensity (1 for a patch with nothing above its background)."""
    stack, single = _as_stack(patches)
    h, w = stack.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    yy -= (h - 1) / 2
    xx -= (w - 1) / 2
    bg = border_median(stack)[:, None, None]
    wgt = np.clip(stack - bg, 0, None) * np.exp(-(yy ** 2 + xx ** 2) / (8 * sigma_px ** 2))
    tot = wgt.sum((1, 2))
    safe = np.where(tot > 0, tot, 1.0)
    my, mx = (wgt * yy).sum((1, 2)) / safe, (wgt * xx).sum((1, 2)) / safe
    dy, dx = yy - my[:, None, None], xx - mx[:, None, None]
    cyy, cyx, cxx = ((wgt * a * b).sum((1, 2)) / safe for a, b in ((dy, dy), (dy, dx), (dx, dx)))
    cov = np.stack([np.stack([cyy, cyx], -1), np.stack([cyx, cxx], -1)], -2)
    evals = np.linalg.eigvalsh(cov)
    ratio = np.where(tot > 0, np.sqrt(evals[:, 1] / np.maximum(evals[:, 0], 1e-12)), 1.0)
    return float(ratio[0]) if single else ratio


def fit_pairs(patches: np.ndarray, *, sigma_px: float, workers: int = 1):
    """Is the bright spot in each (y, x) patch one punctum or two?

    Fits (least squares) one Gaussian of free size, elongation and orientation, and two
    Gaussians of the point-spread width ``sigma_px`` (pixels), each on a background plane
    (a punctum on the flank of a dendrite is lopsided, and two points must not be the only
    way to say so).  One elongated punctum is fitted as well by the first model as by the
    second; two points closer than the resolution are not, because their profile is
    flatter-topped than any Gaussian.

    Parameters
    ----------
    patches : (n, h, w) array, or one (h, w) patch
    workers : threads sharing the patches (each patch's fit is its own: the same values)

    Returns
    -------
    (centres, amplitudes, f) : centres (n, 2, 2) of the two-point fit in patch pixels, their
    amplitudes (n, 2), and ``f = (rss_one - rss_two) / noise**2`` (n,) with the noise from
    the two-point fit's residuals: large when two points explain the patch much better.
    Without the leading axis for one (h, w) patch.
    """
    stack, single = _as_stack(patches)
    # the Jacobians' memory: CHUNK x pixels x 9 doubles at a time, and a part per thread
    chunk = min(CHUNK, -(-len(stack) // max(int(workers), 1)))
    if len(stack) > chunk:
        starts = range(0, len(stack), chunk)

        def part(i):
            return fit_pairs(stack[i:i + chunk], sigma_px=sigma_px)

        parts = thread_map(part, starts, workers=workers)
        return tuple(np.concatenate(v) for v in zip(*parts))
    n, h, w = stack.shape
    yy, xx = (v.ravel() for v in np.mgrid[0:h, 0:w].astype(float))
    ty, tx = yy - (h - 1) / 2, xx - (w - 1) / 2
    data = stack.reshape(n, -1)
    bg = border_median(stack)
    amp = np.maximum(stack.max((1, 2)) - bg, 0.0)
    s2 = sigma_px ** 2
    inf = np.inf

    # one Gaussian, shape by its inverse covariance (a, b, c): exp(-(a dy² + 2b dy dx + c dx²)/2)
    def one(p, jacobian=False):
        dy, dx = yy - p[:, 2:3], xx - p[:, 3:4]
        g = np.exp(np.minimum(-0.5 * (p[:, 4:5] * dy * dy + 2 * p[:, 5:6] * dy * dx
                                      + p[:, 6:7] * dx * dx), 50.0))
        if not jacobian:
            return p[:, :1] + p[:, 7:8] * ty + p[:, 8:9] * tx + p[:, 1:2] * g - data
        ag = p[:, 1:2] * g
        return np.stack([np.ones_like(g), g, ag * (p[:, 4:5] * dy + p[:, 5:6] * dx),
                         ag * (p[:, 5:6] * dy + p[:, 6:7] * dx), -0.5 * ag * dy * dy,
                         -ag * dy * dx, -0.5 * ag * dx * dx, np.broadcast_to(ty, g.shape),
                         np.broadcast_to(tx, g.shape)], 1)

    lo = np.array([-inf, 0, 0, 0, 1 / (16 * s2), -2 / s2, 1 / (16 * s2), -inf, -inf])
    hi = np.array([inf, inf, h - 1, w - 1, 4 / s2, 2 / s2, 4 / s2, inf, inf])
    start = np.column_stack([bg, amp, np.full(n, (h - 1) / 2), np.full(n, (w - 1) / 2),
                             np.full(n, 1 / s2), np.zeros(n), np.full(n, 1 / s2),
                             np.zeros(n), np.zeros(n)])
    p1, rss1 = _damped_gauss_newton(one, np.clip(start, lo, hi), lo, hi)

    shape = np.stack([np.stack([p1[:, 4], p1[:, 5]], -1), np.stack([p1[:, 5], p1[:, 6]], -1)], -2)
    evals, evecs = np.linalg.eigh(shape)
    major, axis = 1 / np.sqrt(np.maximum(evals[:, 0], 1e-12)), evecs[:, :, 0]  # long axis
    half = np.sqrt(np.maximum(major ** 2 - s2, 0.25 * s2))[:, None]

    def two(p, jacobian=False):
        g1 = np.exp(-0.5 * ((yy - p[:, 2:3]) ** 2 + (xx - p[:, 3:4]) ** 2) / s2)
        g2 = np.exp(-0.5 * ((yy - p[:, 5:6]) ** 2 + (xx - p[:, 6:7]) ** 2) / s2)
        if not jacobian:
            return p[:, :1] + p[:, 7:8] * ty + p[:, 8:9] * tx + p[:, 1:2] * g1 + p[:, 4:5] * g2 - data
        return np.stack([np.ones_like(g1), g1, p[:, 1:2] * g1 * (yy - p[:, 2:3]) / s2,
                         p[:, 1:2] * g1 * (xx - p[:, 3:4]) / s2, g2,
                         p[:, 4:5] * g2 * (yy - p[:, 5:6]) / s2,
                         p[:, 4:5] * g2 * (xx - p[:, 6:7]) / s2, np.broadcast_to(ty, g1.shape),
                         np.broadcast_to(tx, g1.shape)], 1)

    centre = p1[:, 2:4]
    start = np.column_stack([p1[:, 0], p1[:, 1] / 2, centre + half * axis, p1[:, 1] / 2,
                             centre - half * axis, p1[:, 7], p1[:, 8]])
    lo = np.array([-inf, 0, 0, 0, 0, 0, 0, -inf, -inf])
    hi = np.array([inf, inf, h - 1, w - 1, inf, h - 1, w - 1, inf, inf])
    p2, rss2 = _damped_gauss_newton(two, np.clip(start, lo, hi), lo, hi)
    noise2 = rss2 / max(h * w - 9, 1)
    centres = np.stack([p2[:, 2:4], p2[:, 5:7]], 1)
    amplitudes = p2[:, [1, 4]]
    f = (rss1 - rss2) / np.maximum(noise2, 1e-12)
    return (centres[0], amplitudes[0], float(f[0])) if single else (centres, amplitudes, f)


def _damped_gauss_newton(model, p, lo, hi, *, iterations: int = ITERATIONS):
    """Least squares of ``model(p)`` (residuals, (n, m)) for n problems at once, its
    Jacobian ``model(p, jacobian=True)`` (n, k, m): Levenberg-Marquardt, each problem its own
    damping; a step leaving the bounds is clipped to them.  Returns the parameters (n, k)
    and the residual sums of squares (n,)."""
    p = p.copy()
    res = model(p)
    rss = np.einsum("nm,nm->n", res, res)
    damping = np.full(len(p), 1e-3)
    for _ in range(iterations):
        jac = model(p, jacobian=True)
        normal = jac @ jac.transpose(0, 2, 1)
        grad = (jac @ res[..., None])[..., 0]
        diag = np.diagonal(normal, axis1=1, axis2=2)
        scale = np.maximum(diag, 1e-9 * diag.max(1, keepdims=True) + 1e-300)
        step = np.linalg.solve(normal + damping[:, None, None] * np.eye(p.shape[1]) * scale[:, None],
                               -grad[..., None])[..., 0]
        trial = np.clip(p + step, lo, hi)
        t_res = model(trial)
        t_rss = np.einsum("nm,nm->n", t_res, t_res)
        better = t_rss < rss
        p[better], res[better], rss[better] = trial[better], t_res[better], t_rss[better]
        damping = np.clip(np.where(better, damping / 3, damping * 4), 1e-9, 1e9)
    return p, rss
