"""Explanation methods (Qt-free). ``relevance`` and ``ExplainLFS`` implement the published method."""

from lfs_gui.explain.explainlfs import ExplainLFS, PairExplanation, normalize_heat, relevance

__all__ = ["ExplainLFS", "PairExplanation", "normalize_heat", "relevance"]
