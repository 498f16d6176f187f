"""Error-function fits across an edge: a knife-edge scan's (enhancer.probe) and the edges the
blind estimate locates in a map (enhancer.probe_edges), in one place for both."""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from . import UserError


class ProbeRefused(UserError):
    """The map carries too little information to measure the probe; the message says why."""


def edge_model(x, x0, sigma, low, high, width):
    """An edge blurred by a Gaussian of `sigma` and averaged over a dwell of `width` (0: a point)."""
    subs = np.linspace(-0.5, 0.5, 9) * width if width else np.zeros(1)
    xs = (x[:, None] + subs[None, :] - x0) / (np.sqrt(2) * max(sigma, 1e-9))
    return low + (high - low) * 0.5 * (1 + special.erf(xs)).mean(1)


def fit_edge(x: np.ndarray, v: np.ndarray, width: float) -> tuple[float, float, float]:
    """(sigma, its standard error, edge position) of one line scan across an edge, in x's units."""
    order = np.argsort(x)
    x, v = x[order], v[order]
    n = len(x)
    lo, hi = float(np.median(v[: max(2, n // 5)])), float(np.median(v[-max(2, n // 5):]))
    if abs(hi - lo) <= 0:
        raise ProbeRefused("no edge: the scan's two ends have the same level")
    half = np.nonzero((v - lo) * np.sign(hi - lo) >= 0.5 * abs(hi - lo))[0]
    x0 = float(x[half[0]]) if len(half) else float(np.median(x))
    span = float(x[-1] - x[0])
    q0 = [x0, span / 20, lo, hi]

    def resid(q):
        return edge_model(x, q[0], q[1], q[2], q[3], width) - v

    r = optimize.least_squares(resid, q0, bounds=([x[0], span / 1e4, -np.inf, -np.inf],
                                                  [x[-1], span, np.inf, np.inf]))
    s2 = 2 * r.cost / max(1, n - 4)
    try:
        se = float(np.sqrt(max(np.linalg.inv(r.jac.T @ r.jac)[1, 1] * s2, 0)))
    except np.linalg.LinAlgError:
        se = np.inf
    return float(r.x[1]), se, float(r.x[0])
