"""The prepared-data folder is decided once: train.prepare writes where the trainers read."""

from __future__ import annotations

from pathlib import Path

import pytest

from train import config, prepare
from train.context import RunContext


def _prepare_out(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder ``python -m train.prepare`` (no --out) would write to."""
    seen: dict[str, Path] = {}

    def fake_prepare(data: str, out: str, **kwargs: object) -> dict:
        seen["out"] = Path(out)
        raise ValueError("stop here")

    monkeypatch.setattr(prepare, "prepare", fake_prepare)
    assert prepare.main(["--no-progress"]) == 2
    return seen["out"]


def _trainer_root() -> Path:
    """The folder a trainer (no --data) reads, from its error message when it is missing."""
    cfg = config.load_config(None, ["preset=tiny", "train.threads=1"])
    ctx = RunContext(cfg, "cpu")
    with pytest.raises(FileNotFoundError) as err:
        ctx.dataset("train")
    return Path(str(err.value).split("training data folder ")[1].split(" does not exist")[0])


@pytest.mark.parametrize("env", [True, False])
def test_prepare_writes_where_the_trainers_read(
    env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env:
        monkeypatch.setenv("FACESKETCH_DATA", str(tmp_path / "prepared"))
    else:
        monkeypatch.delenv("FACESKETCH_DATA", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = _prepare_out(monkeypatch)
    assert out == _trainer_root() == config.default_data_root()
    if env:
        assert out == tmp_path / "prepared"
    else:
        assert out == tmp_path / "home" / ".cache" / "facesketch" / "prepared"
