"""kexue_lib: the computations behind the executable explainer book of results from kexue.fm.

Math modules are pure PyTorch and know nothing of plots:

- :mod:`kexue_lib.smoothing`: smooth max, softmax, soft argmax, soft metrics (chapter 1);
- :mod:`kexue_lib.matrix`: matrix exponential, det exp = exp trace, linear flows, Hutchinson (chapter 2);
- :mod:`kexue_lib.geometry`: random angles, init schemes, orthogonality, signal propagation (chapter 3);
- :mod:`kexue_lib.topk`: smooth Top-k: GradTopK, ThreTopK, the iterative soft-k-max (chapter 4);
- :mod:`kexue_lib.simplex`: sparsemax and descent on the simplex, and :mod:`kexue_lib.flows`:
  Wasserstein gradient flows on a grid and with particles (chapter 5).

The plotting layer, :mod:`kexue_lib.plots`, turns their results into plotly
figures with precomputed sliders, and into live ipywidgets when a kernel runs.
"""

__version__ = "0.1.0"
