"""Safe checkpoint loading: real DML-Baselines files load without a flag, anything else needs trust.

The fixtures write checkpoints the way DML-Baselines does (``torch.save`` of ``state_dict``, an
argparse ``opt`` holding a ``torch.device`` and ``LOGGER.progress_saver`` full of numpy scalars), in
torch's zip format and in the pre-1.6 legacy format, with numpy 2's and numpy 1's scalar names.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_fixtures import write_dml_checkpoint
from lfs_gui.models.base import ModelLoadError
from lfs_gui.models.loader import load_model, read_checkpoint
from lfs_gui.models.safe_load import ALLOWED_NAMES, TrustRequired, check_trust, refused_globals


def pickled_globals(path: Path) -> set[str]:
    """``module.name`` of every GLOBAL opcode in a torch checkpoint (zip or legacy), via pickletools."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
            streams = [io.BytesIO(zf.read(name))]
            count = 1
    else:  # legacy: magic number, protocol, sys info, then the object itself
        streams, count = [io.BytesIO(path.read_bytes())], 4
    found = set()
    stream = streams[0]
    for _ in range(count):
        for op, arg, _pos in pickletools.genops(stream):
            assert op.name not in ("STACK_GLOBAL", "INST", "OBJ")  # torch.save writes protocol 2
            if op.name == "GLOBAL":
                found.add(arg.replace(" ", "."))
    return found


def _torch_default_allowed() -> set[str]:
    from torch._weights_only_unpickler import _get_allowed_globals

    return set(_get_allowed_globals())


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-names", "numpy1-names"])
def test_dml_checkpoint_globals_are_covered_by_the_allow_list(tmp_path, legacy, numpy1):
    path = tmp_path / "checkpoint.pth.tar"
    write_dml_checkpoint(path, "resnet18", 8, legacy=legacy, numpy1=numpy1, numpy_epochs=True)
    found = pickled_globals(path)
    beyond_torch = found - _torch_default_allowed()
    scalar = "numpy.core.multiarray.scalar" if numpy1 else "numpy._core.multiarray.scalar"
    # exactly what such a file needs beyond torch's own list, each of it in ours
    assert beyond_torch == {"argparse.Namespace", "numpy.dtype", scalar}
    assert beyond_torch <= set(ALLOWED_NAMES)
    assert "torch.device" in found  # opt.device, allowed by torch itself


@pytest.mark.parametrize("legacy,numpy1", [(False, False), (True, False), (False, True), (True, True)])
def test_dml_checkpoint_loads_without_trust_with_its_values(tmp_path, legacy, numpy1):
    path = tmp_path / "checkpoint.pth.tar"
    ref = write_dml_checkpoint(path, "resnet18", 8, legacy=legacy, numpy1=numpy1, numpy_epochs=True)
    obj = read_checkpoint(path)
    opt, progress = obj["opt"], obj["progress"]
    assert opt.device == torch.device("cuda") and opt.k_vals == [1, 2, 4, 8] and opt.pretrained is False
    assert set(progress) == {"train", "val"} and set(progress["val"]) >= {"Epochs", "Time", "NMI", "F1", "Recall @ 1"}
    nmi = progress["val"]["NMI"]
    assert len(nmi) == 2 and all(type(v) is np.float64 for v in nmi) and 0.5 <= nmi[0] <= 0.7
    assert all(type(v) is np.int64 for v in progress["train"]["Epochs"]) and progress["train"]["Epochs"] == [0, 1]
    model = load_model(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model.embed_tensor(x), ref(x), atol=1e-5, rtol=1e-4)


def _handmade_pickle(body: bytes) -> bytes:
    """A protocol-2 pickle ``{'opt': <body>}`` as raw opcodes (names any global we like)."""
    return b"\x80\x02}q\x00X\x03\x00\x00\x00optq\x01" + body + b"s."


def test_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    call = f"touch {marker}".encode()
    body = b"cos\nsystem\nX" + len(call).to_bytes(4, "little") + call + b"\x85R"
    pickle.loads(_handmade_pickle(body))  # the payload is live: plain unpickling runs it
    assert marker.exists()
    marker.unlink()
    for legacy in (False, True):
        path = tmp_path / f"evil{int(legacy)}.pth.tar"
        torch.save({"state_dict": {}}, path, _use_new_zipfile_serialization=not legacy)
        if legacy:  # the legacy stream is plain pickles: replace the object pickle by ours
            path.write_bytes(_legacy_with_object(_handmade_pickle(body)))
        else:
            _replace_data_pkl(path, _handmade_pickle(body))
        with pytest.raises(TrustRequired) as err:
            load_model(path)
        e = err.value
        assert isinstance(e, ModelLoadError) and e.path == path and e.global_name == "os.system"
        msg = str(e)
        assert str(path) in msg and "os.system" in msg and "--trust-checkpoint" in msg and "arbitrary" in msg
        assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_check_trust_scans_the_pickle_without_running_it(tmp_path, legacy):
    good = tmp_path / "good.pth.tar"
    write_dml_checkpoint(good, "resnet18", 8, legacy=legacy)
    assert refused_globals(good) == []
    check_trust(good)  # a real DML checkpoint needs no trust
    marker = tmp_path / "pwned"
    call = f"touch {marker}".encode()
    body = b"cos\nsystem\nX" + len(call).to_bytes(4, "little") + call + b"\x85R"
    bad = tmp_path / "bad.pth.tar"
    torch.save({"state_dict": {}}, bad, _use_new_zipfile_serialization=not legacy)
    if legacy:
        bad.write_bytes(_legacy_with_object(_handmade_pickle(body)))
    else:
        _replace_data_pkl(bad, _handmade_pickle(body))
    with pytest.raises(TrustRequired) as err:
        check_trust(bad)
    assert err.value.global_name == "os.system" and err.value.path == bad and not marker.exists()
    check_trust(bad, trust_checkpoint=True)  # trusted: nothing to check (and still nothing ran)
    assert not marker.exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    assert refused_globals(garbage) is None
    check_trust(garbage)  # cannot tell: the loader decides


