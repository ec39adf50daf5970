"""Tests of kexue_lib._validation and of the argument errors at the public API."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kexue_lib import _validation as v
from kexue_lib.smoothing import (
    loglog_max,
    max_via_abs,
    power_max,
    smooth_abs,
    smooth_max,
    soft_argmax,
    soft_f1,
    soft_f1_bias,
    softmax,
)

# ---------------------------------------------------------------- check_floating


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_check_floating_accepts_float_dtypes_and_returns_input(dtype):
    x = torch.zeros(2, 3, dtype=dtype)
    assert v.check_floating(x, "x", min_ndim=2) is x


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_check_floating_rejects_non_float_dtype_naming_dtype(dtype):
    x = torch.zeros(3, dtype=dtype)
    with pytest.raises(TypeError, match=r"logits must have a floating dtype") as err:
        v.check_floating(x, "logits")
    msg = str(err.value)
    assert str(dtype) in msg
    assert "logits.float()" in msg


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, np.zeros(3), None, "x"])
def test_check_floating_rejects_non_tensor(bad):
    with pytest.raises(TypeError, match=rf"probs must be a torch.Tensor, got {type(bad).__name__}"):
        v.check_floating(bad, "probs")


def test_check_floating_min_ndim_names_argument_and_shape():
    with pytest.raises(ValueError, match=r"probs must have at least 2 dimension\(s\), got shape \(3,\)"):
        v.check_floating(torch.zeros(3), "probs", min_ndim=2)
    with pytest.raises(ValueError, match=r"x must have at least 1 dimension\(s\), got shape \(\)"):
        v.check_floating(torch.tensor(1.0), "x", min_ndim=1)
    # exactly min_ndim is fine
    v.check_floating(torch.zeros(3), "x", min_ndim=1)


# ---------------------------------------------------------------- check_dim


@given(ndim=st.integers(1, 5), data=st.data())
def test_check_dim_normalizes_every_valid_dim(ndim, data):
    x = torch.zeros((1,) * ndim)
    dim = data.draw(st.integers(-ndim, ndim - 1))
    out = v.check_dim(x, dim)
    assert isinstance(out, int)
    assert 0 <= out < ndim
    assert out == dim % ndim
    assert out == (dim if dim >= 0 else ndim + dim)


@given(ndim=st.integers(1, 4), data=st.data())
def test_check_dim_out_of_range_names_range(ndim, data):
    x = torch.zeros((2,) * ndim)
    dim = data.draw(st.one_of(st.integers(ndim, ndim + 10), st.integers(-ndim - 10, -ndim - 1)))
    expected = re.escape(f"dim must be in [{-ndim}, {ndim - 1}]") + r".*" + re.escape(f"got {dim}")
    with pytest.raises(ValueError, match=expected):
        v.check_dim(x, dim)


def test_check_dim_accepts_numpy_integer():
    assert v.check_dim(torch.zeros(2, 3), np.int64(-1)) == 1


@pytest.mark.parametrize("bad", [1.0, True, False, "0", None, torch.tensor(0)])
def test_check_dim_rejects_non_int(bad):
    with pytest.raises(TypeError, match=r"axis must be an int"):
        v.check_dim(torch.zeros(3), bad, "axis")


def test_check_dim_rejects_scalar_tensor():
    with pytest.raises(ValueError, match=r"dim=0 needs a tensor with at least 1 dimension"):
        v.check_dim(torch.tensor(1.0), 0)


# ---------------------------------------------------------------- check_positive


@given(value=st.one_of(st.floats(1e-300, 1e300), st.integers(1, 10**12)))
def test_check_positive_accepts_positive_finite(value):
    out = v.check_positive(value, "tau")
    assert isinstance(out, float)
    assert out == float(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0.0"), (0.0, "0.0"), (-1, "-1.0"), (-1e-9, "-1e-09"), (math.nan, "nan"),
     (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_check_positive_rejects_non_positive_or_non_finite(value, shown):
    with pytest.raises(ValueError, match=re.escape(f"tau must be a finite number > 0, got {shown}")):
        v.check_positive(value, "tau")


@pytest.mark.parametrize("value", ["a", True, False, None, torch.tensor(1.0), 1 + 0j, [1.0]])
def test_check_positive_rejects_non_real(value):
    with pytest.raises(TypeError, match=rf"tau must be a real number > 0, got {type(value).__name__}"):
        v.check_positive(value, "tau")


def test_check_positive_accepts_numpy_float():
    assert v.check_positive(np.float32(0.5), "lr") == 0.5


# ---------------------------------------------------------------- check_int


def test_check_int_bounds_and_messages():
    assert v.check_int(3, "k", 1, 3) == 3
    assert v.check_int(1, "k", 1) == 1
    assert v.check_int(np.int64(7), "k", 1) == 7
    assert type(v.check_int(np.int64(7), "k", 1)) is int
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\], got 4"):
        v.check_int(4, "k", 1, 3)
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\], got 0"):
        v.check_int(0, "k", 1, 3)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        v.check_int(0, "batch_size", 1)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got -5"):
        v.check_int(-5, "batch_size", 1)


@pytest.mark.parametrize("bad", [1.0, 2.5, True, "3", None])
def test_check_int_rejects_non_int(bad):
    with pytest.raises(TypeError, match=rf"steps must be an int, got {type(bad).__name__}"):
        v.check_int(bad, "steps", 1)


# ---------------------------------------------------------------- others


def test_check_same_shape():
    v.check_same_shape(torch.zeros(2, 3), torch.ones(2, 3), ("a", "b"))
    with pytest.raises(ValueError, match=r"probs and targets must have the same shape, got \(2, 3\) and \(3, 2\)"):
        v.check_same_shape(torch.zeros(2, 3), torch.zeros(3, 2), ("probs", "targets"))


def test_check_choice():
    assert v.check_choice("b", "loss", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"loss must be one of 'a', 'b'; got 'c'"):
        v.check_choice("c", "loss", ("a", "b"))


# ---------------------------------------------------------------- public API


X = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
REDUCERS = [smooth_max, softmax, soft_argmax, loglog_max]


@pytest.mark.parametrize("fn", REDUCERS)
@pytest.mark.parametrize(
    ("tau", "exc", "pattern"),
    [
        (0, ValueError, r"tau must be a finite number > 0, got 0\.0"),
        (0.0, ValueError, r"tau must be a finite number > 0, got 0\.0"),
        (-1, ValueError, r"tau must be a finite number > 0, got -1\.0"),
        (math.nan, ValueError, r"tau must be a finite number > 0, got nan"),
        (math.inf, ValueError, r"tau must be a finite number > 0, got inf"),
        ("a", TypeError, r"tau must be a real number > 0, got str"),
        (True, TypeError, r"tau must be a real number > 0, got bool"),
        (None, TypeError, r"tau must be a real number > 0, got NoneType"),
    ],
)
def test_reducers_bad_tau(fn, tau, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(X, tau)


@pytest.mark.parametrize("fn", REDUCERS)
@pytest.mark.parametrize("dim", [2, 5, -3, -10])
def test_reducers_dim_out_of_range(fn, dim):
    with pytest.raises(ValueError, match=re.escape("dim must be in [-2, 1]") + r".*\(2, 3\).*" + f"got {dim}"):
        fn(X, 1.0, dim)


@pytest.mark.parametrize("fn", REDUCERS)
def test_reducers_bad_dim_type(fn):
    with pytest.raises(TypeError, match=r"dim must be an int, got float"):
        fn(X, 1.0, 1.0)


@pytest.mark.parametrize("fn", REDUCERS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_reducers_integer_tensor(fn, dtype):
    with pytest.raises(TypeError, match=r"x must have a floating dtype.*" + re.escape(str(dtype))):
        fn(X.to(dtype), 1.0)


@pytest.mark.parametrize("fn", REDUCERS)
def test_reducers_zero_dim_tensor(fn):
    with pytest.raises(ValueError, match=r"x must have at least 1 dimension\(s\), got shape \(\)"):
        fn(torch.tensor(1.0), 1.0)


@pytest.mark.parametrize("fn", REDUCERS + [smooth_abs])
@pytest.mark.parametrize("bad", [[1.0, 2.0], np.array([1.0, 2.0]), 3.0])
def test_functions_reject_non_tensor(fn, bad):
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        fn(bad, 1.0)


def test_smooth_max_tau_below_dtype_tiny_is_rejected():
    # 1e-300 is a valid Python float but underflows float32 arithmetic.
    with pytest.raises(ValueError, match=r"tau must be >= .*float32"):
        smooth_max(torch.tensor([1.0, 2.0]), 1e-300)
    # the same temperature is fine in float64
    out = smooth_max(torch.tensor([1.0, 2.0], dtype=torch.float64), 1e-300)
    assert out.item() == 2.0


def test_smooth_max_empty_reduction_dim_is_validated():
    try:
        out = smooth_max(torch.empty(2, 0), 1.0)
    except (ValueError, TypeError) as err:
        assert "x" in str(err)
    else:
        assert torch.equal(out, torch.full((2,), -math.inf))


def test_smooth_abs_and_max_via_abs_errors():
    with pytest.raises(TypeError, match=r"x must have a floating dtype.*torch.int64"):
        smooth_abs(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0"):
        smooth_abs(torch.tensor([1.0]), tau=0)
    with pytest.raises(TypeError, match=r"y must have a floating dtype"):
        max_via_abs(torch.tensor([1.0]), torch.tensor([1]))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        max_via_abs(1.0, torch.tensor([1.0]))


def test_power_max_errors():
    x = torch.tensor([1.0, 2.0])
    for p in (2, 4, 100):
        with pytest.raises(ValueError, match=rf"p must be an odd int >= 1, got {p}"):
            power_max(x, p)
    for p in (0, -1, -3):
        with pytest.raises(ValueError, match=rf"p must be >= 1, got {p}"):
            power_max(x, p)
    for p in (2.5, 3.0, True, "3", None):
        with pytest.raises(TypeError, match=rf"p must be an int, got {type(p).__name__}"):
            power_max(x, p)
    with pytest.raises(TypeError, match=r"x must have a floating dtype"):
        power_max(torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match=r"dim must be in \[-1, 0\]"):
        power_max(x, 3, dim=1)


def test_soft_f1_and_bias_errors():
    p = torch.rand(5)
    t = torch.ones(5)
    with pytest.raises(ValueError, match=r"probs and targets must have the same shape, got \(5,\) and \(4,\)"):
        soft_f1(p, torch.ones(4))
    with pytest.raises(TypeError, match=r"targets must be a torch.Tensor, got list"):
        soft_f1(p, [1, 0, 1, 0, 1])
    with pytest.raises(TypeError, match=r"probs must have a floating dtype"):
        soft_f1(torch.ones(5, dtype=torch.long), t)
    with pytest.raises(ValueError, match=r"dim must be in \[-1, 0\]"):
        soft_f1(p, t, dim=1)
    for b in (0, -1):
        with pytest.raises(ValueError, match=rf"batch_size must be >= 1, got {b}"):
            soft_f1_bias(p, t, b)
    with pytest.raises(TypeError, match=r"batch_size must be an int, got float"):
        soft_f1_bias(p, t, 8.0)
