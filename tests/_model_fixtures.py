"""Write model files in their real on-disk formats, with small random weights, for the tests.

The DML-Baselines writer rebuilds that project's layout independently of lfs_gui's loader (backbone
in ``.model`` with ``fc`` renamed ``last_linear``, ``layer_blocks`` aliases, ``opt`` Namespace), so a
loader that maps keys wrongly fails against it.
"""

from __future__ import annotations

import argparse
import json
import pickle
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image


def randomize_bn(module: nn.Module, seed: int) -> None:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


class DMLReferenceNet(nn.Module):
    """The DML-Baselines network layout (ResNet or GoogLeNet container)."""

    def __init__(self, arch: str, embed_dim: int) -> None:
        super().__init__()
        if arch == "googlenet":
            # not_pretrained=True in DML-Baselines keeps the (untrained) aux heads in the state dict
            self.model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
            m = self.model
            self.layer_blocks = nn.ModuleList([m.inception3a, m.inception3b, m.maxpool3, m.inception4a, m.inception4b,
                                               m.inception4c, m.inception4d, m.inception4e, m.maxpool4,
                                               m.inception5a, m.inception5b, m.avgpool])
        else:
            self.model = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        fc = self.model.fc
        del self.model.fc
        self.model.last_linear = nn.Linear(fc.in_features, embed_dim)
        if arch != "googlenet":
            m = self.model
            self.layer_blocks = nn.ModuleList([m.layer1, m.layer2, m.layer3, m.layer4])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.arch == "googlenet":
            x = m.maxpool2(m.conv3(m.conv2(m.maxpool1(m.conv1(x)))))
        else:
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        for block in self.layer_blocks:
            x = block(x)
        if self.arch != "googlenet":
            x = m.avgpool(x)
        return F.normalize(m.last_linear(x.flatten(1)), dim=-1)


def dml_opt(arch: str = "resnet50", embed_dim: int = 128, **extra: Any) -> argparse.Namespace:
    """``opt`` as DML-Baselines' ``Standard_Training.py`` builds it: ``parser.parse_args()`` (a subset
    of its flags, same types and defaults) plus the attributes the script sets afterwards, among
    them ``opt.device = torch.device('cuda')``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="cub200", type=str)
    parser.add_argument("--lr", default=0.00001, type=float)
    parser.add_argument("--n_epochs", default=70, type=int)
    parser.add_argument("--bs", default=112, type=int)
    parser.add_argument("--tau", default=[30, 55], nargs="+", type=int)
    parser.add_argument("--loss", default="marginloss", type=str)
    parser.add_argument("--sampling", default="distance", type=str)
    parser.add_argument("--margin", default=0.2, type=float)
    parser.add_argument("--beta_constant", action="store_true")
    parser.add_argument("--k_vals", nargs="+", default=[1, 2, 4, 8], type=int)
    parser.add_argument("--embed_dim", default=128, type=int)
    parser.add_argument("--arch", default="resnet50", type=str)
    parser.add_argument("--not_pretrained", action="store_true")
    parser.add_argument("--gpu", default=0, type=int)
    parser.add_argument("--savename", default="", type=str)
    parser.add_argument("--save_path", default="/work/Training_Results", type=str)
    opt = parser.parse_args(["--arch", arch, "--embed_dim", str(embed_dim), "--not_pretrained"])
    opt.save_path += "/" + opt.dataset
    opt.pretrained = not opt.not_pretrained
    opt.device = torch.device("cuda")
    opt.num_classes = 100
    for k, v in extra.items():
        setattr(opt, k, v)
    return opt


def dml_progress_saver(k_vals: list[int], epochs: int = 2, numpy_epochs: bool = False, seed: int = 0) -> dict:
    """``LOGGER.progress_saver`` after ``epochs`` epochs, filled with what DML-Baselines logs:
    ``np.round(time, 4)`` and ``np.mean(losses)`` (numpy float64), sklearn's NMI (float64), F1 and
    ``np.sum([...]) / n`` recalls (float64). ``numpy_epochs`` logs the epoch as ``np.int64`` (as forks
    do that iterate ``np.arange``)."""
    rng = np.random.default_rng(seed)
    metrics = {"train": ["Epochs", "Time", "Train Loss"],
               "val": ["Epochs", "Time", "NMI", "F1"] + [f"Recall @ {k}" for k in k_vals]}
    saver: dict = {key: {sub: [] for sub in subs} for key, subs in metrics.items()}
    for epoch in (np.arange(epochs) if numpy_epochs else range(epochs)):
        t = 100.0 + float(rng.uniform(0, 10))
        losses = rng.uniform(0.1, 0.3, 8).tolist()
        for key, value in zip(metrics["train"], [epoch, np.round(t, 4), np.mean(losses)]):
            saver["train"][key].append(value)
        hits = rng.integers(0, 2, 50)
        recalls = [np.sum([1 for h in hits[: 10 * k] if h]) / 50 for k in k_vals]
        nmi, f1 = np.float64(rng.uniform(0.5, 0.7)), np.mean(rng.uniform(0.2, 0.4, 3))
        for key, value in zip(metrics["val"], [epoch, np.round(t / 10), nmi, f1] + recalls):
            saver["val"][key].append(value)
    return saver


class _Numpy1Pickler(pickle._Pickler):
    """Writes numpy scalars under numpy 1.x's global name ``numpy.core.multiarray.scalar``, as a
    checkpoint saved with numpy < 2 has them (``torch.save(pickle_module=...)``)."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if getattr(obj, "__module__", None) == "numpy._core.multiarray" and getattr(obj, "__name__", "") == "scalar":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\nscalar\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


