"""kexue_lib: the computations behind the executable explainer book of results from kexue.fm.

Math modules are pure PyTorch and know nothing of plots:

- :mod:`kexue_lib.smoothing`: smooth max, softmax, soft argmax, soft metrics (chapter 1);
- :mod:`kexue_lib.matrix`: matrix exponential, det exp = exp trace, linear flows, Hutchinson (chapter 2).

The plotting layer, :mod:`kexue_lib.plots`, turns their results into plotly
figures with precomputed sliders, and into live ipywidgets when a kernel runs.
"""

__version__ = "0.1.0"
