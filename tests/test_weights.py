"""Weights registry: fp16 round trip, checksum, architecture checks, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from facesketch.engine import weights as W
from facesketch.resources import shipped_weights_dir


class Tiny(nn.Module):
    def __init__(self, ch: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, ch, 3)
        self.norm = nn.BatchNorm2d(ch)


CONFIG = {"ch": 4, "blocks": (1, 2)}


def manifest(**extra: object) -> dict:
    return {"network": "scn", "config": CONFIG, "data": "synthetic", "steps": 3, **extra}


def saved(tmp_path: Path, module: nn.Module | None = None) -> Path:
    torch.manual_seed(0)
    return W.save_weights(module or Tiny(), tmp_path / "scn.safetensors", manifest())


def test_round_trip_fp16(tmp_path: Path) -> None:
    src = Tiny()
    path = saved(tmp_path, src)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["network"] == "scn" and len(meta["sha256"]) == 64
    assert meta["format_version"] == W.FORMAT_VERSION and meta["config"]["blocks"] == [1, 2]
    state, m = W.load_state_dict(path, "scn")
    assert state["conv.weight"].dtype == torch.float16
    assert state["norm.num_batches_tracked"].dtype == torch.int64
    dst = Tiny()
    out = W.load_into(dst, path, "scn", CONFIG)
    assert out["steps"] == 3
    for key, value in src.state_dict().items():
        assert torch.allclose(dst.state_dict()[key].float(), value.float(), atol=1e-3), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scn.json", "scn.safetensors"]


def test_checksum_mismatch_names_the_file(tmp_path: Path) -> None:
    path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(W.WeightsError, match="checksum mismatch") as err:
        W.load_state_dict(path)
    assert str(path) in str(err.value) and "python -m train.scn" in str(err.value)


def test_wrong_network(tmp_path: Path) -> None:
    path = saved(tmp_path)
    with pytest.raises(W.WeightsError, match="holds a 'scn' network, not 'fusion'"):
        W.load_into(Tiny(), path, "fusion")


def test_wrong_config_leaves_module_untouched(tmp_path: Path) -> None:
    path = saved(tmp_path)
    module = Tiny()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(W.WeightsError, match="another scn configuration") as err:
        W.load_into(module, path, "scn", {"ch": 8, "blocks": [1, 2]})
    assert "ch" in str(err.value) and str(path) in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_wrong_shapes_and_keys(tmp_path: Path) -> None:
    path = saved(tmp_path)
    with pytest.raises(W.WeightsError, match="shape"):
        W.load_into(Tiny(ch=8), path, "scn")
    other = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(W.WeightsError, match="missing 0.bias, 0.weight"):
        W.load_into(other, path, "scn")


def test_missing_and_broken_manifest(tmp_path: Path) -> None:
    path = saved(tmp_path)
    manifest_file = path.with_suffix(".json")
    manifest_file.write_text("{broken")
    with pytest.raises(W.WeightsError, match="not valid JSON"):
        W.read_manifest(path)
    manifest_file.write_text(json.dumps({"network": "scn", "config": {}, "format_version": 99}))
    with pytest.raises(W.WeightsError, match="newer facesketch"):
        W.read_manifest(path)
    manifest_file.unlink()
    with pytest.raises(W.WeightsError, match="manifest missing"):
        W.load_state_dict(path)


def test_not_safetensors_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "x.pt"
    fake.write_bytes(b"\x80\x04 pickle")
    with pytest.raises(W.WeightsError, match="only .safetensors"):
        W.load_state_dict(fake)
    path = saved(tmp_path)
    junk = b"not safetensors at all"
    path.write_bytes(junk)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["sha256"] = __import__("hashlib").sha256(junk).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(W.WeightsError, match="not a valid safetensors"):
        W.load_state_dict(path)


def test_env_override_and_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESKETCH_WEIGHTS", raising=False)
    assert W.weights_dir() == shipped_weights_dir()
    assert (shipped_weights_dir() / "fusion.json").is_file()
    monkeypatch.setenv("FACESKETCH_WEIGHTS", str(tmp_path))
    assert W.weights_dir() == tmp_path
    saved(tmp_path)
    (tmp_path / "codes.safetensors").write_bytes(b"no manifest: not a registry entry")
    _, meta = W.load_state_dict("scn", "scn")  # by name, found in the override folder
    assert meta["data"] == "synthetic"
    entries = W.list_weights()
    assert [e["name"] for e in entries] == ["scn"]
    assert entries[0]["path"] == str(tmp_path / "scn.safetensors")
    with pytest.raises(W.WeightsError, match="manifest missing"):
        W.read_manifest("absent")


def test_save_needs_network_and_config(tmp_path: Path) -> None:
    with pytest.raises(W.WeightsError, match="lacks config"):
        W.save_weights(Tiny(), tmp_path / "a.safetensors", {"network": "scn"})
    with pytest.raises(W.WeightsError, match="must end in"):
        W.save_weights(Tiny(), tmp_path / "a.pt", manifest())


def test_damaged_shipped_weights_say_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip user has no train/ folder: a bad shipped file names the reinstall instead."""
    import facesketch.engine.weights as weights_module

    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    monkeypatch.setattr(weights_module, "shipped_weights_dir", lambda: tmp_path)
    with pytest.raises(W.WeightsError, match="checksum mismatch") as err:
        W.load_state_dict(path)
    assert "pip install --force-reinstall facesketch" in str(err.value)
    assert "python -m train" not in str(err.value)


def test_the_default_appearance_codes_are_checksummed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flipped bytes in appearance_mean must be a weights error, not a changed render."""
    import shutil

    import facesketch.engine.weights as weights_module
    from facesketch.engine.bundle import MEAN_CODES_FILE, load_mean_codes

    shipped = shipped_weights_dir() / MEAN_CODES_FILE
    codes = load_mean_codes(shipped)  # the shipped copy verifies against its manifest
    assert W.read_manifest(shipped)["network"] == "appearance_mean"
    copy = tmp_path / MEAN_CODES_FILE
    shutil.copy(shipped, copy)
    shutil.copy(shipped.with_suffix(".json"), copy.with_suffix(".json"))
    raw = bytearray(copy.read_bytes())
    raw[-5] ^= 0x01  # one bit of one code value: loads fine without a checksum
    copy.write_bytes(bytes(raw))
    monkeypatch.setattr(weights_module, "shipped_weights_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        load_mean_codes(copy)
    assert str(copy) in str(err.value) and "reinstall" in str(err.value)
    assert set(codes) >= {"nose", "mouth"}


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_special_files_as_weights_fail_at_once(tmp_path: Path, kind: str) -> None:
    import os

    path = saved(tmp_path)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(W.WeightsError) as err:  # no hang, no memory blow-up
        W.load_state_dict(path)
    assert str(path) in str(err.value) and "not a weights file" in str(err.value)
    man = path.with_suffix(".json")
    man.unlink()
    os.mkfifo(man)
    with pytest.raises(W.WeightsError, match="FIFO"):
        W.read_manifest(path)
