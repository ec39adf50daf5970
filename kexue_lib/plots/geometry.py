"""Figures of chapter 3 (the geometry of initialization), from results of :mod:`kexue_lib.geometry`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .core import COLORS, Step, array, slider_figure, styled

__all__ = [
    "angle_histograms",
    "gram_heatmaps",
    "orthogonality_scaling",
    "singular_value_spectra",
    "norms_figure",
    "propagation_by_width",
    "propagation_by_aspect",
    "jacobian_spectra",
]


def _density_hist(samples: torch.Tensor, lo: float, hi: float, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin centers and a histogram normalized as a density on ``[lo, hi]``."""
    samples = samples.detach().to("cpu", torch.float64).flatten()
    counts = torch.histc(samples, bins=bins, min=lo, max=hi)
    width = (hi - lo) / bins
    centers = lo + width * (torch.arange(bins, dtype=torch.float64) + 0.5)
    return centers, counts / (samples.numel() * width)


def _hist_bar(samples, lo, hi, bins, name, color, **axes) -> go.Bar:
    x, y = _density_hist(samples, lo, hi, bins)
    return go.Bar(x=array(x), y=array(y), width=(hi - lo) / bins, name=name, marker_color=color,
                  opacity=0.45, marker_line_width=0, **axes)


def angle_histograms(
    ns: Sequence[int],
    thetas: Sequence[torch.Tensor],
    grid: torch.Tensor,
    densities: torch.Tensor,
    cos_grid: torch.Tensor,
    cos_densities: torch.Tensor,
    *,
    bins: int = 60,
) -> go.Figure:
    """Monte Carlo angles against the exact density (left) and their cosines (right), slider on n.

    ``thetas[i]`` holds sampled angles in dimension ``ns[i]``; ``densities`` and
    ``cos_densities`` have shape ``(len(ns), len(grid))``: :math:`p_n(\\theta)` and the
    density of :math:`\\cos\\theta`.
    """
    base = make_subplots(rows=1, cols=2, subplot_titles=("angle θ (radians)", "cosine cos θ"))
    steps = []
    for n, th, p, q in zip(ns, thetas, densities, cos_densities):
        cos = torch.cos(th)
        steps.append(Step(str(n), [
            _hist_bar(th, 0.0, math.pi, bins, "Monte Carlo", COLORS[0]),
            go.Scatter(x=array(grid), y=array(p), mode="lines", name="exact density", line=dict(color="black", width=2)),
            _hist_bar(cos, -1.0, 1.0, bins, "Monte Carlo", COLORS[0], xaxis="x2", yaxis="y2", showlegend=False),
            go.Scatter(x=array(cos_grid), y=array(q), mode="lines", name="exact density", showlegend=False,
                       line=dict(color="black", width=2), xaxis="x2", yaxis="y2"),
        ], {"title.text": f"n = {n}: std of θ = {float(th.std()):.3f}, std of cos θ = {float(cos.std()):.3f}, "
                          f"1/√n = {1 / math.sqrt(n):.3f}"}))
    fig = slider_figure(steps, label="n", active=len(steps) // 2, base=base)
    fig.update_xaxes(range=[0, math.pi], row=1, col=1)
    fig.update_xaxes(range=[-1, 1], row=1, col=2)
    fig.update_yaxes(title_text="density", row=1, col=1)
    return styled(fig, height=470, bargap=0, legend=dict(y=1.12))


def gram_heatmaps(ns: Sequence[int], grams: Sequence[torch.Tensor], errors: Sequence[float]) -> go.Figure:
    """:math:`W^\\top W` (left) and :math:`W^\\top W - I` (right) as heatmaps, slider on n.

    ``grams[i]`` is one ``(n, n)`` Gram matrix for ``n = ns[i]`` and ``errors[i]`` its
    mean squared deviation from the identity.
    """
    base = make_subplots(rows=1, cols=2, subplot_titles=("WᵀW", "WᵀW − I"), horizontal_spacing=0.12)
    steps = []
    for n, gram, err in zip(ns, grams, errors):
        eye = torch.eye(n, dtype=gram.dtype)
        common = dict(zmin=-1, zmax=1, colorscale="RdBu", reversescale=True, zmid=0)
        steps.append(Step(str(n), [
            go.Heatmap(z=array(gram), showscale=False, name="WᵀW", **common),
            go.Heatmap(z=array(gram - eye), name="WᵀW − I", xaxis="x2", yaxis="y2",
                       colorbar=dict(len=0.8, thickness=12), **common),
        ], {"title.text": f"n = {n}: mean squared deviation from I = {err:.4f}, 1/n = {1 / n:.4f}"}))
    fig = slider_figure(steps, label="n", active=len(steps) // 2, base=base)
    fig.update_yaxes(autorange="reversed", scaleanchor=None)
    return styled(fig, height=470)


def orthogonality_scaling(
    ns: Sequence[int], errors: Mapping[str, torch.Tensor], expected: Mapping[str, Sequence[float]]
) -> go.Figure:
    """Mean squared deviation of :math:`W^\\top W` from I against n, log-log, per sampling law.

    ``errors[law]`` has shape ``(len(ns),)`` (means over samples); ``expected[law]`` the predicted
    :math:`(n + \\kappa - 2)/n^2`.
    """
    fig = go.Figure()
    x = array(torch.tensor(ns, dtype=torch.float64))
    for i, (law, err) in enumerate(errors.items()):
        fig.add_trace(go.Scatter(x=x, y=array(err), mode="markers", name=f"{law} (measured)",
                                 marker=dict(color=COLORS[i], size=9, symbol=["circle", "square", "diamond"][i % 3])))
        fig.add_trace(go.Scatter(x=x, y=array(torch.tensor(expected[law])), mode="lines", name=f"{law}: (n + κ − 2)/n²",
                                 line=dict(color=COLORS[i], width=1.5, dash="dot")))
    return styled(fig, xaxis_type="log", yaxis_type="log", xaxis_title="n", height=460,
                  yaxis_title="mean of (WᵀW − I)² entries", legend=dict(y=1.02, font=dict(size=11)))


def singular_value_spectra(
    labels: Sequence[str],
    svals: Sequence[torch.Tensor],
    grid: Sequence[torch.Tensor],
    densities: Sequence[torch.Tensor],
    titles: Sequence[str],
    *,
    bins: int = 70,
) -> go.Figure:
    """Histograms of singular values against the Marchenko-Pastur density, one step per shape.

    ``svals[i]`` holds all ``n`` singular values (zeros included, see
    :func:`kexue_lib.geometry.singular_spectrum`) of several ``m x n`` matrices of one shape,
    ``densities[i]`` the density on ``grid[i]`` (with the atom at 0 left out), both
    normalized over all ``n`` singular values.
    """
    steps = []
    for label, s, x, p, title in zip(labels, svals, grid, densities, titles):
        hi = float(x.max()) * 1.05
        steps.append(Step(label, [
            _hist_bar(s, 0.0, hi, bins, "singular values of W", COLORS[0]),
            go.Scatter(x=array(x), y=array(p), mode="lines", name="Marchenko-Pastur", line=dict(color="black", width=2)),
        ], {"title.text": title, "xaxis.range": [0, hi]}))
    fig = slider_figure(steps, label="n/m", active=len(steps) // 2)
    return styled(fig, height=460, bargap=0, xaxis_title="singular value s", yaxis_title="density", yaxis_range=[0, 3])


def _median(x: torch.Tensor) -> torch.Tensor:
    return x.median(dim=0).values


def _norm_traces(curves, colors, axes, showlegend=True) -> list[go.Scatter]:
    traces = []
    for i, (name, (fwd, bwd)) in enumerate(curves.items()):
        layers = array(torch.arange(fwd.shape[-1]))
        for j, (series, (xa, ya)) in enumerate(zip((fwd, bwd), axes)):
            traces.append(go.Scatter(x=layers, y=array(_median(series)), mode="lines", name=name, legendgroup=name,
                                     showlegend=showlegend and j == 0, xaxis=xa, yaxis=ya,
                                     line=dict(color=colors[i % len(colors)], width=2)))
    return traces


def norms_figure(curves: Mapping[str, tuple[torch.Tensor, torch.Tensor]], *, title: str | None = None) -> go.Figure:
    """Median forward (left) and backward (right) norm ratios against layer index, one line per entry.

    ``curves[name] = (forward, backward)`` as returned by
    :func:`kexue_lib.geometry.signal_propagation`.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward ‖h_ℓ‖ / ‖h_0‖", "backward ‖g_ℓ‖ / ‖g_L‖"))
    for trace in _norm_traces(curves, COLORS, [("x", "y"), ("x2", "y2")]):
        fig.add_trace(trace)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="layer ℓ")
    return styled(fig, title=title, height=440, legend=dict(y=1.12))


def propagation_by_width(
    widths: Sequence[int],
    activations: Sequence[str],
    results: Sequence[Mapping[str, Mapping[str, tuple[torch.Tensor, torch.Tensor]]]],
) -> go.Figure:
    """Median norm ratios against depth: rows forward/backward, a column per activation, slider on width.

    ``results[i][activation][scheme] = (forward, backward)`` for ``widths[i]``.
    """
    cols = len(activations)
    base = make_subplots(rows=2, cols=cols, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.08,
                         subplot_titles=[f"{a}, forward" for a in activations] + [f"{a}, backward" for a in activations])
    steps = []
    for width, by_act in zip(widths, results):
        traces = []
        for c, act in enumerate(activations):
            axes = [(f"x{c + 1 if c else ''}", f"y{c + 1 if c else ''}"),
                    (f"x{cols + c + 1}", f"y{cols + c + 1}")]
            traces += _norm_traces(by_act[act], COLORS, axes, showlegend=c == 0)
        steps.append(Step(str(width), traces))
    fig = slider_figure(steps, label="width", active=len(steps) - 1, base=base)
    fig.update_yaxes(type="log", exponentformat="power", range=[-40, 32], dtick=20)
    fig.update_yaxes(title_text="‖h_ℓ‖ / ‖h_0‖", row=1, col=1)
    fig.update_yaxes(title_text="‖g_ℓ‖ / ‖g_L‖", row=2, col=1)
    for c in range(cols):
        fig.update_xaxes(title_text="layer ℓ", row=2, col=c + 1)
    return styled(fig, height=720, legend=dict(y=1.08))


def propagation_by_aspect(
    aspects: Sequence[float], results: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor]]], titles: Sequence[str]
) -> go.Figure:
    """Median norm ratios in a network of alternating widths, slider on the aspect ratio.

    ``results[i][scheme] = (forward, backward)`` for ``aspects[i]``.
    """
    base = make_subplots(rows=1, cols=2, subplot_titles=("forward ‖h_ℓ‖ / ‖h_0‖", "backward ‖g_ℓ‖ / ‖g_L‖"))
    steps = [Step(f"{a:g}", _norm_traces(curves, COLORS, [("x", "y"), ("x2", "y2")]), {"title.text": t})
             for a, curves, t in zip(aspects, results, titles)]
    fig = slider_figure(steps, label="odd/even width", active=len(steps) // 2, base=base)
    fig.update_yaxes(type="log", exponentformat="power", range=[-18, 16], dtick=4)
    fig.update_xaxes(title_text="layer ℓ")
    return styled(fig, height=490, legend=dict(y=1.12))


def jacobian_spectra(
    depths: Sequence[int],
    log_svals: Sequence[Mapping[str, torch.Tensor]],
    *,
    resolution: float = 1e-13,
    lo: float = -14.0,
    hi: float = 2.0,
) -> go.Figure:
    """Distribution of :math:`\log_{10}` singular values of the end-to-end Jacobian, slider on depth.

    ``log_svals[i][name]`` has shape ``(trials, width)`` (natural logs, from
    :func:`kexue_lib.geometry.jacobian_log_singular_values`). Each curve is the
    fraction of singular values below a value (all trials pooled). Values below
    ``resolution`` times their matrix's largest are rounding noise: they are left
    out, so such a curve starts at the fraction they make up (also in its legend entry).
    """
    steps = []
    for depth, by_name in zip(depths, log_svals):
        traces = []
        for i, (name, ls) in enumerate(by_name.items()):
            keep = ls >= ls[:, :1] + math.log(resolution)
            frac = float((~keep).double().mean())
            x = (ls[keep] / math.log(10)).sort().values
            y = frac + (1 - frac) * torch.arange(1, x.numel() + 1, dtype=torch.float64) / x.numel()
            traces.append(go.Scatter(x=array(x), y=array(y), mode="lines", line=dict(color=COLORS[i], width=2.5, shape="hv"),
                                     name=f"{name} ({100 * frac:.0f}% unresolved)"))
        title = f"depth {depth} (unresolved: below {resolution:g} × the largest)"
        steps.append(Step(str(depth), traces, {"title.text": title}))
    fig = slider_figure(steps, label="depth", active=len(steps) // 2)
    return styled(fig, height=500, xaxis_title="log₁₀ singular value of the input-output Jacobian",
                  yaxis_title="fraction of singular values below", xaxis_range=[lo, hi], yaxis_range=[0, 1.02],
                  legend=dict(x=0.01, y=0.98, xanchor="left", yanchor="top", orientation="v",
                              bgcolor="rgba(255,255,255,0.8)", font=dict(size=11)))
