"""Model loaders on real files in every supported format (random weights, built in tmp_path)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from _model_fixtures import (
    NotAllowlisted,
    Pwn,
    photo_like,
    write_dml_checkpoint,
    write_facenet_state,
    write_torchscript,
)
from lfs_gui.models.base import IMAGENET_MEAN, FeaturesUnavailable, ModelLoadError, Preprocessing, global_avg_pool
from lfs_gui.models.dml import DMLEmbedder, load_dml_checkpoint
from lfs_gui.models.efficientnet import (
    EfficientNetLite0Embedder,
    load_efficientnet_head,
    load_efficientnet_lite0,
    save_efficientnet_head,
)
from lfs_gui.models.facenet import FaceNetEmbedder, load_facenet
from lfs_gui.models.loader import detect_kind, load_demo_model, load_model
from lfs_gui.models.torchscript import load_torchscript
from lfs_gui.models.torchvision_models import build_torchvision_embedder, load_torchvision_head, save_torchvision_head


def _assert_unit_and_repeatable(model, size=(80, 60)) -> np.ndarray:
    a, b = photo_like(1, size), photo_like(2, size)
    emb = model.embed_images([a, b, a.copy()])
    assert emb.dtype == np.float32 and emb.flags.c_contiguous and emb.shape == (3, model.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb[0], emb[2])  # identical images -> identical embeddings
    assert not np.allclose(emb[0], emb[1], atol=1e-4)  # different images differ
    return emb


def _assert_linear_head(model, fmap_shape) -> None:
    torch.manual_seed(3)
    f = torch.rand(*fmap_shape)
    w, b = model.linear_head()
    expect = global_avg_pool(f) @ w.T + (0 if b is None else b)
    torch.testing.assert_close(model.forward_head(f), expect, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- EfficientNet-Lite0 (demo backbone)


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0Embedder:
    return load_efficientnet_lite0()


def test_efficientnet_identity_head(effnet):
    assert effnet.dim == 1280
    pre = effnet.preprocessing
    assert (pre.input_size, pre.resize) == (224, 256)
    assert pre.mean == pytest.approx((127 / 255,) * 3) and pre.std == pytest.approx((128 / 255,) * 3)
    x = torch.stack([pre.to_tensor(photo_like(4, (300, 240)))])
    with torch.inference_mode():
        f = effnet.forward_features(x)
        assert f.shape == (1, 1280, 7, 7)
        torch.testing.assert_close(effnet.forward_head(f), global_avg_pool(f))
    _assert_unit_and_repeatable(effnet)


def test_efficientnet_head_roundtrip(tmp_path, effnet):
    torch.manual_seed(0)
    head = torch.nn.Linear(1280, 48)
    path = tmp_path / "sub" / "head.pt"
    save_efficientnet_head(path, head)
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == "lfs-gui-efficientnet-head" and obj["version"] == 1 and obj["dim"] == 48
    assert set(obj["state_dict"]) == {"weight", "bias"}
    model = load_model(path)
    assert isinstance(model, EfficientNetLite0Embedder) and model.dim == 48
    w, b = model.linear_head()
    torch.testing.assert_close(w, head.weight.detach())
    _assert_linear_head(model, (2, 1280, 7, 7))
    _assert_unit_and_repeatable(model)
    assert model.identity() != effnet.identity()
    assert load_efficientnet_head(path).identity() == model.identity()


def test_efficientnet_trainable_head_and_input_grads():
    torch.manual_seed(0)
    m = load_efficientnet_lite0(dim=16)
    assert m.dim == 16 and all(p.requires_grad for p in m.head_module.parameters())
    assert not any(p.requires_grad for p in m.module.backbone.parameters())
    x = torch.randn(1, 3, 96, 96, requires_grad=True)
    m.embed_tensor(x)[0, 0].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # explanations need input gradients
    assert m.head_module.weight.grad is not None and m.module.backbone._conv_stem.weight.grad is None


def test_efficientnet_head_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"format": "lfs-gui-efficientnet-head", "version": 1, "dim": 8,
                "state_dict": {"weight": torch.zeros(8, 1000), "bias": torch.zeros(8)}}, bad)
    with pytest.raises(ModelLoadError, match=r"bad\.pt.*1280"):
        load_efficientnet_head(bad)
    torch.save({"format": "lfs-gui-efficientnet-head", "version": 2, "dim": 8, "state_dict": {}}, bad)
    with pytest.raises(ModelLoadError, match="version"):
        load_model(bad)
    with pytest.raises(ModelLoadError, match="dim=9"):
        load_efficientnet_lite0({"weight": torch.zeros(8, 1280)}, dim=9)


_BIRD_CLASSES = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))


def test_efficientnet_classifies_real_birds(effnet):
    """Real photos (the demo's Tux Paint stamps, composited on white) get their ImageNet classes."""
    from lfs_gui.paths import demo_gallery_dir

    birds = demo_gallery_dir() / "images" / "birds"
    names = ["rooster", "hen", "peacock", "pink_flamingo", "tucan", "owl"]
    xs = [effnet.preprocessing.to_tensor(Image.open(birds / f"tuxpaint-{n}.jpg").convert("RGB")) for n in names]
    with torch.inference_mode():
        top = effnet.imagenet_logits(torch.stack(xs)).argmax(1).tolist()
    # rooster->7 cock, hen->8, peacock->84, flamingo->130, toucan->96, owl->21/24
    assert all(t in _BIRD_CLASSES for t in top), dict(zip(names, top))
    assert top[:5] == [7, 8, 84, 130, 96], dict(zip(names, top))


# ---------------------------------------------------------------- DML-Baselines


def test_dml_resnet50_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    ref = write_dml_checkpoint(path, "resnet50", 128)
    assert detect_kind(path) == "dml"
    model = load_model(path)
    assert isinstance(model, DMLEmbedder) and model.dim == 128
    assert model.preprocessing == Preprocessing(224, 256)
    assert model.preprocessing.mean == IMAGENET_MEAN
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model.embed_tensor(x), ref(x), atol=1e-5, rtol=1e-4)
        assert model.forward_features(x).shape == (2, 2048, 2, 2)
    _assert_linear_head(model, (2, 2048, 2, 2))
    _assert_unit_and_repeatable(model)
    assert model.opt["arch"] == "resnet50" and model.opt["embed_dim"] == 128


