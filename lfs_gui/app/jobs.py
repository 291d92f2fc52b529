"""Long jobs the window starts from its menus (Qt-free generators run on a JobChannel).

Each is a core generator composed from ``lfs_gui.build`` / ``lfs_gui.models``: it yields
``Progress`` (every yield is a cancel point) and returns what the window needs next.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from lfs_gui.jobs import Progress


def build_index_job(gallery_path: str | Path, out: str | Path, model_path: str | Path | None = None,
                    trust_checkpoint: bool = False, demo_model: Any = None, split: str | None = None,
                    decoder_kind: str = "dense", device: str | None = None) -> Generator[Any, None, Path]:
    """Embed a gallery, build its index and train its decoder; returns the index folder.

    ``demo_model``: the already-loaded demo model, reused when ``model_path`` is None (building a
    second copy is Python-heavy and would hold the GIL, stalling the window). The model runs on
    ``device`` (the window's choice; ``None``: the CPU); a checkpoint that needs trust raises
    :class:`~lfs_gui.models.safe_load.TrustRequired` unless ``trust_checkpoint`` (the window asks).
    """
    from lfs_gui.build import iter_build_index
    from lfs_gui.data.galleries import open_gallery
    from lfs_gui.device import resolve_device, usable_device
    from lfs_gui.models.loader import load_demo_model, load_model

    yield Progress(0, 1, "loading the model")
    device = None if device is None else usable_device(device)
    if model_path is None:
        target = resolve_device(device or "cpu")
        same = demo_model is not None and demo_model.device == target  # never move the session's own model
        model, info = (demo_model if same else load_demo_model(device=target)), {"demo": True, "source": "lfs_gui:demo"}
    else:
        model, info = load_model(model_path, trust_checkpoint=trust_checkpoint, device=device), None
    gallery = open_gallery(gallery_path, split=split)
    report = yield from iter_build_index(gallery, model, out, model_info=info, decoder_kind=decoder_kind)
    return report.folder


def train_decoder_job(session: Any, out: str | Path, kind: str = "dense", epochs: int = 60) -> Generator[Any, None, Path]:
    """Train a decoder on the session's gallery (targets = the model's view) and save it to ``out``;
    images that do not decode are skipped (as ``lfs-gui train-decoder`` does). Trains on the
    session's device."""
    from lfs_gui.data.decoder_targets import iter_decoder_targets
    from lfs_gui.models.decoder import save_decoder
    from lfs_gui.models.train_decoder import iter_train_decoder

    size = 40 if kind == "dense" else 64
    dt = yield from iter_decoder_targets(session.gallery.paths, session.preprocessing, size)
    if len(dt.rows) < 2:
        raise ValueError(f"{session.gallery.root}: only {len(dt.rows)} gallery images could be read; "
                         "a decoder needs at least 2 (did the gallery folder move?)")
    result = yield from iter_train_decoder(session.embeddings[dt.rows], dt.targets, kind=kind, epochs=epochs, keep_best=True,
                                           device=session.device)
    return save_decoder(out, result.decoder, {**result.meta(), "gallery": str(session.gallery.root),
                                              "n_skipped": len(dt.skipped)})


def evaluate_job(session: Any, out: str | Path, pairs: int = 10, perturbations: tuple[str, ...] = ("noise", "fill"),
                 methods: list[str] | None = None, xi1: float | None = None,
                 method_settings: dict | None = None, target: str = "decision",
                 bounds: bool = False) -> Generator[Any, None, Path]:
    """``lfs-gui evaluate`` on the open session (the window's ξ1 and question ``target``; ``bounds``
    adds the greedy oracle); partial results are written if it is cancelled."""
    from lfs_gui.metrics.evaluate import Evaluation
    from lfs_gui.metrics.report import write_report

    yield Progress(0, 1, "loading the model")
    labels = session.gallery.labels_array() if session.gallery.has_labels else None
    ev = Evaluation(
        session.model, session.decoder, session.gallery.paths, session.embeddings, labels, methods=methods,
        n_pairs=pairs, perturbations=list(perturbations), xi1=session.suggested_xi1() if xi1 is None else xi1,
        method_settings=method_settings or {"rise-sim": {"n_masks": 100}}, target=target, bounds=bounds,
    )
    complete = False
    try:
        yield from ev.iter_run()
        complete = True
    finally:  # cancelled (GeneratorExit) or failed: keep what is finished
        write_report(ev.records, out, {**ev.settings(), "index": session.name}, complete=complete)
    return Path(out)


def warm_up() -> None:
    """Import, on a worker thread, what the long jobs will need.

    A first import holds the GIL for tens to hundreds of milliseconds. Done in the middle of an index
    build, it froze the window for up to ~200 ms. Done here, while a session opens, it costs nothing
    visible.
    """
    import torch

    import lfs_gui.build  # noqa: F401
    import lfs_gui.explain.registry  # noqa: F401
    import lfs_gui.metrics.evaluate  # noqa: F401
    import lfs_gui.metrics.selectivity  # noqa: F401
    import lfs_gui.models.train_decoder  # noqa: F401

    torch.optim.Adamax(torch.nn.Linear(1, 1).parameters())  # the optimiser's lazy set-up
