r"""Smooth approximations of ``max`` and of what is built from it (chapter 1).

Every formula of chapter 1 lives here. Conventions shared by the library:
the temperature ``tau > 0`` is the inverse of the sharpness ``K`` of the
source posts (``tau = 1/K``), reductions run along ``dim=-1`` by default, and
results keep the dtype and device of the input.

The central object is the temperature-scaled log-sum-exp

.. math::

    \operatorname{smax}_\tau(x) = \tau \log \sum_{i=1}^n e^{x_i/\tau},
    \qquad \max_i x_i \le \operatorname{smax}_\tau(x) \le \max_i x_i + \tau \log n,

whose gradient is the softmax, the smooth version of ``onehot(argmax x)``.
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    check_dim,
    check_floating,
    check_nonempty,
    check_int,
    check_positive,
    check_same_shape,
)

__all__ = [
    "smooth_max",
    "softmax",
    "soft_argmax",
    "smooth_abs",
    "max_via_abs",
    "power_max",
    "loglog_max",
    "soft_accuracy",
    "soft_f1",
    "soft_f1_bias",
]


def _centered(x: torch.Tensor, tau: float, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``((x - m) / tau, m)`` with ``m`` the (detached) max along ``dim``.

    Subtracting the max before dividing by ``tau`` keeps every exponent <= 0,
    so nothing overflows for any input scale or temperature. Where the max is
    not finite (all entries ``-inf``, or some ``+inf``) the shift is 0 and the
    infinities propagate as they should.
    """
    tiny = torch.finfo(x.dtype).tiny
    if tau < tiny:
        raise ValueError(f"tau must be >= {tiny:.3g} (the smallest normal {x.dtype}), got {tau}")
    m = x.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (x - m) / tau, m