def test_every_refused_global_is_named(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    class AlsoEvil:
        def __reduce__(self):
            return (eval, ("1",))

    path = tmp_path / "checkpoint.pth.tar"
    write_dml_checkpoint(path, "resnet18", 8, progress={"val": {"NMI": [Evil(), AlsoEvil()]}})
    with pytest.raises(TrustRequired) as err:
        read_checkpoint(path)
    assert err.value.global_name == f"{os.system.__module__}.system"  # posix.system / nt.system
    assert set(err.value.global_names) == {f"{os.system.__module__}.system", "builtins.eval"}


@pytest.mark.parametrize("payload,name", [
    (np.arange(3), "numpy._core.multiarray._reconstruct"),  # arrays are not needed, so not allowed
    (np.str_("abc"), "numpy.dtype['U3']"),                  # only numeric scalars
], ids=["ndarray", "str-scalar"])
def test_numpy_beyond_numeric_scalars_needs_trust(tmp_path, payload, name):
    path = tmp_path / "ck.pt"
    torch.save({"progress": payload}, path)
    with pytest.raises(TrustRequired) as err:
        read_checkpoint(path)
    assert err.value.global_name == name
    got = read_checkpoint(path, trust_checkpoint=True)["progress"]
    assert np.array_equal(got, payload)


def test_object_dtype_cannot_be_built(tmp_path):
    spec = b"O8"
    body = (b"cnumpy\ndtype\nX" + len(spec).to_bytes(4, "little") + spec + b"\x89\x88\x87R")
    path = tmp_path / "ck.pt"
    torch.save({}, path)
    _replace_data_pkl(path, _handmade_pickle(body))
    with pytest.raises(TrustRequired) as err:
        read_checkpoint(path)
    assert err.value.global_name == "numpy.dtype['O8']"


def _replace_data_pkl(path: Path, data: bytes) -> None:
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for n, content in entries.items():
            zf.writestr(n, data if n.endswith("/data.pkl") else content)


def _legacy_with_object(obj_pickle: bytes) -> bytes:
    """A legacy-format file: torch's magic number, protocol and sys-info pickles, our object, no storages."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    head = b"".join(pickle.dumps(v, protocol=2) for v in
                    (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                                                      "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("command", ["index", "explain"])
def test_cli_refuses_os_system_with_exit_2_naming_global_file_and_flag(tmp_path, command):
    """As a user meets it: ``lfs-gui index GALLERY --model evil.pth.tar`` (or ``explain`` of two images
    with ``--model``) exits 2 with one message naming the file, ``os.system`` and ``--trust-checkpoint``;
    no traceback, the payload never runs, nothing is written."""
    import contextlib

    from _model_fixtures import photo_like
    from lfs_gui.cli import main

    marker = tmp_path / "pwned"
    call = f"touch {marker}".encode()
    evil = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}}, evil)
    _replace_data_pkl(evil, _handmade_pickle(b"cos\nsystem\nX" + len(call).to_bytes(4, "little") + call + b"\x85R"))
    (tmp_path / "gallery").mkdir()
    for i in range(2):
        photo_like(i).save(tmp_path / "gallery" / f"{i}.jpg")
    argv = {"index": ["index", str(tmp_path / "gallery"), "--out", str(tmp_path / "idx"), "--no-decoder",
                      "--cache-dir", str(tmp_path / "cache")],
            "explain": ["explain", "--query", str(tmp_path / "gallery" / "0.jpg"), "--target",
                        str(tmp_path / "gallery" / "1.jpg"), "--out", str(tmp_path / "fig.png")]}[command]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([*argv, "--model", str(evil), "--device", "cpu"])
    msg = err.getvalue()
    assert rc == 2, msg
    assert f"lfs-gui {command}: error: {evil}:" in msg and "os.system" in msg and "--trust-checkpoint" in msg
    assert "arbitrary Python code" in msg and "Traceback" not in msg
    assert not marker.exists() and not (tmp_path / "idx" / "index.json").exists() and not (tmp_path / "fig.png").exists()
