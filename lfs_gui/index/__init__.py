"""Cosine search over gallery embeddings (FAISS + numpy), index folders, retrieval metrics."""

from lfs_gui.index.faiss_index import AUTO_FLAT_MAX, KINDS, EmbeddingIndex, choose_kind
from lfs_gui.index.recall import RetrievalMetrics, map_at_r, query_recall, recall_at_k, retrieval_metrics
from lfs_gui.index.sidecar import IndexLoadError, IndexMeta
from lfs_gui.index.store import load_index, save_index

__all__ = [
    "AUTO_FLAT_MAX", "KINDS", "EmbeddingIndex", "IndexLoadError", "IndexMeta", "RetrievalMetrics",
    "choose_kind", "load_index", "map_at_r", "query_recall", "recall_at_k", "retrieval_metrics", "save_index",
]
