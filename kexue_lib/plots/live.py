"""Live ipywidgets controls, shown only where a reader has a kernel.

The static book shows plotly sliders over precomputed values (see
:mod:`kexue_lib.plots.core`). Widgets need a kernel: in the static page they
would be dead controls. So :func:`live` draws its widgets when a person runs
the notebook (Jupyter, Binder, Colab) and, when the notebook is executed to
produce the book's stored outputs (environment variable ``KEXUE_STATIC=1``,
set by ``make execute`` and by the nbval run), prints one line telling the
reader where the live version is instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["STATIC_ENV", "is_static", "live"]

#: Environment variable that marks an execution for the static book.
STATIC_ENV = "KEXUE_STATIC"


def is_static() -> bool:
    """True when the notebook runs to produce static outputs (``KEXUE_STATIC=1``)."""
    return os.environ.get(STATIC_ENV, "") == "1"


def live(figure_fn: Callable[..., Any], **controls: Any) -> None:
    """Show ``controls`` (ipywidgets) that redraw ``figure_fn(**values)`` on every change.

    Parameters
    ----------
    figure_fn : callable
        Takes one keyword argument per control and returns a figure (or any
        displayable object).
    **controls : ipywidgets.ValueWidget
        The controls, by the name of the argument they drive.
    """
    if not controls:
        raise ValueError("live needs at least one control")
    if is_static():
        names = ", ".join(controls)
        print(f"Live controls ({names}): run this notebook in Jupyter or on Binder to use them.")
        return
    import ipywidgets
    from IPython.display import display

    def redraw(**values: Any) -> None:
        display(figure_fn(**values))

    output = ipywidgets.interactive_output(redraw, controls)
    display(ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), output]))
