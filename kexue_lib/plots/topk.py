"""Figures of chapter 4 (smooth Top-k), built from results of :mod:`kexue_lib.topk`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .core import COLORS, Step, array, slider_figure, styled

__all__ = ["mask_bars", "recursion_vs_stable", "recursion_error_map", "gap_vs_n", "s_curves", "training_curves",
           "benchmark_table", "benchmark_bars", "benchmark_times"]


def _bars(masks: Mapping[str, torch.Tensor]) -> list[go.Bar]:
    idx = array(torch.arange(next(iter(masks.values())).shape[-1]))
    return [go.Bar(x=idx, y=array(p), name=name, marker_color=COLORS[i % len(COLORS)])
            for i, (name, p) in enumerate(masks.items())]


def mask_bars(scores: torch.Tensor, label: str, values: Sequence[str], masks: Sequence[Mapping[str, torch.Tensor]],
              hard: Sequence[torch.Tensor], titles: Sequence[str]) -> go.Figure:
    """Every method's mask of a fixed score vector as grouped bars, one slider step per value.

    ``masks[j][method]`` is the mask at step ``j``, ``hard[j]`` the hard Top-k mask
    drawn as black diamonds, ``titles[j]`` the title of step ``j``.
    """
    idx = array(torch.arange(scores.shape[-1]))
    static = [go.Scatter(x=idx, y=array(scores / scores.abs().max()), mode="markers", name="scores (scaled)",
                         marker=dict(color="#888", symbol="circle-open", size=9), yaxis="y")]
    steps = []
    for value, m, h, title in zip(values, masks, hard, titles):
        traces = _bars(m)
        traces.append(go.Scatter(x=idx, y=array(h), mode="markers", name="hard Top-k",
                                 marker=dict(color="black", symbol="diamond", size=8)))
        steps.append(Step(value, traces, {"title.text": title}))
    fig = slider_figure(steps, label=label, static=static, active=len(steps) // 2)
    return styled(fig, barmode="group", xaxis_title="index i", yaxis_title="mask value p_i",
                  yaxis_range=[-1.05, 1.25], height=500)


def recursion_vs_stable(scales: Sequence[float], naive: torch.Tensor, stable: torch.Tensor,
                        titles: Sequence[str]) -> go.Figure:
    """The post's recursion against the stable GradTopK on one vector, slider on its scale.

    ``naive`` and ``stable`` have shape ``(len(scales), n)``; non-finite values
    of the recursion are drawn as red crosses at 0.
    """
    n = naive.shape[-1]
    idx = array(torch.arange(n))
    steps = []
    for s, a, b, title in zip(scales, naive, stable, titles):
        bad = ~torch.isfinite(a)
        traces = [
            go.Bar(x=idx, y=array(b), name="stable (tree)", marker_color=COLORS[0], opacity=0.6),
            go.Scatter(x=idx, y=array(torch.where(bad, float("nan"), a)), mode="markers", name="post's recursion",
                       marker=dict(color=COLORS[1], size=9)),
            go.Scatter(x=array(torch.arange(n)[bad]), y=array(torch.zeros(int(bad.sum()))), mode="markers",
                       name="recursion: nan/inf", marker=dict(color=COLORS[1], symbol="x", size=11)),
        ]
        steps.append(Step(f"{s:g}", traces, {"title.text": title}))
    fig = slider_figure(steps, label="input scale", active=0)
    return styled(fig, xaxis_title="index i (sorted by score)", yaxis_title="GradTopK p_i",
                  yaxis_range=[-0.2, 1.3], height=470)


def recursion_error_map(scales: Sequence[float], ks: Sequence[int], failure: Mapping[str, torch.Tensor]) -> go.Figure:
    """Share of vectors on which the post's recursion fails, on a (scale, k) map; slider on dtype.

    ``failure[dtype_name]`` has shape ``(len(ks), len(scales))``.
    """
    steps = []
    xs = [f"{s:g}" for s in scales]
    ys = [str(k) for k in ks]
    for name, grid in failure.items():
        heat = go.Heatmap(x=xs, y=ys, z=array(grid), zmin=0, zmax=1, colorscale="Reds",
                          colorbar=dict(title="failed share"), text=[[f"{v:.2f}" for v in row] for row in grid.tolist()],
                          texttemplate="%{text}", hovertemplate="scale %{x}, k %{y}: %{z:.2f}<extra></extra>")
        steps.append(Step(name, [heat], {"title.text": f"post's recursion in {name}: share of 200 vectors (n = 32) with error > 1e-3 or nan/inf"}))
    fig = slider_figure(steps, label="dtype", active=0)
    return styled(fig, xaxis_title="standard deviation of the scores", yaxis_title="k", height=460,
                  xaxis_type="category", yaxis_type="category")


def gap_vs_n(ns: Sequence[int], regimes: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> go.Figure:
    """Largest gap between GradTopK and sigmoid ThreTopK against n, slider on the regime of k.

    ``regimes[label] = (gap, gap_times_variance)``, each of length ``len(ns)``.
    """
    steps = []
    x = array(torch.tensor(list(ns)))
    for label, (gap, scaled) in regimes.items():
        steps.append(Step(label, [
            go.Scatter(x=x, y=array(gap), mode="lines+markers", name="mean over vectors of max_i |p_grad − p_sigmoid|",
                       line=dict(color=COLORS[0], width=3)),
            go.Scatter(x=x, y=array(scaled), mode="lines+markers", name="same × Var(ΣB) (conditioning correction)",
                       line=dict(color=COLORS[1], width=2, dash="dash")),
        ], {"title.text": f"GradTopK vs ThreTopK-sigmoid, {label}"}))
    fig = slider_figure(steps, label="regime", active=0)
    return styled(fig, xaxis_title="n", yaxis_title="gap", xaxis_type="log", yaxis_type="log", height=450)


def s_curves(v: torch.Tensor, curves: Mapping[str, torch.Tensor]) -> go.Figure:
    """The S-curves f of the threshold methods (static)."""
    fig = go.Figure([go.Scatter(x=array(v), y=array(c), mode="lines", name=name, line=dict(color=COLORS[i + 2], width=3))
                     for i, (name, c) in enumerate(curves.items())])
    return styled(fig, xaxis_title="v = u − λ", yaxis_title="f(v)", height=380)


def training_curves(curves: Mapping[str, Mapping[str, torch.Tensor]], keys: Sequence[tuple[str, str]]) -> go.Figure:
    """Training curves per method, one panel per ``(key, title)`` in ``keys``, and the tau schedule."""
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[t for _, t in keys])
    for i, (name, c) in enumerate(curves.items()):
        steps = array(torch.arange(len(c[keys[0][0]])))
        for j, (key, _) in enumerate(keys):
            fig.add_trace(go.Scatter(x=steps, y=array(c[key]), mode="lines", name=name, legendgroup=name,
                                     showlegend=j == 0, line=dict(color=COLORS[i % len(COLORS)], width=2)),
                          row=1, col=j + 1)
    for j, (key, _) in enumerate(keys):
        if "loss" in key:  # labelled ticks at 1, 2, 5 per decade, written out in full
            ticks = [m * 10.0**e for e in range(-3, 3) for m in (1, 2, 5)]
            fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], row=1, col=j + 1)
        fig.update_xaxes(title_text="training step", row=1, col=j + 1)
    return styled(fig, height=460, legend=dict(y=1.2), margin=dict(t=140))


def _cells(payload: Mapping) -> list[tuple[int, int, Mapping]]:
    return [(c["n"], c["k"], c["times"]) for c in payload["results"]]


def benchmark_table(payload: Mapping, memory: bool = False) -> str:
    """Markdown tables of a ``benchmarks/bench_topk.py`` result, one per ``n`` with a column per ``k``:
    time as a multiple of torch.topk (and in ms), or with ``memory`` the peak memory as a
    multiple of the input's size."""
    cells = _cells(payload)
    tables = []
    for n in dict.fromkeys(c[0] for c in cells):
        row_cells = [(k, times) for m, k, times in cells if m == n]
        names: list[str] = []
        for _, times in row_cells:
            names += [name for name in times if name not in names]
        lines = [f"**n = {n}**", "", "| method | " + " | ".join(f"k = {k}" for k, _ in row_cells) + " |",
                 "| --- |" + " ---: |" * len(row_cells)]
        for name in names:
            entries = []
            for _, times in row_cells:
                t = times.get(name)
                if t is None or (memory and "peak_memory" not in t):
                    entries.append("–")
                else:
                    entries.append(f"{t['peak_memory']:.1f}×" if memory else f"{t['ratio']:.1f}×\u00a0({t['median_ms']:.2f}\u00a0ms)")  # no break
            lines.append(f"| {name} | " + " | ".join(entries) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def _names(times_list: Sequence[Mapping]) -> list[str]:
    names: list[str] = []
    for times in times_list:
        names += [name for name in times if name not in names and name != "torch.topk (hard)"]
    return names


def benchmark_bars(payload: Mapping, slider: str = "k") -> go.Figure:
    """Time as a multiple of torch.topk (log axis): one slider step per ``k`` (bars grouped
    by ``n``) or per ``n`` (bars grouped by ``k``), as ``slider`` says."""
    cells = _cells(payload)
    other = "n" if slider == "k" else "k"
    values = sorted({(k if slider == "k" else n) for n, k, _ in cells})
    steps = []
    for value in values:
        row = [((n if slider == "k" else k), times) for n, k, times in cells if (k if slider == "k" else n) == value]
        traces = [go.Bar(x=[f"{other} = {o}" for o, _ in row],
                         y=[times[name]["ratio"] if name in times else float("nan") for _, times in row],
                         name=name, marker_color=COLORS[i % len(COLORS)] if i < len(COLORS) else "#444")
                  for i, name in enumerate(_names([t for _, t in row]))]
        steps.append(Step(str(value), traces, {"title.text": f"forward + backward, {slider} = {value}: time / time of torch.topk"}))
    default = 8 if slider == "k" else 8192
    fig = slider_figure(steps, label=slider, active=values.index(default) if default in values else 0)
    fig.add_hline(y=1, line=dict(color="black", dash="dot"))
    return styled(fig, barmode="group", yaxis_type="log", yaxis_title="time / time of torch.topk (log)", height=560,
                  margin=dict(t=160), legend=dict(y=1.08))


def benchmark_times(payload: Mapping) -> go.Figure:
    """Median forward+backward time in ms against n, one line per method, slider on k (log-log)."""
    cells = _cells(payload)
    ks = sorted({k for _, k, _ in cells})
    steps = []
    for k in ks:
        row = [(n, times) for n, kk, times in cells if kk == k]
        names = ["torch.topk (hard)", *_names([t for _, t in row])]
        traces = []
        for i, name in enumerate(names):
            pts = [(n, times[name]["median_ms"]) for n, times in row if name in times]
            traces.append(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                     line=dict(color="black" if i == 0 else (COLORS + ("#444",))[min(i - 1, len(COLORS))],
                                               width=3 if i == 0 else 2)))
        steps.append(Step(str(k), traces, {"title.text": f"forward + backward time, k = {k} (batch 256, float32)"}))
    fig = slider_figure(steps, label="k", active=ks.index(8) if 8 in ks else 0)
    return styled(fig, xaxis_type="log", yaxis_type="log", xaxis_title="n", yaxis_title="milliseconds", height=560,
                  margin=dict(t=160), legend=dict(y=1.08))
