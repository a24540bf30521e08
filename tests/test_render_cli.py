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


# -- output errors (issue 13, item 7) ----------------------------------------------------
def _bad_output(tmp_path: Path, kind: str, monkeypatch) -> tuple[Path, str]:
    """An output path that cannot be written, and a fragment its message must hold."""
    import os

    if kind == "through_a_file":
        (tmp_path / "file").write_text("a regular file")
        return tmp_path / "file" / "x.png", "is a file, not a folder"
    if kind == "unknown_extension":
        return tmp_path / "out.xyz", "unknown image type '.xyz'"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: let the check see what a user would
        real = os.access
        monkeypatch.setattr(
            os, "access", lambda p, m, **k: False if Path(p) == ro else real(p, m, **k)
        )
    return ro / "x.png", "permission denied"


def _one_clean_line(err: str, path: Path, fragment: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and fragment in lines[0] and path.name in lines[0], err


@pytest.mark.parametrize("kind", ["through_a_file", "unknown_extension", "read_only"])
@pytest.mark.parametrize("command", ["render", "align", "sketchify", "cartoonize"])
def test_output_errors_are_one_clear_line(
    tiny_networks, tmp_path, capsys, monkeypatch, command, kind
):
    """Checked before any slow work; nothing is created (no folder named out.xyz)."""
    out, fragment = _bad_output(tmp_path, kind, monkeypatch)
    src = sketch_image(tmp_path) if command == "render" else samples_dir() / "sample-a.jpg"
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main([command, str(src), "-o", str(out)])
    expected = 2 if (command == "render" and kind == "unknown_extension") else 1
    assert code == expected
    _one_clean_line(capsys.readouterr().err, out, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not out.exists()


def test_a_write_that_fails_late_is_reported_without_a_traceback(
    tiny_networks, tmp_path, capsys, monkeypatch
):
    import tempfile

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    src = project(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", full)
    out = tmp_path / "face.png"
    assert cli.main(["render", str(src), "-o", str(out), "--size", str(SIZE)]) == 1
    _one_clean_line(capsys.readouterr().err, out, "No space left on device")


def test_an_output_that_is_an_input_is_refused(tiny_networks, tmp_path, capsys):
    src = sketch_image(tmp_path)
    original = src.read_bytes()
    assert cli.main(["render", str(src), "-o", str(src)]) == 1
    assert "is one of the inputs" in capsys.readouterr().err
    assert src.read_bytes() == original


def test_batch_inputs_with_the_same_name_never_overwrite(tiny_networks, tmp_path, capsys):
    """Two (or more) inputs called s.png: one file each, and the summary says so."""
    inputs = []
    for i, folder in enumerate(["a", "b", "c/x", "d/x"]):
        (tmp_path / folder).mkdir(parents=True)
        sk = np.full((200, 200), 255, np.uint8)
        cv2.circle(sk, (100, 100), 20 + 15 * i, 0, 2)  # a different drawing each
        cv2.imwrite(str(tmp_path / folder / "s.png"), sk)
        inputs.append(tmp_path / folder / "s.png")
    inputs.append(inputs[0])  # and one given twice
    out = tmp_path / "faces"
    code = cli.main(["render", *map(str, inputs), "-o", str(out), "--size", str(SIZE)])
    assert code == 0
    io = capsys.readouterr()
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_s-2.png", "a_s.png", "b_s.png", "x_s-2.png", "x_s.png"]
    assert f"rendered 5 of 5 into {out}" in io.out
    faces = {name: (out / name).read_bytes() for name in written}
    assert len({faces["x_s.png"], faces["x_s-2.png"], faces["a_s.png"]}) == 3  # distinct
    assert faces["a_s.png"] == faces["a_s-2.png"]  # the same input twice
    assert "wrote" in io.out and "x_s-2.png" in io.out


def test_sketch_out_with_an_unknown_extension_is_a_usage_error(tiny_networks, tmp_path, capsys):
    src = project(tmp_path)
    args = ["render", str(src), "-o", str(tmp_path / "f.png"), "--sketch-out", "s.xyz"]
    assert cli.main(args) == 2
    assert "--sketch-out s.xyz" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def _off_centre_demo(tmp_path: Path) -> Path:
    """The demo drawing at 55 % of its size in the top-left corner of the paper."""
    from facesketch.sketch import load_project

    drawn = load_project(samples_dir() / "demo.json").rasterize(512)
    m = np.float32([[0.55, 0, 20], [0, 0.55, 40]])
    path = tmp_path / "off-centre.png"
    cv2.imwrite(str(path), cv2.warpAffine(drawn, m, (512, 512), borderValue=255))
    return path


@pytest.fixture()
def follow_spy(monkeypatch):
    """Tiny networks at the app's 256 canvas (at 128 a small drawing's lines fade below
    the ink the landmarks need); records for each follow render whether the drawing was
    moved onto the layout."""
    from facesketch.engine import landmarks

    app_canvas = dataclasses.replace(preset("tiny"), canvas=256)
    monkeypatch.setattr(render, "load_bundle", lambda _w: random_bundle(app_canvas, seed=3))

    moved: list[bool] = []
    real = landmarks.render_following

    def spy(*a, **k):
        out = real(*a, **k)
        moved.append("follow" in out.timings)
        return out

    monkeypatch.setattr(landmarks, "render_following", spy)
    return moved


@pytest.mark.parametrize(("follow", "moved"), [("auto", [True]), ("on", [True]), ("off", [])])
def test_a_drawing_off_centre_renders_where_it_was_drawn(
    follow_spy, tmp_path, capsys, follow, moved
):
    """The shipped landmark network finds the small face in the corner of a sketch
    image and the face is rendered there (the drawing moved onto the layout and back)."""
    out = tmp_path / f"{follow}.png"
    args = ["render", str(_off_centre_demo(tmp_path)), "-o", str(out), "--size", "512"]
    assert cli.main([*args, "--follow", follow]) == 0, capsys.readouterr().err
    assert follow_spy == moved
    assert read_image(out).shape == (512, 512, 3)


def test_a_project_follows_its_drawing_in_render_as_in_the_app(follow_spy, tmp_path):
    from facesketch.sketch import load_project

    doc = load_project(samples_dir() / "demo.json")
    m = np.array([[0.55, 0, 20], [0, 0.55, 40]])
    doc.strokes = [
        dataclasses.replace(s, points=(s.points @ m[:, :2].T + m[:, 2]).astype(np.float32))
        for s in doc.strokes
    ]
    for follow in (False, True):
        doc.follow_drawing = follow
        path = save_project(doc, tmp_path / f"follow-{follow}.json")
        out = tmp_path / f"follow-{follow}.png"
        assert cli.main(["render", str(path), "-o", str(out), "--size", "512"]) == 0
    assert follow_spy == [True]  # only the project that asks for it
    args = ["render", str(path), "-o", str(tmp_path / "x.png"), "--size", "512"]
    assert cli.main([*args, "--follow", "off"]) == 0 and follow_spy == [True]
