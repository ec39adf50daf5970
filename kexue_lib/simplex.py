r"""Minimization over the probability simplex (chapter 5, discrete half).

The search space is the simplex

.. math::

    \Delta^{n-1} = \{p \in \mathbb{R}^n : p_i \ge 0,\ \textstyle\sum_i p_i = 1\}.

A first-order expansion of :math:`F((1-\eta)p + \eta q)` shows that the best
direction from :math:`p` is a vertex, :math:`q = \operatorname{onehot}(\arg\min_i \partial_i F(p))`,
and that a minimizer of a differentiable :math:`F` satisfies

.. math::

    p \cdot \nabla F(p) = \min_i\, (\nabla F(p))_i ,

which is also sufficient when :math:`F` is convex. Three descent methods
(each returning its whole trajectory) and the Euclidean projection onto the
simplex, :func:`sparsemax`, live here. Objectives are callables mapping a
batch of points ``(..., n)`` to values ``(...)``; gradients come from autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validation import check_dim, check_floating, check_int, check_on_simplex, check_positive

__all__ = [
    "sparsemax",
    "value_and_grad",
    "optimality_gap",
    "frank_wolfe",
    "projected_gradient",
    "mirror_descent",
    "quadratic_objective",
    "entropic_linear_objective",
]

Objective = Callable[[torch.Tensor], torch.Tensor]


# -- sparsemax


def _sparsemax_last(x: torch.Tensor) -> torch.Tensor:
    """Sort-based sparsemax along the last dim (no autograd)."""
    m = x.amax(dim=-1, keepdim=True)
    z = x - torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    zs = z.sort(dim=-1, descending=True).values
    k = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    cs = zs.cumsum(dim=-1)
    support = (1 + k * zs > cs).sum(dim=-1, keepdim=True)  # size of the support, >= 1 for a finite row
    tau = (cs.gather(-1, (support - 1).clamp_min(0)) - 1) / support
    return (z - tau).clamp_min(0)


class _Sparsemax(torch.autograd.Function):
    r"""Forward: sort-based threshold. Backward: the Jacobian :math:`\operatorname{diag}(s) - s s^\top/|S|`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        p = _sparsemax_last(x)
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (p,) = ctx.saved_tensors
        s = (p > 0).to(grad.dtype)
        mean = (grad * s).sum(dim=-1, keepdim=True) / s.sum(dim=-1, keepdim=True)
        return s * (grad - mean)


def sparsemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Euclidean projection onto the probability simplex.

    .. math::

        \operatorname{sparsemax}(x) = \arg\min_{p \in \Delta^{n-1}} \lVert p - x \rVert^2,
        \qquad p_i = \operatorname{relu}\big(x_i - \lambda(x)\big),

    with :math:`\lambda(x)` fixed by :math:`\sum_i p_i = 1`. Sorting
    :math:`x_{(1)} \ge \dots \ge x_{(n)}`, the support has size
    :math:`k = \max\{j : 1 + j x_{(j)} > \sum_{i \le j} x_{(i)}\}` and
    :math:`\lambda = (\sum_{i \le k} x_{(i)} - 1)/k`. The gradient is exact:
    with :math:`s` the indicator of the support, the Jacobian is
    :math:`\operatorname{diag}(s) - s s^\top / \lvert S \rvert`.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor with at least one dimension; entries equal to ``-inf``
        are masked (probability 0, gradient 0). A slice that is entirely
        ``-inf`` gives NaN, as softmax does.
    dim : int
        Dimension along which the result sums to 1.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.
    """
    check_floating(x, "x", min_ndim=1)
    dim = check_dim(x, dim)
    return _Sparsemax.apply(x.movedim(dim, -1)).movedim(-1, dim)


# -- objectives and the optimality condition


def value_and_grad(objective: Objective, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F(p), grad F(p))`` by autograd; ``F`` maps ``(..., n)`` to ``(...)`` (one value per point)."""
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    with torch.enable_grad():
        q = p.detach().requires_grad_(True)
        value = objective(q)
        if not isinstance(value, torch.Tensor) or value.shape != p.shape[:-1]:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"objective must map points of shape {tuple(p.shape)} to values of shape "
                             f"{tuple(p.shape[:-1])}, got {got}")
        (grad,) = torch.autograd.grad(value.sum(), q)
    return value.detach(), grad


def optimality_gap(objective: Objective, p: torch.Tensor) -> torch.Tensor:
    r"""Residual of the simplex optimality condition, :math:`p\cdot\nabla F(p) - \min_i (\nabla F(p))_i \ge 0`.

    It is 0 exactly at points satisfying the first-order condition, and for
    convex :math:`F` it bounds the suboptimality:
    :math:`F(p) - \min_{\Delta} F \le p\cdot\nabla F(p) - \min_i (\nabla F(p))_i`
    (the Frank-Wolfe gap). Shape ``(...)`` for ``p`` of shape ``(..., n)``.
    """
    check_floating(p, "p", min_ndim=1)
    _, g = value_and_grad(objective, p)
    return (p * g).sum(-1) - g.amin(-1)


