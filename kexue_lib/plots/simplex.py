"""Figures of chapter 5 (minimization in probability space), from :mod:`kexue_lib.simplex` and :mod:`kexue_lib.flows`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .core import COLORS, Step, array, slider_figure, styled

__all__ = [
    "ternary_paths_by_iteration",
    "ternary_paths_by_step",
    "convergence_curves",
    "density_flow",
    "particles_2d",
]

_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x")


def _ternary_layout(fig: go.Figure, title: str | None = None, height: int = 560) -> go.Figure:
    axis = dict(min=0, linecolor="#888", gridcolor="#e5e5e5", ticks="outside")
    return styled(fig, title=title, height=height,
                  ternary=dict(sum=1, domain=dict(x=[0, 1], y=[0, 0.86]), aaxis=dict(title="p₁", **axis), baxis=dict(title="p₂", **axis),
                               caxis=dict(title="p₃", **axis), bgcolor="white"))


def _background(points: torch.Tensor, values: torch.Tensor, optimum: torch.Tensor) -> list[go.Scatterternary]:
    return [
        go.Scatterternary(a=array(points[:, 0]), b=array(points[:, 1]), c=array(points[:, 2]), mode="markers",
                          marker=dict(size=5, color=array(values), colorscale="Greys", reversescale=True, opacity=0.5,
                                      colorbar=dict(title="F", thickness=12, x=1.02)),
                          name="F on the simplex", hoverinfo="skip"),
        go.Scatterternary(a=array(optimum[0:1]), b=array(optimum[1:2]), c=array(optimum[2:3]), mode="markers",
                          marker=dict(size=16, symbol="star", color="gold", line=dict(color="black", width=1)),
                          name="optimum p*"),
    ]


def _path_trace(name: str, path: torch.Tensor, i: int) -> go.Scatterternary:
    return go.Scatterternary(a=array(path[:, 0]), b=array(path[:, 1]), c=array(path[:, 2]), mode="lines+markers",
                             name=name, line=dict(color=COLORS[i % len(COLORS)], width=2),
                             marker=dict(size=5, symbol=_SYMBOLS[i % len(_SYMBOLS)]))


def ternary_paths_by_iteration(
    paths: Mapping[str, torch.Tensor], points: torch.Tensor, values: torch.Tensor, optimum: torch.Tensor,
    iterations: Sequence[int], *, title: str = "",
) -> go.Figure:
    """Trajectories on the 2-simplex up to iteration k, slider on k.

    ``paths[name]`` has shape ``(K + 1, 3)``; ``points`` ``(m, 3)`` and
    ``values`` ``(m,)`` draw the objective as shaded dots.
    """
    steps = []
    for k in iterations:
        traces = [_path_trace(name, path[: k + 1], i) for i, (name, path) in enumerate(paths.items())]
        steps.append(Step(str(k), traces, {"title.text": f"{title}: first {k} iterations"}))
    fig = slider_figure(steps, label="iteration k", static=_background(points, values, optimum), active=len(steps) // 2)
    return _ternary_layout(fig)


def ternary_paths_by_step(
    paths: Sequence[Mapping[str, torch.Tensor]], etas: Sequence[float], points: torch.Tensor, values: torch.Tensor,
    optimum: torch.Tensor, *, title: str = "",
) -> go.Figure:
    """Whole trajectories of each method for one step size per slider position.

    ``paths[j][name]`` has shape ``(K + 1, 3)`` for step size ``etas[j]``.
    """
    steps = []
    for eta, group in zip(etas, paths):
        traces = [_path_trace(name, path, i) for i, (name, path) in enumerate(group.items())]
        steps.append(Step(f"{eta:.3g}", traces, {"title.text": f"{title}: step size η = {eta:.3g}"}))
    fig = slider_figure(steps, label="η", static=_background(points, values, optimum), active=len(steps) // 2)
    return _ternary_layout(fig)


def convergence_curves(gaps: Mapping[str, Mapping[str, torch.Tensor]]) -> go.Figure:
    """Optimality gap ``F(p_k) - F*`` against k (log-log), one slider position per objective.

    ``gaps[objective][method]`` has shape ``(K + 1,)``; values <= 0 (reached to rounding) are not drawn.
    """
    steps = []
    for objective, curves in gaps.items():
        traces = []
        for i, (method, gap) in enumerate(curves.items()):
            k = torch.arange(1, gap.shape[0])
            g = gap[1:]
            keep = g > 1e-15
            traces.append(go.Scatter(x=array(k[keep]), y=array(g[keep]), mode="lines", name=method,
                                     line=dict(color=COLORS[i % len(COLORS)], width=2)))
        steps.append(Step(objective, traces, {"title.text": f"optimality gap F(pₖ) − F*: {objective}"}))
    fig = slider_figure(steps, label="objective")
    return styled(fig, xaxis_title="iteration k", yaxis_title="F(pₖ) − F*", xaxis_type="log", yaxis_type="log",
                  yaxis_range=[-15.5, 0.5], yaxis_exponentformat="power", height=480)


def density_flow(
    x: torch.Tensor, times: Sequence[float], grid: torch.Tensor, centers: torch.Tensor, particles: torch.Tensor,
    gibbs: torch.Tensor, kl: Mapping[str, torch.Tensor],
) -> go.Figure:
    """Densities along the 1-D flow (left) and KL to the target against time (right), slider on time.

    ``grid`` ``(T, N)``: the PDE density at cell centers ``x``; ``particles``
    ``(T, B)``: particle histogram densities at bin ``centers``; ``gibbs``
    ``(N,)``; ``kl[name]`` ``(T,)``.
    """
    base = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.12)
    t = array(torch.tensor(times))
    static = [go.Scatter(x=array(x), y=array(gibbs), mode="lines", name="Gibbs e^(−V)/Z",
                         line=dict(color="black", width=2, dash="dot"))]
    for i, (name, values) in enumerate(kl.items()):
        static.append(go.Scatter(x=t, y=array(values), mode="lines+markers", name=f"KL: {name}",
                                 line=dict(color=COLORS[i], width=2), marker=dict(size=4),
                                 xaxis="x2", yaxis="y2"))
    top = float(max(grid.max(), particles.max(), gibbs.max())) * 1.05
    low, high = float(min(v[v > 0].min() for v in kl.values())), float(max(v.max() for v in kl.values()))
    steps = []
    for j, time in enumerate(times):
        steps.append(Step(f"{time:.2f}", [
            go.Scatter(x=array(x), y=array(grid[j]), mode="lines", name="finite-volume PDE",
                       line=dict(color=COLORS[0], width=3)),
            go.Bar(x=array(centers), y=array(particles[j]), name="particles (histogram)",
                   marker_color=COLORS[1], opacity=0.45),
            go.Scatter(x=[time, time], y=[low, high], mode="lines", name="current t", showlegend=False,
                       line=dict(color="#888", dash="dash"), xaxis="x2", yaxis="y2"),
        ], {"title.text": f"t = {time:.2f}"}))
    fig = slider_figure(steps, label="t", static=static, base=base)
    fig.update_layout(bargap=0)
    fig.update_yaxes(range=[0, top], title_text="density p(x, t)", row=1, col=1)
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", title_text="KL(pₜ ‖ e^(−V)/Z), 40 bins", row=1, col=2)
    fig.update_xaxes(title_text="t", row=1, col=2)
    return styled(fig, height=500)


def particles_2d(
    times: Sequence[float], particles: torch.Tensor, x: torch.Tensor, gibbs: torch.Tensor, *, max_points: int = 1500,
) -> go.Figure:
    """Particles of a 2-D flow over the contours of the target, slider on time.

    ``particles`` ``(T, n, 2)``; ``gibbs`` ``(M, M)`` on the axis ``x`` ``(M,)``
    (entry ``[i, j]`` at ``(x[i], x[j])``). At most ``max_points`` particles are drawn.
    """
    shown = particles[:, :max_points]
    static = [go.Contour(x=array(x), y=array(x), z=array(gibbs.T), colorscale=[[0, "#c6dbef"], [1, "#08306b"]],
                         showscale=False, ncontours=6, contours=dict(coloring="lines"), line=dict(width=1.5),
                         name="Gibbs density (contours)", showlegend=True, hoverinfo="skip")]
    steps = [Step(f"{t:.2f}", [go.Scatter(x=array(p[:, 0]), y=array(p[:, 1]), mode="markers", name="particles",
                                          marker=dict(size=3, color=COLORS[1], opacity=0.6))],
                  {"title.text": f"t = {t:.2f}"})
             for t, p in zip(times, shown)]
    fig = slider_figure(steps, label="t", static=static)
    lim = [float(x[0]), float(x[-1])]
    return styled(fig, height=600, xaxis=dict(range=lim, title="x₁", constrain="domain"),
                  yaxis=dict(range=lim, title="x₂", scaleanchor="x", scaleratio=1, constrain="domain"))
