r"""Gradient flows of densities (chapter 5, continuous half).

For a functional :math:`\mathcal F[p]`, moving every point by
:math:`x \mapsto x - \eta \nabla \frac{\delta \mathcal F}{\delta p}(x)` changes the
density by :math:`\eta \nabla\cdot(p \nabla \frac{\delta \mathcal F}{\delta p})` to first
order and decreases :math:`\mathcal F` by :math:`\eta \int p \lvert\nabla \frac{\delta\mathcal F}{\delta p}\rvert^2`.
The limit :math:`\eta \to 0` is the Wasserstein gradient flow and its particle ODE,

.. math::

    \partial_t p = \nabla\cdot\Big(p\, \nabla \frac{\delta \mathcal F}{\delta p}\Big),
    \qquad \frac{dx}{dt} = -\nabla \frac{\delta \mathcal F}{\delta p}(x).

For :math:`\mathcal F[p] = \int p \log p + p V` (free energy; it equals
:math:`\operatorname{KL}(p \Vert e^{-V}/Z) - \log Z`), :math:`\delta\mathcal F/\delta p = \log p + 1 + V`
and the flow is the Fokker-Planck equation :math:`\partial_t p = \Delta p + \nabla\cdot(p \nabla V)`,
whose minimizer is the Gibbs density :math:`e^{-V}/Z`. This module solves it
three ways: a finite-volume scheme on a 1-D grid (:func:`fokker_planck_grid`),
deterministic particles moved by a kernel score estimate (:func:`particle_flow`),
and the Langevin SDE (:func:`langevin`). Densities on a grid are given by cell
values ``p`` with cell width ``h``; probability *masses* are ``p * h``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ._validation import check_floating, check_int, check_interval, check_positive, check_times

__all__ = [
    "gibbs_mass",
    "kl_divergence",
    "histogram",
    "stable_step",
    "fokker_planck_grid",
    "dissipation",
    "kde_score",
    "particle_flow",
    "langevin",
    "gradient",
    "jacobian",
    "divergence",
    "change_of_variables",
]

Field = Callable[[torch.Tensor], torch.Tensor]


# -- densities on a grid


def gibbs_mass(v: torch.Tensor, ndim: int = 1) -> torch.Tensor:
    r"""Cell masses of the Gibbs density :math:`e^{-V}/Z` on a uniform grid.

    .. math::

        m_k = \frac{e^{-V_k}}{\sum_j e^{-V_j}} = \operatorname{softmax}(-V)_k,

    over the last ``ndim`` dims (a 1-D or 2-D grid); computed as a softmax,
    so no exponential overflows. Divide by the cell volume for the density.
    """
    check_floating(v, "v", min_ndim=ndim)
    ndim = check_int(ndim, "ndim", 1)
    flat = v.flatten(-ndim) if ndim > 1 else v
    return torch.softmax(-flat, dim=-1).reshape(v.shape)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, ndim: int = 1) -> torch.Tensor:
    r"""Discrete :math:`\operatorname{KL}(p \Vert q) = \sum_k p_k \log(p_k / q_k)` of masses, over the last ``ndim`` dims.

    Uses :math:`0 \log 0 = 0`; cells with :math:`q_k = 0 < p_k` give ``inf``.
    """
    check_floating(p, "p", min_ndim=ndim)
    check_floating(q, "q", min_ndim=ndim)
    ndim = check_int(ndim, "ndim", 1)
    terms = torch.special.xlogy(p, p) - torch.special.xlogy(p, q)
    return terms.sum(dim=tuple(range(-ndim, 0)))


def histogram(x: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Fraction of points per cell of a uniform grid on ``[lo, hi]^d``.

    ``x`` has shape ``(..., n, d)``; the result ``(..., bins, ..., bins)``
    (``d`` grid dims) sums to the fraction of points inside the box.
    """
    check_floating(x, "x", min_ndim=2)
    lo, hi = check_interval(lo, hi)
    bins = check_int(bins, "bins", 1)
    d, n = x.shape[-1], x.shape[-2]
    idx = ((x - lo) / (hi - lo) * bins).floor().long()
    inside = ((idx >= 0) & (idx < bins)).all(-1)
    strides = bins ** torch.arange(d - 1, -1, -1, device=x.device)
    flat = (idx.clamp(0, bins - 1) * strides).sum(-1)
    batch = x.shape[:-2]
    out = torch.zeros(*batch, bins**d, dtype=x.dtype, device=x.device)
    out.scatter_add_(-1, flat, inside.to(x.dtype) / n)
    return out.reshape(*batch, *([bins] * d))


