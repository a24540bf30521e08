"""Bad input never crashes, hangs or loses work: special files, saves, styles, sizes.

Each test is one row of the bad-input table in the issue-13 note: special files
(``/dev/zero``, a FIFO, a folder) wherever a file is read; saves that keep the
file's permissions, write through symlinks and clean up after an interrupted save;
imported styles with NaN, infinite or complex weights or pickle tricks; absurd
stroke widths and counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cartoon import _official_state  # the authors' key names, one definition

import facesketch.sketch as sk
from facesketch.engine import cartoon as C
from facesketch.fileio import read_file_bytes
from facesketch.models.cartoon import CartoonConfig, CartoonGenerator

TINY = CartoonConfig(base=4, n_res=2, d_base=4)


def _special(path: Path, kind: str) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    return path


SPECIAL = ["fifo", "dev_zero", "folder"]


# -- item 3: special files, everywhere a file is read -------------------------------------
@pytest.mark.parametrize("kind", SPECIAL)
def test_special_file_as_project_photo_sketch_or_style(tmp_path: Path, kind: str) -> None:
    from facesketch.imaging import ImageError, read_image, read_sketch

    project = _special(tmp_path / "p.json", kind)
    with pytest.raises(sk.ProjectError, match="not a project file"):
        sk.load_project(project)
    photo = _special(tmp_path / "face.jpg", kind)
    for reader in (read_image, read_sketch):
        with pytest.raises(ImageError, match="not an image file"):
            reader(photo)
    style = _special(tmp_path / "Hayao_net_G_float.pth", kind)
    with pytest.raises(C.StyleError, match="not a CartoonGAN generator file"):
        C.import_style(style, "hayao")


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_file_as_appearance_reference(tmp_path: Path, kind: str) -> None:
    from facesketch.engine.appearance import AppearanceError, align_reference, file_digest

    path = _special(tmp_path / "ref.jpg", kind)
    with pytest.raises(AppearanceError, match="not a photo"):
        file_digest(path)
    with pytest.raises(AppearanceError):
        align_reference(path, 256)


def test_a_project_naming_dev_zero_as_its_photo_renders_with_a_message(tmp_path: Path) -> None:
    """The case from the issue: it grew the process to 12 GB; now it is a clear error."""
    from facesketch.engine.appearance import AppearanceError, align_reference

    doc = sk.Document.new(256)
    doc.appearance["nose"] = sk.AppearanceSlot(("/dev/zero",), 0.5)
    path = tmp_path / "zero.json"
    sk.save_project(doc, path)
    loaded = sk.load_project(path)
    assert loaded.appearance["nose"].paths == ("/dev/zero",)
    with pytest.raises(AppearanceError, match="/dev/zero.*character device"):
        align_reference(loaded.appearance["nose"].paths[0], 256)


def test_the_read_is_bounded_even_if_the_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="more than"):
        read_file_bytes(path, 999)
    assert read_file_bytes(path, 1000) == b"x" * 1000


# -- item 9: saves -----------------------------------------------------------------------
def test_saves_keep_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "p.json"
        sk.save_project(sk.Document.new(256), path)
        assert path.stat().st_mode & 0o777 == 0o644  # mkstemp alone gives 0600
        os.chmod(path, 0o640)  # a mode the person chose stays
        sk.save_project(sk.Document.new(512), path)
        assert path.stat().st_mode & 0o777 == 0o640
        from facesketch.imaging import write_image

        out = write_image(tmp_path / "face.png", np.zeros((8, 8, 3), np.uint8))
        assert out.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_saving_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "store" / "real.json"
    real.parent.mkdir()
    sk.save_project(sk.Document.new(256), real)
    link = tmp_path / "link.json"
    link.symlink_to(Path("store") / "real.json")
    sk.save_project(sk.Document.new(512), link)
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "real.json")
    assert sk.load_project(real).canvas == 512
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.json"]


def _die_mid_save(target: Path, home: Path | None = None) -> None:
    """A child process that dies between writing the temp file and renaming it."""
    code = "import os, facesketch.sketch as sk\nos.replace = lambda *a: os._exit(9)\n" + (
        f"sk.save_project(sk.Document.new(256), {str(target)!r})\n"
        if home is None
        else "sk.write_autosave(sk.Document.new(256))\n"
    )
    env = dict(os.environ)
    if home is not None:
        env["FACESKETCH_HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120)
    assert proc.returncode == 9


def test_temp_files_of_an_interrupted_save_are_removed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "p.json"
    sk.save_project(sk.Document.new(512), path)
    _die_mid_save(path)
    left = [p.name for p in tmp_path.iterdir() if p.name != "p.json"]
    assert left and all(n.endswith(".tmp") for n in left)  # the crash left a temp file
    assert sk.load_project(path).canvas == 512  # and the old file is intact
    sk.save_project(sk.Document.new(256), path)  # the next save cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
    # autosave copies carry the session's pid, so no later save has the same name:
    # the next start (looking for copies to recover) removes such temp files
    home = tmp_path / "home"
    _die_mid_save(path, home)
    folder = home / "autosave"
    assert any(p.name.endswith(".tmp") for p in folder.iterdir())
    monkeypatch.setenv("FACESKETCH_HOME", str(home))
    assert sk.find_autosaves() == []  # nothing to recover: the copy never got written
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_a_temp_file_of_a_running_save_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    busy = tmp_path / f".p.json.{os.getpid()}-abc123.tmp"  # this process: still saving
    busy.write_bytes(b"{")
    sk.save_project(sk.Document.new(256), path)
    assert busy.exists()


# -- item 8: imported styles -----------------------------------------------------------
@pytest.fixture
def styles_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.parametrize(
    ("poison", "fragment"),
    [("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("complex", "complex")],
)
def test_a_style_with_nan_inf_or_complex_weights_is_refused(
    styles_home: Path, poison: str, fragment: str
) -> None:
    sd = _official_state()
    key = "conv04_1.weight"
    if poison == "nan":
        sd[key][0, 0, 0, 0] = float("nan")
    elif poison == "inf":
        sd[key][0, 0, 0, 0] = float("inf")
    else:
        sd[key] = sd[key].to(torch.complex64)
    path = styles_home / "Bad_net_G_float.pth"
    torch.save(sd, path)
    with pytest.raises(C.StyleError, match=fragment) as err:
        C.import_style(path, "bad")
    assert str(path) in str(err.value) and key in str(err.value)
    assert C.list_styles() == [s for s in C.list_styles() if s["name"] != "bad"]
    with pytest.raises(C.StyleError, match=fragment):
        C.load_style(path, "cpu")  # a .pth given straight to render --cartoon
    good = styles_home / "Good_net_G_float.pth"
    torch.save(_official_state(), good)
    assert C.import_style(good, "good").is_file()


def test_a_saved_style_that_holds_nan_is_refused_when_loaded(styles_home: Path) -> None:
    from facesketch.engine.weights import save_weights

    gen = CartoonGenerator(TINY)
    state = {k: v.clone() for k, v in gen.state_dict().items()}
    state["stem.1.weight"][0] = float("nan")
    path = styles_home / "nan.safetensors"
    save_weights(state, path, {"network": "cartoon", "config": TINY.to_dict()})
    with pytest.raises(C.StyleError, match="NaN or infinite"):
        C.load_style(path, "cpu")


@pytest.mark.parametrize(
    "extra",
    [
        {"keep_hue": "half"},
        {"keep_hue": 2.0},
        {"keep_hue": float("nan")},
        {"input_smoothing": [10, 0.1]},
        {"input_smoothing": {"sigma_s": "wide"}},
        {"input_smoothing": {"sigma_s": 10, "sigma_r": -1}},
    ],
)
def test_a_style_with_bad_colour_keys_is_refused_when_loaded(styles_home: Path, extra) -> None:
    from facesketch.engine.weights import save_weights

    gen = CartoonGenerator(TINY)
    path = styles_home / "odd.safetensors"
    save_weights(gen.state_dict(), path, {"network": "cartoon", "config": TINY.to_dict(), **extra})
    with pytest.raises(C.StyleError, match=str(path)):
        C.load_style(path, "cpu")
    good = styles_home / "fine.safetensors"
    save_weights(
        gen.state_dict(),
        good,
        {"network": "cartoon", "config": TINY.to_dict(), "keep_hue": 0.5,
         "input_smoothing": {"sigma_s": 10, "sigma_r": 0.08}},
    )  # fmt: skip
    img = np.full((40, 40, 3), 120, np.uint8)
    assert C.stylize(img, C.load_style(good, "cpu")).shape == (40, 40, 3)


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", ["garbage", "pickle", "zip", "empty", "evil"])
def test_garbage_pth_never_advises_unsafe_loading(styles_home: Path, content: str) -> None:
    import pickle

    path = styles_home / "X_net_G_float.pth"
    if content == "garbage":
        path.write_bytes(b"hello, not a checkpoint")
    elif content == "pickle":
        path.write_bytes(pickle.dumps({"a": {1, 2}}, protocol=4))
    elif content == "zip":
        path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    elif content == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"a": _Evil()}, path)
    with pytest.raises(C.StyleError) as err:
        C.import_style(path, "x")
    message = str(err.value)
    assert str(path) in message and "safe loading" in message
    for advice in ("weights_only", "safe_globals", "trust"):
        assert advice not in message, message
    assert len(message) < 500


# -- item 5: sizes ------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1000.0, 1e6, float("inf"), float("nan"), 0.0, -2.0])
def test_absurd_stroke_widths_are_refused_clearly(width: float) -> None:
    with pytest.raises(ValueError, match="stroke width"):
        sk.Stroke(np.array([[1.0, 2.0], [3.0, 4.0]]), width)


def test_the_widest_pen_is_drawn_as_a_round_disc() -> None:
    """Wide pens use a distance map (a dilation took minutes): same round, full line.

    bench/raster_limits.py prints the time per pen width.
    """
    from facesketch.sketch.document import MAX_STROKE_WIDTH

    dot = sk.Stroke(np.array([[256.0, 256.0]]), MAX_STROKE_WIDTH)
    img = sk.Document(layout=sk.FaceLayout.default(512), strokes=[dot]).rasterize(512)
    ink = img < 128
    area = ink.sum() / (np.pi * (MAX_STROKE_WIDTH / 2) ** 2)
    assert 0.97 < area < 1.03, area  # a disc of the pen's diameter
    ys, xs = np.nonzero(ink)
    assert abs(xs.mean() - 255.5) < 1 and abs(ys.mean() - 255.5) < 1
    line = sk.Stroke(np.array([[100.0, 256.0], [400.0, 256.0]]), 100.0)
    img = sk.Document(layout=sk.FaceLayout.default(512), strokes=[line]).rasterize(512)
    assert (img[206:306, 100:400] < 128).all() and (img[:200] > 128).all()


def test_a_huge_stroke_count_is_refused_before_it_is_built(tmp_path: Path) -> None:
    from facesketch.sketch.project import MAX_STROKES

    doc = sk.Document.new(256)
    path = tmp_path / "base.json"
    sk.save_project(doc, path)
    data = json.loads(path.read_text())
    data["strokes"] = [
        {"id": str(i), "width": 2, "eraser": False, "points": [1, 2]}
        for i in range(MAX_STROKES + 1)
    ]
    path.write_text(json.dumps(data))
    with pytest.raises(sk.ProjectError, match=f"more than the {MAX_STROKES:,}") as err:
        sk.load_project(path)
    assert str(path) in str(err.value)


# -- item 6: EXIF orientation -------------------------------------------------------------
def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 EXIF block holding only the orientation tag (as phones write)."""
    import struct

    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [(1, None), (3, "ROTATE_180"), (6, "ROTATE_90_CLOCKWISE"), (8, "ROTATE_90_COUNTERCLOCKWISE")],
)
def test_exif_orientation_is_honoured(tmp_path: Path, orientation: int, turn: str | None) -> None:
    import cv2

    from facesketch.imaging import read_image

    upright = np.zeros((60, 90, 3), np.uint8)
    upright[:20, :30] = (255, 0, 0)  # a red corner top left, when upright
    undo = {"ROTATE_90_CLOCKWISE": "ROTATE_90_COUNTERCLOCKWISE"}
    undo["ROTATE_90_COUNTERCLOCKWISE"] = "ROTATE_90_CLOCKWISE"
    undo["ROTATE_180"] = "ROTATE_180"
    stored = upright if turn is None else cv2.rotate(upright, getattr(cv2, undo[turn]))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(stored, cv2.COLOR_RGB2BGR))
    path = tmp_path / "phone.jpg"
    path.write_bytes(_with_orientation(buf.tobytes(), orientation))
    img = read_image(path)
    assert img.shape == upright.shape
    assert img[5:15, 5:25, 0].mean() > 200 and img[-15:, -25:, 0].mean() < 50


