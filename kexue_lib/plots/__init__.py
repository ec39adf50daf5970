"""The plotting layer: plotly figures from the results of the math modules.

- :mod:`kexue_lib.plots.core`: style, precomputed sliders, the book renderer;
- :mod:`kexue_lib.plots.live`: ipywidgets controls for readers with a kernel;
- one module per chapter (:mod:`kexue_lib.plots.smoothing`, ...) with its figures.
"""

from .core import COLORS, Step, array, figure_html, slider_figure, styled
from .live import is_static, live

__all__ = ["COLORS", "Step", "array", "figure_html", "slider_figure", "styled", "is_static", "live"]
