"""The plotting layer's shared machinery: precomputed sliders, the book renderer, live controls."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from kexue_lib.plots import Step, array, figure_html, live, slider_figure
from kexue_lib.plots.live import STATIC_ENV


def _steps(n: int, per_step: int = 2) -> list[Step]:
    return [
        Step(f"{i}", [go.Scatter(x=[0, 1], y=[i, j]) for j in range(per_step)], {"title.text": f"step {i}"})
        for i in range(n)
    ]


def test_slider_steps_toggle_exactly_their_own_traces():
    static = [go.Scatter(x=[0, 1], y=[5, 5], name="reference")]
    fig = slider_figure(_steps(4), label="k", static=static, active=2)
    assert len(fig.data) == 1 + 4 * 2
    slider = fig.layout.sliders[0]
    assert slider.active == 2 and slider.currentvalue.prefix == "k = "
    for i, step in enumerate(slider.steps):
        visible = step.args[0]["visible"]
        assert visible[0] is True  # the static trace is always shown
        assert visible[1:] == [owner == i for owner in range(4) for _ in range(2)]
        assert step.args[1] == {"title.text": f"step {i}"}
    # the figure opens on the active step, with that step's layout
    assert [t.visible for t in fig.data[1:]] == [owner == 2 for owner in range(4) for _ in range(2)]
    assert fig.layout.title.text == "step 2"


def test_slider_figure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        slider_figure([], label="k")
    with pytest.raises(ValueError, match=r"active must be in \[0, 2\]"):
        slider_figure(_steps(3), label="k", active=3)


def test_figure_html_is_deterministic_and_needs_no_cdn_when_plotly_is_there():
    fig = slider_figure(_steps(2), label="k")
    html = figure_html(fig)
    assert html == figure_html(fig)  # same figure, same HTML: notebooks re-run without churn
    assert 'class="plotly-graph-div kexue-figure"' in html
    assert "if (window.Plotly) { draw(); }" in html
    assert "</script>" in html and html.count("</script>") == 1
    other = figure_html(slider_figure(_steps(3), label="k"))
    assert other.split('"')[1] != html.split('"')[1]  # different figures, different div ids


def test_figure_html_escapes_closing_tags_in_text():
    fig = go.Figure(go.Scatter(x=[0], y=[0], name="</script><b>"))
    assert figure_html(fig).count("</script>") == 1


def test_default_renderer_emits_plotly_json_and_book_html():
    assert pio.renderers.default == "plotly_mimetype+kexue_book"
    bundle = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))._repr_mimebundle_()
    assert set(bundle) >= {"application/vnd.plotly.v1+json", "text/html"}
    assert "kexue-figure" in bundle["text/html"]


def test_array_stores_float32():
    out = array(torch.arange(3, dtype=torch.float64))
    assert out.dtype.name == "float32" and out.tolist() == [0.0, 1.0, 2.0]
    fig = go.Figure(go.Scatter(x=array([0, 1]), y=array([2, 3])))
    assert json.loads(pio.to_json(fig))["data"][0]["x"]["dtype"] == "f4"


def test_live_prints_a_pointer_when_static(monkeypatch, capsys):
    monkeypatch.setenv(STATIC_ENV, "1")
    calls = []
    live(lambda tau: calls.append(tau), tau=object())
    assert capsys.readouterr().out.strip() == (
        "Live controls (tau): run this notebook in Jupyter or on Binder to use them."
    )
    assert calls == []  # nothing computed, nothing displayed


def test_live_shows_working_widgets_with_a_kernel(monkeypatch):
    import ipywidgets
    from IPython import display as ipy_display

    monkeypatch.delenv(STATIC_ENV, raising=False)
    shown = []
    monkeypatch.setattr(ipy_display, "display", lambda *objs, **kw: shown.extend(objs))
    drawn = []
    slider = ipywidgets.FloatSlider(value=0.5, min=0.1, max=1.0)
    live(lambda tau: drawn.append(tau) or f"figure at {tau}", tau=slider)
    assert any(isinstance(obj, ipywidgets.VBox) for obj in shown)
    assert drawn == [0.5]  # drawn once on display
    slider.value = 0.8
    assert drawn == [0.5, 0.8]  # and again on every change


def test_live_needs_controls():
    with pytest.raises(ValueError, match="at least one control"):
        live(lambda: None)
