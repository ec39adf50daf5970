"""Small synthetic data sets the chapters train on (made here, never downloaded)."""

from __future__ import annotations

import numbers

import torch

from ._validation import check_dtype, check_int, check_positive

__all__ = ["imbalanced_blobs"]


def imbalanced_blobs(
    n: int,
    *,
    positive_rate: float = 0.1,
    features: int = 2,
    separation: float = 2.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""An imbalanced binary problem: two overlapping Gaussian classes.

    .. math::

        y \sim \operatorname{Bernoulli}(\pi), \qquad
        x \mid y \sim \mathcal{N}\!\left(y\, \delta\, \mathbf{1}/\sqrt{d},\; I_d\right),

    so the class means are ``separation`` (:math:`\delta`) apart whatever
    the number of features :math:`d`. ``dtype`` defaults to torch's default dtype.

    Returns
    -------
    x : torch.Tensor
        Shape ``(n, features)``.
    y : torch.Tensor
        Labels in {0, 1}, shape ``(n,)``, same dtype as ``x``.
    """
    n = check_int(n, "n", 1)
    features = check_int(features, "features", 1)
    separation = check_positive(separation, "separation")
    if isinstance(positive_rate, bool) or not isinstance(positive_rate, numbers.Real):
        raise TypeError(f"positive_rate must be a real number in (0, 1), got {type(positive_rate).__name__}")
    if not 0 < positive_rate < 1:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    dtype = check_dtype(dtype or torch.get_default_dtype())
    y = (torch.rand(n, generator=generator, dtype=dtype, device=device) < positive_rate).to(dtype)
    noise = torch.randn(n, features, generator=generator, dtype=dtype, device=device)
    return noise + y[:, None] * (separation / features**0.5), y
