"""Pair explainers other than the published ExplainLFS: baselines and reference methods.

One module per method; :mod:`lfs_gui.explain.registry` maps names to these classes.
"""

from lfs_gui.explain.baselines.emsnn import EMSNNExplainer
from lfs_gui.explain.baselines.explainlfs_adapter import (
    ExplainLFSExplainer,
    ExplainLFSThesisExplainer,
)
from lfs_gui.explain.baselines.gradsim import GradSimExplainer
from lfs_gui.explain.baselines.random_map import RandomExplainer
from lfs_gui.explain.baselines.rise import RiseSimExplainer
from lfs_gui.explain.baselines.simdecomp import SimDecompExplainer

__all__ = [
    "EMSNNExplainer",
    "ExplainLFSExplainer",
    "ExplainLFSThesisExplainer",
    "GradSimExplainer",
    "RandomExplainer",
    "RiseSimExplainer",
    "SimDecompExplainer",
]