# -- the Fokker-Planck equation on a 1-D grid (finite volumes)


def _face_weights(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(2 sigma(V_{i+1} - V_i), 2 sigma(V_i - V_{i+1}))`` at the interior faces."""
    dv = v[..., 1:] - v[..., :-1]
    return 2 * torch.sigmoid(dv), 2 * torch.sigmoid(-dv)


def stable_step(v: torch.Tensor, h: float) -> float:
    r"""Largest explicit Euler step of :func:`fokker_planck_grid` that keeps densities non-negative.

    The scheme is :math:`\dot p = A p` with :math:`A_{ii} = -\frac{2}{h^2}\big(\sigma(V_i - V_{i+1}) + \sigma(V_i - V_{i-1})\big)`
    (one term per interior face), non-negative off-diagonal entries and zero
    column sums. So :math:`I + \Delta t A` is a non-negative matrix with unit
    column sums (mass kept, :math:`\ell_1` norm never grows) exactly when

    .. math::

        \Delta t \le \frac{1}{\max_i \lvert A_{ii} \rvert}, \qquad \text{in particular whenever } \Delta t \le h^2/4 .
    """
    check_floating(v, "v", min_ndim=1)
    h = check_positive(h, "h")
    a, b = _face_weights(v)
    diag = torch.zeros_like(v)
    diag[..., :-1] += b
    diag[..., 1:] += a
    return float(h * h / diag.max())


def fokker_planck_grid(
    p0: torch.Tensor, v: torch.Tensor, h: float, times: Sequence[float], dt: float | None = None
) -> torch.Tensor:
    r"""Solve :math:`\partial_t p = \partial_x (\partial_x p + p\, \partial_x V)` on a 1-D grid with no-flux walls.

    Finite volumes on cells of width :math:`h`, written in the symmetric form
    :math:`\partial_t p = \partial_x\big(e^{-V} \partial_x (p\, e^{V})\big)` with the
    flux through the face between cells :math:`i` and :math:`i+1`

    .. math::

        J_{i+\frac12} = -\frac{2}{h}\Big(\sigma(V_{i+1} - V_i)\, p_{i+1} - \sigma(V_i - V_{i+1})\, p_i\Big),

        p_i \leftarrow p_i - \frac{\Delta t}{h}\big(J_{i+\frac12} - J_{i-\frac12}\big),

    a consistent flux (:math:`J \approx -(p' + pV')`) that vanishes exactly on
    the discrete Gibbs density :math:`p_i \propto e^{-V_i}` and conserves mass
    to rounding. Explicit Euler with :math:`\Delta t \le` :func:`stable_step`.

    Parameters
    ----------
    p0 : torch.Tensor
        Initial cell densities, shape ``(..., N)``, non-negative.
    v : torch.Tensor
        Potential at the cell centers, shape ``(N,)`` or broadcastable to ``p0``.
    h : float
        Cell width, ``> 0``.
    times : sequence of float
        Output times, non-decreasing and ``>= 0``.
    dt : float, optional
        Time step; default and maximum :func:`stable_step` ``(v, h)``.

    Returns
    -------
    torch.Tensor
        Densities at ``times``, shape ``(len(times), ..., N)``.
    """
    check_floating(p0, "p0", min_ndim=1)
    check_floating(v, "v", min_ndim=1)
    if p0.shape[-1] < 2 or v.shape[-1] != p0.shape[-1]:
        raise ValueError(f"p0 and v need the same number N >= 2 of cells, got {tuple(p0.shape)} and {tuple(v.shape)}")
    if float(p0.min()) < 0:
        raise ValueError("p0 must be a density: all entries >= 0")
    h = check_positive(h, "h")
    times = check_times(times)
    limit = stable_step(v, h)
    dt = limit if dt is None else check_positive(dt, "dt")
    if dt > limit * (1 + 1e-12):
        raise ValueError(f"dt must be <= {limit:.4g} (the stable explicit step for this v and h), got {dt}")
    up, down = _face_weights(v)
    p, now, out = p0.clone(), 0.0, []
    for t in times:
        n_sub = math.ceil((t - now) / dt - 1e-9)
        step = (t - now) / n_sub if n_sub > 0 else 0.0
        for _ in range(n_sub):
            flux = -(up * p[..., 1:] - down * p[..., :-1]) / h
            change = torch.zeros_like(p)
            change[..., :-1] -= flux
            change[..., 1:] += flux
            p = p + (step / h) * change
        now = t
        out.append(p)
    return torch.stack(out)


def dissipation(p: torch.Tensor, v: torch.Tensor, h: float) -> torch.Tensor:
    r"""The rate of decrease of the free energy along the flow, on a 1-D grid.

    .. math::

        -\frac{d}{dt}\mathcal F[p_t] = \int p\, \Big\lvert \partial_x \frac{\delta \mathcal F}{\delta p} \Big\rvert^2 dx
        = \int p\, \lvert \partial_x (\log p + V) \rvert^2 dx,

    evaluated with differences across faces and the mean of the two
    neighboring cells. Cells with ``p = 0`` must not occur.
    """
    check_floating(p, "p", min_ndim=1)
    h = check_positive(h, "h")
    mu = torch.log(p) + v
    grad = (mu[..., 1:] - mu[..., :-1]) / h
    face = 0.5 * (p[..., 1:] + p[..., :-1])
    return (face * grad**2).sum(-1) * h


# -- particles


def gradient(fn: Field, x: torch.Tensor) -> torch.Tensor:
    """Gradient of a scalar field ``fn: (..., d) -> (...)`` at points ``x`` of shape ``(..., d)``, by autograd."""
    check_floating(x, "x", min_ndim=1)
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        value = fn(y)
        if not isinstance(value, torch.Tensor) or value.shape != x.shape[:-1]:
            raise ValueError(f"fn must map points (..., d) = {tuple(x.shape)} to values {tuple(x.shape[:-1])}")
        (g,) = torch.autograd.grad(value.sum(), y)
    return g


def jacobian(field: Field, x: torch.Tensor) -> torch.Tensor:
    r"""Pointwise Jacobian :math:`J_{ij} = \partial u_i/\partial x_j` of ``field: (..., d) -> (..., d)``, shape ``(..., d, d)``.

    One backward pass per output coordinate; ``field`` must act on each point
    separately (no coupling across the batch).
    """
    check_floating(x, "x", min_ndim=1)
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        u = field(y)
        if u.shape != x.shape:
            raise ValueError(f"field must map points {tuple(x.shape)} to vectors of the same shape, got {tuple(u.shape)}")
        rows = [torch.autograd.grad(u[..., i].sum(), y, retain_graph=True)[0] for i in range(x.shape[-1])]
    return torch.stack(rows, dim=-2)


def divergence(field: Field, x: torch.Tensor) -> torch.Tensor:
    r"""Divergence :math:`\nabla\cdot u = \operatorname{Tr} \partial u/\partial x` of ``field: (..., d) -> (..., d)``, pointwise."""
    return jacobian(field, x).diagonal(dim1=-2, dim2=-1).sum(-1)


def change_of_variables(
    density: Field, mu: Field, x: torch.Tensor, eta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The density after the step :math:`x \mapsto T^{-1}(x)`, :math:`T(x) = x + \eta\mu(x)`, exactly and to first order.

    .. math::

        p_{\eta}(x) = p\big(x + \eta\mu(x)\big)\,\big\lvert \det\big(I + \eta\, \partial\mu/\partial x\big)\big\rvert
        \;\approx\; p(x) + \eta\, \nabla\cdot\big(p\,\mu\big)(x),

    the second form from :math:`\det(I + \eta J) = 1 + \eta \operatorname{Tr} J + O(\eta^2)`.
    ``density: (n, d) -> (n,)``, ``mu: (n, d) -> (n, d)``; returns ``(exact, first_order)``, each ``(n,)``.
    """
    check_floating(x, "x", min_ndim=2)
    eta = float(eta)
    jac = jacobian(mu, x)
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    exact = density(x + eta * mu(x)) * torch.linalg.det(eye + eta * jac).abs()
    first = density(x) + eta * divergence(lambda z: density(z)[..., None] * mu(z), x)
    return exact.detach(), first.detach()


def _axis_apply(grid: torch.Tensor, matrix: torch.Tensor, axis: int) -> torch.Tensor:
    """Apply ``matrix`` (m, m) along grid axis ``axis`` of ``grid`` (B, m, ..., m)."""
    moved = grid.movedim(axis + 1, -1)
    return (moved @ matrix.mT).movedim(-1, axis + 1)


class _Mesh:
    """Grid and kernel matrices of the particle-mesh score estimate (built once per flow)."""

    def __init__(self, bandwidth: float, lo: float, hi: float, cells: int, dtype: torch.dtype, device: torch.device):
        self.sigma = check_positive(bandwidth, "bandwidth")
        self.lo, self.hi = check_interval(lo, hi)
        self.m = check_int(cells, "cells", 2)
        self.spacing = (self.hi - self.lo) / (self.m - 1)
        nodes = self.lo + self.spacing * torch.arange(self.m, dtype=dtype, device=device)
        diff = nodes[:, None] - nodes[None, :]
        self.kern = torch.exp(-0.5 * (diff / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))
        self.dkern = -diff / self.sigma**2 * self.kern

    def score(self, x: torch.Tensor) -> torch.Tensor:
        m = self.m
        batch, (n, d) = x.shape[:-2], x.shape[-2:]
        xs = x.reshape(-1, n, d)
        b = xs.shape[0]
        t = ((xs - self.lo) / self.spacing).clamp(0, m - 1 - 1e-9)
        base = t.floor().long().clamp(max=m - 2)
        frac = t - base
        strides = [m ** (d - 1 - a) for a in range(d)]
        corners = []  # (flat index, weight) of each of the 2^d cloud-in-cell corners
        for c in range(2**d):
            bits = [(c >> (d - 1 - a)) & 1 for a in range(d)]
            w = torch.ones_like(frac[..., 0])
            idx = torch.zeros_like(base[..., 0])
            for a, bit in enumerate(bits):
                w = w * (frac[..., a] if bit else 1 - frac[..., a])
                idx = idx + (base[..., a] + bit) * strides[a]
            corners.append((idx, w))
        mass = torch.zeros(b, m**d, dtype=x.dtype, device=x.device)
        for idx, w in corners:
            mass.scatter_add_(-1, idx, w / n)
        mass = mass.reshape(b, *([m] * d))
        dens = mass
        for a in range(d):
            dens = _axis_apply(dens, self.kern, a)
        grads = []
        for a in range(d):
            g = mass
            for a2 in range(d):
                g = _axis_apply(g, self.dkern if a2 == a else self.kern, a2)
            grads.append(g.reshape(b, -1))
        dens = dens.reshape(b, -1)

        def interp(field: torch.Tensor) -> torch.Tensor:
            return sum(field.gather(-1, idx) * w for idx, w in corners)

        p_hat = interp(dens).clamp_min(torch.finfo(x.dtype).tiny)
        score = torch.stack([interp(g) for g in grads], dim=-1) / p_hat[..., None]
        return score.reshape(*batch, n, d)


def kde_score(x: torch.Tensor, bandwidth: float, lo: float, hi: float, cells: int) -> torch.Tensor:
    r"""Score :math:`\nabla \log \hat p` of a Gaussian kernel density estimate at the particles.

    .. math::

        \hat p(y) = \frac1n \sum_{j=1}^n \mathcal N(y;\, x_j, \sigma^2 I), \qquad
        s(x_i) = \frac{\nabla \hat p(x_i)}{\hat p(x_i)},

    evaluated by the particle-mesh method: particles deposit their mass on a
    grid of ``cells`` nodes per axis over ``[lo, hi]^d`` (cloud-in-cell), the
    grid is convolved with the kernel and its gradient one axis at a time, and
    :math:`\nabla\hat p / \hat p` is interpolated back. Cost
    :math:`O(n\,2^d + d\, m^{d+1})` instead of :math:`O(n^2)`; the grid spacing
    should be well below :math:`\sigma`. ``x`` has shape ``(..., n, d)``.
    """
    check_floating(x, "x", min_ndim=2)
    return _Mesh(bandwidth, lo, hi, cells, x.dtype, x.device).score(x)


def _march(x0: torch.Tensor, times: Sequence[float], dt: float, velocity: Callable[[torch.Tensor, float], torch.Tensor]) -> torch.Tensor:
    times = check_times(times)
    dt = check_positive(dt, "dt")
    x, now, out = x0.detach().clone(), 0.0, []
    for t in times:
        n_sub = math.ceil((t - now) / dt - 1e-9)
        step = (t - now) / n_sub if n_sub > 0 else 0.0
        for _ in range(n_sub):
            x = x + velocity(x, step)
        now = t
        out.append(x)
    return torch.stack(out)


def particle_flow(
    x0: torch.Tensor,
    potential: Field,
    times: Sequence[float],
    *,
    dt: float,
    bandwidth: float,
    box: tuple[float, float],
    cells: int = 128,
) -> torch.Tensor:
    r"""Deterministic particles of the Fokker-Planck flow, moved by an estimated score.

    .. math::

        \frac{dx_i}{dt} = -\nabla \frac{\delta \mathcal F}{\delta p}(x_i)
        = -\nabla V(x_i) - \nabla \log p_t(x_i),

    with :math:`\nabla \log p_t` replaced by :func:`kde_score` of the current
    particles and explicit Euler steps of size at most ``dt``.

    Parameters
    ----------
    x0 : torch.Tensor
        Initial particles, shape ``(..., n, d)``.
    potential : callable
        ``V: (..., d) -> (...)``; its gradient comes from autograd.
    times : sequence of float
        Output times, non-decreasing, ``>= 0``.
    dt : float
        Largest time step, ``> 0``.
    bandwidth : float
        Kernel width :math:`\sigma > 0`.
    box : (float, float)
        ``(lo, hi)``: the score grid covers ``[lo, hi]^d``; it should contain the particles.
    cells : int
        Grid nodes per axis.

    Returns
    -------
    torch.Tensor
        Particles at ``times``, shape ``(len(times), ..., n, d)``.
    """
    check_floating(x0, "x0", min_ndim=2)
    mesh = _Mesh(bandwidth, box[0], box[1], cells, x0.dtype, x0.device)

    def velocity(x: torch.Tensor, step: float) -> torch.Tensor:
        return -step * (gradient(potential, x) + mesh.score(x))

    return _march(x0, times, dt, velocity)


def langevin(
    x0: torch.Tensor, potential: Field, times: Sequence[float], *, dt: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Particles of the Langevin SDE :math:`dx = -\nabla V(x)\, dt + \sqrt{2}\, dW` (Euler-Maruyama).

    Its density obeys the same Fokker-Planck equation as :func:`particle_flow`,
    with the diffusion done by noise instead of by the score. Shapes and
    ``times``/``dt`` as in :func:`particle_flow`; ``generator`` seeds the noise.
    """
    check_floating(x0, "x0", min_ndim=1)

    def velocity(x: torch.Tensor, step: float) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return -step * gradient(potential, x) + math.sqrt(2 * step) * noise

    return _march(x0, times, dt, velocity)
