"""Models, decoders and commands on the chosen device; CPU results are the reference.

Every test that compares devices runs once per entry of ``available_devices()``: on a CPU-only
machine that is ``cpu`` alone, which still goes end to end through ``resolve_device``, loading with
``device=`` and ``.to()`` (and must then match bit for bit); on a GPU machine each accelerator is
checked against the CPU (cosine > 0.999).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from _model_fixtures import photo_like, write_dml_checkpoint
from lfs_gui.cli import main
from lfs_gui.device import DeviceError, available_devices, is_accelerator, resolve_device
from lfs_gui.models.decoder import load_decoder, make_decoder, save_decoder
from lfs_gui.models.loader import load_model
from lfs_gui.models.train_decoder import iter_train_decoder
from lfs_gui.jobs import run_generator

DEVICES = available_devices()


@pytest.fixture(scope="module")
def dml_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("dev") / "checkpoint.pth.tar"
    write_dml_checkpoint(path, "resnet18", 32)
    return path


@pytest.fixture(scope="module")
def cpu_reference(dml_file):
    model = load_model(dml_file)
    images = [photo_like(i, (72 + 8 * i, 64)) for i in range(5)]
    return images, model.embed_images(images, batch_size=2)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


@pytest.mark.parametrize("spec", DEVICES)
def test_embeddings_on_each_device_match_the_cpu(dml_file, cpu_reference, spec):
    images, ref = cpu_reference
    model = load_model(dml_file, device=spec)
    assert model.device == resolve_device(spec)
    got = model.embed_images(images, batch_size=2)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == ref.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _cosines(got, ref).min() > 0.999
    if not is_accelerator(spec):
        np.testing.assert_array_equal(got, ref)  # the CPU is the reference: same path, same numbers
    # a CPU batch goes to the model's device and comes back float32
    x = torch.stack([model.preprocessing.to_tensor(im) for im in images[:2]])
    np.testing.assert_allclose(model.embed_batch(x), got[:2], atol=1e-5)
    # mixed precision: ignored on the CPU, close on an accelerator
    amp = model.embed_images(images, batch_size=2, amp=True)
    assert amp.dtype == np.float32
    if is_accelerator(spec):
        assert _cosines(amp, ref).min() > 0.99
    else:
        np.testing.assert_array_equal(amp, got)


def test_auto_is_the_best_device_and_model_moves_back(dml_file, cpu_reference):
    images, ref = cpu_reference
    model = load_model(dml_file, device="auto")
    assert model.device == resolve_device("auto")
    assert model.to("cpu").device == torch.device("cpu")
    assert _cosines(model.embed_images(images), ref).min() > 0.999


def test_missing_device_fails_before_reading_the_file(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError, match=f"cuda:{n + 5}"):
        load_model(garbage, device=f"cuda:{n + 5}")


@pytest.mark.parametrize("spec", DEVICES)
def test_decoder_loads_and_trains_on_each_device(tmp_path, spec):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(24, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    img = rng.uniform(size=(24, 3, 8, 8)).astype(np.float32)
    runs = {}
    for where in ("cpu", spec):
        torch.manual_seed(1)
        res = run_generator(iter_train_decoder(emb, img, kind="dense", epochs=3, batch_size=8, seed=3, device=where))
        assert next(res.decoder.parameters()).device == resolve_device(where)
        runs[where] = res
    a, b = runs["cpu"], runs[spec]
    if is_accelerator(spec):
        np.testing.assert_allclose([r.val_mse for r in b.history], [r.val_mse for r in a.history], rtol=1e-3)
    else:
        assert [r.val_mse for r in b.history] == [r.val_mse for r in a.history]
    path = save_decoder(tmp_path / "dec.pt", b.decoder)
    loaded = load_decoder(path, expected_dim=8, device=spec)
    assert next(loaded.parameters()).device == resolve_device(spec)
    h = torch.from_numpy(emb[:4])
    with torch.no_grad():
        ref = a.decoder.to("cpu")(h)
        torch.testing.assert_close(loaded(h.to(resolve_device(spec))).cpu(), b.decoder.to("cpu")(h))
        assert ref.shape == (4, 3, 8, 8)
    assert next(make_decoder("dense", 8, size=8).parameters()).device == torch.device("cpu")


def _run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(argv))
    return rc, err.getvalue()


@pytest.mark.parametrize("command", ["index", "query", "explain", "continuity", "evaluate", "train-decoder", "demo",
                                     "failures", "train-attributes", "app"])
def test_every_command_names_a_missing_device(tmp_path, command):
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    bad = f"cuda:{n + 7}"
    argv = {
        "index": ["index", str(tmp_path / "no-gallery")],
        "query": ["query", "demo", "--id", "0"],
        "explain": ["explain", "demo", "--query", "0", "--target", "1", "--out", str(tmp_path / "f.png")],
        "continuity": ["continuity", "demo", "--query", "0", "--target", "1", "--out", str(tmp_path / "c.png")],
        "evaluate": ["evaluate", "demo", "--out", str(tmp_path / "ev")],
        "train-decoder": ["train-decoder", "demo", "--out", str(tmp_path / "d.pt")],
        "demo": ["demo", "--check"],
        "failures": ["failures", "demo", "--out", str(tmp_path / "fail")],  # its sheet runs the explainer
        "train-attributes": ["train-attributes", "demo", "--out", str(tmp_path / "attr.pt")],  # feature maps
        "app": ["app"],  # checked before any window opens
    }[command]
    rc, err = _run(*argv, "--device", bad)
    assert rc == 2, err
    assert f"lfs-gui {command}: error:" in err and bad in err and "available" in err and "cpu" in err
    assert "Traceback" not in err
    rc, err = _run(*argv, "--device", "tpu")
    assert rc == 2 and "'tpu'" in err and "auto, cpu, cuda, cuda:N, mps" in err


def test_batch_size_must_be_positive(tmp_path):
    rc, err = _run("index", str(tmp_path), "--batch-size", "0")
    assert rc == 2 and "--batch-size must be at least 1" in err


@pytest.mark.parametrize("spec", DEVICES)
def test_session_runs_its_model_and_decoder_on_the_device(spec):
    from lfs_gui.paths import demo_gallery_dir
    from lfs_gui.session import Session

    session = Session.open_demo(device=spec)
    dev = resolve_device(spec)
    assert session.device == dev and session.describe()["device"] == str(dev)
    assert next(session.decoder.parameters()).device == dev
    image = sorted((demo_gallery_dir() / "images").rglob("*.jpg"))[0]
    got = session.embed_image(image)  # an external query: the model loads now, onto the device
    assert session.model.device == dev
    assert got.dtype == np.float32 and abs(float(np.linalg.norm(got)) - 1.0) < 1e-5
    cpu = Session.open_demo(device="cpu")
    assert float(got @ cpu.embed_image(image)) > 0.999
    session.set_device("cpu")  # moves what is loaded
    assert session.model.device == torch.device("cpu") and next(session.decoder.parameters()).device.type == "cpu"
