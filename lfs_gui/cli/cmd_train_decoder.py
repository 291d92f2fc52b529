"""``lfs-gui train-decoder INDEX --out FILE.pt``: train an ExplainLFS decoder on an index's gallery.

Inputs are embeddings of the ``--decoder-split`` images (default: ``train`` for CUB and Cars, as in the
paper, the index's own split otherwise); targets are the model's view of each image
(``Preprocessing.resize_crop`` at S×S, :func:`lfs_gui.data.decoder_targets.iter_decoder_targets`). On the
index's own split the saved embeddings are used and the model is not loaded; another split is embedded
with the index's model through the embedding cache (``--cache-dir``; reused, resumable). Images that no
longer decode are left out and reported. The validation MSE is printed per epoch; the weights of the
best epoch are kept. Ctrl-C saves the decoder as trained so far (marked ``interrupted`` in its meta)
and exits 130.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lfs_gui.cli._common import (
    EXIT_INTERRUPTED, EXIT_OK, add_device_arguments, add_index_arguments, check_writable, device_from_args, emit_json,
    guarded, index_overrides, progress_bar,
)
from lfs_gui.cli.cmd_query import open_session

NAME = "train-decoder"
HELP = "train an ExplainLFS decoder (embedding -> image) on an index's gallery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder (from `lfs-gui index`), or 'demo'")
    parser.add_argument("--out", required=True, metavar="FILE", help="decoder file to write (e.g. models/NAME.pt)")
    parser.add_argument("--kind", choices=("dense", "conv"), default="dense",
                        help="dense (the paper's single layer, 40 px) or conv (64 px)")
    parser.add_argument("--size", type=int, default=None, help="output side S (default 40 dense, 64 conv)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
    parser.add_argument("--optimizer", choices=("adamax", "adam"), default="adamax", help="adamax (the paper) or adam")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="held-out share for the validation MSE (0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initialisation (0)")
    parser.add_argument("--decoder-split", choices=("train", "test", "all", "official-train", "official-test"),
                        default=None, help="the images it learns from (default: train for CUB and Cars, as in the "
                                           "paper; the index's own split otherwise)")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="embedding cache for another split (default: the user cache, as lfs-gui index)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print the training report as JSON")
    add_device_arguments(parser, embedding=False)  # its --batch-size is the decoder's training batch
    add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _split_embeddings(session: Any, split: str, cache_dir: str | None, device: Any) -> tuple[Any, Any]:
    """``(gallery, embeddings)`` of ``split``: the index's own rows, or embedded through the cache."""
    from lfs_gui.build_decoder import iter_embed_split, with_split
    from lfs_gui.data.embed import Embedder, open_store
    from lfs_gui.paths import user_cache_dir

    gallery = with_split(session.gallery, split)
    if gallery is session.gallery:
        return gallery, session.embeddings
    model = session.model.to(device)  # the index's model (identity-checked)
    with open_store(Path(cache_dir) if cache_dir else user_cache_dir() / "embeddings", model) as store:
        kept, emb, embedded, reused = progress_bar(iter_embed_split(Embedder(model, store), gallery), desc="embedding")
    print(f"lfs-gui train-decoder: split {split}: {len(kept)} images ({embedded} embedded, {reused} reused "
          f"from {store.folder})", file=sys.stderr)
    return kept, emb


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.build_decoder import default_decoder_split, iter_decoder_training
    from lfs_gui.models.decoder import make_decoder, save_decoder
    from lfs_gui.models.train_decoder import EpochReport

    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise ValueError("--epochs and --batch-size must be at least 1 and --lr positive")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    device, _ = device_from_args(args)
    out = Path(args.out).expanduser().resolve()
    check_writable(out)
    session = open_session(args.index, decoder=False,  # the index's own decoder may be the broken one
                           trust_checkpoint=args.trust_checkpoint, device=device, **index_overrides(args))
    size = args.size or (40 if args.kind == "dense" else 64)
    decoder = make_decoder(args.kind, session.dim, size=size)
    split = args.decoder_split or default_decoder_split(session.gallery)
    gallery, emb = _split_embeddings(session, split, args.cache_dir, device)
    history: list[Any] = []

    def on_epoch(rep: Any, bar: Any) -> None:
        if not isinstance(rep, EpochReport):
            return
        history.append(rep)
        bar.write(f"epoch {rep.done}/{rep.total}: train MSE {rep.train_mse:.5f}, validation MSE {rep.val_mse:.5f}",
                  file=sys.stderr)

    gen = iter_decoder_training(gallery, emb, session.preprocessing, args.kind, size, out.parent, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                                val_fraction=args.val_fraction, seed=args.seed, decoder=decoder, keep_best=True,
                                device=device)
    base_meta = {"model_identity": session.index.meta.model_identity, "gallery": str(session.gallery.root),
                 "split": split, "index": str(args.index), "lr": args.lr, "optimizer": args.optimizer, "seed": args.seed}
    try:
        result, skipped = progress_bar(gen, desc="training", on_item=on_epoch)
    except KeyboardInterrupt:
        last = history[-1] if history else None
        meta = {**base_meta, "interrupted": True, "epochs": len(history),
                "train_mse": getattr(last, "train_mse", None), "val_mse": getattr(last, "val_mse", None)}
        save_decoder(out, decoder, meta)
        print(f"lfs-gui train-decoder: interrupted after {len(history)} epochs; the decoder trained so far "
              f"was saved to {out} (meta: interrupted)", file=sys.stderr)
        return EXIT_INTERRUPTED
    for p, why in skipped:
        print(f"lfs-gui train-decoder: skipped {p}: {why}", file=sys.stderr)
    meta = {**result.meta(), **base_meta, "n_skipped": len(skipped)}
    save_decoder(out, result.decoder, meta)
    report = {"decoder": str(out), "kind": args.kind, "size": size, "dim": session.dim,
              "skipped": [{"path": p, "reason": r} for p, r in skipped],
              "history": [{"epoch": r.done, "train_mse": r.train_mse, "val_mse": r.val_mse} for r in result.history],
              **meta}
    if args.json:
        emit_json(report)
        return EXIT_OK
    print(f"decoder: {out} ({args.kind}, {session.dim}-d -> {size} px), split {split}: {meta['n_train']} training / "
          f"{meta['n_val']} validation images, {len(skipped)} skipped")
    print(f"best epoch {meta['best_epoch'] or meta['epochs']}: validation MSE {meta['val_mse']:.5f} "
          f"(train {meta['train_mse']:.5f}); {meta['seconds']:.1f} s")
    print(f"use it with: lfs-gui explain {args.index} --decoder {out} ...")
    return EXIT_OK
