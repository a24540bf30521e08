"""``facesketch render``: sketches or project files to faces, in batch.

The same :class:`~facesketch.engine.pipeline.FacePipeline` as the app renders here
(no second copy of the model logic).  A sketch image is aligned by a photo of the
same face when there is one: ``--align-with`` names it, and for artist sketch/photo
pairs laid out like CUHK (``.../sketch/F2-005-01-sz1.jpg`` beside
``.../photo/f-005-01.jpg``) the photo is found automatically; the photo's dlib
alignment matrix is then applied to the sketch.  Otherwise the face is found where it
was drawn (``--follow``, as the app's "Follow my drawing"): its landmarks place it on
the canonical layout, and the face is rendered back where, and as large as, it was
drawn.  A failing input is reported and skipped; the exit code says whether all
succeeded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "render sketch images or project files to faces (optionally cartoons)"

#: Per-component appearance options: option suffix -> appearance slot key.
APPEARANCE_OPTIONS: dict[str, str] = {
    "left-eye": "left_eye",
    "right-eye": "right_eye",
    "nose": "nose",
    "mouth": "mouth",
    "background": "background",
}
#: SCN strength for sketch images (projects carry their own).  0: the shipped
#: calibrator removes doubled strokes but still breaks clean lines into dashes (see
#: resources/weights/scn.md); ask for it with --scn on rough drawings.
DEFAULT_SCN = 0.0
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _unit(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number within 0..1, got {text}")
    return v


def _ink_width(text: str) -> float:
    from facesketch.sketch.cartoon_settings import INK_WIDTH_RANGE

    lo, hi = INK_WIDTH_RANGE
    v = float(text)
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"expected a number within {lo:g}..{hi:g}, got {text}")
    return v


def _parts(text: str) -> tuple[str, ...]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return tuple(APPEARANCE_OPTIONS.values())
    unknown = [n for n in names if n not in APPEARANCE_OPTIONS]
    if unknown or not names:
        choices = ", ".join(APPEARANCE_OPTIONS)
        raise argparse.ArgumentTypeError(f"expected 'all' or some of {choices}; got {text!r}")
    return tuple(APPEARANCE_OPTIONS[n] for n in names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``facesketch render``."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUTS",
        type=Path,
        help="sketch images (white paper, dark lines) or .json projects",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        type=Path,
        help="output image for one input, or a folder for several",
    )
    parser.add_argument(
        "--appearance",
        metavar="IMG",
        dest="appearance_face",
        help="reference photo for the whole face (overrides the project's choices)",
    )
    for suffix, key in APPEARANCE_OPTIONS.items():
        parser.add_argument(
            f"--appearance-{suffix}",
            metavar="IMG",
            dest=f"appearance_{key}",
            help=f"reference photo for the {key.replace('_', ' ')}",
        )
    parser.add_argument(
        "--scn",
        type=_unit,
        metavar="0..1",
        help=f"stroke cleaning strength (default: the project's; {DEFAULT_SCN} for images)",
    )
    parser.add_argument(
        "--sketch-out",
        type=Path,
        metavar="FILE",
        help="also write the sketch the networks received (after stroke calibration): "
        "an image for one input, a folder for several",
    )
    parser.add_argument(
        "--cartoon", metavar="STYLE", help="also write a cartoon in this style (NAME_cartoon.png)"
    )
    parser.add_argument(
        "--ink",
        choices=("on", "off"),
        help="with --cartoon: draw the calibrated strokes over the cartoon "
        "(default: the project's; off for images)",
    )
    parser.add_argument(
        "--ink-width",
        type=_ink_width,
        metavar="X",
        help="ink line width, x the stroke width (0.25..4; turns --ink on)",
    )
    parser.add_argument(
        "--ink-darkness",
        type=_unit,
        metavar="0..1",
        help="ink darkness, 0 invisible .. 1 black (turns --ink on)",
    )
    parser.add_argument(
        "--proportions",
        type=_unit,
        metavar="0..1",
        help="with --cartoon: anime proportions (bigger eyes, smaller nose, mouth, chin); "
        "0 = off (default: the project's; 0 for images)",
    )
    parser.add_argument(
        "--size", type=int, choices=(256, 512), default=512, help="output size in pixels"
    )
    parser.add_argument(
        "--align-with",
        type=Path,
        metavar="PHOTO",
        help="photo of the sketched face (same framing): align the sketch like this photo",
    )
    parser.add_argument(
        "--no-auto-align",
        action="store_true",
        help="do not look for the paired photo of a sketch (…/sketch/X beside …/photo/X)",
    )
    parser.add_argument(
        "--lines",
        choices=("auto", "on", "off"),
        default="auto",
        help="turn a shaded pencil drawing into a line sketch first (auto: when it is shaded)",
    )
    parser.add_argument(
        "--geometry-photo",
        type=Path,
        metavar="PHOTO",
        help="take the shape of --geometry-parts from this face photo (through E_image) "
        "instead of the sketch",
    )
    parser.add_argument(
        "--geometry-parts",
        type=_parts,
        default=None,
        metavar="PARTS",
        help="with --geometry-photo: comma-separated parts (left-eye, right-eye, nose, mouth, "
        "background) or 'all' (default); the other parts follow the sketch",
    )
    parser.add_argument(
        "--texture",
        choices=("on", "off"),
        default="on",
        help="real skin, eye and hair texture from the gallery face that looks most like the "
        "render, or from the dropped photos (default: on)",
    )
    parser.add_argument(
        "--follow",
        choices=("auto", "on", "off"),
        default="auto",
        help="render the face where, and as large as, it was drawn (its landmarks found by "
        "the landmark network) instead of only inside the canonical windows; auto: a "
        "project's own setting, on for sketch images not aligned with a photo",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--weights", type=Path, help="weights folder (default: the shipped ones)")


# -- inputs ---------------------------------------------------------------------------------
def _appearance_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from facesketch.sketch import FACE, AppearanceSlot

    out = {}
    for key in (FACE, *APPEARANCE_OPTIONS.values()):
        path = getattr(args, f"appearance_{key}", None)
        if path is not None:
            from facesketch.fileio import MAX_IMAGE_BYTES, check_regular_file

            check_regular_file(path, MAX_IMAGE_BYTES, "photo")  # FileCheckError: ValueError
            out[key] = AppearanceSlot((str(path),), 0.0)
    return out


def _output_paths(inputs: list[Path], out: Path, kind: str = "-o") -> list[Path]:
    """One distinct output file per input: ``out`` itself for one image, else a folder.

    Inputs that share a file name get their folder's name in front, then a number,
    so no output overwrites another (and the summary counts files really written).
    Raises ValueError (a usage error) for an ``out`` that is neither.
    """
    suffix = out.suffix.lower()
    if len(inputs) == 1 and suffix in _IMAGE_EXTS:
        return [out]
    if suffix in _IMAGE_EXTS:
        raise ValueError(f"{kind} {out}: several inputs need an output folder, not an image file")
    if suffix and not out.is_dir():
        raise ValueError(
            f"{kind} {out}: unknown image type {suffix!r}; give an image file "
            f"({', '.join(_IMAGE_EXTS)}) or, for several inputs, a folder"
        )
    names = [p.stem for p in inputs]
    dupes = {n.lower() for n in names if sum(m.lower() == n.lower() for m in names) > 1}
    taken: set[str] = set()
    paths = []
    for p in inputs:
        stem = f"{p.parent.name}_{p.stem}" if p.stem.lower() in dupes else p.stem
        name, n = f"{stem}.png", 2
        while name.lower() in taken:  # same folder names, or one input given twice
            name, n = f"{stem}-{n}.png", n + 1
        taken.add(name.lower())
        paths.append(out / name)
    return paths


def _check_outputs(inputs: list[Path], outputs: list[Path | None], cartoon: bool) -> None:
    """Refuse outputs that would overwrite an input or cannot be written (before rendering)."""
    from facesketch.imaging import check_output_image

    sources = {str(p.resolve()) for p in inputs}
    for dst in outputs:
        if dst is None:
            continue
        files = [dst, dst.with_name(f"{dst.stem}_cartoon{dst.suffix}")] if cartoon else [dst]
        for f in files:
            if str(f.resolve()) in sources:
                raise ValueError(f"{f}: is one of the inputs; choose another output")
            check_output_image(f)


def _geometry(args: argparse.Namespace, canvas: int) -> dict[str, Any]:
    """Render keywords for --geometry-photo: the aligned photo and the parts it shapes."""
    if args.geometry_photo is None:
        if args.geometry_parts is not None:
            raise ValueError("--geometry-parts needs --geometry-photo")
        return {}
    from facesketch.engine.appearance import align_reference

    parts = args.geometry_parts or tuple(APPEARANCE_OPTIONS.values())
    photo = align_reference(args.geometry_photo, canvas).image
    return {"geometry_photo": photo, "photo_components": parts}


def _render_one(
    pipe: Any, path: Path, args: argparse.Namespace, overrides: dict, geometry: dict
) -> tuple:
    """(PipelineOutput, note) for one input; raises with a clear message when it cannot."""
    from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing
    from facesketch.face.sketch_pairs import align_sketch_with_photo, paired_photo
    from facesketch.imaging import read_sketch

    if path.suffix.lower() == ".json":
        from facesketch.sketch import load_project

        doc = load_project(path)
        doc.appearance = {**doc.appearance, **overrides}
        if args.follow != "auto":
            doc.follow_drawing = args.follow == "on"
        return _render_doc(pipe, doc.snapshot(), args, geometry, args.scn), ""
    note = ""
    sketch = read_sketch(path)
    photo = args.align_with or (None if args.no_auto_align else paired_photo(path))
    if photo is not None:
        sketch = align_sketch_with_photo(sketch, photo, pipe.canvas)
        note = f"aligned with {photo.name}"
    if args.lines == "on" or (args.lines == "auto" and is_shaded_drawing(sketch)):
        from facesketch.engine.pipeline import prepare_sketch

        sketch = drawing_to_lines(prepare_sketch(sketch, pipe.canvas))
        note = ", ".join(filter(None, [note, "lines taken from a shaded drawing"]))
    strength = DEFAULT_SCN if args.scn is None else args.scn
    if args.follow == "on" or (args.follow == "auto" and photo is None):
        # a drawing not aligned by a photo may sit anywhere on the paper: render it
        # where it was drawn (a drawing already in place renders exactly as without)
        from facesketch.engine.pipeline import prepare_sketch
        from facesketch.layout import FaceLayout
        from facesketch.sketch import Document

        doc = Document(
            layout=FaceLayout.default(pipe.canvas),
            background_image=prepare_sketch(sketch, pipe.canvas),
            appearance=overrides,
            scn_strength=strength,
            follow_drawing=True,
        )
        return _render_doc(pipe, doc.snapshot(), args, geometry, strength), note
    out = pipe.render_sketch(
        sketch, None, overrides, size=args.size, scn_strength=strength, **geometry
    )
    return out, note


def _render_doc(
    pipe: Any, snap: Any, args: argparse.Namespace, geometry: dict, strength: float | None
) -> Any:
    """A document snapshot rendered as the app does, following the drawing if it asks."""
    if snap.follow_drawing:
        from facesketch.engine.landmarks import render_following

        return render_following(pipe, snap, size=args.size, scn_strength=strength, **geometry)
    return pipe.render(snap, size=args.size, scn_strength=strength, **geometry)


def run(args: argparse.Namespace) -> int:
    """Render every input; 0 if all succeeded, 1 if any failed, 2 if nothing could start."""
    from tqdm import tqdm

    from facesketch.imaging import write_image

    if args.align_with is not None and len(args.inputs) > 1:
        print(
            "error: --align-with takes one sketch; pairs in sketch/ + photo/ align by themselves",
            file=sys.stderr,
        )
        return 2
    cartoon_flags = (args.ink, args.ink_width, args.ink_darkness, args.proportions)
    if args.cartoon is None and any(f is not None for f in cartoon_flags):
        print(
            "error: --ink, --ink-width, --ink-darkness and --proportions shape the cartoon: "
            "add --cartoon STYLE",
            file=sys.stderr,
        )
        return 2
    try:
        outputs = _output_paths(list(args.inputs), args.output)
        sketch_outs = (
            _output_paths(list(args.inputs), args.sketch_out, "--sketch-out")
            if args.sketch_out is not None
            else [None] * len(outputs)
        )
    except ValueError as exc:  # -o / --sketch-out that is neither an image nor a folder
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _check_outputs(list(args.inputs), [*outputs, *sketch_outs], bool(args.cartoon))
    except ValueError as exc:  # ImageError too: nothing would be written, say so now
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        overrides = _appearance_overrides(args)  # cheap checks before loading networks
        pipe = _make_pipeline(args)
        geometry = _geometry(args, pipe.canvas)
        style = _load_style(args.cartoon, pipe) if args.cartoon else None
    except Exception as exc:  # weights, device, style: nothing can run
        from facesketch.engine.weights import WeightsError

        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, WeightsError) else 2  # weights: a fixable failure
    failed = 0
    warned: set[str] = set()
    bar = tqdm(
        list(zip(args.inputs, outputs, sketch_outs, strict=True)),
        unit="face",
        disable=len(args.inputs) == 1,
        file=sys.stderr,
    )
    for src, dst, sketch_dst in bar:
        try:
            out, note = _render_one(pipe, src, args, overrides, geometry)
            face = out.face
            write_image(dst, face)
            if sketch_dst is not None:
                write_image(sketch_dst, out.sketch)
            if style is not None:  # a project's ink and proportions apply (cartoon settings)
                from facesketch.engine.cartoon import cartoon_portrait
                from facesketch.sketch import load_project

                doc = load_project(src) if src.suffix.lower() == ".json" else None
                cartoon = cartoon_portrait(
                    face,
                    style,
                    _cartoon_settings(args, doc),
                    out.sketch,
                    doc.layout if doc is not None else None,
                )
                write_image(dst.with_name(f"{dst.stem}_cartoon{dst.suffix}"), cartoon)
        except Exception as exc:  # report, keep going with the batch
            failed += 1
            msg = str(exc) or type(exc).__name__
            tqdm.write(f"error: {msg if str(src) in msg else f'{src}: {msg}'}", file=sys.stderr)
            continue
        for w in set(out.warnings) - warned:
            warned.add(w)
            tqdm.write(f"warning: {w}", file=sys.stderr)
        if len(args.inputs) == 1:
            print(f"wrote {dst}" + (f" ({note})" if note else ""))
        elif dst.name != f"{src.stem}.png":  # renamed: say where it went
            tqdm.write(f"wrote {dst} for {src} (another input has the same name)")
    if len(args.inputs) > 1:
        print(f"rendered {len(outputs) - failed} of {len(outputs)} into {args.output}")
    return 1 if failed else 0


def _cartoon_settings(args: argparse.Namespace, doc: Any) -> Any:
    """The project's cartoon settings (defaults for images) with the command's flags."""
    from facesketch.sketch.cartoon_settings import with_overrides

    ink = None if args.ink is None else args.ink == "on"
    base = doc.cartoon if doc is not None else None
    return with_overrides(base, ink, args.ink_width, args.ink_darkness, args.proportions)


def _make_pipeline(args: argparse.Namespace) -> Any:
    from facesketch.engine.devices import select_device
    from facesketch.engine.pipeline import FacePipeline

    pipe = FacePipeline(
        load_bundle(args.weights),
        select_device(args.device),
        real_pixels=getattr(args, "texture", "on") == "on",
    )
    wanted = getattr(args, "texture", "on") == "on"
    if wanted and pipe.real_pixels_problem not in ("", "turned off"):  # not by $FACESKETCH_TEXTURE
        print(f"warning: {pipe.real_pixels_problem}", file=sys.stderr)
    return pipe


def load_bundle(weights: Path | None) -> Any:
    """The shipped networks (a seam tests replace with tiny random networks)."""
    from facesketch.engine.bundle import load_bundle as _load

    return _load(weights)


def _load_style(name: str, pipe: Any) -> Any:
    from facesketch.engine.cartoon import load_style

    return load_style(name, pipe.spec)
