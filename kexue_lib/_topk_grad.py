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
- :class:`GradTopK` rescales the factors into probability generating functions
  :math:`1 - q_i + q_i z` with :math:`q_i = \sigma(u_i - \lambda)` and works in linear
  space, with a hand-written downward pass for :math:`p` and a perturbation
  pass for its backward: several times cheaper than autograd through the tree,
  and with :math:`\lambda` near the sigmoid threshold just as safe for the degree
  ``k`` it needs.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable


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


def _polymul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, accumulate: bool = False) -> torch.Tensor:
    """``out (+)= a * b``: product of polynomials, coefficients on the first dim, truncated to ``len(out)``.

    One fused multiply-add per coefficient of the shorter factor, each over
    contiguous rows of all the nodes (and the batch) at once.
    """
    if a.shape[0] > b.shape[0]:
        a, b = b, a
    size = out.shape[0]
    for i in range(min(a.shape[0], size)):
        m = min(b.shape[0], size - i)
        if i == 0 and not accumulate:
            torch.mul(a[:1], b[:m], out=out[:m])
            out[m:].zero_()
        else:
            out[i : i + m].addcmul_(a[i : i + 1], b[:m])
    return out


def _message(outer: torch.Tensor, sibling: torch.Tensor, out: torch.Tensor, first: int = 0, accumulate: bool = False) -> torch.Tensor:
    r"""The downward message to a child: ``out[j - first] (+)= sum_m outer[j + m] * sibling[m]``, ``first <= j < first + len(out)``.

    If ``outer[j]`` is the derivative of :math:`Z_k` with respect to coefficient
    ``j`` of the parent, the message is its derivative with respect to coefficient
    ``j`` of the child (the parent is child times sibling). The parent has at
    least as many coefficients as the child, so the first term fills ``out``.
    """
    stop = first + out.shape[0]
    for m in range(sibling.shape[0]):
        hi = min(stop, outer.shape[0] - m)
        if hi <= first:
            break
        if m == 0 and not accumulate:
            torch.mul(outer[first:hi], sibling[:1], out=out)
        else:
            out[: hi - first].addcmul_(outer[first + m : hi + m], sibling[m : m + 1])
    return out


