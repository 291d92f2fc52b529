"""``lfs-gui index GALLERY``: embed a gallery, build the index (+ sidecar, + decoder) and report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lfs_gui.cli._common import (
    EXIT_INTERRUPTED, EXIT_OK, add_device_arguments, check_writable, device_from_args, emit_json, guarded,
    load_model_arg, progress_bar,
)

SPLITS = ("train", "test", "all", "official-train", "official-test")
NAME = "index"
HELP = "embed a gallery folder and build a searchable index (+ decoder) from it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gallery", metavar="GALLERY", help="gallery folder (class sub-folders, CUB, Cars, or flat)")
    parser.add_argument("--model", metavar="M", default=None, help="embedding model file (default: the demo model)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="which part of the gallery (default: test for CUB/Cars, all otherwise)")
    parser.add_argument("--kind", choices=("auto", "flat", "hnsw", "ivf"), default="auto",
                        help="index kind: flat (exact), hnsw (graph, in memory), ivf (on disk, for millions of "
                             "images); auto = flat below 200 000 images, ivf from there (default)")
    parser.add_argument("--quantizer", choices=("sq8", "pq"), default=None,
                        help="with an ivf index: 8-bit scalar (sq8, default) or product quantisation (pq, smaller)")
    parser.add_argument("--out", metavar="DIR", default=None, help="index folder (default: indexes/<gallery name>)")
    parser.add_argument("--no-decoder", action="store_true", help="do not train a decoder (ExplainLFS needs one)")
    parser.add_argument("--decoder-kind", choices=("dense", "conv"), default="dense", help="decoder architecture")
    parser.add_argument("--decoder-epochs", type=int, default=60, metavar="N", help="decoder training epochs (60)")
    parser.add_argument("--decoder-split", choices=SPLITS, default=None,
                        help="split the decoder is trained on (default: train for CUB and Cars, as in the paper; "
                             "the indexed split otherwise)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="image decoding worker processes (default: 0 on CPU, where the forward uses every core; "
                             "up to 8 on a GPU, one core left free)")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="embedding shard cache (default: the user cache, e.g. ~/.cache/lfs-gui/embeddings)")
    # default None = lfs_gui.data.shards.DEFAULT_SHARD_ROWS (not imported here: --help stays light)
    parser.add_argument("--shard-size", type=int, default=None, metavar="N",
                        help="images per cache shard (default 4096; a shard is also written every 60 s): "
                             "the most a killed build loses")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not read or write the embedding cache (an interrupted build then starts over)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="embedding engine: this process (local, default) or a Ray Data job (ray; needs "
                             "pip install 'lfs-gui[scale]'); both write the same cache, so either resumes the other")
    parser.add_argument("--ray-address", metavar="ADDR", default=None,
                        help="with --engine ray: the Ray cluster (e.g. auto); default $RAY_ADDRESS, else a local Ray")
    parser.add_argument("--json", action="store_true", help="print the build report as JSON")
    add_device_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.build import iter_build_index
    from lfs_gui.data.galleries import open_gallery
    from lfs_gui.data.shards import DEFAULT_SHARD_ROWS
    from lfs_gui.index.ivf_files import IvfSettings

    if args.decoder_epochs < 1:
        raise ValueError(f"--decoder-epochs must be at least 1, got {args.decoder_epochs}")
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {args.workers}")
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, got {args.shard_size}")
    if args.quantizer is not None and args.kind not in ("ivf", "auto"):
        raise ValueError(f"--quantizer is for --kind ivf, not --kind {args.kind}")
    if args.ray_address is not None and args.engine != "ray":
        raise ValueError("--ray-address needs --engine ray")
    if args.engine == "ray":
        from lfs_gui.data.ray_engine import import_ray

        import_ray()  # not installed: a clear error before any work
    device, batch = device_from_args(args)
    gallery = open_gallery(args.gallery, split=args.split)
    out = Path(args.out) if args.out else Path("indexes") / gallery.name
    out = out.expanduser().resolve()
    check_writable(out, is_dir=True)
    model, info = load_model_arg(args.model, args.trust_checkpoint, device=device)
    t0 = time.perf_counter()
    gen = iter_build_index(gallery, model, out, kind=args.kind, train_decoder=not args.no_decoder,
                           decoder_kind=args.decoder_kind, decoder_epochs=args.decoder_epochs,
                           num_workers=args.workers if args.workers is not None else batch.workers, use_cache=not args.no_cache, model_info=info,
                           decoder_split=args.decoder_split, cache_dir=args.cache_dir,
                           shard_rows=args.shard_size or DEFAULT_SHARD_ROWS, batch_size=batch.embed, amp=batch.amp,
                           engine=args.engine, ray_address=args.ray_address,
                           ivf=IvfSettings(quantizer=args.quantizer) if args.quantizer else None)
    try:
        report = progress_bar(gen, desc="embedding")
    except KeyboardInterrupt:
        kept = ("the images embedded so far are kept in the cache: run the same command again to resume"
                if not args.no_cache else "nothing is kept (--no-cache)")
        print(f"lfs-gui index: interrupted after {time.perf_counter() - t0:.1f} s; no index was written to {out} "
              f"(the sidecar is written last); {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    rep = report.to_dict()
    rep.update(gallery=str(gallery.root), gallery_kind=gallery.kind, split=gallery.split, model=model.name,
               dim=model.dim, gallery_skipped=list(gallery.skipped))
    if args.json:
        emit_json(rep)
        return EXIT_OK
    print(f"index: {report.folder}")
    print(f"gallery: {gallery.root} ({gallery.kind}, split {gallery.split}), model {model.name} ({model.dim}-d)")
    print(f"images: {report.count} indexed, {len(report.skipped)} skipped (undecodable)"
          + (f", {len(gallery.skipped)} not in the gallery (missing or outside class folders)" if gallery.skipped else ""))
    for p, reason in report.skipped:
        print(f"  skipped {p}: {reason}")
    for rel in gallery.skipped[:20]:
        print(f"  not indexed {rel}")
    print(f"embeddings: {report.embedded} computed, {report.reused} reused from the cache"
          + (f" ({report.cache})" if report.cache else ""))
    print(f"index kind: {report.index_kind}; time {report.seconds:.1f} s")
    if report.recall:
        print("Recall@K (leave-one-out): " + ", ".join(f"R@{k} {100 * v:.1f}%" for k, v in sorted(report.recall.items()))
              + (f"; mAP@R {100 * report.map_at_r:.1f}%" if report.map_at_r is not None else ""))
    if report.decoder:
        dec = report.decoder
        print(f"decoder: {dec['file']} ({args.decoder_kind}, trained on split {dec.get('split')}, "
              f"{dec.get('n_train', 0) + dec.get('n_val', 0)} images, {dec.get('epochs')} epochs, "
              f"validation MSE {dec.get('val_mse', float('nan')):.4f})")
    return EXIT_OK
