"""Project files: round trip, clear errors for bad files, atomic writes, autosave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facesketch import sketch as sk
from facesketch.layout import NOSE
from facesketch.sketch.project import FORMAT, VERSION


def rich_doc(photo_dir: Path) -> sk.Document:
    rng = np.random.default_rng(1)
    bg = np.full((64, 64), 255, np.uint8)
    bg[10:20, 5:60] = rng.integers(0, 255, (10, 55), dtype=np.uint8)
    return sk.Document(
        layout=sk.FaceLayout.default(512).moved(NOSE, 190, 240),
        strokes=[
            sk.Stroke(rng.uniform(0, 512, (17, 2)), 2.5, id="s1"),
            sk.Stroke(np.array([[1.1, 2.2]]), 0.7, eraser=True, id="s2"),
            sk.Stroke(rng.normal(200, 50, (300, 2)), 3.1),
        ],
        appearance={
            "nose": sk.AppearanceSlot((str(photo_dir / "a.jpg"), "/elsewhere/b.jpg"), 0.3),
            "face": sk.AppearanceSlot((), 0.5),
            "mouth": sk.AppearanceSlot((str(photo_dir / "c.jpg"),), 0.5, shape=True),
        },
        scn_strength=0.6,
        background_image=bg,
    )


def test_round_trip(tmp_path: Path) -> None:
    doc = rich_doc(tmp_path / "photos")
    path = tmp_path / "face.json"
    assert sk.save_project(doc, path) == path
    loaded = sk.load_project(path)
    assert loaded == doc
    assert loaded.layout.window(NOSE).x == 190
    assert loaded.background_image is not None and loaded.background_image.dtype == np.uint8
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    # References beside the project are stored relative to it, so they move with it.
    assert data["appearance"]["nose"]["paths"][0] == "photos/a.jpg"
    slots = data["appearance"]
    assert slots["mouth"]["shape"] is True and "shape" not in slots["nose"]


def test_project_moves_with_its_photos(tmp_path: Path) -> None:
    doc = rich_doc(tmp_path / "one" / "photos")
    sk.save_project(doc, tmp_path / "one" / "p.json")
    (tmp_path / "one").rename(tmp_path / "two")
    loaded = sk.load_project(tmp_path / "two" / "p.json")
    assert loaded.appearance["nose"].paths[0] == str(tmp_path / "two" / "photos" / "a.jpg")


def test_empty_document_round_trip(tmp_path: Path) -> None:
    doc = sk.Document.new(256)
    sk.save_project(doc, tmp_path / "e.json")
    assert sk.load_project(tmp_path / "e.json") == doc


def _valid_data(tmp_path: Path) -> dict:
    sk.save_project(rich_doc(tmp_path), tmp_path / "ok.json")
    return json.loads((tmp_path / "ok.json").read_text())


def _bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, expected message fragment)."""
    good = _valid_data(tmp_path)
    text = json.dumps(good)

    def variant(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    bad_stroke = {**good["strokes"][0], "points": [1, 2, 3]}
    return {
        "corrupt": (b"{not json", "corrupt or truncated"),
        "truncated": (text[: len(text) // 2].encode(), "corrupt or truncated"),
        "empty": (b"", "empty"),
        "binary": (bytes(range(256)), "not a facesketch project"),
        "newer": (variant(version=VERSION + 1), "made by a newer facesketch (version 2)"),
        "wrong_format": (variant(format="something-else"), "not a facesketch project"),
        "not_object": (b"[1, 2, 3]", "not a facesketch project"),
        "bad_stroke": (variant(strokes=[bad_stroke]), "strokes[0].points"),
        "bad_width": (variant(strokes=[{**good["strokes"][0], "width": -1}]), "width"),
        "bad_mix": (variant(appearance={"nose": {"paths": [], "mix": 3}}), "mix"),
        "bad_key": (variant(appearance={"ear": {"paths": [], "mix": 0}}), "ear"),
        "bad_layout": (variant(layout={"canvas": 512, "windows": {}}), "layout"),
        "window_outside": (
            variant(
                layout={
                    **good["layout"],
                    "windows": {**good["layout"]["windows"], "nose": [500, 500, 160]},
                }
            ),
            "does not fit",
        ),
        "bad_png": (variant(background={"png": "aGVsbG8="}), "background"),
        "missing_strokes": (
            json.dumps({k: v for k, v in good.items() if k != "strokes"}).encode(),
            "strokes",
        ),
        "bad_scn": (variant(scn_strength=5), "SCN"),
    }


def test_bad_files_raise_clear_errors_and_change_nothing(tmp_path: Path) -> None:
    current = rich_doc(tmp_path)
    reference = current.snapshot()
    for name, (content, fragment) in _bad_files(tmp_path).items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        with pytest.raises(sk.ProjectError) as err:
            current = sk.load_project(path)
            pytest.fail(f"{name}: loaded without an error")
        message = str(err.value)
        assert str(path) in message, name
        assert fragment in message, f"{name}: {message}"
        assert path.read_bytes() == content, f"{name}: the file was modified"
    assert current == reference


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(sk.ProjectError, match="no such file"):
        sk.load_project(tmp_path / "nope.json")
    with pytest.raises(sk.ProjectError, match="folder"):
        sk.load_project(tmp_path)


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    sk.save_project(rich_doc(tmp_path), path)
    sk.save_project(sk.Document.new(512), path)  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
    assert sk.load_project(path) == sk.Document.new(512)


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.json"
    sk.save_project(rich_doc(tmp_path), path)
    old = path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(sk.ProjectError, match="No space left"):
        sk.save_project(sk.Document.new(512), path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_autosave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    assert sk.find_autosaves() == []
    doc = rich_doc(tmp_path)
    untitled = sk.write_autosave(doc)
    assert untitled.parent == tmp_path / "home" / "autosave"
    named = sk.write_autosave(sk.Document.new(256), tmp_path / "mine.json")
    assert named != untitled and named.name.startswith("mine-")
    assert sk.autosave_path(tmp_path / "mine.json") == named
    assert sk.autosave_path(tmp_path / "other" / "mine.json") != named
    os.utime(untitled, (1, 1))  # make it the older one
    assert sk.find_autosaves(left_behind_only=False) == [named, untitled]
    assert sk.find_autosaves() == []  # this process still keeps both: not left behind
    assert sk.load_project(untitled) == doc
    sk.remove_autosave(tmp_path / "mine.json")
    sk.remove_autosave(tmp_path / "mine.json")  # no error when already gone
    assert sk.find_autosaves(left_behind_only=False) == [untitled]
    # the process that wrote it is gone (a crash): now it is offered for recovery
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    untitled.with_name(untitled.name + ".owner").write_text(str(child.pid))
    assert sk.find_autosaves() == [untitled]
    sk.discard_autosave_file(untitled)
    assert sorted(p.name for p in untitled.parent.iterdir()) == []
