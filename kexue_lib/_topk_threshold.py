r"""ThreTopK: the threshold methods of :func:`kexue_lib.topk.soft_topk` (private).

For an increasing S-curve :math:`f:\mathbb{R}\to[0,1]` and scores :math:`u = x/\tau`,
the soft mask is :math:`p_i = f(u_i - \lambda)` with the threshold :math:`\lambda(u)`
fixed by :math:`\sum_i f(u_i - \lambda) = k`. Three curves are supported:

- ``"exp"``: :math:`f(v) = \min(1, e^v)`;
- ``"laplace"``: :math:`f(v) = 1 - e^{-v}/2` for :math:`v \ge 0`, :math:`e^v/2` otherwise
  (the CDF of the standard Laplace distribution);
- ``"sigmoid"``: :math:`f(v) = 1/(1 + e^{-v})`.

Only the entries above the threshold make the equation piecewise, and few can
be above it (at most ``k - 1`` for ``"exp"``, at most ``2k - 1`` for
``"laplace"``, since each contributes at least 1/2). So a cheap
``torch.topk`` gives the candidates :math:`t_1 \ge \dots \ge t_K`, and for each
count ``m`` of entries above the threshold the equation has a closed form in
:math:`\log B_m = \log\sum_{i>m} e^{u_{(i)}}` (everything but the top ``m``; the
part outside the candidates is one masked log-sum-exp, never a subtraction)
and :math:`\log A_m = \log\sum_{i\le m} e^{-t_i}`. The right ``m`` is the number
of candidates with :math:`F(t_m) \le k`, where :math:`F(\lambda) = \sum_i f(u_i - \lambda)`
is decreasing; :math:`F(t_m)` also has a closed form. ``"sigmoid"`` starts from
the Laplace threshold, which brackets it within :math:`\pm\log 2` (because
:math:`f_L(v - \log 2) \le \sigma(v) \le f_L(v + \log 2)`), and refines it with
a fixed number of safeguarded Newton steps. No step reads a tensor value on
the host, so the whole computation runs unchanged on a GPU.

The backward pass is the implicit-function gradient, not autograd through the
solver: with :math:`f'_i = f'(u_i - \lambda)`,

.. math::

    \frac{\partial\lambda}{\partial u_j} = \frac{f'_j}{\sum_i f'_i}, \qquad
    \Big(\frac{\partial p}{\partial u}\Big)^{\!\top} g
    = f' \odot \Big(g - \frac{\sum_j f'_j g_j}{\sum_j f'_j}\Big),

and :math:`f'` is a function of :math:`p` alone (:math:`p(1-p)`,
:math:`\min(p, 1-p)`, and :math:`p\,[p<1]`).
"""

from __future__ import annotations

import math

import torch

NEWTON_STEPS = 3
"""Newton steps of the sigmoid threshold in float64 before the final linearized step
(one fewer in lower precision): quadratic convergence from the Laplace start, which
is within log 2 of the root."""


def _split(u: torch.Tensor, K: int) -> tuple[torch.Tensor, ...]:
    r"""Candidates and the masked rest, in a few passes over ``u``.

    Returns ``t, idx`` (top ``K``, descending), ``log_b`` (:math:`\log B_m`,
    ``m = 0..K``), ``w = exp(u - s)`` with zeros at the candidates, where ``s``
    (``shift``) is the largest non-candidate (so ``w <= 1``), and ``w_sum``.
    """
    n = u.shape[-1]
    if K < n:
        t, idx = torch.topk(u, K + 1, dim=-1)
        shift, t, idx = t[..., K:], t[..., :K], idx[..., :K]
        shift = torch.where(shift > -math.inf, shift, 0.0)
        w = torch.sub(u, shift).exp_().scatter_(-1, idx, 0.0)
        w_sum = w.sum(dim=-1, keepdim=True)
        rest = torch.log(w_sum) + shift
    else:
        t, idx = torch.topk(u, K, dim=-1)
        shift = torch.zeros_like(t[..., :1])
        w, w_sum = None, shift
        rest = torch.full_like(shift, -math.inf)
    log_b = torch.logcumsumexp(torch.cat([rest, t.flip(-1)], dim=-1), dim=-1).flip(-1)
    return t, idx, log_b, w, w_sum, shift


def _finite(lam: torch.Tensor) -> torch.Tensor:
    """``lambda`` with ``-inf`` (all unmasked entries saturated) replaced by the lowest finite value."""
    return lam.clamp_min(torch.finfo(lam.dtype).min)


def _pick(lam_m: torch.Tensor, t: torch.Tensor, F_t: torch.Tensor, k: int) -> torch.Tensor:
    """The threshold of the consistent count ``m = #{m : F(t_m) <= k}``."""
    m = ((F_t <= k) & (t > -math.inf)).sum(dim=-1, keepdim=True)
    return lam_m.gather(-1, m)