def test_a_phone_photo_stored_on_its_side_aligns(tmp_path: Path) -> None:
    """The issue's case: 'no face found' for a rotated phone photo; upright it aligns."""
    import cv2

    pytest.importorskip("dlib")
    from facesketch.face import NoFaceError, align_face
    from facesketch.imaging import read_image
    from facesketch.resources import samples_dir

    upright = cv2.imread(str(samples_dir() / "sample-a.jpg"))
    side = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # as the sensor saw it
    ok, buf = cv2.imencode(".jpg", side, [cv2.IMWRITE_JPEG_QUALITY, 95])
    bare = tmp_path / "bare.jpg"
    bare.write_bytes(buf.tobytes())
    tagged = tmp_path / "tagged.jpg"
    tagged.write_bytes(_with_orientation(buf.tobytes(), 6))
    with pytest.raises(NoFaceError):  # without the tag the face lies on its side
        align_face(read_image(bare), size=256)
    assert align_face(read_image(tagged), size=256).image.shape == (256, 256, 3)


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_as_cli_style_or_appearance_say_what_they_are(
    tmp_path: Path, kind: str, capsys, monkeypatch
) -> None:
    from facesketch import cli
    from facesketch.commands import render

    monkeypatch.setattr(render, "load_bundle", lambda _w: pytest.fail("must fail before"))
    special = _special(tmp_path / "x.pth", kind)
    with pytest.raises(C.StyleError, match="not a style file"):
        C.load_style(special, "cpu")
    ref = _special(tmp_path / "ref.jpg", kind)
    project = sk.save_project(sk.Document.new(256), tmp_path / "p.json")
    code = cli.main(
        ["render", str(project), "-o", str(tmp_path / "f.png"), "--appearance", str(ref)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a photo" in err and str(ref) in err, err
