"""Figures of chapter 1 (max smoothing), built from results of :mod:`kexue_lib.smoothing`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .core import COLORS, Step, array, slider_figure, styled

__all__ = [
    "smooth_max_band",
    "smooth_abs_steps",
    "softmax_bars",
    "family_errors",
    "training_curves",
    "minibatch_bias",
]


def _label(value: float) -> str:
    return f"{value:.2g}"


def smooth_max_band(
    t: torch.Tensor, components: torch.Tensor, taus: Sequence[float], smooth: torch.Tensor
) -> go.Figure:
    """Smooth max of ``n`` curves against their max, with the bound band, slider on tau.

    Parameters
    ----------
    t : (T,) tensor
        The curve parameter.
    components : (n, T) tensor
        The entries :math:`x_i(t)`.
    taus : sequence of float
        Temperatures, one slider step each.
    smooth : (len(taus), T) tensor
        :math:`\\tau \\operatorname{LSE}(x(t)/\\tau)` for each temperature.
    """
    n = components.shape[0]
    hard = components.max(dim=0).values
    static = [
        go.Scatter(x=array(t), y=array(c), mode="lines", line=dict(color="#bbbbbb", width=1, dash="dot"),
                   name="entries x_i(t)", legendgroup="x", showlegend=i == 0)
        for i, c in enumerate(components)
    ]
    static.append(go.Scatter(x=array(t), y=array(hard), mode="lines", name="max", line=dict(color="black", width=2)))
    steps = []
    for tau, curve in zip(taus, smooth):
        upper = hard + tau * math.log(n)
        band = go.Scatter(
            x=array(torch.cat([t, t.flip(0)])), y=array(torch.cat([hard, upper.flip(0)])),
            fill="toself", fillcolor="rgba(31,119,180,0.15)", line=dict(width=0),
            name="bound: max ≤ smax ≤ max + τ log n", hoverinfo="skip",
        )
        line = go.Scatter(x=array(t), y=array(curve), mode="lines", name="τ·LSE(x/τ)", line=dict(color=COLORS[0], width=3))
        gap = float((curve - hard).max())
        steps.append(Step(_label(tau), [band, line],
                          {"title.text": f"τ = {tau:.3g}: largest gap to max {gap:.3f}, bound τ log {n} = {tau * math.log(n):.3f}"}))
    fig = slider_figure(steps, label="τ", static=static, active=len(steps) // 2)
    return styled(fig, xaxis_title="t", yaxis_title="value", height=500)


def smooth_abs_steps(
    x: torch.Tensor, taus: Sequence[float], step: torch.Tensor, exact: torch.Tensor, simple: torch.Tensor
) -> go.Figure:
    """The 2015 route: a sigmoid step (left) integrates to a smooth ``|x|`` (right).

    ``step``, ``exact`` and ``simple`` have shape ``(len(taus), len(x))``:
    :math:`\\sigma(x/\\tau)`, :math:`\\tau\\log(2+e^{x/\\tau}+e^{-x/\\tau})` and
    :math:`\\tau\\log(e^{x/\\tau}+e^{-x/\\tau})`.
    """
    base = make_subplots(rows=1, cols=2, subplot_titles=("step θ(x) and σ(x/τ)", "|x| and its smooth versions"))
    xs = array(x)
    static = [
        go.Scatter(x=xs, y=array((x > 0).to(x.dtype)), mode="lines", name="θ(x)", line=dict(color="black", width=2, shape="hv")),
        go.Scatter(x=xs, y=array(x.abs()), mode="lines", name="|x|", line=dict(color="black", width=2), xaxis="x2", yaxis="y2"),
    ]
    steps = []
    for tau, s, e, a in zip(taus, step, exact, simple):
        steps.append(Step(_label(tau), [
            go.Scatter(x=xs, y=array(s), mode="lines", name="σ(x/τ)", line=dict(color=COLORS[0], width=3)),
            go.Scatter(x=xs, y=array(e), mode="lines", name="τ log(2 + e^(x/τ) + e^(−x/τ))",
                       line=dict(color=COLORS[1], width=3), xaxis="x2", yaxis="y2"),
            go.Scatter(x=xs, y=array(a), mode="lines", name="τ log(e^(x/τ) + e^(−x/τ))",
                       line=dict(color=COLORS[2], width=3, dash="dash"), xaxis="x2", yaxis="y2"),
        ]))
    fig = slider_figure(steps, label="τ", static=static, active=len(steps) // 2, base=base)
    fig.update_yaxes(range=[-0.1, 1.1], row=1, col=1)
    fig.update_yaxes(range=[-0.05, float(x.abs().max()) + 0.5], row=1, col=2)
    return styled(fig, height=480, legend=dict(y=1.12))


def softmax_bars(
    scores: torch.Tensor, taus: Sequence[float], probs: torch.Tensor, soft_index: torch.Tensor
) -> go.Figure:
    """Softmax of a score vector as bars, with soft argmax and argmax, slider on tau.

    ``probs`` has shape ``(len(taus), n)`` and ``soft_index`` ``(len(taus),)``.
    """
    n = scores.shape[-1]
    idx = array(torch.arange(n))
    hard = int(scores.argmax())
    static = [go.Scatter(x=idx, y=array(scores / scores.abs().max()), mode="markers", name="scores (scaled)",
                         marker=dict(color="black", symbol="diamond", size=8))]
    steps = []
    for tau, p, s in zip(taus, probs, soft_index):
        s = float(s)
        steps.append(Step(_label(tau), [
            go.Bar(x=idx, y=array(p), name="softmax(x/τ)", marker_color=COLORS[0], opacity=0.8),
            go.Scatter(x=[s, s], y=[0, 1.05], mode="lines", name="soft argmax", line=dict(color=COLORS[1], width=3)),
        ], {"title.text": f"τ = {tau:.3g}: soft argmax = {s:.2f}, argmax = {hard}"}))
    fig = slider_figure(steps, label="τ", static=static, active=len(steps) // 2)
    fig.add_vline(x=hard, line=dict(color="black", dash="dot"), annotation_text="argmax", annotation_position="bottom right")
    return styled(fig, xaxis_title="index i", yaxis_title="probability", yaxis_range=[-0.3, 1.08], height=450)


def family_errors(
    ks: torch.Tensor, domains: Sequence[str], errors: Mapping[str, torch.Tensor]
) -> go.Figure:
    """Worst-case error of each smooth-max family against sharpness k, slider on the input domain.

    ``errors[name]`` has shape ``(len(domains), len(ks))``: for each domain
    (a label such as ``"[0, 1]²"``) the largest error over a grid of its pairs.
    """
    steps = []
    for j, domain in enumerate(domains):
        traces = [
            go.Scatter(x=array(ks), y=array(err[j]), mode="lines+markers", name=name,
                       line=dict(color=COLORS[i % len(COLORS)], width=2), marker=dict(size=5))
            for i, (name, err) in enumerate(errors.items())
        ]
        steps.append(Step(domain, traces, {"title.text": f"worst error over pairs (x, y) in {domain}"}))
    fig = slider_figure(steps, label="domain", active=min(1, len(steps) - 1))
    return styled(fig, xaxis_title="sharpness k (τ = 1/k, p = 2k + 1)", yaxis_title="max |approx − max|",
                  xaxis_type="log", yaxis_type="log", height=470)


def training_curves(curves: Mapping[str, tuple[torch.Tensor, torch.Tensor]], *, yaxis_title: str) -> go.Figure:
    """Lines of ``(steps, values)`` per named run, on one shared axis."""
    fig = go.Figure([
        go.Scatter(x=array(s), y=array(v), mode="lines", name=name, line=dict(color=COLORS[i % len(COLORS)], width=2))
        for i, (name, (s, v)) in enumerate(curves.items())
    ])
    return styled(fig, xaxis_title="training step", yaxis_title=yaxis_title, height=400)


def minibatch_bias(
    batch_sizes: Sequence[int], measured: torch.Tensor, stderr: torch.Tensor, predicted: torch.Tensor
) -> go.Figure:
    """Measured minibatch bias of soft F1 (with 2 standard errors) against the 1/B prediction."""
    b = array(batch_sizes)
    fig = go.Figure([
        go.Scatter(x=b, y=array(-measured), mode="markers", name="measured −bias",
                   error_y=dict(type="data", array=array(2 * stderr)), marker=dict(size=9, color=COLORS[1])),
        go.Scatter(x=b, y=array(-predicted), mode="lines", name="first order: −bias ∝ 1/B", line=dict(color=COLORS[0])),
    ])
    return styled(fig, xaxis_title="batch size B", yaxis_title="F1(full data) − E[soft F1 on a batch]",
                  xaxis_type="log", yaxis_type="log", height=420)