def smooth_max(x: torch.Tensor, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""Temperature-scaled log-sum-exp, the smooth maximum.

    .. math::

        \operatorname{smax}_\tau(x) = \tau \log \sum_i e^{x_i/\tau}
        = m + \tau \log \sum_i e^{(x_i - m)/\tau}, \quad m = \max_i x_i,

    which satisfies :math:`\max x \le \operatorname{smax}_\tau(x) \le \max x + \tau \log n`
    and tends to :math:`\max x` as :math:`\tau \to 0`.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor of any shape with at least one dimension. Entries
        equal to ``-inf`` are masked: they do not change the result.
    tau : float
        Temperature, ``tau > 0`` (the posts' sharpness is ``K = 1/tau``).
    dim : int
        Dimension to reduce.

    Returns
    -------
    torch.Tensor
        ``x`` with ``dim`` reduced; same dtype and device. Its gradient with
        respect to ``x`` is :func:`softmax` ``(x, tau, dim)``.
    """
    check_floating(x, "x", min_ndim=1)
    tau = check_positive(tau, "tau")
    dim = check_dim(x, dim)
    check_nonempty(x, dim)
    z, m = _centered(x, tau, dim)
    return (m + tau * torch.logsumexp(z, dim=dim, keepdim=True)).squeeze(dim)


def softmax(x: torch.Tensor, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""Softmax at temperature ``tau``, the smooth ``onehot(argmax x)``.

    .. math::

        \operatorname{softmax}_\tau(x)_i = \frac{e^{x_i/\tau}}{\sum_j e^{x_j/\tau}}
        = \frac{\partial}{\partial x_i} \operatorname{smax}_\tau(x).

    Entries equal to ``-inf`` get probability 0. Parameters as in
    :func:`smooth_max`; the result has the shape of ``x``.
    """
    check_floating(x, "x", min_ndim=1)
    tau = check_positive(tau, "tau")
    dim = check_dim(x, dim)
    check_nonempty(x, dim)
    z, _ = _centered(x, tau, dim)
    return torch.softmax(z, dim=dim)


def soft_argmax(x: torch.Tensor, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""Expected index under the softmax, a smooth (0-based) ``argmax``.

    .. math::

        \operatorname{soft\,argmax}_\tau(x) = \sum_{i=0}^{n-1} i \,\operatorname{softmax}_\tau(x)_i .

    It is an average of positions, so with two separated maxima of similar
    height it lands between them, at an index that is no maximum at all.
    Parameters as in :func:`smooth_max`; ``dim`` is reduced.
    """
    p = softmax(x, tau, dim)
    dim = check_dim(x, dim)
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    index = torch.arange(x.shape[dim], dtype=x.dtype, device=x.device).reshape(shape)
    return (p * index).sum(dim=dim)


def smooth_abs(x: torch.Tensor, tau: float = 1.0, exact: bool = True) -> torch.Tensor:
    r"""Smooth ``|x|`` obtained by integrating a sigmoid step (elementwise).

    Since :math:`|x|' = 2\theta(x) - 1` with :math:`\theta` the unit step,
    replacing :math:`\theta(x)` by :math:`\sigma(x/\tau)` and integrating gives

    .. math::

        a_\tau(x) = 2\tau \log(1 + e^{x/\tau}) - x = \tau \log\left(2 + e^{x/\tau} + e^{-x/\tau}\right)
        \qquad (\text{exact=True}),

    with :math:`0 < a_\tau(x) - |x| \le 2\tau\log 2`. Dropping the constant 2
    inside the log gives :math:`\tau \log(e^{x/\tau} + e^{-x/\tau})` (``exact=False``),
    whose error lies in :math:`(0, \tau \log 2]`: half the worst case. Both are
    evaluated as :math:`|x| + 2\tau\log(1 + e^{-|x|/\tau})` and
    :math:`|x| + \tau\log(1 + e^{-2|x|/\tau})`, exact to rounding at any scale.
    """
    check_floating(x, "x")
    tau = check_positive(tau, "tau")
    a = x.abs()
    if exact:
        return a + 2 * tau * torch.log1p(torch.exp(-a / tau))
    return a + tau * torch.log1p(torch.exp(-2 * a / tau))


def max_via_abs(x: torch.Tensor, y: torch.Tensor, tau: float = 1.0, exact: bool = True) -> torch.Tensor:
    r"""The 2015 route to a smooth ``max(x, y)`` through a smooth ``|.|``.

    .. math::

        \max(x, y) = \tfrac12\left(|x + y| + |x - y|\right) \quad (x, y \ge 0),

    with :func:`smooth_abs` in place of :math:`|\cdot|`. The identity holds
    only for non-negative arguments: in general the right side equals
    :math:`\max(|x|, |y|)`.
    """
    check_floating(x, "x")
    check_floating(y, "y")
    return 0.5 * (smooth_abs(x + y, tau, exact) + smooth_abs(x - y, tau, exact))


def power_max(x: torch.Tensor, p: int, dim: int = -1) -> torch.Tensor:
    r"""Odd-power mean ``(sum x_i^p)^(1/p)`` with ``p`` odd, as in the 2015 post.

    .. math::

        \max_p(x) = \operatorname{sign}(s)\,|s|^{1/p}, \qquad s = \sum_i x_i^{p},

    computed as :math:`M \max_p(x / M)` with :math:`M = \max_i |x_i|` so that
    no power overflows. For :math:`x \ge 0` it tends to :math:`\max x` with
    relative error at most :math:`n^{1/p} - 1`. For negative entries it tends
    to the entry of largest magnitude, which is not the max:
    :math:`\max_p(-1, -2) \to -2`.

    Parameters
    ----------
    x : torch.Tensor
        Floating tensor, reduced along ``dim``.
    p : int
        Odd exponent ``p >= 1`` (the post writes ``p = 2k + 1``).
    dim : int
        Dimension to reduce.
    """
    check_floating(x, "x", min_ndim=1)
    p = check_int(p, "p", 1)
    if p % 2 == 0:
        raise ValueError(f"p must be an odd int >= 1, got {p}")
    dim = check_dim(x, dim)
    check_nonempty(x, dim)
    scale = x.abs().amax(dim=dim, keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    s = (x / scale).pow(p).sum(dim=dim, keepdim=True)
    return (torch.sign(s) * s.abs().pow(1.0 / p) * scale).squeeze(dim)


def loglog_max(x: torch.Tensor, tau: float = 1.0, dim: int = -1) -> torch.Tensor:
    r"""The 2015 post's double-exponential smooth max.

    .. math::

        \tau \log \log \sum_i \exp\!\left(e^{x_i/\tau}\right)
        = \tau \,\operatorname{logaddexp}\!\left(U, \log s\right),

        U = \max_i \frac{x_i}{\tau},\qquad
        s = \log \sum_i \exp\!\left(e^{x_i/\tau} - e^{U}\right),

    evaluated in that second form, which never overflows. For positive,
    well separated entries it is far closer to ``max`` than log-sum-exp, but
    it is not shift-invariant, and for negative entries it tends to 0, not to
    the max: it approximates :math:`\max(x_1, \dots, x_n, 0)`.
    """
    check_floating(x, "x", min_ndim=1)
    tau = check_positive(tau, "tau")
    dim = check_dim(x, dim)
    check_nonempty(x, dim)
    if x.shape[dim] == 1:
        return x.squeeze(dim)  # tau log log exp(exp(x/tau)) = x exactly
    u = x / tau
    big = u.amax(dim=dim, keepdim=True)
    # gaps e^{u_i} - e^{U} = -exp(U + log(1 - e^{u_i - U})), exactly 0 where u_i = U;
    # those entries take a dummy value inside the log, so no log(0) reaches backward.
    d = u - big
    at_max = d == 0
    safe = torch.where(at_max, torch.full_like(d, -1.0), d)
    gaps = torch.where(at_max, torch.zeros_like(d), -torch.exp(big + torch.log(-torch.expm1(safe))))
    # s = log(1 + r) with r = sum of e^{gap} over all entries but one maximal one;
    # log s = log(log1p(e^L)), L = log r, which is L to rounding once L < -37.
    first = torch.zeros_like(d, dtype=torch.bool).scatter(dim, d.argmax(dim=dim, keepdim=True), True)
    log_r = torch.logsumexp(gaps.masked_fill(first, -math.inf), dim=dim, keepdim=True)
    small = log_r < -37
    log_s = torch.where(small, log_r, torch.log(torch.log1p(torch.exp(log_r.masked_fill(small, 0.0)))))
    return (tau * torch.logaddexp(big, log_s)).squeeze(dim)


def soft_accuracy(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Soft accuracy: the mean probability given to the true class.

    .. math::

        \operatorname{acc}_{\text{soft}} = \frac{1}{N} \sum_{b=1}^{N} \langle \mathbf{1}_{t_b}, p_b \rangle
        = \frac{1}{N} \sum_{b=1}^{N} p_{b, t_b},

    the accuracy with the one-hot prediction replaced by the predicted
    distribution. On one-hot ``probs`` it is the ordinary accuracy.

    Parameters
    ----------
    probs : torch.Tensor
        Class probabilities, shape ``(..., N, C)``, floating.
    targets : torch.Tensor
        Integer class indices in ``[0, C)``, shape ``(..., N)``. Checking the
        range reads the values (one host synchronization).

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: one soft accuracy per batch.
    """
    check_floating(probs, "probs", min_ndim=2)
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or targets.is_complex():
        raise TypeError("targets must be an integer tensor of class indices")
    if targets.shape != probs.shape[:-1]:
        raise ValueError(
            f"targets must have shape probs.shape[:-1] = {tuple(probs.shape[:-1])}, "
            f"got {tuple(targets.shape)}"
        )
    n_classes = probs.shape[-1]
    if targets.numel() and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(
            f"targets must be class indices in [0, {n_classes - 1}], got values in "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )
    picked = probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    return picked.mean(dim=-1)


def _f1_parts(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample numerator ``2 t p`` and denominator ``t + p`` of soft F1."""
    check_floating(probs, "probs", min_ndim=1)
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    check_same_shape(probs, targets, ("probs", "targets"))
    t = targets.to(probs.dtype)
    return 2 * t * probs, t + probs


def soft_f1(probs: torch.Tensor, targets: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Soft F1 of the positive class, a differentiable surrogate of F1.

    .. math::

        F_1^{\text{soft}} = \frac{2 \sum_b t_b p_b}{\sum_b (t_b + p_b)},

    which is the ordinary F1 score when ``probs`` holds hard 0/1 predictions
    (``2 TP / (2 TP + FP + FN)``). A batch of zeros with no positive target
    scores 0.

    Parameters
    ----------
    probs : torch.Tensor
        Predicted probabilities of the positive class, floating, in [0, 1].
    targets : torch.Tensor
        Labels in {0, 1} (bool, int or float), same shape as ``probs``.
    dim : int
        The batch dimension to reduce; the others are kept (many batches at once).
    """
    num, den = _f1_parts(probs, targets)
    dim = check_dim(probs, dim)
    num, den = num.sum(dim=dim), den.sum(dim=dim)
    ok = den > torch.finfo(den.dtype).tiny
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den))


def soft_f1_bias(probs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    r"""First-order bias of soft F1 estimated on random minibatches.

    Soft F1 is a ratio of means, :math:`\hat F = \bar a / \bar b` with
    :math:`a = 2tp` and :math:`b = t + p`. For a batch of ``B`` samples drawn
    uniformly with replacement from the data set, a second-order expansion of
    :math:`\bar a / \bar b` around the population means gives

    .. math::

        \mathbb{E}[\hat F_B] - F = \frac{F \operatorname{Var}(b) - \operatorname{Cov}(a, b)}{B\, \mu_b^2}
        + O(B^{-2}), \qquad F = \mu_a / \mu_b,

    so the minibatch estimate is biased by a term of order ``1/B``.

    Parameters
    ----------
    probs, targets : torch.Tensor
        The whole data set, shape ``(..., N)`` (the last dim is the data set).
    batch_size : int
        ``B >= 1``.

    Returns
    -------
    torch.Tensor
        The predicted bias, shape ``(...)``.
    """
    a, b = _f1_parts(probs, targets)
    batch_size = check_int(batch_size, "batch_size", 1)
    mu_a, mu_b = a.mean(dim=-1), b.mean(dim=-1)
    ratio = mu_a / mu_b
    var_b = b.var(dim=-1, correction=0)
    cov_ab = ((a - mu_a.unsqueeze(-1)) * (b - mu_b.unsqueeze(-1))).mean(dim=-1)
    return (ratio * var_b - cov_ab) / (batch_size * mu_b**2)
