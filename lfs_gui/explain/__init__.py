"""Explanation methods (Qt-free). ``relevance`` and ``ExplainLFS`` implement the published method;
every method returns a :class:`HeatPair`; :func:`unit_map` is the one min–max normaliser."""

from lfs_gui.explain.base import HeatPair, unit_map
from lfs_gui.explain.explainlfs import ExplainLFS, relevance

__all__ = ["ExplainLFS", "HeatPair", "relevance", "unit_map"]
