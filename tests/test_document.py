"""Document, strokes, snapshots and undo/redo of every command."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from facesketch import sketch as sk
from facesketch.layout import MOUTH, NOSE


def line(x0: float, y0: float, x1: float, y1: float, width: float = 2.5, **kw) -> sk.Stroke:
    return sk.Stroke(np.array([[x0, y0], [(x0 + x1) / 2, (y0 + y1) / 2], [x1, y1]]), width, **kw)


def sample_doc() -> sk.Document:
    doc = sk.Document.new(512)
    doc.strokes = [line(100, 100, 200, 120, id="a"), line(250, 300, 300, 320, id="b")]
    doc.appearance["nose"] = sk.AppearanceSlot(("/photos/x.jpg",), 0.5)
    doc.scn_strength = 0.25
    return doc


def state(doc: sk.Document) -> sk.DocumentSnapshot:
    return doc.snapshot()


def test_stroke_validation() -> None:
    with pytest.raises(ValueError, match="shape"):
        sk.Stroke(np.zeros((3, 3)), 2.0)
    with pytest.raises(ValueError, match="shape"):
        sk.Stroke(np.zeros((0, 2)), 2.0)
    with pytest.raises(ValueError, match="finite"):
        sk.Stroke(np.array([[0.0, np.nan]]), 2.0)
    with pytest.raises(ValueError, match="width"):
        sk.Stroke(np.zeros((2, 2)), 0.0)
    s = sk.Stroke([[1, 2]], 3)
    assert s.points.shape == (1, 2) and s.points.dtype == np.float32 and s.id
    assert sk.Stroke([[1, 2]], 3).id != s.id


def test_stroke_is_immutable_and_translates() -> None:
    pts = np.array([[1.0, 2.0], [3.0, 4.0]])
    s = sk.Stroke(pts, 2.0, id="k")
    pts[0, 0] = 99  # the caller's array is copied
    assert s.points[0, 0] == 1.0
    with pytest.raises(ValueError):
        s.points[0, 0] = 5.0
    t = s.translated(10, -1)
    assert t.id == "k" and np.allclose(t.points, [[11, 1], [13, 3]]) and s.points[0, 0] == 1
    assert s.bounds() == (0.0, 1.0, 4.0, 5.0)


def test_slot_and_document_validation() -> None:
    with pytest.raises(ValueError, match="at most 2"):
        sk.AppearanceSlot(("a", "b", "c"))
    with pytest.raises(ValueError, match="mix"):
        sk.AppearanceSlot(("a",), 1.5)
    with pytest.raises(ValueError, match="one string"):
        sk.AppearanceSlot("a.jpg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown appearance slot"):
        sk.Document(appearance={"ear": sk.AppearanceSlot()})
    with pytest.raises(ValueError, match="unique"):
        sk.Document(strokes=[line(0, 0, 1, 1, id="x"), line(0, 0, 2, 2, id="x")])
    with pytest.raises(ValueError, match="SCN"):
        sk.Document(scn_strength=2)


def test_snapshot_is_isolated_from_later_edits() -> None:
    doc = sample_doc()
    doc.background_image = np.full((64, 64), 200, np.uint8)  # assigned directly, writeable
    snap = doc.snapshot()
    before = copy.deepcopy(snap.to_document())
    stack = sk.CommandStack(doc)
    stack.push(sk.AddStrokes([line(1, 1, 5, 5)]))
    stack.push(sk.MoveWindow(NOSE, 10, 10))
    stack.push(sk.SetAppearance("face", sk.AppearanceSlot(("/p.jpg",))))
    stack.push(sk.SetScnStrength(0.9))
    assert snap != doc
    doc2 = sample_doc()
    doc2.background_image = np.full((8, 8), 200, np.uint8)
    snap2 = doc2.snapshot()
    doc2.background_image[0, 0] = 0  # in-place edit of a directly assigned array
    assert snap2.background_image[0, 0] == 200
    assert snap == before
    assert isinstance(snap.strokes, tuple)
    with pytest.raises(TypeError):
        snap.appearance["mouth"] = sk.AppearanceSlot()  # type: ignore[index]
    assert not snap.background_image.flags.writeable
    assert snap.rasterize(64).shape == (64, 64)


def _commands(doc: sk.Document) -> list:
    """One instance of every command, each valid on ``doc``."""
    bg = np.zeros((32, 32), np.uint8)
    return [
        sk.AddStrokes([line(10, 10, 50, 60, id="new"), line(5, 5, 9, 9, eraser=True)]),
        sk.RemoveStrokes(["a"]),
        sk.RemoveStrokes(["b", "a"]),
        sk.MoveStrokes(["b"], 3.5, -2.25),
        sk.ClearStrokes(),
        sk.MoveWindow(MOUTH, 150, 320),
        sk.SetLayout(sk.FaceLayout.default(512).moved(NOSE, 170, 220)),
        sk.SetAppearance("nose", sk.AppearanceSlot(("/a.jpg", "/b.jpg"), 0.3)),
        sk.SetAppearance("face", sk.AppearanceSlot(("/c.jpg",))),
        sk.ClearAppearance("nose"),
        sk.ClearAppearance("mouth"),  # absent: undo must not invent it
        sk.SetScnStrength(1.0),
        sk.SetBackground(bg),
        sk.SetBackground(None),
    ]


@pytest.mark.parametrize("index", range(14))
def test_every_command_undoes_and_redoes(index: int) -> None:
    doc = sample_doc()
    doc.background_image = sk.document.check_background(np.full((16, 16), 128, np.uint8))
    stack = sk.CommandStack(doc)
    command = _commands(doc)[index]
    before = state(doc)
    stack.push(command)
    after = state(doc)
    no_op = isinstance(command, sk.ClearAppearance) and command.key == "mouth"
    assert (after == before) == no_op, f"{type(command).__name__}: unexpected change"
    assert stack.can_undo() and not stack.can_redo()
    stack.undo()
    assert state(doc) == before
    assert stack.can_redo() and not stack.can_undo()
    stack.redo()
    assert state(doc) == after
    stack.undo()
    assert state(doc) == before


def test_all_commands_in_sequence_undo_to_the_start() -> None:
    doc = sample_doc()
    stack = sk.CommandStack(doc)
    history = [state(doc)]
    for command in _commands(doc):
        try:
            stack.push(command)
        except ValueError:
            continue  # e.g. removing strokes an earlier command removed
        history.append(state(doc))
    assert len(history) > 10
    for expected in reversed(history[:-1]):
        stack.undo()
        assert state(doc) == expected
    for expected in history[1:]:
        stack.redo()
        assert state(doc) == expected


def test_remove_restores_order() -> None:
    doc = sk.Document.new(512)
    doc.strokes = [line(i, i, i + 5, i + 5, id=str(i)) for i in range(6)]
    stack = sk.CommandStack(doc)
    stack.push(sk.RemoveStrokes(["1", "4", "2"]))
    assert doc.stroke_ids() == ["0", "3", "5"]
    stack.undo()
    assert doc.stroke_ids() == [str(i) for i in range(6)]


def test_refused_commands_change_nothing() -> None:
    doc = sample_doc()
    stack = sk.CommandStack(doc)
    before = state(doc)
    bad = [
        sk.RemoveStrokes(["nope"]),
        sk.MoveStrokes(["a", "nope"], 1, 1),
        sk.AddStrokes([line(0, 0, 1, 1, id="a")]),
        sk.MoveWindow("background", 3, 3),
        sk.MoveWindow("ear", 3, 3),
        sk.SetAppearance("ear", sk.AppearanceSlot()),
        sk.SetLayout(sk.FaceLayout.default(256)),
    ]
    for command in bad:
        with pytest.raises(ValueError):
            stack.push(command)
    assert state(doc) == before
    assert not stack.can_undo() and stack.revision == 0
    with pytest.raises(ValueError, match="0..1"):
        sk.SetScnStrength(-0.1)
    with pytest.raises(ValueError, match="uint8"):
        sk.SetBackground(np.zeros((4, 4), np.float32))


def test_new_edit_drops_redo_and_tracks_modified() -> None:
    doc = sample_doc()
    stack = sk.CommandStack(doc)
    assert not stack.modified and stack.revision == 0
    stack.push(sk.SetScnStrength(0.5))
    assert stack.modified and stack.undo_text() == "Stroke cleaning"
    stack.mark_saved()
    assert not stack.modified
    stack.push(sk.SetScnStrength(0.7))
    stack.undo()
    assert not stack.modified  # back at the saved state
    stack.undo()
    assert stack.modified
    stack.push(sk.SetScnStrength(0.1))  # the saved state is now unreachable
    assert not stack.can_redo() and stack.modified
    stack.undo()
    assert stack.modified
    assert stack.revision == 6  # every push and undo is a change
    with pytest.raises(IndexError):
        stack.undo()


def test_history_limit() -> None:
    doc = sk.Document.new(256)
    stack = sk.CommandStack(doc, limit=3)
    for v in (0.1, 0.2, 0.3, 0.4, 0.5):
        stack.push(sk.SetScnStrength(v))
    for _ in range(3):
        stack.undo()
    assert not stack.can_undo() and doc.scn_strength == pytest.approx(0.2)
