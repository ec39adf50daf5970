"""Figures of chapter 2 (det exp = exp trace), built from results of :mod:`kexue_lib.matrix`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .core import COLORS, Step, array, slider_figure, styled

__all__ = [
    "series_convergence",
    "error_curves",
    "commutator_gap",
    "flow_panels",
    "hutchinson_spread",
    "precision_figure",
]


def _closed(polygon: torch.Tensor) -> torch.Tensor:
    return torch.cat([polygon, polygon[:1]])


def _axis(i: int) -> tuple[str, str]:
    return ("x", "y") if i == 0 else (f"x{i + 1}", f"y{i + 1}")


def series_convergence(
    ns: Sequence[int],
    images: Mapping[str, torch.Tensor],
    exact: Mapping[str, torch.Tensor],
    errors: Mapping[str, torch.Tensor],
) -> go.Figure:
    """Partial sums of the exponential series acting on the unit circle, slider on the number of terms.

    Parameters
    ----------
    ns : sequence of int
        Numbers of terms, one slider step each.
    images : mapping of name to (len(ns), m, 2) tensor
        The unit circle mapped by each partial sum :math:`S_N(A)`, one panel per name.
    exact : mapping of name to (m, 2) tensor
        The circle mapped by ``matrix_exp(A)``.
    errors : mapping of name to (N_max,) tensor
        Relative error of :math:`S_N(A)` for :math:`N = 1, \\dots, N_{\\max}` (right panel, log scale).
    """
    names = list(images)
    k = len(names)
    base = make_subplots(rows=1, cols=k + 1, subplot_titles=[*names, "relative error of S_N(A)"],
                         horizontal_spacing=0.07)
    static = []
    for i, name in enumerate(names):
        xa, ya = _axis(i)
        e = _closed(exact[name])
        static.append(go.Scatter(x=array(e[:, 0]), y=array(e[:, 1]), mode="lines", name="exp(A) · circle",
                                 line=dict(color="black", width=2), xaxis=xa, yaxis=ya, showlegend=i == 0))
    xa, ya = _axis(k)
    for i, (name, err) in enumerate(errors.items()):
        static.append(go.Scatter(x=array(torch.arange(1, len(err) + 1)), y=array(err.clamp_min(1e-17)),
                                 mode="lines", name=name, line=dict(color=COLORS[i + 1], width=2),
                                 xaxis=xa, yaxis=ya))
    steps = []
    for j, n in enumerate(ns):
        traces = []
        for i, name in enumerate(names):
            xa_i, ya_i = _axis(i)
            p = _closed(images[name][j])
            traces.append(go.Scatter(x=array(p[:, 0]), y=array(p[:, 1]), mode="lines", name="S_N(A) · circle",
                                     line=dict(color=COLORS[0], width=3), fill="toself",
                                     fillcolor="rgba(31,119,180,0.12)", xaxis=xa_i, yaxis=ya_i,
                                     showlegend=i == 0))
        traces.append(go.Scatter(x=[n, n], y=[1e-17, 1e11], mode="lines", name="current N",
                                 line=dict(color="#888", dash="dot"), xaxis=xa, yaxis=ya, showlegend=False))
        errs = ", ".join(f"{name.split(',')[0]} {float(err[n - 1]):.1e}" for name, err in errors.items()
                         if n <= len(err))
        steps.append(Step(str(n), traces, {"title.text": f"N = {n} terms: relative error {errs}"}))
    fig = slider_figure(steps, label="terms N", static=static, active=min(3, len(ns) - 1), base=base)
    for i, name in enumerate(names):
        pts = exact[name]
        r = 1.6 * float(pts.abs().max())
        fig.update_xaxes(range=[-r, r], row=1, col=i + 1)
        fig.update_yaxes(range=[-r, r], row=1, col=i + 1, scaleanchor=_axis(i)[0])
    fig.update_yaxes(type="log", range=[-17, 11], row=1, col=k + 1, exponentformat="power")
    fig.update_xaxes(title_text="terms N", row=1, col=k + 1)
    return styled(fig, height=450, legend=dict(y=1.22), margin=dict(t=130))


def error_curves(x: torch.Tensor, curves: Mapping[str, torch.Tensor], *, xaxis_title: str,
                 yaxis_title: str, log_x: bool = False, reference: Mapping[str, torch.Tensor] | None = None,
                 markers: bool = True) -> go.Figure:
    """Errors (or costs) of several methods against one parameter, log scale in y.

    ``curves[name]`` has the shape of ``x``; ``reference`` adds dashed guide
    lines (a slope, a bound) with the same convention. Zeros are drawn at 1e-17.
    """
    fig = go.Figure()
    for i, (name, y) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=array(x), y=array(y.abs().clamp_min(1e-17)), name=name,
                                 mode="lines+markers" if markers else "lines",
                                 line=dict(color=COLORS[i % len(COLORS)], width=2), marker=dict(size=6)))
    for name, y in (reference or {}).items():
        fig.add_trace(go.Scatter(x=array(x), y=array(y), name=name, mode="lines",
                                 line=dict(color="#777", dash="dash", width=1.5)))
    return styled(fig, xaxis_title=xaxis_title, yaxis_title=yaxis_title, yaxis_type="log",
                  xaxis_type="log" if log_x else "linear", xaxis_exponentformat="power",
                  yaxis_exponentformat="power", height=420)


def commutator_gap(scales: Sequence[float], comm: torch.Tensor, gap: torch.Tensor) -> go.Figure:
    """Scatter of :math:`\\|e^{A+B} - e^A e^B\\|` against :math:`\\|[A, B]\\|`, slider on the size of the pair.

    ``comm`` and ``gap`` have shape ``(len(scales), pairs)``: for each scale
    ``s`` the pairs :math:`(sA, sB)`.
    """
    lo = float(comm[comm > 0].min()) / 2
    hi = float(torch.maximum(comm.max(), gap.max())) * 2
    guide = torch.logspace(torch.log10(torch.tensor(lo)), torch.log10(torch.tensor(hi)), 50)
    static = [go.Scatter(x=array(guide), y=array(guide / 2), mode="lines", name="½ ‖[A, B]‖ (second order)",
                         line=dict(color="black", dash="dash"))]
    steps = []
    for s, c, g in zip(scales, comm, gap):
        ratio = float((g / c).median())
        steps.append(Step(f"{s:.2g}", [go.Scatter(x=array(c), y=array(g), mode="markers", name="random pairs",
                                                   marker=dict(color=COLORS[0], size=6, opacity=0.7))],
                          {"title.text": f"entries scaled by {s:.2g}: median gap / ‖[A, B]‖ = {ratio:.3f}"}))
    fig = slider_figure(steps, label="scale", static=static, active=len(steps) // 2)
    return styled(fig, xaxis_title="‖[A, B]‖ (Frobenius)", yaxis_title="‖exp(A+B) − exp(A) exp(B)‖",
                  xaxis_type="log", yaxis_type="log", xaxis_exponentformat="power",
                  yaxis_exponentformat="power", height=460)


def flow_panels(
    ts: Sequence[float],
    polygons: Mapping[str, torch.Tensor],
    areas: Mapping[str, torch.Tensor],
    predicted: Mapping[str, torch.Tensor],
    *,
    cols: int = 2,
    active: int | None = None,
) -> go.Figure:
    """Liouville's formula in the plane: a shape carried by :math:`e^{tA}`, slider on ``t``.

    One panel per name. ``polygons[name]`` has shape ``(len(ts), m, 2)`` (the
    shape at each time), ``areas[name]`` and ``predicted[name]`` shape
    ``(len(ts),)``: the measured signed area and :math:`e^{t \\operatorname{Tr} A}`
    times the initial area. The corner paths are drawn faintly. ``active``
    is the step shown first (default: the middle one).
    """
    names = list(polygons)
    rows = -(-len(names) // cols)
    cols = min(cols, len(names))
    base = make_subplots(rows=rows, cols=cols, subplot_titles=names, vertical_spacing=0.14,
                         horizontal_spacing=0.08)
    static = []
    for i, name in enumerate(names):
        xa, ya = _axis(i)
        poly = polygons[name]
        start = _closed(poly[0])
        static.append(go.Scatter(x=array(start[:, 0]), y=array(start[:, 1]), mode="lines", name="shape at t = 0",
                                 line=dict(color="black", dash="dot", width=1.5), xaxis=xa, yaxis=ya,
                                 showlegend=i == 0, hoverinfo="skip"))
        for c in range(poly.shape[1]):
            static.append(go.Scatter(x=array(poly[:, c, 0]), y=array(poly[:, c, 1]), mode="lines",
                                     line=dict(color="#bbbbbb", width=1), name="paths of the corners",
                                     legendgroup="paths", showlegend=i == 0 and c == 0, xaxis=xa, yaxis=ya,
                                     hoverinfo="skip"))
    steps = []
    for j, t in enumerate(ts):
        traces, layout = [], {}
        for i, name in enumerate(names):
            xa, ya = _axis(i)
            p = _closed(polygons[name][j])
            traces.append(go.Scatter(x=array(p[:, 0]), y=array(p[:, 1]), mode="lines+markers", fill="toself",
                                     fillcolor="rgba(31,119,180,0.25)", line=dict(color=COLORS[0], width=2),
                                     marker=dict(size=5), name="exp(tA) · shape", xaxis=xa, yaxis=ya,
                                     showlegend=i == 0))
            layout[f"annotations[{i}].text"] = (
                f"{name}: area {float(areas[name][j]):.3f}, e^(t·tr A) = {float(predicted[name][j]):.3f}"
            )
        steps.append(Step(f"{t:.2f}", traces, layout))
    fig = slider_figure(steps, label="t", static=static,
                        active=len(steps) // 2 if active is None else active % len(steps), base=base)
    for i, name in enumerate(names):
        pts = polygons[name].reshape(-1, 2)
        lo, hi = pts.min(0).values, pts.max(0).values
        center, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.1 + 0.05
        r, c = divmod(i, cols)
        fig.update_xaxes(range=[float(center[0]) - half, float(center[0]) + half], row=r + 1, col=c + 1)
        fig.update_yaxes(range=[float(center[1]) - half, float(center[1]) + half], row=r + 1, col=c + 1,
                         scaleanchor=_axis(i)[0])
    fig.update_annotations(font=dict(size=12))
    return styled(fig, height=360 * rows + 120)


def hutchinson_spread(
    probes: Sequence[int],
    estimates: Mapping[str, torch.Tensor],
    exact: float,
    predicted: Mapping[str, float],
) -> go.Figure:
    """Hutchinson estimates: their spread (left, slider on the number of probes) and variance (right).

    ``estimates[name]`` has shape ``(len(probes), repeats)``; ``predicted[name]``
    is the exact variance of one probe, so the right panel compares the
    measured variance with ``predicted / m``.
    """
    base = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.1,
                         subplot_titles=("estimates of the trace (repeats)", "variance against probes m"))
    m = array(torch.tensor(probes, dtype=torch.float64))
    static = [go.Scatter(x=[exact, exact], y=[0, 1], mode="lines", name="exact trace",
                         line=dict(color="black", width=2), yaxis="y", xaxis="x")]
    for i, (name, est) in enumerate(estimates.items()):
        color = COLORS[i % len(COLORS)]
        static.append(go.Scatter(x=m, y=array(est.var(dim=-1)), mode="markers", name=f"{name}: measured variance",
                                 marker=dict(color=color, size=8), xaxis="x2", yaxis="y2"))
        static.append(go.Scatter(x=m, y=array(predicted[name] / torch.tensor(probes, dtype=torch.float64)),
                                 mode="lines", name=f"{name}: Var₁ / m", line=dict(color=color, dash="dash"),
                                 xaxis="x2", yaxis="y2"))
    all_est = torch.cat([e.flatten() for e in estimates.values()])
    lo, hi = float(torch.quantile(all_est.double(), 0.005)), float(torch.quantile(all_est.double(), 0.995))
    steps = []
    for j, p in enumerate(probes):
        traces = [go.Histogram(x=array(est[j]), name=name, histnorm="probability density", opacity=0.55,
                               marker_color=COLORS[i % len(COLORS)], xbins=dict(start=lo, end=hi, size=(hi - lo) / 60),
                               showlegend=False, xaxis="x", yaxis="y")
                  for i, (name, est) in enumerate(estimates.items())]
        sd = ", ".join(f"{name} sd {float(est[j].std()):.2f}" for name, est in estimates.items())
        steps.append(Step(str(p), traces, {"title.text": f"m = {p} probes: {sd}"}))
    fig = slider_figure(steps, label="probes m", static=static, active=0, base=base)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(range=[lo, hi], title_text="estimate", row=1, col=1)
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_xaxes(type="log", title_text="probes m", row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2, exponentformat="power")
    return styled(fig, height=520, legend=dict(y=1.12), margin=dict(t=170), title_y=0.98, title_yanchor="top")


def precision_figure(
    ns: Sequence[int],
    logdet_errors: Mapping[str, torch.Tensor],
    lams: Sequence[float],
    dets: Mapping[str, torch.Tensor],
) -> go.Figure:
    """Both sides of the identity in floating point.

    Left: relative error of :math:`\\log|\\det e^A|` (via ``slogdet(matrix_exp)``) and of
    :math:`\\operatorname{Tr} A` against ``n``. Right: ``det(matrix_exp(A))`` for
    trace-free matrices with eigenvalues :math:`\\pm\\lambda`, where the exact value is 1.
    ``logdet_errors[name]`` has shape ``(len(ns),)``, ``dets[name]`` ``(len(lams),)``.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "relative error of the log forms, random A", "computed det(exp A), exact value 1"))
    for i, (name, err) in enumerate(logdet_errors.items()):
        fig.add_trace(go.Scatter(x=array(torch.tensor(ns)), y=array(err.clamp_min(1e-17)), mode="lines+markers",
                                 name=name, line=dict(color=COLORS[i % len(COLORS)], width=2)), row=1, col=1)
    for i, (name, d) in enumerate(dets.items()):
        shown = torch.log10(d.abs().clamp_min(1e-35))  # float32 storage cannot hold 1e120: plot exponents
        fig.add_trace(go.Scatter(x=array(torch.tensor(lams)), y=array(shown), mode="lines+markers",
                                 name=name, line=dict(color=COLORS[(i + 4) % len(COLORS)], width=2),
                                 marker=dict(symbol="diamond", size=8)), row=1, col=2)
    fig.add_hline(y=0.0, line=dict(color="black", dash="dot"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="n", row=1, col=1)
    fig.update_xaxes(type="log", title_text="λ (eigenvalues ±λ, trace 0)", row=1, col=2)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(title_text="log₁₀ |computed det| (0 at −35)", row=1, col=2)
    return styled(fig, height=470, legend=dict(y=1.2), margin=dict(t=140))