def quadratic_objective(q: torch.Tensor, c: torch.Tensor) -> Objective:
    r"""The convex quadratic :math:`F(p) = \tfrac12 (p - c)^\top Q (p - c)` (``Q`` symmetric PSD, ``(n, n)``).

    When ``c`` lies on the simplex, it is the minimizer.
    """
    check_floating(q, "q", min_ndim=2)
    check_floating(c, "c", min_ndim=1)
    if q.shape[-2:] != (c.shape[-1], c.shape[-1]):
        raise ValueError(f"q must have shape (n, n) with n = c.shape[-1] = {c.shape[-1]}, got {tuple(q.shape)}")

    def objective(p: torch.Tensor) -> torch.Tensor:
        d = p - c
        return 0.5 * (d * (d @ q.mT)).sum(-1)

    return objective


def entropic_linear_objective(c: torch.Tensor, tau: float) -> Objective:
    r"""Linear cost plus negative entropy, :math:`F(p) = c\cdot p + \tau \sum_i p_i \log p_i`.

    Its minimizer on the simplex is :math:`p^* = \operatorname{softmax}(-c/\tau)`
    and :math:`\min F = -\tau \log \sum_i e^{-c_i/\tau}`. Uses :math:`0 \log 0 = 0`.
    """
    check_floating(c, "c", min_ndim=1)
    tau = check_positive(tau, "tau")

    def objective(p: torch.Tensor) -> torch.Tensor:
        return (c * p).sum(-1) + tau * torch.special.xlogy(p, p).sum(-1)

    return objective


# -- three descent methods on the simplex


def _start(p0: torch.Tensor, steps: int, *, interior: bool = False) -> tuple[torch.Tensor, int]:
    check_on_simplex(p0, "p0", interior=interior)
    return p0.detach().clone(), check_int(steps, "steps", 0)


def frank_wolfe(objective: Objective, p0: torch.Tensor, steps: int, eta: float | None = None) -> torch.Tensor:
    r"""Convex-set search (Frank-Wolfe): move toward the best vertex.

    .. math::

        p_{k+1} = (1 - \eta_k)\, p_k + \eta_k\, \operatorname{onehot}\big(\arg\min_i (\nabla F(p_k))_i\big),

    which stays on the simplex for any :math:`\eta_k \in (0, 1]`.

    Parameters
    ----------
    objective : callable
        ``F``, mapping ``(..., n)`` to ``(...)``, differentiable by autograd.
    p0 : torch.Tensor
        Starting points on the simplex, shape ``(..., n)``.
    steps : int
        Number of iterations, ``>= 0``.
    eta : float or None
        Constant step in ``(0, 1]``, or ``None`` for the schedule
        :math:`\eta_k = 2/(k+2)` that makes the gap fall like :math:`O(1/k)`.

    Returns
    -------
    torch.Tensor
        The trajectory, shape ``(steps + 1, ..., n)``; entry 0 is ``p0``.
    """
    p, steps = _start(p0, steps)
    if eta is not None:
        eta = check_positive(eta, "eta")
        if eta > 1:
            raise ValueError(f"eta must be in (0, 1] (a convex combination), got {eta}")
    path = [p]
    for k in range(steps):
        _, g = value_and_grad(objective, p)
        vertex = torch.nn.functional.one_hot(g.argmin(-1), p.shape[-1]).to(p.dtype)
        step = 2.0 / (k + 2) if eta is None else eta
        p = (1 - step) * p + step * vertex
        path.append(p)
    return torch.stack(path)


def projected_gradient(objective: Objective, p0: torch.Tensor, steps: int, eta: float) -> torch.Tensor:
    r"""Projected gradient descent with the Euclidean projection :func:`sparsemax`.

    .. math::

        p_{k+1} = \operatorname{sparsemax}\big(p_k - \eta \nabla F(p_k)\big).

    Parameters as in :func:`frank_wolfe`, with ``eta > 0`` required (for an
    :math:`L`-smooth convex ``F``, :math:`\eta \le 1/L` guarantees descent).
    The gradient must be finite on the iterates: an objective such as the
    entropy, whose gradient is :math:`-\infty` on the boundary, raises a
    ``ValueError`` once an iterate lands there.
    """
    p, steps = _start(p0, steps)
    eta = check_positive(eta, "eta")
    path = [p]
    for k in range(steps):
        _, g = value_and_grad(objective, p)
        if not torch.isfinite(g).all():
            raise ValueError(
                f"the gradient is not finite at iterate {k} (the objective is not differentiable on the "
                "boundary of the simplex); use a smaller eta or mirror_descent"
            )
        p = sparsemax(p - eta * g)
        path.append(p)
    return torch.stack(path)


def mirror_descent(objective: Objective, p0: torch.Tensor, steps: int, eta: float) -> torch.Tensor:
    r"""Mirror descent with the entropy (exponentiated gradient, a softmax update).

    .. math::

        p_{k+1} = \operatorname{softmax}\big(\log p_k - \eta \nabla F(p_k)\big),
        \qquad p_{k+1, i} \propto p_{k,i}\, e^{-\eta (\nabla F(p_k))_i},

    the minimizer of :math:`\eta\, \nabla F(p_k)\cdot p + \operatorname{KL}(p \Vert p_k)`
    over the simplex. Iterates stay in the interior, so ``p0`` must have all
    entries ``> 0``. Other parameters as in :func:`frank_wolfe`, ``eta > 0``.
    """
    p, steps = _start(p0, steps, interior=True)
    eta = check_positive(eta, "eta")
    path = [p]
    for _ in range(steps):
        _, g = value_and_grad(objective, p)
        p = torch.softmax(torch.log(p) - eta * g, dim=-1)
        path.append(p)
    return torch.stack(path)
