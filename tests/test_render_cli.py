"""``facesketch render``: projects and sketch images to face files, in batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesketch import cli
from facesketch.commands import render
from facesketch.engine.bundle import random_bundle
from facesketch.face.sketch_pairs import align_sketch_with_photo, paired_photo
from facesketch.imaging import read_image
from facesketch.models import preset
from facesketch.resources import samples_dir
from facesketch.sketch import Document, Stroke, save_project

CUFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sketches" / "cufs_train"
TINY = dataclasses.replace(preset("tiny"), canvas=128)  # tiny networks, 128 canvas
SIZE = 2 * TINY.canvas  # their output with the 2x head


@pytest.fixture()
def tiny_networks(monkeypatch):
    """Render with tiny random networks instead of the shipped weights."""
    monkeypatch.setattr(render, "load_bundle", lambda _w: random_bundle(TINY, seed=3))


def project(tmp_path: Path, name: str = "face.json") -> Path:
    pts = np.array([[150.0, 200.0], [250.0, 190.0], [350.0, 205.0]], np.float32)
    doc = Document.new(512)
    doc.strokes.append(Stroke(pts, 3.0))
    return save_project(doc, tmp_path / name)


def sketch_image(tmp_path: Path, name: str = "sketch.png") -> Path:
    sk = np.full((300, 240), 255, np.uint8)  # not square: padded, not stretched
    cv2.ellipse(sk, (120, 150), (90, 120), 0, 0, 360, 0, 2)
    cv2.imwrite(str(tmp_path / name), sk)
    return tmp_path / name


def test_render_one_project(tiny_networks, tmp_path, capsys):
    out = tmp_path / "out" / "face.png"
    code = cli.main(["render", str(project(tmp_path)), "-o", str(out), "--size", str(SIZE)])
    assert code == 0, capsys.readouterr().err
    img = read_image(out)
    assert img.shape == (SIZE, SIZE, 3) and img.std() > 0
    assert "wrote" in capsys.readouterr().out


def test_batch_reports_a_bad_input_and_goes_on(tiny_networks, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    inputs = [project(tmp_path), str(bad), sketch_image(tmp_path)]
    out = tmp_path / "faces"
    args = ["render", *map(str, inputs), "-o", str(out), "--size", str(SIZE), "--scn", "0.3"]
    code = cli.main(args)
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["face.png", "sketch.png"]


def test_unreadable_project_and_bad_options(tiny_networks, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    assert cli.main(["render", str(bad), "-o", str(tmp_path / "x.png")]) == 1
    assert "bad.json" in capsys.readouterr().err
    assert cli.main(["render", str(bad), "-o", str(tmp_path / "x.png"), "--scn", "3"]) == 2
    missing = tmp_path / "nobody.jpg"
    args = ["render", str(project(tmp_path)), "-o", str(tmp_path / "y.png")]
    assert cli.main([*args, "--appearance-nose", str(missing)]) == 2
    assert "nobody.jpg" in capsys.readouterr().err


def test_missing_weights_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["render", str(project(tmp_path)), "-o", str(tmp_path / "f.png"),
                     "--weights", str(tmp_path / "empty"), "--device", "cpu"])  # fmt: skip
    assert code == 1  # a failure the user can fix, not a usage error
    assert "error:" in capsys.readouterr().err


def test_paired_photo_follows_the_cuhk_naming(tmp_path):
    (tmp_path / "sketch").mkdir()
    (tmp_path / "photo").mkdir()
    sk = tmp_path / "sketch" / "F2-005-01-sz1.jpg"
    sk.write_bytes(b"x")
    assert paired_photo(sk) is None
    photo = tmp_path / "photo" / "f-005-01.jpg"
    photo.write_bytes(b"x")
    assert paired_photo(sk) == photo
    same = tmp_path / "sketch" / "m-1.png"
    same.write_bytes(b"x")
    (tmp_path / "photo" / "m-1.png").write_bytes(b"x")
    assert paired_photo(same) == tmp_path / "photo" / "m-1.png"


@pytest.mark.data
@pytest.mark.skipif(not CUFS.is_dir(), reason=f"CUHK sketches not found at {CUFS}")
def test_cuhk_sketch_is_aligned_with_its_photo():
    from facesketch.engine.pipeline import prepare_sketch
    from facesketch.face import align_face
    from facesketch.imaging import read_sketch
    from facesketch.layout import FaceLayout

    sketch_path = CUFS / "sketch" / "F2-005-01-sz1.jpg"
    photo = paired_photo(sketch_path)
    sketch = read_sketch(sketch_path)
    aligned = align_sketch_with_photo(sketch, photo, 256)
    assert aligned.shape == (256, 256)
    face = align_face(read_image(photo), 256, FaceLayout.default(256)).image
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()

    def corr(a: np.ndarray) -> float:
        return float(np.corrcoef(a.astype(np.float64).ravel(), gray)[0, 1])

    # the artist's drawing now lies on its aligned photo, unlike a plain resize
    assert corr(aligned) > 0.7
    assert corr(aligned) > corr(prepare_sketch(sketch, 256)) + 0.3


@pytest.mark.parametrize(("mode", "expected"), [("auto", 1), ("off", 0)])
def test_shaded_drawings_become_lines_first(tiny_networks, tmp_path, monkeypatch, mode, expected):
    from facesketch.engine import sketchify

    calls = []

    def fake_lines(gray, mask=None):
        calls.append(gray.shape)
        return np.full_like(gray, 255)

    monkeypatch.setattr(sketchify, "drawing_to_lines", fake_lines)
    shaded = np.full((200, 200), 120, np.uint8)  # a tone everywhere: a pencil drawing
    cv2.imwrite(str(tmp_path / "drawing.png"), shaded)
    line = sketch_image(tmp_path)
    out = tmp_path / "faces"
    args = ["render", str(tmp_path / "drawing.png"), str(line), "-o", str(out)]
    assert cli.main([*args, "--size", str(SIZE), "--lines", mode]) == 0
    # only the shaded drawing, at the networks' canvas; the line sketch goes as drawn
    assert calls == [(TINY.canvas, TINY.canvas)] * expected


SAMPLE = samples_dir() / "sample-d.jpg"


def test_geometry_from_a_photo_changes_only_the_chosen_parts(tiny_networks, tmp_path, capsys):
    from facesketch.layout import FaceLayout

    src = str(project(tmp_path))
    plain, shaped = tmp_path / "plain.png", tmp_path / "shaped.png"
    assert cli.main(["render", src, "-o", str(plain), "--size", str(SIZE)]) == 0
    args = ["render", src, "-o", str(shaped), "--size", str(SIZE)]
    assert cli.main([*args, "--geometry-photo", str(SAMPLE), "--geometry-parts", "nose"]) == 0
    diff = np.abs(read_image(shaped).astype(int) - read_image(plain).astype(int)).sum(-1)
    rows, cols = FaceLayout.default(SIZE).window("nose").slices
    inside = np.zeros(diff.shape, bool)
    inside[rows, cols] = True
    assert diff[inside].mean() > 3 * diff[~inside].mean() > 0  # the nose took the photo's shape
    capsys.readouterr()
    assert cli.main([*args, "--geometry-parts", "nose"]) == 2  # no photo named
    assert "--geometry-photo" in capsys.readouterr().err
    flat = tmp_path / "wall.png"
    cv2.imwrite(str(flat), np.full((200, 200, 3), 120, np.uint8))
    assert cli.main([*args, "--geometry-photo", str(flat)]) == 2
    assert "no face" in capsys.readouterr().err