def test_dml_googlenet_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    ref = write_dml_checkpoint(path, "googlenet", 512, legacy=True)  # torch < 1.6 format, as in 2019
    assert any(k.startswith("model.aux1.") for k in torch.load(path, weights_only=False)["state_dict"])
    model = load_dml_checkpoint(path)
    assert model.dim == 512 and model.preprocessing.input_size == 227 and model.preprocessing.resize == 256
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(model.embed_tensor(x), ref(x), atol=1e-5, rtol=1e-4)


def test_dml_resnet18_small_dim_and_prefix(tmp_path):
    path = tmp_path / "ck.pth.tar"
    ref = write_dml_checkpoint(path, "resnet18", 32)
    obj = torch.load(path, weights_only=False)
    obj["state_dict"] = {f"module.{k}": v for k, v in obj["state_dict"].items()}  # DataParallel prefix
    torch.save(obj, path)
    model = load_model(path)
    assert model.dim == 32 and model.name == "dml-resnet18-32"
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model.embed_tensor(x), ref(x), atol=1e-5, rtol=1e-4)


def test_dml_non_allowlisted_global_needs_trust(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    write_dml_checkpoint(path, "resnet18", 16, progress=NotAllowlisted("log"),
                         opt_extra={"save_path": pathlib.PurePosixPath("/runs/x")})
    with pytest.raises(ModelLoadError) as exc:
        load_model(path)
    msg = str(exc.value)
    assert str(path) in msg and "trust_checkpoint=True" in msg and "--trust-checkpoint" in msg
    assert "arbitrary" in msg
    model = load_model(path, trust_checkpoint=True)
    assert model.dim == 16


def test_malicious_pickle_not_executed_without_trust(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "opt": Pwn(marker)}, path)
    with pytest.raises(ModelLoadError, match="trust_checkpoint"):
        load_model(path)
    assert not marker.exists()


def test_dml_architecture_mismatch(tmp_path):
    path = tmp_path / "ck.pth.tar"
    write_dml_checkpoint(path, "resnet18", 16)
    obj = torch.load(path, weights_only=False)
    obj["state_dict"]["model.last_linear.weight"] = torch.zeros(16, 100)
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match=r"ck\.pth\.tar.*shape mismatch.*last_linear"):
        load_model(path)
    obj["state_dict"] = {"model.foo.weight": torch.zeros(3)}
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match="neither ResNet"):
        load_model(path, kind="dml")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "missing", "folder"])
def test_bad_files_raise_clear_errors(tmp_path, damage):
    good = tmp_path / "good.pth.tar"
    write_dml_checkpoint(good, "resnet18", 8)
    path = tmp_path / "bad.pth.tar"
    if damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint\xff" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "folder":
        path.mkdir()
    with pytest.raises(ModelLoadError) as exc:
        load_model(path)
    assert str(path) in str(exc.value)


def test_unrecognised_dict_and_unknown_kind(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"foo": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="unrecognised model file"):
        load_model(path)
    with pytest.raises(ModelLoadError, match="unknown model kind"):
        load_model(path, kind="onnx")


# ---------------------------------------------------------------- torchvision head files


def test_torchvision_head_file(tmp_path):
    torch.manual_seed(0)
    model = build_torchvision_embedder("resnet18", 24, Preprocessing(input_size=64, resize=72))
    path = tmp_path / "tv.pt"
    save_torchvision_head(path, model)
    obj = torch.load(path, weights_only=True)
    assert obj["meta"]["arch"] == "resnet18" and json.dumps(obj["meta"])  # JSON-able
    assert all(k.startswith(("backbone.", "head.")) for k in obj["state_dict"])
    loaded = load_model(path)
    assert loaded.dim == 24 and loaded.preprocessing == Preprocessing(64, 72)
    assert loaded.identity() == model.identity()
    emb = _assert_unit_and_repeatable(loaded)
    np.testing.assert_allclose(emb, model.embed_images([photo_like(1), photo_like(2), photo_like(1)]), atol=1e-6)
    _assert_linear_head(loaded, (1, 512, 2, 2))


