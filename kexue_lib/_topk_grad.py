r"""GradTopK through elementary symmetric polynomials, by trees of polynomial products (private).

:math:`Z_k = \sum_{|S| = k} e^{\sum_{i\in S} u_i} = e_k(e^{u_1},\dots,e^{u_n})` is the
coefficient of :math:`z^k` in :math:`\prod_i (1 + e^{u_i} z)`. Multiplying the
``n`` linear factors pairwise, level by level, and dropping powers above ``k``
gives :math:`Z_0, \dots, Z_k` in :math:`\lceil\log_2 n\rceil` vectorized levels.
Every coefficient is a sum of positive terms, so nothing cancels (unlike the
recursion of the post, which subtracts). Two versions:

- :func:`log_esp` works in log space (each product a log-sum-exp over the
  anti-diagonals of an outer sum), exact at every degree; empty products use
  a finite "log zero" so that autograd never meets ``-inf - (-inf)``;
- :func:`grad_topk` rescales the factors into probability generating functions
  :math:`1 - q_i + q_i z` with :math:`q_i = \sigma(u_i - \lambda)` and works in linear
  space (:func:`count_distribution`), which is several times cheaper and, with
  :math:`\lambda` the sigmoid threshold, just as safe for the degree ``k`` it needs.
"""

from __future__ import annotations

import functools
import math

import torch


def log_zero(dtype: torch.dtype) -> float:
    """A finite stand-in for ``log 0``: far below any score, and safe to add ``2**20`` times."""
    return torch.finfo(dtype).min / 2.0**21


def _log_polymul(a: torch.Tensor, b: torch.Tensor, degree: int) -> torch.Tensor:
    """Log-space product of polynomials ``a, b`` (coefficients on the last dim), truncated."""
    d = a.shape[-1]
    outer = a.unsqueeze(-1) + b.unsqueeze(-2)  # (..., d, d), entry [i, j] is degree i + j
    lz = log_zero(a.dtype)
    skew = torch.nn.functional.pad(outer, (0, d), value=lz).flatten(-2)[..., : 2 * d * d - d]
    skew = skew.unflatten(-1, (d, 2 * d - 1))  # row i shifted right by i: column = i + j
    return torch.logsumexp(skew[..., : degree + 1], dim=-2)


def log_esp(u: torch.Tensor, k: int) -> torch.Tensor:
    r"""``log e_j(e^u)`` for ``j = 0..k`` along the last dim (masked ``-inf`` entries drop out).

    Entries of degree above the number of unmasked scores are :func:`log_zero`
    plus small terms rather than ``-inf``.
    """
    n = u.shape[-1]
    lz = log_zero(u.dtype)
    leaves = torch.stack([torch.zeros_like(u), u.clamp_min(lz)], dim=-1)  # (..., n, 2)
    width = 1 << max(0, math.ceil(math.log2(n)))
    if width > n:
        pad = leaves.new_full((*u.shape[:-1], width - n, 2), lz)
        pad[..., 0] = 0.0
        leaves = torch.cat([leaves, pad], dim=-2)
    poly = leaves
    while poly.shape[-2] > 1:
        poly = _log_polymul(poly[..., 0::2, :], poly[..., 1::2, :], k)
    out = poly[..., 0, :]
    if out.shape[-1] < k + 1:  # only when k > n, kept for completeness
        out = torch.cat([out, out.new_full((*out.shape[:-1], k + 1 - out.shape[-1]), lz)], dim=-1)
    return out


