"""Argument checks shared by every kexue_lib module.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
argument and the allowed range, so that a wrong ``k``, ``tau`` or shape never
surfaces as a raw torch stack trace. Checks look at dtypes, shapes and Python
scalars only, so they force no host-device synchronization; the one exception,
:func:`check_on_simplex`, reads values and says so.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch


def check_floating(x: object, name: str = "x", *, min_ndim: int = 0) -> torch.Tensor:
    """Require a floating-point tensor with at least ``min_ndim`` dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must have a floating dtype (float16, bfloat16, float32 or float64), "
            f"got {x.dtype}; convert it with {name}.float() or {name}.double()"
        )
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}"
        )
    return x


def check_dim(x: torch.Tensor, dim: object, name: str = "dim") -> int:
    """Return ``dim`` normalized to ``0 <= dim < x.ndim``; ``x`` needs ``ndim >= 1``."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{name}={dim} needs a tensor with at least 1 dimension, got a scalar")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"{name} must be in [{-x.ndim}, {x.ndim - 1}] for a tensor of shape "
            f"{tuple(x.shape)}, got {dim}"
        )
    return int(dim) % x.ndim


def check_nonempty(x: torch.Tensor, dim: int, name: str = "x") -> int:
    """Require at least one entry along ``dim`` (a reduction over nothing is undefined); return that size."""
    n = x.shape[dim]
    if n == 0:
        raise ValueError(f"{name} must have at least 1 entry along dim={dim}, got shape {tuple(x.shape)}")
    return n


def check_positive(value: object, name: str) -> float:
    """Require a finite real Python number > 0 (temperatures, step sizes, scales)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number > 0, got {type(value).__name__}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    """Require a Python int in ``[low, high]`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Require two tensors of identical shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """Require one of a fixed set of names, listing them in the error."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def check_square(a: object, name: str = "a", *, allow_complex: bool = False) -> torch.Tensor:
    """Require a floating (optionally complex) tensor of square matrices, shape ``(..., n, n)``, ``n >= 1``."""
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(a).__name__}")
    if not (a.is_floating_point() or (allow_complex and a.is_complex())):
        kinds = "float16, bfloat16, float32 or float64" + (", or complex" if allow_complex else "")
        raise TypeError(
            f"{name} must have a floating dtype ({kinds}), got {a.dtype}; convert it with {name}.double()"
        )
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or a.shape[-1] == 0:
        raise ValueError(
            f"{name} must be a batch of square matrices, shape (..., n, n) with n >= 1, "
            f"got shape {tuple(a.shape)}"
        )
    return a


def check_dtype(dtype: object, name: str = "dtype") -> torch.dtype:
    """Require a floating torch dtype (float16, bfloat16, float32 or float64)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch dtype (e.g. torch.float64), got {dtype!r}")
    return dtype


def check_batch(batch: object, name: str = "batch") -> tuple[int, ...]:
    """Require a (possibly empty) sequence of ints >= 1, a batch shape."""
    if isinstance(batch, (int, bool)) or not isinstance(batch, Sequence):
        raise TypeError(f"{name} must be a tuple of ints >= 1, got {type(batch).__name__}")
    return tuple(check_int(b, f"{name}[{i}]", 1) for i, b in enumerate(batch))


def check_on_simplex(p: object, name: str = "p0", *, interior: bool = False, atol: float | None = None) -> torch.Tensor:
    """Require points of the simplex along the last dim (reads values: one host sync).

    Entries must be ``>= 0`` (``> 0`` with ``interior=True``) and each row must
    sum to 1 within ``atol`` (default ``sqrt(eps)`` of the dtype times ``n``).
    """
    p = check_floating(p, name, min_ndim=1)
    n = p.shape[-1]
    tol = atol if atol is not None else n * torch.finfo(p.dtype).eps ** 0.5
    if not torch.isfinite(p).all():
        raise ValueError(f"{name} must be a point of the probability simplex, got non-finite entries")
    low = float(p.min()) if p.numel() else 0.0
    if (interior and low <= 0) or low < 0:
        bound = "> 0 (mirror descent needs the interior)" if interior else ">= 0"
        raise ValueError(f"{name} must be a point of the probability simplex: entries {bound}, got min {low:.3g}")
    err = float((p.sum(-1) - 1).abs().max()) if p.numel() else 0.0
    if err > tol:
        raise ValueError(
            f"{name} must be a point of the probability simplex: rows summing to 1, got a row off by {err:.3g}"
        )
    return p


def check_times(times: object) -> list[float]:
    """Require a non-empty, non-decreasing sequence of finite times ``>= 0``."""
    if isinstance(times, torch.Tensor):
        times = times.tolist()
    if not isinstance(times, Sequence) or isinstance(times, str) or len(times) == 0:
        raise TypeError("times must be a non-empty sequence of numbers >= 0")
    out = [float(t) for t in times]
    if any(not math.isfinite(t) or t < 0 for t in out) or any(b < a for a, b in zip(out, out[1:])):
        raise ValueError(f"times must be finite, >= 0 and non-decreasing, got {out}")
    return out


def check_interval(lo: float, hi: float, names: tuple[str, str] = ("lo", "hi")) -> tuple[float, float]:
    """Require finite bounds with ``lo < hi`` (a grid's box, a bracket)."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{names[0]} and {names[1]} must be finite with {names[0]} < {names[1]}, got {lo} and {hi}")
    return lo, hi