def _lambda_exp(t: torch.Tensor, log_b: torch.Tensor, k: int) -> torch.Tensor:
    r"""Threshold for :math:`f(v)=\min(1,e^v)` with ``m`` saturated: :math:`\lambda = \log B_m - \log(k - m)`."""
    K = t.shape[-1]
    m = torch.arange(K + 1, dtype=t.dtype, device=t.device)
    lam_m = torch.where(m < k, log_b - torch.log((k - m).clamp_min(1)), -math.inf)
    F_t = m[1:] + torch.exp(log_b[..., 1:] - t)
    if K == k:  # F(t_k) = k + (rest) rounds to k: all k saturate only if the rest is masked
        F_t[..., -1] = torch.where(log_b[..., -1] > -math.inf, math.inf, F_t[..., -1])
    return _pick(lam_m, t, F_t, k)


def _lambda_laplace(t: torch.Tensor, log_b: torch.Tensor, k: int) -> torch.Tensor:
    r"""Threshold for the Laplace CDF with ``m`` entries above it.

    :math:`k = m - \tfrac12 e^{\lambda}A_m + \tfrac12 e^{-\lambda}B_m` gives
    :math:`\lambda = \log B_m - \log\big(c + \sqrt{c^2 + A_m B_m}\big)` with
    :math:`c = k - m`; for :math:`c < 0` the equivalent
    :math:`\lambda = \log\big(|c| + \sqrt{c^2 + A_m B_m}\big) - \log A_m` avoids the cancellation.
    """
    K = t.shape[-1]
    m = torch.arange(K + 1, dtype=t.dtype, device=t.device)
    log_a = torch.cat([torch.full_like(t[..., :1], -math.inf), torch.logcumsumexp(-t, dim=-1)], dim=-1)
    c = k - m
    log_c = torch.log(c.abs())
    log_q = 0.5 * torch.logaddexp(2 * log_c, log_a + log_b)
    log_cq = torch.logaddexp(log_c, log_q)
    lam_pos = torch.where(log_b > -math.inf, log_b - log_cq, -math.inf)
    lam_m = torch.where(c >= 0, lam_pos, log_cq - log_a)
    F_t = m[1:] - 0.5 * torch.exp(t + log_a[..., 1:]) + 0.5 * torch.exp(log_b[..., 1:] - t)
    return _pick(lam_m, t, F_t, k)


