"""Figure machinery shared by every chapter: style, precomputed sliders, display.

A reader of the static book has no kernel, so every slider there is a plotly
slider whose steps were computed in advance: all traces of all steps are in
the figure, and each step only toggles which ones are visible (plotly's
``"update"`` method). Nothing here knows any math; chapter modules of
:mod:`kexue_lib.plots` call :func:`slider_figure` with traces they build from
the results of the math modules.

Importing this module registers a plotly renderer, ``"kexue_book"``, and makes
``"plotly_mimetype+kexue_book"`` the default: a figure left as the last
expression of a cell then carries two representations,

- ``application/vnd.plotly.v1+json``, drawn by JupyterLab, Notebook 7 and VS Code
  with their bundled plotly extension (no network needed), and
- ``text/html``, which expects a global ``Plotly`` (the static book serves
  plotly.js once, from its own files) and, where there is none (Colab), loads
  the plotly.js matching the installed wheel from the plotly CDN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.io.base_renderers import MimetypeRenderer
from plotly.offline import get_plotlyjs_version

__all__ = ["Step", "slider_figure", "styled", "array", "figure_html", "COLORS"]

#: The book's palette: one color per method or curve, in a fixed order.
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

_TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family="Helvetica, Arial, sans-serif", size=13),
        title=dict(x=0.01, xanchor="left", y=0.98, yanchor="top", font=dict(size=15)),
        colorway=list(COLORS),
        plot_bgcolor="white",
        paper_bgcolor="white",
        margin=dict(l=60, r=20, t=60, b=50),
        xaxis=dict(gridcolor="#e5e5e5", linecolor="#888", zeroline=False, ticks="outside"),
        yaxis=dict(gridcolor="#e5e5e5", linecolor="#888", zeroline=False, ticks="outside"),
        legend=dict(bgcolor="rgba(255,255,255,0.7)"),
        hovermode="closest",
    )
)


def array(values: Any) -> np.ndarray:
    """A float32 numpy copy of a tensor or array-like, for compact figure storage.

    Plotly stores numpy arrays as base64 of their dtype, so float32 halves the
    size of every figure in the notebook and in the page.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    return np.asarray(values, dtype=np.float32)


def styled(fig: go.Figure, *, title: str | None = None, height: int = 420, **layout: Any) -> go.Figure:
    """Apply the book's style (template, height, title, legend above the plot) and return ``fig``."""
    fig.update_layout(
        template=_TEMPLATE,
        height=height,
        legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"),
        margin=dict(t=110),
    )
    if title is not None:
        fig.update_layout(title=dict(text=title, x=0.01, xanchor="left"))
    fig.update_layout(**layout)
    return fig


@dataclass
class Step:
    """One position of a precomputed slider.

    Attributes
    ----------
    label : str
        What the slider shows for this step (for example ``"0.25"``).
    traces : list of plotly traces
        Traces drawn only while this step is active.
    layout : dict
        Layout changes for this step, as ``relayout`` paths (``{"title.text": ...}``:
        in plotly.js 3 a plain ``"title"`` string would blank the title).
    """

    label: str
    traces: list[go.Trace] = field(default_factory=list)  # type: ignore[name-defined]
    layout: dict[str, Any] = field(default_factory=dict)


def slider_figure(
    steps: Sequence[Step],
    *,
    label: str,
    static: Sequence[Any] = (),
    active: int = 0,
    base: go.Figure | None = None,
) -> go.Figure:
    """Build a figure with one plotly slider over precomputed steps.

    Parameters
    ----------
    steps : sequence of Step
        One entry per slider position, each with its own traces.
    label : str
        Name of the slider's variable, shown as ``label = value``.
    static : sequence of traces
        Traces visible at every step (a reference curve, the true max).
    active : int
        Index of the step shown first.
    base : go.Figure, optional
        A figure to add to (for example from ``make_subplots``), whose axes the
        traces refer to through their ``xaxis``/``yaxis`` attributes.
    """
    if not steps:
        raise ValueError("steps must hold at least one Step")
    if not 0 <= active < len(steps):
        raise ValueError(f"active must be in [0, {len(steps) - 1}], got {active}")
    fig = base if base is not None else go.Figure()
    for trace in static:
        fig.add_trace(trace)
    n_fixed = len(fig.data)
    owner: list[int] = []
    for i, step in enumerate(steps):
        for trace in step.traces:
            trace.visible = i == active
            fig.add_trace(trace)
            owner.append(i)
    prefix = [True] * n_fixed
    slider_steps = [
        dict(
            method="update",
            label=step.label,
            args=[{"visible": prefix + [o == i for o in owner]}, dict(step.layout)],
        )
        for i, step in enumerate(steps)
    ]
    if steps[active].layout:
        fig.plotly_relayout(dict(steps[active].layout))
    fig.update_layout(
        sliders=[
            dict(
                active=active,
                currentvalue=dict(prefix=f"{label} = "),
                # room for half of the first and last labels, which are centred on the rail's ends
                pad=dict(t=60, b=10, l=max(0, 4 * len(steps[0].label) - 12), r=max(0, 4 * len(steps[-1].label) - 12)),
                steps=slider_steps,
            )
        ]
    )
    return fig


def figure_html(fig: go.Figure | dict) -> str:
    """HTML for a figure that draws with a global ``Plotly`` (the book's own copy).

    The div id is a hash of the figure, so re-running a notebook writes the
    same HTML. Where no ``Plotly`` global exists (a notebook front end that
    ignores the plotly mime type) the script loads plotly.js from the CDN.
    """
    payload = pio.to_json(fig, validate=False).replace("</", "<\\/")
    div_id = "kx-" + hashlib.sha1(payload.encode()).hexdigest()[:16]
    layout = fig.get("layout", {}) if isinstance(fig, dict) else fig.layout.to_plotly_json()
    height = layout.get("height") or 450
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    return (
        f'<div id="{div_id}" class="plotly-graph-div kexue-figure" '
        f'style="height:{height}px; width:100%;"></div>\n'
        '<script type="text/javascript">\n'
        "(function () {\n"
        f"  var fig = {payload};\n"
        "  var draw = function () {\n"
        f'    Plotly.newPlot("{div_id}", fig.data, fig.layout, '
        '{"responsive": true, "displaylogo": false});\n'
        "  };\n"
        "  if (window.Plotly) { draw(); } else {\n"
        '    var s = document.createElement("script");\n'
        f'    s.src = "{cdn}"; s.onload = draw; document.head.appendChild(s);\n'
        "  }\n"
        "})();\n"
        "</script>"
    )


class BookHtmlRenderer(MimetypeRenderer):
    """Plotly renderer emitting :func:`figure_html` as ``text/html``."""

    def to_mimebundle(self, fig_dict: dict) -> dict[str, str]:
        return {"text/html": figure_html(fig_dict)}


pio.renderers["kexue_book"] = BookHtmlRenderer()
pio.renderers.default = "plotly_mimetype+kexue_book"
