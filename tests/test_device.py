"""lfs_gui.device: one place decides the device; a missing device is a clear error, never a traceback."""

from __future__ import annotations

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
