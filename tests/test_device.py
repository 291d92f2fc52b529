"""lfs_gui.device: one place decides the device; a missing device is a clear error, never a traceback."""

from __future__ import annotations

import os

import pytest
import torch

from lfs_gui.device import (
    BatchSettings,
    DeviceError,
    available_devices,
    batch_defaults,
    resolve_device,
)


def test_auto_and_cpu_resolve_to_a_real_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert str(auto).split(":")[0] in ("cpu", "cuda", "mps")
    assert resolve_device(None) == auto
    assert "cpu" in available_devices()


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu", "cuda:-1"])
def test_unknown_device_names_the_choices(spec):
    with pytest.raises(DeviceError) as err:
        resolve_device(spec)
    msg = str(err.value)
    assert spec in msg and "auto, cpu, cuda, cuda:N, mps" in msg and "available here: cpu" in msg


def test_missing_cuda_index_names_what_exists():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError) as err:
        resolve_device(f"cuda:{n + 3}")
    assert f"cuda:{n + 3}" in str(err.value) and "available" in str(err.value)


def test_batch_defaults_are_larger_on_accelerators_and_overridable():
    cpu = batch_defaults("cpu")
    assert isinstance(cpu, BatchSettings) and cpu.amp is False
    accel = batch_defaults(torch.device("cuda", 0))
    assert accel.embed > cpu.embed and accel.curve_chunk > cpu.curve_chunk and accel.rise_masks > cpu.rise_masks
    assert cpu.updated(embed=7, rise_masks=None).embed == 7
    assert cpu.updated(embed=7, rise_masks=None).rise_masks == cpu.rise_masks
    # decoding: in the main process on CPU (the forward has the cores), in parallel for an accelerator
    assert cpu.workers == 0 and 1 <= accel.workers <= 8 and accel.workers <= max(1, (os.cpu_count() or 2) - 1)


def test_index_build_takes_the_devices_batch_and_decode_workers(tmp_path, monkeypatch):
    """``iter_build_index`` without batch_size/num_workers uses the model's device's defaults (the CLI
    and the app's "Index a gallery" both rely on it); explicit values win."""
    from PIL import Image

    from _tiny_models import tiny_model
    from lfs_gui.build import iter_build_index
    from lfs_gui.data import embed as embed_module
    from lfs_gui.data.galleries import open_gallery
    from lfs_gui.jobs import run_generator

    seen: list[tuple[int, int]] = []
    real_init = embed_module.Embedder.__init__

    def spy(self, *args, **kwargs):  # records what the build asked for; the real Embedder runs
        real_init(self, *args, **kwargs)
        seen.append((self.batch_size, self.num_workers))

    monkeypatch.setattr(embed_module.Embedder, "__init__", spy)
    (tmp_path / "g").mkdir()
    for i in range(3):
        Image.new("RGB", (24, 20), (40 * i, 90, 200 - 40 * i)).save(tmp_path / "g" / f"{i}.png")
    gallery, model = open_gallery(tmp_path / "g"), tiny_model()
    import lfs_gui.device as device_module

    # CPU defaults unlike the old hard-wired 32 / 0, so the test tells whether the build reads them
    monkeypatch.setattr(device_module, "_CPU", BatchSettings(embed=5, curve_chunk=3, rise_masks=16, oracle=16, workers=1))
    cpu = batch_defaults(model.device)
    assert (cpu.embed, cpu.workers) == (5, 1)
    run_generator(iter_build_index(gallery, model, tmp_path / "idx-a", train_decoder=False, use_cache=False))
    run_generator(iter_build_index(gallery, model, tmp_path / "idx-b", train_decoder=False, use_cache=False,
                                   batch_size=2, num_workers=0))
    assert seen == [(5, 1), (2, 0)]