def _newton_sigmoid(u: torch.Tensor, k: int, start: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Safeguarded Newton steps on :math:`\log F(\lambda) = \log k` inside ``start +- log 2``.

    Returns the last iterate ``lam`` and ``s = sigmoid(u - lam)`` (one work buffer
    reused by every step). Newton on :math:`\log F` rather than :math:`F` is exact in
    one step when all scores sit in the exponential tail, and converges
    quadratically in every case from within :math:`\log 2`.
    """
    finite = start > -math.inf
    lam = _finite(start)  # rows with at most k unmasked entries: s = 1 on them, Newton steps are no-ops
    lo, hi = lam - math.log(2.0), lam + math.log(2.0)
    s = torch.empty_like(u)
    for step in range(steps + 1):
        torch.sub(u, lam, out=s).sigmoid_()
        if step == steps:
            break
        total = s.sum(dim=-1, keepdim=True)
        slope = total - torch.linalg.vecdot(s, s).unsqueeze(-1)
        lo = torch.where(total > k, lam, lo)
        hi = torch.where(total < k, lam, hi)
        newton = lam + (torch.log(total) - math.log(k)) * total / slope
        lam = torch.where((newton >= lo) & (newton <= hi), newton, lo + 0.5 * (hi - lo))
    return torch.where(finite, lam, start), s


def sigmoid_mask(u: torch.Tensor, k: int, steps: int | None = None) -> torch.Tensor:
    r"""The sigmoid ThreTopK mask: Newton steps, then one linearized step on the mask itself.

    With :math:`s = \sigma(u - \lambda)` at the last iterate, a further Newton step
    :math:`\delta = (k - \sum s)/\sum s(1-s)` would move every entry by
    :math:`\delta\, s(1-s)` to first order; applying that directly,
    :math:`p = s + \delta\, s(1 - s)`, costs one pass instead of four, makes
    :math:`\sum p = k` exactly, and differs from :math:`\sigma(u - \lambda - \delta)`
    by :math:`O(\delta^2)`, far below the working precision after the steps taken.
    """
    steps = newton_steps(u.dtype) if steps is None else steps
    start = lambda_laplace(u, k)
    lam, s = _newton_sigmoid(u, k, start, steps)
    total = s.sum(dim=-1, keepdim=True)
    slope = total - torch.linalg.vecdot(s, s).unsqueeze(-1)
    delta = ((k - total) / torch.where(slope > 0, slope, 1.0)).clamp(-0.5, 0.5)
    delta = torch.where(start > -math.inf, delta, 0.0)
    # p = s (1 + delta (1 - s)) = s * (1 + delta - delta * s)
    return torch.addcmul(1 + delta, delta, s, value=-1).mul_(s)  # in [0, 1] since |delta| <= 1/2


def lambda_exp(u: torch.Tensor, k: int) -> torch.Tensor:
    """Threshold of ``"exp"`` along the last dim (trailing dim of size 1)."""
    t, _, log_b, *_ = _split(u, min(u.shape[-1], k))
    return _lambda_exp(t, log_b, k)


def lambda_laplace(u: torch.Tensor, k: int) -> torch.Tensor:
    """Threshold of ``"laplace"`` along the last dim (trailing dim of size 1)."""
    t, _, log_b, *_ = _split(u, min(u.shape[-1], 2 * k))
    return _lambda_laplace(t, log_b, k)


def lambda_sigmoid(u: torch.Tensor, k: int, steps: int | None = None) -> torch.Tensor:
    r"""Threshold of ``"sigmoid"``: Newton steps from the Laplace threshold (one more than the mask uses)."""
    steps = newton_steps(u.dtype) + 1 if steps is None else steps
    return _newton_sigmoid(u, k, lambda_laplace(u, k), steps)[0]


def newton_steps(dtype: torch.dtype) -> int:
    """Newton steps for the sigmoid threshold: enough for the dtype's precision."""
    return NEWTON_STEPS if dtype == torch.float64 else NEWTON_STEPS - 1


_LAMBDA = {"exp": lambda_exp, "laplace": lambda_laplace, "sigmoid": lambda_sigmoid}


def curve(v: torch.Tensor, method: str) -> torch.Tensor:
    """The S-curve ``f`` of a threshold method, elementwise."""
    if method == "sigmoid":
        return torch.sigmoid(v)
    if method == "exp":
        return torch.exp(v.clamp_max(0))
    e = torch.exp(-v.abs()).mul_(0.5)
    return torch.where(v >= 0, 1 - e, e)


def curve_slope(p: torch.Tensor, method: str) -> torch.Tensor:
    """``f'(v)`` written as a function of ``p = f(v)``."""
    if method == "sigmoid":
        return p * (1 - p)
    if method == "exp":
        return torch.where(p < 1, p, 0.0)
    return torch.minimum(p, 1 - p)


def threshold(u: torch.Tensor, k: int, method: str) -> torch.Tensor:
    """``lambda(u)`` along the last dim, with a trailing dim of size 1 (no gradient)."""
    with torch.no_grad():
        return _LAMBDA[method](u, k)


def soft_mask(u: torch.Tensor, lam: torch.Tensor, method: str) -> torch.Tensor:
    """``f(u - lambda)`` (0 at masked ``-inf`` entries; 1 elsewhere when ``lambda = -inf``)."""
    return curve(u - _finite(lam), method)


def _forward_closed(u: torch.Tensor, k: int, method: str) -> tuple[torch.Tensor, ...]:
    r"""``"exp"``/``"laplace"``: every non-candidate is below the threshold, so there
    :math:`p = c\,e^{u - \lambda} = c\,w\,e^{s - \lambda}` (``c`` = 1 or 1/2) and
    :math:`f' = p`; only the ``K`` candidates need the curve itself."""
    K = min(u.shape[-1], k if method == "exp" else 2 * k)
    t, idx, log_b, w, w_sum, shift = _split(u, K)
    lam = (_lambda_exp if method == "exp" else _lambda_laplace)(t, log_b, k)
    scale = torch.where(lam > -math.inf, torch.exp(shift - _finite(lam)), 0.0)
    if method == "laplace":
        scale = 0.5 * scale
    p_cand = curve(t - _finite(lam), method)
    slope_cand = curve_slope(p_cand, method)
    p = torch.zeros_like(u) if w is None else w.mul_(scale)
    p.scatter_(-1, idx, p_cand)
    return p, idx, slope_cand, w_sum * scale + slope_cand.sum(dim=-1, keepdim=True)


class ThresholdTopK(torch.autograd.Function):
    """``p = f(x/tau - lambda(x/tau))`` with the implicit-function backward (last dim)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int, tau: float, method: str) -> torch.Tensor:  # type: ignore[override]
        u = x / tau if tau != 1.0 else x
        ctx.tau, ctx.method = tau, method
        if method == "sigmoid":
            p = sigmoid_mask(u, k)
            ctx.save_for_backward(p)
            return p
        p, idx, slope_cand, total = _forward_closed(u, k, method)
        ctx.save_for_backward(p, idx, slope_cand, total)
        return p

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if ctx.method == "sigmoid":
            (p,) = ctx.saved_tensors
            slope = torch.addcmul(p, p, p, value=-1)  # p (1 - p)
            total = slope.sum(dim=-1, keepdim=True)
            mean = torch.linalg.vecdot(slope, grad).unsqueeze(-1) / torch.where(total > 0, total, 1.0)
            out = (grad - mean).mul_(slope)
        else:
            # f' = p off the candidates: sum f' g = p.g - (p g)[cand] + (f' g)[cand]
            p, idx, slope_cand, total = ctx.saved_tensors
            g_cand = grad.gather(-1, idx)
            p_cand = p.gather(-1, idx)
            dot = torch.linalg.vecdot(p, grad) + torch.linalg.vecdot(slope_cand - p_cand, g_cand)
            mean = dot.unsqueeze(-1) / torch.where(total > 0, total, 1.0)
            out = (grad - mean).mul_(p)
            out.scatter_(-1, idx, slope_cand * (g_cand - mean))
        return (out / ctx.tau if ctx.tau != 1.0 else out), None, None, None