NUMPY1_PICKLE = types.ModuleType("numpy1_pickle")
NUMPY1_PICKLE.Pickler = _Numpy1Pickler  # type: ignore[attr-defined]
NUMPY1_PICKLE.dump = lambda obj, f, protocol=2: _Numpy1Pickler(f, protocol).dump(obj)  # type: ignore[attr-defined]


def write_dml_checkpoint(path: Path, arch: str = "resnet50", embed_dim: int = 128, seed: int = 0,
                         progress: Any = None, opt_extra: dict | None = None, legacy: bool = False,
                         numpy1: bool = False, numpy_epochs: bool = False) -> DMLReferenceNet:
    """``checkpoint.pth.tar`` as DML-Baselines' ``aux.set_checkpoint`` writes it; returns the net (eval).

    ``torch.save({'state_dict': model.state_dict(), 'opt': opt, 'progress': LOG.progress_saver})``
    with ``opt`` from argparse (holding a ``torch.device``) and the progress saver's numpy scalars.
    ``legacy``: the pre-zip format of torch < 1.6 (the 2019 code's); ``numpy1``: numpy scalars under
    numpy 1.x's global name. ``progress`` replaces the progress saver (e.g. with an object that is
    not allow-listed).
    """
    torch.manual_seed(seed)
    net = DMLReferenceNet(arch, embed_dim)
    randomize_bn(net, seed)
    net.eval()
    opt = dml_opt(arch, embed_dim, **(opt_extra or {}))
    if progress is None:
        progress = dml_progress_saver(opt.k_vals, numpy_epochs=numpy_epochs, seed=seed)
    kwargs: dict[str, Any] = {"_use_new_zipfile_serialization": not legacy}
    if numpy1:
        kwargs["pickle_module"] = NUMPY1_PICKLE
    torch.save({"state_dict": net.state_dict(), "opt": opt, "progress": progress}, path, **kwargs)
    return net


def write_facenet_state(path: Path, seed: int = 0, with_logits: bool = True) -> nn.Module:
    """A facenet-pytorch-format InceptionResnetV1 state dict (random), optionally with ``logits.*``."""
    from lfs_gui.models.facenet import InceptionResnetV1

    torch.manual_seed(seed)
    net = InceptionResnetV1()
    randomize_bn(net, seed)
    state = dict(net.state_dict())
    if with_logits:
        state["logits.weight"] = torch.randn(10, 512)
        state["logits.bias"] = torch.zeros(10)
    torch.save(state, path)
    return net.eval()


class TinyEmbedNet(nn.Module):
    """A small conv net for TorchScript fixtures; optionally exports a feature split."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, dim)

    @torch.jit.export
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    @torch.jit.export
    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class TinyPlainNet(nn.Module):
    """No feature split: only ``forward``."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def write_torchscript(path: Path, dim: int = 16, split: bool = False, sidecar: dict | None = None,
                      seed: int = 0) -> nn.Module:
    """``path`` (.pt) + ``path.with_suffix('.json')``; ``sidecar=None`` writes a valid default."""
    torch.manual_seed(seed)
    net = (TinyEmbedNet(dim) if split else TinyPlainNet(dim)).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
        torch.jit.save(torch.jit.script(net), str(path))
    meta = sidecar if sidecar is not None else {
        "dim": dim, "input_size": 32, "resize": 36, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "name": "tiny"}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return net


def photo_like(seed: int, size: tuple[int, int] = (80, 60)) -> Image.Image:
    """A deterministic smooth RGB test image (gradients + noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 200
    arr = np.clip(base + rng.normal(0, 20, (h, w, 3)) + rng.uniform(0, 50, 3), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


class NotAllowlisted:
    """A class the safe loader does not know: pickling it makes a checkpoint need trust."""

    def __init__(self, note: str = "x") -> None:
        self.note = note


class Pwn:
    """Unpickling this creates a marker file: proves whether a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