def test_torchvision_head_file_errors(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tv.pt"
    save_torchvision_head(path, build_torchvision_embedder("resnet18", 8))
    obj = torch.load(path, weights_only=True)
    obj["meta"]["dim"] = 9
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match="meta.dim=9"):
        load_torchvision_head(path)
    obj["meta"].update(dim=8, arch="vit_h_14")
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match="vit_h_14"):
        load_model(path)


# ---------------------------------------------------------------- TorchScript


def test_torchscript_plain(tmp_path):
    path = tmp_path / "model.pt"
    net = write_torchscript(path, dim=16)
    assert detect_kind(path) == "torchscript"
    model = load_model(path)
    assert model.dim == 16 and model.name == "tiny"
    assert model.preprocessing == Preprocessing(32, 36, (0.5,) * 3, (0.25,) * 3)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(model.embed_tensor(x), torch.nn.functional.normalize(net(x), dim=1))
    with pytest.raises(FeaturesUnavailable):
        model.forward_features(x)
    _assert_unit_and_repeatable(model)


def test_torchscript_with_feature_split(tmp_path):
    path = tmp_path / "split.pt"
    write_torchscript(path, dim=12, split=True)
    model = load_torchscript(path)
    x = torch.randn(1, 3, 32, 32)
    assert model.forward_features(x).shape == (1, 8, 16, 16)
    assert model.forward_head(model.forward_features(x)).shape == (1, 12)


@pytest.mark.parametrize("problem", ["missing", "not-json", "no-dim", "wrong-dim", "bad-size"])
def test_torchscript_sidecar_errors(tmp_path, problem):
    path = tmp_path / "m.pt"
    write_torchscript(path, dim=16)
    side = path.with_suffix(".json")
    if problem == "missing":
        side.unlink()
        match = "sidecar m.json"
    elif problem == "not-json":
        side.write_text("{dim: 16")
        match = "not valid JSON"
    elif problem == "no-dim":
        side.write_text(json.dumps({"input_size": 32}))
        match = "missing required"
    elif problem == "wrong-dim":
        side.write_text(json.dumps({"input_size": 32, "dim": 64}))
        match = "dim=64"
    else:
        side.write_text(json.dumps({"input_size": "big", "dim": 16}))
        match = "invalid value"
    with pytest.raises(ModelLoadError, match=match):
        load_model(path)


def test_torchscript_corrupt_archive(tmp_path):
    path = tmp_path / "m.pt"
    write_torchscript(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match=r"m\.pt"):
        load_model(path, kind="torchscript")


# ---------------------------------------------------------------- FaceNet


def test_facenet_state_dict(tmp_path):
    path = tmp_path / "20180402-114759-vggface2.pt"
    ref = write_facenet_state(path)
    assert detect_kind(path) == "facenet"
    model = load_model(path)
    assert isinstance(model, FaceNetEmbedder) and model.dim == 512 and model.suggested_xi1 == 0.3
    pre = model.preprocessing
    assert (pre.input_size, pre.resize) == (160, None)
    assert pre.mean == (0.5,) * 3 and pre.std == pytest.approx((128 / 255,) * 3)
    # fixed_image_standardization: (x*255 - 127.5)/128
    t = pre.to_tensor(Image.new("RGB", (200, 100), (255, 0, 128)))
    assert t.shape == (3, 160, 160)
    np.testing.assert_allclose(t[:, 0, 0].numpy(), (np.array([255, 0, 128]) - 127.5) / 128, atol=1e-5)
    x = torch.randn(2, 3, 160, 160)
    with torch.inference_mode():
        f = model.forward_features(x)
        assert f.shape == (2, 1792, 3, 3)
        torch.testing.assert_close(model.embed_tensor(x), torch.nn.functional.normalize(ref(x), dim=1))
    _assert_linear_head(model, (2, 1792, 3, 3))
    _assert_unit_and_repeatable(model)


def test_facenet_wrong_weights(tmp_path):
    path = tmp_path / "face.pt"
    write_facenet_state(path, with_logits=False)
    state = torch.load(path, weights_only=True)
    state["last_linear.weight"] = torch.zeros(128, 1792)
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=r"face\.pt.*last_linear"):
        load_facenet(path)


# ---------------------------------------------------------------- demo model


def test_load_demo_model(tmp_path, monkeypatch):
    monkeypatch.setenv("LFS_GUI_DATA", str(tmp_path))
    with pytest.raises(ModelLoadError, match="demo model head is missing"):
        load_demo_model()
    torch.manual_seed(1)
    save_efficientnet_head(tmp_path / "models" / "demo" / "head.pt", torch.nn.Linear(1280, 32))
    model = load_demo_model()
    assert isinstance(model, EfficientNetLite0Embedder) and model.dim == 32
