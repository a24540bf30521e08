"""Rebuild the bundled samples: a demo sketch project and small reference photos.

    .venv/bin/python resources/samples/make_samples.py [--data ../shared/data]

The photos come from the shared data's ``references/`` (deepface unit-test images,
an MIT-licensed repository), aligned with the project's own ``align_face`` so they
look exactly like what a dropped photo becomes.  The demo sketch is the project's
own photo-to-sketch (HED + Canny) of one of them, vectorized into editable strokes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: Reference photos shipped as samples (file stem in references/ -> sample name).
SAMPLE_PHOTOS = {
    "ref_006": "sample-a",
    "ref_016": "sample-b",
    "ref_019": "sample-c",
    "ref_026": "sample-d",
}
#: The photo the demo sketch is traced from.
DEMO_SOURCE = "ref_004"
PHOTO_SIDE = 256
MAX_BYTES = 40_000


def _write_small_jpeg(path: Path, rgb: np.ndarray) -> int:
    """JPEG at the best quality that stays under MAX_BYTES; returns the size."""
    from facesketch.imaging import write_image

    for quality in (90, 85, 80, 75, 70, 60):
        write_image(path, rgb, quality=quality)
        size = path.stat().st_size
        if size <= MAX_BYTES:
            return size
    raise SystemExit(f"{path} stays above {MAX_BYTES} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = HERE.parents[2] / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args(argv)
    refs = args.data / "references"
    if not refs.is_dir():
        print(f"no reference photos at {refs}; pass --data", file=sys.stderr)
        return 1

    from facesketch.engine.sketchify import photo_to_sketch
    from facesketch.face import align_face
    from facesketch.imaging import read_image
    from facesketch.sketch import AppearanceSlot, Document, save_project
    from facesketch.sketch.vectorize import sketch_to_strokes

    for stem, name in SAMPLE_PHOTOS.items():
        aligned = align_face(read_image(refs / f"{stem}.jpg"), size=PHOTO_SIDE)
        out = HERE / f"{name}.jpg"
        print(f"{out.name}: {_write_small_jpeg(out, aligned.image)} bytes")

    canvas = 512
    aligned = align_face(read_image(refs / f"{DEMO_SOURCE}.jpg"), size=canvas)
    sketch = photo_to_sketch(aligned.image, aligned.mask)
    doc = Document.new(canvas)
    doc.strokes = list(sketch_to_strokes(sketch, canvas=canvas))
    first = HERE / f"{next(iter(SAMPLE_PHOTOS.values()))}.jpg"
    doc.appearance = {"face": AppearanceSlot((str(first),), 0.5)}
    save_project(doc, HERE / "demo.json")
    size = (HERE / "demo.json").stat().st_size
    print(f"demo.json: {len(doc.strokes)} strokes, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
