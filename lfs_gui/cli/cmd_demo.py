"""``lfs-gui demo --check``: verify the embedded demo offline and print what it holds.

Checks that the demo model head, its metrics, the shipped index and the gallery images are all
present and consistent, then prints the gallery size and classes, the model and its embedding
dimension, the held-out Recall@K recorded by the demo trainer (``models/demo/metrics.json``, test
classes only), the whole-gallery leave-one-out Recall@K / mAP@R computed now from the index, and
the decoder's validation MSE (from the decoder file's meta). With ``--embed N`` (default 2) the model
is loaded and N gallery images are re-embedded and compared with the index (proves model and index
belong together). No network is used. Anything missing: exit code 2 and a message naming the file.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lfs_gui.cli._common import EXIT_OK, add_device_arguments, device_from_args, emit_json, guarded

NAME = "demo"
HELP = "check the embedded demo (model, index, gallery, decoder) offline and print its figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="verify the demo files and print the summary (default)")
    parser.add_argument("--embed", type=int, default=2, metavar="N",
                        help="re-embed N gallery images with the demo model and compare with the index (0: skip)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_device_arguments(parser, embedding=False)  # runs the model, embeds no gallery


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _metrics(path: Any) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: missing; rebuild the demo with `python -m lfs_gui.demo.train_demo`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rebuild the demo with `python -m lfs_gui.demo.train_demo`") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object; rebuild the demo")
    return data


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from lfs_gui.index.recall import retrieval_metrics
    from lfs_gui.models.loader import demo_model_path
    from lfs_gui.paths import demo_index_dir
    from lfs_gui.session import Session

    device, batch = device_from_args(args)
    head = demo_model_path()
    if not head.is_file() or head.stat().st_size == 0:
        raise ValueError(f"{head}: the demo model head is missing or empty; rebuild it with "
                         "`python -m lfs_gui.demo.train_demo` (or reinstall lfs-gui, which ships it)")
    metrics = _metrics(head.parent / "metrics.json")
    session = Session.open_demo(device=device)
    gallery = session.gallery
    missing = [str(it.path) for it in gallery.items if not it.path.is_file()]
    if missing:
        raise ValueError(f"{missing[0]}: demo gallery image missing ({len(missing)} of {len(gallery)}); "
                         "restore resources/demo/images (reinstall lfs-gui) or rebuild the demo")
    if session.decoder is None:
        raise ValueError(f"{session.index.meta.decoder_file or 'decoder'}: the demo index names no decoder; rebuild the demo")
    labels = gallery.labels_array()
    loo = retrieval_metrics(session.embeddings, labels) if gallery.has_labels else None
    dec_meta = dict(getattr(session.decoder, "meta", {}))
    counts = {c: int((labels == i).sum()) for i, c in enumerate(gallery.classes) if (labels == i).any()}
    summary: dict[str, Any] = {
        "ok": True,
        "gallery": {"root": str(gallery.root), "images": len(gallery), "classes": counts},
        "model": {"name": session.model_info.get("name", "?"), "file": str(head), "dim": session.dim,
                  "identity": session.index.meta.model_identity},
        "index": {"folder": str(demo_index_dir()),
                  "kind": session.index_kind, "count": len(session.index)},
        "recall_heldout": metrics.get("recall_test_head"),
        "heldout_classes": metrics.get("test_classes"),
        "recall_loo_all": None if loo is None else loo.recall,
        "map_at_r_loo_all": None if loo is None else loo.map_at_r,
        "decoder": {"file": str(session.decoder_path), "kind": getattr(session.decoder, "kind", "?"),
                    "size": getattr(session.decoder, "size", None), "val_mse": dec_meta.get("val_mse"),
                    "train_mse": dec_meta.get("train_mse"), "epochs": dec_meta.get("epochs")},
        "xi1_suggested": session.suggested_xi1(),
    }
    if args.embed > 0:
        n = min(args.embed, len(gallery))
        ids = np.linspace(0, len(gallery) - 1, n).astype(int)
        # float32 on purpose (no mixed precision): this checks the model against the stored embeddings
        fresh = session.model.embed_images([_open(gallery.items[i].path) for i in ids], batch_size=batch.embed)
        cos = (fresh * session.embeddings[ids]).sum(axis=1)
        summary["reembed"] = {"ids": ids.tolist(), "min_cosine": float(cos.min()), "device": str(device)}
        if float(cos.min()) < 0.999:
            summary["ok"] = False
            raise ValueError(f"{head}: re-embedding gallery images gives cosine {float(cos.min()):.4f} to the stored "
                             "embeddings (the model does not match indexes/demo); rebuild the demo index")
    if args.json:
        emit_json(summary)
        return EXIT_OK
    print(f"demo gallery: {gallery.root}: {len(gallery)} images, {len(counts)} classes")
    print("  " + ", ".join(f"{c} {k}" for c, k in counts.items()))
    print(f"model: {summary['model']['name']} ({head}), {session.dim}-d embeddings")
    if summary["recall_heldout"]:
        print("Recall@K, held-out classes (" + ", ".join(summary["heldout_classes"] or []) + "): "
              + ", ".join(f"R@{k} {100 * float(v):.1f}%" for k, v in summary["recall_heldout"].items()))
    if loo is not None:
        print("Recall@K, whole gallery (leave-one-out, from the index): "
              + ", ".join(f"R@{k} {100 * v:.1f}%" for k, v in loo.recall.items()) + f"; mAP@R {100 * loo.map_at_r:.1f}%")
    d = summary["decoder"]
    print(f"decoder: {d['file']} ({d['kind']}, {d['size']} px), validation MSE "
          + (f"{float(d['val_mse']):.4f}" if d["val_mse"] is not None else "unknown"))
    if "reembed" in summary:
        print(f"model matches index: re-embedded {len(summary['reembed']['ids'])} images, "
              f"min cosine {summary['reembed']['min_cosine']:.5f}")
    print("demo OK")
    return EXIT_OK


def _open(path: Any) -> Any:
    from lfs_gui.data.images import open_image

    return open_image(path)
