"""Decoders: shapes, training (progress, validation MSE, cancellation), save/load validation."""

import pickle

import numpy as np
import pytest
import torch

from lfs_gui.jobs import Cancelled, run_generator
from lfs_gui.models.base import ModelLoadError, Preprocessing
from lfs_gui.models.decoder import ConvDecoder, DenseDecoder, load_decoder, make_decoder, save_decoder
from lfs_gui.models.train_decoder import decoder_target, iter_train_decoder
from PIL import Image


def _pairs(n=48, dim=8, size=8, seed=0):
    """Images that are a fixed nonlinear function of the embedding: learnable."""
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, dim)).astype(np.float32)
    basis = rng.normal(size=(dim, 3 * size * size)).astype(np.float32) / np.sqrt(dim)
    x = 1 / (1 + np.exp(-(h @ basis)))
    return h, x.reshape(n, 3, size, size).astype(np.float32)


@pytest.mark.parametrize("kind,size", [("dense", 40), ("conv", 64), ("conv", 32)])
def test_decoder_output_shape_and_range(kind, size):
    dec = make_decoder(kind, 16, size=size).eval()
    with torch.no_grad():
        out = dec(torch.randn(3, 16) * 10)
    assert out.shape == (3, 3, size, size)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_bad_decoder_settings():
    with pytest.raises(ValueError, match="4·2"):
        ConvDecoder(8, size=40)
    with pytest.raises(ValueError, match="unknown decoder kind"):
        make_decoder("mlp", 8)


def test_training_reports_each_epoch_and_learns():
    h, x = _pairs()
    reports = []
    result = run_generator(
        iter_train_decoder(h, x, kind="dense", epochs=40, lr=0.05, val_fraction=0.25, seed=1), reports.append
    )
    assert [r.done for r in reports] == list(range(1, 41))
    assert result.n_val == 12 and result.n_train == 36
    first, last = reports[0], reports[-1]
    assert last.val_mse < 0.5 * first.val_mse
    assert np.isfinite(last.train_mse)
    # Reproducible with the same seed.
    again = run_generator(iter_train_decoder(h, x, kind="dense", epochs=40, lr=0.05, val_fraction=0.25, seed=1))
    assert again.final_val_mse == pytest.approx(result.final_val_mse, rel=1e-5)


def test_training_can_be_cancelled_between_epochs():
    h, x = _pairs(n=16)
    gen = iter_train_decoder(h, x, epochs=100)
    seen = []
    with pytest.raises(Cancelled):
        run_generator(gen, seen.append, should_cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3


def test_training_rejects_bad_data():
    h, x = _pairs(n=8)
    with pytest.raises(ValueError, match="embeddings but"):
        next(iter_train_decoder(h[:5], x))
    bad = h.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        next(iter_train_decoder(bad, x))


def test_save_load_round_trip(tmp_path):
    dec = DenseDecoder(8, size=8, output="clamp")
    path = save_decoder(tmp_path / "d.pt", dec, meta={"val_mse": 0.01})
    back = load_decoder(path, expected_dim=8, expected_size=8)
    assert isinstance(back, DenseDecoder) and back.output == "clamp"
    assert back.meta["val_mse"] == 0.01
    h = torch.randn(2, 8)
    torch.testing.assert_close(back(h), dec.eval()(h))
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_load_errors_name_file_and_fix(tmp_path):
    path = save_decoder(tmp_path / "d.pt", ConvDecoder(8, size=32))
    with pytest.raises(ModelLoadError, match=r"d\.pt.*8-d.*16-d"):
        load_decoder(path, expected_dim=16)
    with pytest.raises(ModelLoadError, match="32px"):
        load_decoder(path, expected_size=64)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="trunc.pt.*train-decoder"):
        load_decoder(trunc)
    with pytest.raises(ModelLoadError, match="not found"):
        load_decoder(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelLoadError, match="not an lfs-gui decoder"):
        load_decoder(other)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_load_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "lfs-gui-decoder", "x": _Evil()}, fh)
    with pytest.raises(ModelLoadError, match="evil.pt"):
        load_decoder(path)


def test_decoder_target_is_model_view():
    img = Image.new("RGB", (300, 200), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 200))  # blue strip at the left edge: cropped away by the model
    t = decoder_target(img, Preprocessing(input_size=224, resize=256), 16)
    assert t.shape == (3, 16, 16) and t.dtype == np.float32
    assert t[0].min() > 0.95 and t[2].max() < 0.05


def test_keep_best_restores_lowest_validation_epoch():
    h, x = _pairs(n=40, seed=5)
    res = run_generator(iter_train_decoder(h, x, kind="conv", epochs=12, lr=0.02, val_fraction=0.25, keep_best=True))
    best = min(range(len(res.history)), key=lambda i: res.history[i].val_mse)
    assert res.best_epoch == best + 1
    from lfs_gui.models.train_decoder import _mse

    n_val = res.n_val
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(h), generator=gen)
    val = perm[:n_val]
    mse = _mse(res.decoder, torch.from_numpy(h)[val], lambda i: torch.from_numpy(x[i]), val.numpy())
    assert mse == pytest.approx(res.history[best].val_mse, rel=1e-4)


def test_targets_are_read_in_batches_from_a_memory_map(tmp_path):
    """Training from a memory-mapped target file gives the very same decoder as from an array, and
    never copies the targets whole (peak numpy allocations far below their size)."""
    import tracemalloc

    h, x = _pairs(n=6000, size=16, seed=2)  # 18 MB of targets
    mm = np.lib.format.open_memmap(tmp_path / "t.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    mm.flush()
    ro = np.load(tmp_path / "t.npy", mmap_mode="r")
    a = run_generator(iter_train_decoder(h, x, epochs=2))
    tracemalloc.start()
    b = run_generator(iter_train_decoder(h, ro, epochs=2))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for k, v in a.decoder.state_dict().items():
        assert torch.equal(v, b.decoder.state_dict()[k]), k
    assert [r.val_mse for r in a.history] == [r.val_mse for r in b.history]
    assert peak < x.nbytes / 4, (peak, x.nbytes)
