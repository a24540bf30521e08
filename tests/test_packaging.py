"""Packaging: the wheel's package list, the shipped data lookup and the weights messages.

The full check (build the wheel, install it into a fresh venv, run every subcommand)
is ``.ci/wheel-check``; these are the quick parts of it that belong in the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facesketch import resources

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]


def test_wheel_lists_every_facesketch_package() -> None:
    """A new subpackage missing from pyproject's list would be absent from the wheel."""
    listed = set(_setuptools_config()["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "facesketch").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "facesketch_resources" in listed


def test_resources_folder_maps_to_the_data_package() -> None:
    cfg = _setuptools_config()
    assert cfg["package-dir"] == {resources.RESOURCES_PACKAGE: "resources"}
    assert cfg["package-data"][resources.RESOURCES_PACKAGE] == ["**/*"]


def test_shipped_data_is_found() -> None:
    weights = resources.shipped_weights_dir()
    for name in ("fusion", "up", "hed", "cartoon-anime", "local_nose"):
        assert (weights / f"{name}.safetensors").is_file(), name
        assert (weights / f"{name}.json").is_file(), name
    assert (resources.samples_dir() / "demo.json").is_file()
    assert sorted(resources.samples_dir().glob("*.jpg")), "the sample photos are missing"


def test_missing_data_package_falls_back_to_the_checkout_or_says_reinstall(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(resources, "RESOURCES_PACKAGE", "facesketch_resources_absent")
    assert resources.resources_dir() == ROOT / "resources"  # PYTHONPATH=. source tree
    monkeypatch.setattr(resources, "__file__", str(tmp_path / "facesketch" / "resources.py"))
    with pytest.raises(resources.ResourcesError, match="pip install --force-reinstall"):
        resources.resources_dir()


def test_missing_shipped_weights_tell_a_pip_user_to_reinstall(tmp_path: Path) -> None:
    from facesketch.engine import bundle
    from facesketch.engine.weights import WEIGHTS_ENV, WeightsError

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(resources, "shipped_weights_dir", lambda: tmp_path)
        with pytest.raises(WeightsError, match="reinstall") as err:
            bundle.load_bundle(tmp_path)
        assert "pip install --force-reinstall facesketch" in str(err.value)
    other = tmp_path / "mine"
    other.mkdir()
    with pytest.raises(WeightsError, match=f"unset {WEIGHTS_ENV}"):
        bundle.load_bundle(other)