def _halves(poly: torch.Tensor, pad: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and second half of the nodes (dim 1), after appending one node ``pad + 0 z`` if their number is odd."""
    if poly.shape[1] % 2:
        extra = poly.new_zeros((poly.shape[0], 1, *poly.shape[2:]))
        extra[0] = pad
        poly = torch.cat([poly, extra], dim=1)
    return poly.tensor_split(2, dim=1)


Pairs = list[tuple[torch.Tensor, torch.Tensor, int]]


def _up(leaves: torch.Tensor, k: int) -> tuple[Pairs, torch.Tensor]:
    """Multiply the nodes pairwise, level by level, truncated to degree ``k``.

    Returns the root and, for each level, its two halves and its number of nodes.
    """
    pairs = []
    poly = leaves
    while poly.shape[1] > 1:
        left, right = _halves(poly, 1.0)
        pairs.append((left, right, poly.shape[1]))
        size = min(left.shape[0] + right.shape[0] - 1, k + 1)
        poly = _polymul(left, right, left.new_empty((size, *left.shape[1:])))
    return pairs, poly


def _down(pairs: Pairs, top: torch.Tensor, perturbed: tuple[list[torch.Tensor], list] | None = None) -> list[torch.Tensor]:
    r"""Messages from the root down to every level; the leaves' message keeps only coefficient 1.

    ``top`` is the root's message (the indicator of degree ``k``). With
    ``perturbed = (messages, dpairs)`` (the messages of a first call and the
    perturbed halves of every level) it returns the perturbed messages instead:
    :math:`\delta\,\text{message}(\text{outer}, \text{sibling}) = \text{message}(\delta\text{outer}, \text{sibling})
    + \text{message}(\text{outer}, \delta\text{sibling})`, where the root's own is 0;
    only the leaves' perturbed message is kept and returned. Coefficient 1 of a
    leaf's message is :math:`P(\sum_{j \ne i} B_j = k - 1)`, the derivative of
    :math:`P_k` with respect to :math:`q_i`.
    """
    out: list[torch.Tensor] = [top]
    for depth, (left, right, count) in enumerate(reversed(pairs)):
        h = left.shape[1]
        first = 1 if depth == len(pairs) - 1 else 0  # at the leaves only coefficient 1 is needed
        below = left.new_empty((left.shape[0] - first, 2 * h, *left.shape[2:]))
        if perturbed is None:
            _message(out[-1], right, below[:, :h], first)
            _message(out[-1], left, below[:, h:], first)
        else:
            messages, dpairs = perturbed
            dleft, dright = dpairs[len(pairs) - 1 - depth]
            _message(messages[depth], dright, below[:, :h], first)
            _message(messages[depth], dleft, below[:, h:], first)
            if depth > 0:
                _message(out[-1], right, below[:, :h], first, accumulate=True)
                _message(out[-1], left, below[:, h:], first, accumulate=True)
        out.append(below[:, :count])
        if perturbed is not None:
            del out[:-1]  # only the level above is needed: keep memory at one level
    return out


class GradTopK(torch.autograd.Function):
    r"""GradTopK along the last dim, :math:`p = \nabla_u \log e_k(e^u)`, given a threshold :math:`\lambda`.

    With :math:`q_i = \sigma(u_i - \lambda)`, :math:`r_i = 1 - q_i` and
    :math:`B_i \sim \text{Bernoulli}(q_i)` independent,

    .. math::

        \log e_k(e^u) = k\lambda + \sum_i \log(1 + e^{u_i - \lambda}) + \log P_k,
        \qquad P_k = P\Big(\sum_i B_i = k\Big),

    for any constant :math:`\lambda`, and :math:`P_k` is coefficient ``k`` of
    :math:`\prod_i (r_i + q_i z)`. *Forward*: an upward tree of pairwise products
    gives :math:`P_k`; a downward pass gives every leaf's message
    :math:`P(\sum_{j\ne i} B_j = k - 1)` (the derivative of :math:`P_k` with respect
    to :math:`q_i`), and

    .. math::

        p_i = \frac{q_i\,P(\sum_{j\ne i} B_j = k-1)}{P_k} = P\Big(B_i = 1 \,\Big|\, \sum_j B_j = k\Big).

    *Backward*: the Jacobian of :math:`p` is the Hessian of :math:`\log e_k(e^u)`,
    symmetric (the conditional covariance of :math:`B`), so the vector-Jacobian
    product with ``g`` is the directional derivative of :math:`p` along ``g``:
    one more upward and downward pass carrying first-order perturbations
    (:math:`\delta q_i = q_i r_i g_i`, :math:`\delta(ab) = \delta a\, b + a\,\delta b`),
    with the stored tree, and no autograd. Both passes are exact: every
    coefficient is a probability, so nothing overflows or cancels, and the
    threshold (``lam``, any value near the sigmoid ThreTopK one) keeps
    :math:`P_k` of order :math:`1/\sqrt{\operatorname{Var}\sum_i B_i}` (near
    :math:`e^{-0.31k}/\sqrt{k}` at worst for the Laplace threshold, by a Poisson
    estimate). Rows with at most ``k`` unmasked entries (``lam = -inf``) get 1 on
    each of them. Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, lam: torch.Tensor, k: int) -> torch.Tensor:  # type: ignore[override]
        feasible = lam > -math.inf  # else every unmasked entry gets 1, below; z is only kept finite-or-(-inf)
        n = u.shape[-1]
        leaves = u.new_empty((2, n, *u.shape[:-1]))  # (r, q) of every entry: entries first, batch last
        q, r = leaves[1], leaves[0]
        torch.sub(u.movedim(-1, 0), torch.where(feasible, lam, 0.0).movedim(-1, 0), out=q)
        torch.neg(q, out=r).sigmoid_()  # r = sigma(lam - u) separately: full precision where q is near 1
        q.sigmoid_()
        pairs, root = _up(leaves, k)
        top = torch.zeros_like(root)
        top[k] = 1.0
        messages = _down(pairs, top) if pairs else [top, top[1:2]]
        prob_k = root[k, 0]
        p = torch.mul(q, messages[-1][0]).div_(prob_k).clamp_(0.0, 1.0)
        ctx.save_for_backward(q, r, p, prob_k, feasible)
        ctx.pairs, ctx.messages, ctx.k = pairs, messages, k
        return torch.where(feasible, p.movedim(0, -1), u > -math.inf, out=torch.empty_like(u, memory_format=torch.contiguous_format))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        q, r, p, prob_k, feasible = ctx.saved_tensors
        pairs, messages, k = ctx.pairs, ctx.messages, ctx.k
        dleaves = q.new_empty((2, *q.shape))
        dq = torch.mul(q, r, out=dleaves[1]).mul_(grad.movedim(-1, 0))  # delta q = q r g, delta r = -delta q
        torch.neg(dq, out=dleaves[0])
        # upward: delta(left * right) = delta(left) right + left delta(right)
        dpoly, dpairs = dleaves, []
        for left, right, _ in pairs:
            dleft, dright = _halves(dpoly, 0.0)
            dpairs.append((dleft, dright))
            dpoly = _polymul(dleft, right, left.new_empty((min(left.shape[0] + right.shape[0] - 1, k + 1), *left.shape[1:])))
            _polymul(left, dright, dpoly, accumulate=True)
        # downward: the perturbed messages, coefficient 1 at the leaves
        dleaf = _down(pairs, messages[0], (messages, dpairs))[-1][0] if pairs else torch.zeros_like(q)
        dp = torch.mul(dq, messages[-1][0]).addcmul_(q, dleaf).addcmul_(p, dpoly[k, 0], value=-1.0).div_(prob_k)
        return torch.where(feasible, dp.movedim(0, -1), 0.0), None, None