@functools.lru_cache(maxsize=64)
def _antidiagonal(d: int, degree: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 0/1 matrix ``M`` with ``M[i*d + j, i + j] = 1`` for ``i + j <= degree``: ``outer.flatten() @ M``
    sums the anti-diagonals of a ``d x d`` outer product (a matmul, whose backward is a matmul too)."""
    i = torch.arange(d, device=device)
    target = (i[:, None] + i[None, :]).flatten()
    return (target[:, None] == torch.arange(degree + 1, device=device)).to(dtype)


def _polymul(a: torch.Tensor, b: torch.Tensor, degree: int) -> torch.Tensor:
    """Product of polynomials with non-negative coefficients on the *first* dim, truncated to ``degree``.

    Coefficients come first and the nodes (times the batch) last, so every
    elementwise product runs over long contiguous rows, and the sums over
    anti-diagonals are one matrix product with a constant 0/1 matrix.
    """
    d = a.shape[0]
    outer = (a.unsqueeze(1) * b.unsqueeze(0)).flatten(0, 1)  # (d*d, ...)
    m = _antidiagonal(d, min(degree, 2 * d - 2), a.dtype, a.device)  # (d*d, D)
    return (m.T @ outer.flatten(1)).unflatten(1, outer.shape[1:])


def count_distribution(r: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    r"""``P(B_1 + ... + B_n = j)``, ``j = 0..k``, for independent :math:`B_i \sim \text{Bernoulli}(q_i)`.

    The coefficients of :math:`\prod_i (r_i + q_i z)` with :math:`r_i = 1 - q_i` (passed
    separately, so that it keeps full precision when :math:`q_i` is close to 1), by
    the same tree of products as :func:`log_esp` but in linear space: every
    coefficient is a probability, so nothing overflows and nothing cancels. The
    ``n`` entries are on the first dim of ``r`` and ``q`` (any batch dims after
    it); the result has the ``k + 1`` probabilities on its first dim.
    """
    n = q.shape[0]
    width = 1 << max(0, math.ceil(math.log2(n)))
    if width > n:
        r = torch.cat([r, r.new_ones((width - n, *r.shape[1:]))])
        q = torch.cat([q, q.new_zeros((width - n, *q.shape[1:]))])
    if width == 1:
        poly = torch.stack([r, q])[: k + 1]
    else:  # the first, largest level, (r_i + q_i z)(r_j + q_j z), directly
        rl, rr = r.unflatten(0, (width // 2, 2)).unbind(1)
        ql, qr = q.unflatten(0, (width // 2, 2)).unbind(1)
        poly = torch.stack([rl * rr, torch.addcmul(rl * qr, ql, rr), ql * qr][: k + 1])
    while poly.shape[1] > 1:
        left, right = poly.unflatten(1, (poly.shape[1] // 2, 2)).unbind(2)
        poly = _polymul(left, right, k)
    return poly[:, 0]


def grad_topk(u: torch.Tensor, k: int, lam: torch.Tensor) -> torch.Tensor:
    r"""GradTopK along the last dim, :math:`p = \nabla_u \log e_k(e^u)`.

    For any constant :math:`\lambda`, with :math:`q_i = \sigma(u_i - \lambda)`,

    .. math::

        \log e_k(e^u) = k\lambda + \sum_i \log(1 + e^{u_i - \lambda})
        + \log P\Big(\sum_i B_i = k\Big), \qquad B_i \sim \text{Bernoulli}(q_i),

    and with :math:`\lambda` the sigmoid ThreTopK threshold (``lam``, so that
    :math:`\sum_i q_i = k`) the last probability is of order
    :math:`1/\sqrt{\operatorname{Var}}`, never tiny; a threshold within
    :math:`\log 2` of it (the Laplace one) keeps :math:`\sum_i q_i` in
    :math:`[k/2, 2k]`, and the probability near :math:`e^{-0.31k}/\sqrt{k}` at worst
    by a Poisson estimate (used for ``k <= 64``).
    This is the form evaluated, with :func:`count_distribution`. GradTopK is thus the conditional
    Bernoulli law: :math:`p_i = P(B_i = 1 \mid \sum_j B_j = k)`, while the sigmoid
    ThreTopK is the unconditional :math:`q_i`. Rows with at most ``k``
    unmasked entries (``lam = -inf``) get 1 on each of them. If ``u`` requires
    grad the first derivative is taken with ``create_graph=True``, so the
    mask's own backward is the Hessian-vector product of :math:`\log e_k`.
    """
    unmasked = u > -math.inf
    feasible = lam > -math.inf
    lam = torch.where(feasible, lam, 0.0)
    track = u.requires_grad and torch.is_grad_enabled()
    with torch.enable_grad():
        v = u if track else u.detach().requires_grad_()
        z = torch.where(feasible, v - lam, 0.0)
        zt = z.movedim(-1, 0).contiguous()  # entries first, batch last: long contiguous rows in the tree
        qt = torch.sigmoid(zt)  # q; also the gradient of the softplus term, written out
        log_prob_k = torch.log(count_distribution(torch.sigmoid(-zt), qt, k)[k])
        (correction,) = torch.autograd.grad(log_prob_k.sum(), v, create_graph=track)
        # back to the batch-first layout; the sum rounds to -1e-17 where q is tiny, hence the clamp
        p = (correction + qt.movedim(0, -1)).clamp(0.0, 1.0).contiguous()
        p = p if track else p.detach()
    return torch.where(feasible, p, unmasked.to(p.dtype))
