"""The project loader under fuzzing: every bad file is a ProjectError naming the file.

A person can hand the app any file as a project.  Whatever it holds (deep nesting,
Infinity, numbers of hundreds or thousands of digits, wrong types, missing keys,
huge arrays, lone surrogates, random bytes), loading must either give a document
that saves and reloads unchanged, or raise :class:`ProjectError` with the file's
path in the message; never RecursionError, OverflowError, UnicodeError or a crash.
The example counts are bounded so the file runs in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facesketch import sketch as sk  # noqa: E402
from facesketch.sketch.project import document_to_dict  # noqa: E402

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _good() -> dict[str, Any]:
    doc = sk.Document.new(256)
    rng = np.random.default_rng(3)
    doc = sk.Document(
        layout=doc.layout,
        strokes=[sk.Stroke(rng.uniform(0, 256, (5, 2)), 2.5, id=f"s{i}") for i in range(3)],
        appearance={"nose": sk.AppearanceSlot(("/photos/a.jpg",), 0.4)},
        scn_strength=0.5,
    )
    return json.loads(json.dumps(document_to_dict(doc)))


GOOD = _good()

# JSON values of every kind, including the ones that broke the loader: huge numbers,
# non-finite floats, long digit strings, surrogates, deep lists.
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**420),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "", "\0", "nose", "face", "s1", "../x.jpg"]),
)
_json = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5), st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the good project (so mutations hit real fields)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(GOOD)


def _mutated(path: tuple, value: Any, delete: bool) -> Any:
    data = json.loads(json.dumps(GOOD))
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _dump(data: Any) -> bytes:
    # allow_nan writes NaN / Infinity, as a hand-edited or hostile file may hold them
    text = json.dumps(data, allow_nan=True, ensure_ascii=True)
    return text.encode("utf-8")


def _check(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        doc = sk.load_project(path)
    except sk.ProjectError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        assert "Traceback" not in str(exc)
        return
    # it loaded: it must save and reload unchanged (a loadable file never traps work)
    again = path.with_name("again.json")
    sk.save_project(doc, again)
    assert sk.load_project(again) == doc


@FUZZ
@given(where=st.sampled_from(PATHS), value=_json, delete=st.booleans())
def test_any_field_replaced_by_any_value(tmp_path_factory, where, value, delete) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    _check(folder / "p.json", _dump(_mutated(where, value, delete and bool(where))))


@FUZZ
@given(data=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=4000))
def test_random_bytes_and_truncations(tmp_path_factory, data, cut) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    good = _dump(GOOD)
    _check(folder / "bytes.json", data)
    _check(folder / "cut.json", good[:cut] + data[:8])


@FUZZ
@given(
    depth=st.integers(min_value=900, max_value=200_000),
    opener=st.sampled_from(["[", '{"a":']),
    field=st.sampled_from(["strokes", "layout", "appearance", "background", "cartoon"]),
)
def test_deep_nesting_anywhere(tmp_path_factory, depth, opener, field) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    text = json.dumps({k: v for k, v in GOOD.items() if k != field})
    _check(folder / "deep.json", (text[:-1] + f', "{field}": {nested}}}').encode())


@FUZZ
@given(
    digits=st.integers(min_value=41, max_value=6000),
    form=st.sampled_from(["{d}", "-{d}", "{d}.5", "0.{d}", "1e{d}", "{d}e-3"]),
    where=st.sampled_from(["points", "width", "canvas", "scn_strength", "mix", "window"]),
)
def test_absurd_numbers(tmp_path_factory, digits, form, where) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    number = form.format(d="9" * digits if "e" not in form else str(digits))
    marker = "7777777"
    data = json.loads(json.dumps(GOOD))
    if where == "points":
        data["strokes"][0]["points"][1] = int(marker)
    elif where == "width":
        data["strokes"][1]["width"] = int(marker)
    elif where == "canvas":
        data["layout"]["canvas"] = int(marker)
    elif where == "scn_strength":
        data["scn_strength"] = int(marker)
    elif where == "mix":
        data["appearance"]["nose"]["mix"] = int(marker)
    else:
        data["layout"]["windows"]["nose"][0] = int(marker)
    raw = json.dumps(data).replace(marker, number, 1).encode()
    _check(folder / "num.json", raw)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("nested", "[" * 1000 + "]" * 1000, "nested too deeply"),
        (
            "infinity",
            json.dumps(GOOD).replace('"scn_strength": 0.5', '"scn_strength": Infinity'),
            "Infinity",
        ),
        ("nan", json.dumps(GOOD).replace('"width": 2.5', '"width": NaN', 1), "NaN"),
        (
            "400_digits",
            json.dumps(GOOD).replace('"width": 2.5', '"width": 1' + "0" * 400, 1),
            "digits",
        ),
        (
            "5000_digits",
            json.dumps(GOOD).replace('"canvas": 256', '"canvas": ' + "9" * 5000),
            "digits",
        ),
        ("1e400", json.dumps(GOOD).replace('"scn_strength": 0.5', '"scn_strength": 1e400'), "SCN"),
        ("wrong_type", json.dumps({**GOOD, "strokes": {"a": 1}}), "strokes: expected list"),
        ("missing_key", json.dumps({k: v for k, v in GOOD.items() if k != "layout"}), "layout"),
        (
            "huge_points",
            json.dumps(GOOD).replace('"points": [', '"points": [' + "1, " * 4_000_002, 1),
            "stroke points",
        ),
    ],
)
def test_named_bad_inputs(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    """The inputs from the issue: each a ProjectError naming the file and the problem."""
    path = tmp_path / f"{name}.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(sk.ProjectError) as err:
        sk.load_project(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value), str(err.value)


def test_a_loadable_file_with_lone_surrogates_saves_again(tmp_path: Path) -> None:
    """``\\ud800`` is valid JSON; such a sketch must not become unsavable (work trapped)."""
    text = json.dumps(GOOD).replace('"s1"', '"\\ud800"').replace("a.jpg", "\\udcff.jpg")
    _check(tmp_path / "surrogates.json", text.encode())
