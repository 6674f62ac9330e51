"""Layer / forward-pass view (methodology §5): anchor-kernel segmentation of a trace into passes and layers.

Entry point: :func:`~infersight.layers.analysis.analyze_layers`, returning a
:class:`~infersight.layers.results.LayerReport`.
Modules: ``profiles`` (model profiles as data), ``kernels`` (one device's kernels as arrays),
``anchors`` (which kernel marks a layer), ``segment`` (passes and layer boundaries), ``analysis``
(timing and tables), ``launch_shapes`` (Perfetto's time zero, launching operators' input dims),
``results`` (typed results).
"""

from infersight.layers.analysis import analyze_layers
from infersight.layers.results import LayerReport

__all__ = ["LayerReport", "analyze_layers"]
