"""A retrieval session: gallery + embeddings + index + decoder + (lazily) the model. Qt-free.

This is the one object the desktop app and the headless commands compose: it answers
"retrieve for this query", "explain this pair with this method", and streams the pixel-flipping
and continuity curves as generators (``lfs_gui.jobs`` pattern: each yield is a cancel point).
Retrieval and ExplainLFS need only the cached embeddings and the decoder (no model, no pixels), so
a session opens without importing the model; the model loads on first need (curves, model-side
methods, external queries), guarded by a lock so a worker thread and the GUI never load it twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.data.galleries import Gallery
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel, Preprocessing, cosine

log = logging.getLogger(__name__)

Query = int | str | Path
DEFAULT_DECODER = "decoder_dense40.pt"


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    rank: int  # 1-based
    same_class: bool | None


@dataclass(frozen=True)
class Retrievals:
    query_id: int | None
    similar: list[Hit]
    dissimilar: list[Hit]
    recall: dict[int, float] | None


@dataclass(frozen=True)
class Explanation:
    """A pair explained by one method, ready to draw (maps in the model-input frame)."""

    method: str
    heat1: np.ndarray
    heat2: np.ndarray
    mask1: np.ndarray
    mask2: np.ndarray
    similarity: float
    similar: bool
    recon1: np.ndarray | None = None
    recon2: np.ndarray | None = None
    settings: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    heat_pair: Any = None  # the explainer's HeatPair


class SessionError(ValueError):
    """A session could not be opened or a request is impossible; the message says why and the fix."""


class Session:
    """See module docstring. Build with :meth:`open_demo` / :meth:`open_index` (or their generators)."""

    def __init__(
        self,
        name: str,
        gallery: Gallery,
        index: EmbeddingIndex,
        preprocessing: Preprocessing,
        model_loader: Callable[[], EmbeddingModel],
        model_info: dict | None = None,
        decoder: Any = None,
        decoder_path: Path | None = None,
    ) -> None:
        if len(gallery) != len(index):
            raise SessionError(f"gallery has {len(gallery)} images but the index {len(index)} vectors")
        self.name = name
        self.gallery = gallery
        self.index = index
        self.preprocessing = preprocessing
        self.model_info = dict(model_info or {})
        self.decoder = decoder
        self.decoder_path = decoder_path
        self._model_loader = model_loader
        self._model: EmbeddingModel | None = None
        self._lock = threading.Lock()
        self._external: dict[str, np.ndarray] = {}
        self._labels = gallery.labels_array()
        self._xi1: float | None = None

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def iter_open_demo(cls) -> Generator[Progress, None, "Session"]:
        from lfs_gui.session_open import iter_open_demo

        return (yield from iter_open_demo(cls))

    @classmethod
    def iter_open_index(cls, path: str | Path, decoder: str | Path | None | bool = None, trust_checkpoint: bool = False) -> Generator[Progress, None, "Session"]:
        from lfs_gui.session_open import iter_open_index

        return (yield from iter_open_index(cls, path, decoder=decoder, trust_checkpoint=trust_checkpoint))

    @classmethod
    def open_demo(cls) -> "Session":
        from lfs_gui.jobs import run_generator

        return run_generator(cls.iter_open_demo())

    @classmethod
    def open_index(cls, path: str | Path, decoder: str | Path | None | bool = None, trust_checkpoint: bool = False) -> "Session":
        from lfs_gui.jobs import run_generator

        return run_generator(cls.iter_open_index(path, decoder=decoder, trust_checkpoint=trust_checkpoint))

    # -- basics -------------------------------------------------------------------------------------
    @property
    def embeddings(self) -> np.ndarray:
        return self.index.embeddings

    @property
    def index_kind(self) -> str:
        return self.index.kind

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def model(self) -> EmbeddingModel:
        """The embedding model, loaded on first use (thread-safe)."""
        with self._lock:
            if self._model is None:
                log.info("loading model %s", self.model_info.get("name", "?"))
                self._model = self._model_loader()
            return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def describe(self) -> dict:
        dec = None
        if self.decoder is not None:
            meta = getattr(self.decoder, "meta", {})
            dec = {"file": str(self.decoder_path) if self.decoder_path else None, "kind": getattr(self.decoder, "kind", "?"),
                   "size": getattr(self.decoder, "size", None), "val_mse": meta.get("val_mse"), "train_mse": meta.get("train_mse")}
        return {
            "name": self.name,
            "model": self.model_info.get("name", "?"),
            "dim": self.dim,
            "gallery_size": len(self.gallery),
            "classes": len(self.gallery.classes),
            "labelled": self.gallery.has_labels,
            "index_kind": self.index_kind,
            "decoder": dec,
        }

    def class_of(self, i: int) -> str | None:
        return self.gallery.items[i].class_name

    def image_path(self, query: Query) -> Path:
        return self.gallery.items[query].path if isinstance(query, (int, np.integer)) else Path(query)

    def label_of(self, query: Query) -> int | None:
        if isinstance(query, (int, np.integer)):
            lab = int(self._labels[int(query)])
            return None if lab < 0 else lab
        return None

    # -- embeddings and retrieval ------------------------------------------------------------------
    def embed_image(self, path: str | Path) -> np.ndarray:
        """Embedding of an external image (cached per path). Loads the model; call off the GUI thread."""
        key = str(Path(path).resolve())
        if key not in self._external:
            self._external[key] = self.model.embed_images([open_image(path)])[0]
        return self._external[key]

    def vector(self, query: Query) -> np.ndarray:
        if isinstance(query, (int, np.integer)):
            n = len(self.gallery)
            if not 0 <= int(query) < n:
                raise SessionError(f"image id {query} is out of range: the gallery has ids 0..{n - 1}")
            return self.embeddings[int(query)]
        return self.embed_image(query)

    def retrieve(self, query: Query, k: int = 8) -> Retrievals:
        """Top-k most similar and k most dissimilar (cosine), the query itself excluded."""
        from lfs_gui.index.recall import query_recall

        qid = int(query) if isinstance(query, (int, np.integer)) else None
        (ds, is_), (dd, id_) = self.index.both_ends(self.vector(query), k, exclude=qid)
        qlab = self.label_of(query)

        def hits(d: np.ndarray, ids: np.ndarray) -> list[Hit]:
            out = []
            for r, (s, i) in enumerate(zip(d.tolist(), ids.tolist()), 1):
                lab = int(self._labels[i])
                same = None if qlab is None or lab < 0 else lab == qlab
                out.append(Hit(int(i), float(s), r, same))
            return out

        recall = None
        if qlab is not None and self.gallery.has_labels:
            ranked = is_ if k >= 8 else self.index.most_similar(self.vector(query), 8, exclude=qid)[1]
            recall = query_recall(self._labels, qlab, ranked)
        return Retrievals(qid, hits(ds, is_), hits(dd, id_), recall)

    def suggested_xi1(self) -> float:
        """A similar/dissimilar threshold for this model: the cosine that best separates same-class
        from different-class pairs of the gallery (balanced accuracy); 0.3 (the paper's) if unlabelled."""
        if self._xi1 is None:
            from lfs_gui.index.recall import suggest_xi1

            self._xi1 = suggest_xi1(self.embeddings, self._labels)
        return self._xi1

    # -- explanations ----------------------------------------------------------------------------------
    def methods(self) -> list[str]:
        from lfs_gui.explain.registry import EXPLAINERS, missing_needs

        out = []
        for name, cls in EXPLAINERS.items():
            needs = set(cls.needs)
            if "decoder" in needs and self.decoder is None:
                continue
            if "gallery" in needs and not self.gallery.has_labels:
                continue
            if needs & {"features", "linear_head"} and self.model_loaded and missing_needs(cls, self.model, self.decoder):
                continue
            out.append(name)
        return out

    def needs_model(self, method: str) -> bool:
        """True when ``method`` runs the model (slow: use a worker), False for decoder-only methods."""
        from lfs_gui.explain.registry import EXPLAINERS

        cls = EXPLAINERS.get(method)
        return cls is None or bool(set(cls.needs) & {"model", "features", "linear_head"})

    def pair_input(self, query: Query, target: int, xi1: float, with_tensors: bool) -> Any:
        from lfs_gui.explain.base import PairInput

        h1, h2 = self.vector(query), self.vector(target)
        ctx: dict[str, Any] = {}
        if self.gallery.has_labels:
            ctx = {"gallery": self.embeddings, "gallery_labels": self._labels, "label1": self.label_of(query), "label2": self.label_of(target)}
        x1 = x2 = None
        if with_tensors:
            x1, x2 = self.input_tensor(query), self.input_tensor(target)
        return PairInput(h1=np.ascontiguousarray(h1), h2=np.ascontiguousarray(h2), similarity=cosine(h1, h2), xi1=xi1, x1=x1, x2=x2, **ctx)

    def input_tensor(self, query: Query):
        """(1, 3, H, W) normalised model input of an image."""
        return self.model.preprocessing.to_tensor(open_image(self.image_path(query))).unsqueeze(0)

    def explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None, xi2: float = 0.7, **settings: Any) -> Explanation:
        """Explain the pair with a registered method. Decoder-only methods need no model (fast)."""
        from lfs_gui.jobs import run_generator

        return run_generator(self.iter_explain(query, target, method, xi1=xi1, xi2=xi2, **settings))

    def iter_explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None, xi2: float = 0.7, **settings: Any) -> Generator[Progress, None, Explanation]:
        """Generator form of :meth:`explain`: yields the explainer's Progress (slow methods such as
        rise-sim yield per mask batch, so a worker can cancel between yields) and returns the result."""
        from lfs_gui.explain.registry import make_explainer

        xi1 = self.suggested_xi1() if xi1 is None else float(xi1)
        slow = self.needs_model(method)
        if slow and not self.model_loaded:
            yield Progress(0, 1, f"{method}: loading the model")
        model = self.model if slow else None
        settings = method_settings(method, {"xi2": xi2, **settings})
        explainer = make_explainer(method, model=model, decoder=self.decoder, **settings)
        hp = yield from explainer.iter_explain(self.pair_input(query, target, xi1, with_tensors=slow))
        ex = hp.extras.get("explanation")
        return Explanation(
            method=method,
            heat1=hp.heat1,
            heat2=hp.heat2,
            mask1=hp.heat1 > xi2,
            mask2=hp.heat2 > xi2,
            similarity=hp.similarity,
            similar=hp.similar,
            recon1=getattr(ex, "recon1", None),
            recon2=getattr(ex, "recon2", None),
            settings={**hp.settings, "method": method, "xi1": xi1, "xi2": xi2},
            cost=dict(hp.cost),
            heat_pair=hp,
        )

    def decoder_knows(self, query: Query) -> bool:
        """True when ``query`` is a gallery image (the decoder was trained on the gallery); an external
        image is outside the decoder's training set, so its reconstruction and heat are less reliable."""
        return isinstance(query, (int, np.integer))

    # -- curves -------------------------------------------------------------------------------------------
    def iter_curve(self, query: Query, target: int, explanation: Explanation, steps: int = 20, perturbation: str = "noise", seed: int = 0, **kw: Any):
        """Pixel-flipping curve of ``explanation`` (generator of ``CurvePoint``; returns ``Curve``)."""
        from lfs_gui.metrics.selectivity import Selectivity

        # Every map is resampled to the paper's 40×40 grid of 5×5 superpixels, whatever its resolution.
        sel = Selectivity(steps=steps, perturbation=perturbation, seed=seed, **kw)
        x1, x2 = self.input_tensor(query), self.input_tensor(target)
        curve = yield from sel.iter_curve(self.model, x1, x2, explanation.heat1, explanation.heat2, explanation.similar)
        curve.settings.update({"method": explanation.method, "explanation": explanation.settings, "query": _qname(query), "target": int(target)})
        return curve

    def iter_random_curve(self, query: Query, target: int, steps: int = 20, perturbation: str = "noise", seed: int = 0, xi1: float | None = None, **kw: Any):
        """The ``random`` method's curve for the same pair: the floor every map must beat."""
        ex = self.explain(query, target, "random", xi1=xi1, seed=seed) if "random" in self.methods() else None
        if ex is None:
            raise SessionError("the 'random' method is not registered")
        return (yield from self.iter_curve(query, target, ex, steps=steps, perturbation=perturbation, seed=seed, **kw))

    def iter_continuity(self, query: Query, target: int, method: str = "explainlfs", steps: int = 20, xi1: float | None = None,
                        mode: str = "pair", **settings: Any):
        """The paper's shift test for ``method`` on the target image (generator of ContinuityPoint).

        Prototype methods (EMSNN) get the gallery context: in ``mode="pair"`` both images of each
        explained pair are the (shifted) target, so both carry its label; in ``"reference"`` mode the
        query is image 1."""
        from lfs_gui.explain.registry import make_explainer
        from lfs_gui.metrics.continuity import Continuity

        xi1 = self.suggested_xi1() if xi1 is None else float(xi1)
        explainer = make_explainer(method, model=self.model, decoder=self.decoder, **method_settings(method, settings))
        cont = Continuity(steps=steps, xi1=xi1, mode=mode)
        ctx: dict[str, Any] = {}
        if self.gallery.has_labels:
            label2 = self.label_of(target)
            ctx = {"gallery": self.embeddings, "gallery_labels": self._labels, "label2": label2,
                   "label1": label2 if mode == "pair" else self.label_of(query)}
        return (yield from cont.iter_curve(explainer, self.model, self.input_tensor(target),
                                           reference=self.input_tensor(query), **ctx))


def method_settings(method: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``settings`` that ``method``'s constructor accepts (the GUI sends p, ξ2 to all)."""
    import inspect

    from lfs_gui.explain.registry import EXPLAINERS

    cls = EXPLAINERS.get(method)
    if cls is None:
        return dict(settings)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(settings)
    return {k: v for k, v in settings.items() if k in params}


def open_image(path: str | Path):
    """Decode an image to RGB or raise :class:`SessionError` naming the file."""
    from lfs_gui.data.embed import load_rgb

    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise SessionError(f"{path}: the file is empty (0 bytes); re-copy or re-download it")
    try:
        return load_rgb(path)
    except FileNotFoundError:
        raise SessionError(f"{path}: no such image file") from None
    except Exception as exc:
        raise SessionError(f"{path}: cannot be decoded as an image ({exc.__class__.__name__}: {exc}); "
                           "use a JPEG/PNG/BMP/WebP/TIFF file") from exc


def _qname(query: Query) -> int | str:
    return int(query) if isinstance(query, (int, np.integer)) else str(query)
