"""``facesketch sketchify``: a face photo to the clean line sketch the networks use."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "make a line sketch (HED + Canny) of a face photo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``facesketch sketchify``."""
    parser.add_argument("photo", metavar="PHOTO", help="face photo")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output sketch image")
    parser.add_argument(
        "--aligned", action="store_true", help="the photo is already aligned (skip face detection)"
    )
    parser.add_argument("--size", type=int, default=512, metavar="N", help="canvas size")


def run(args: argparse.Namespace) -> int:
    """Write the photo's sketch; bad input is printed with exit code 1."""
    import cv2

    from facesketch.face import NoFaceError, align_face
    from facesketch.imaging import ImageError, check_output_image, read_image, write_image

    if args.size < 16:
        print(f"facesketch sketchify: --size must be at least 16, got {args.size}", file=sys.stderr)
        return 2
    try:
        check_output_image(args.output)  # before the slow face search and HED
        rgb = read_image(args.photo)
        mask = None
        if args.aligned:
            h, w = rgb.shape[:2]
            if abs(h - w) > 1:
                raise ValueError(
                    f"{args.photo}: --aligned expects a square aligned face, got {w}x{h}; "
                    "leave out --aligned to detect and align the face"
                )
            interp = cv2.INTER_AREA if max(h, w) > args.size else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, (args.size, args.size), interpolation=interp)
        else:
            face = align_face(rgb, size=args.size, source=str(args.photo))
            rgb, mask = face.image, face.mask
        from facesketch.engine.sketchify import photo_to_sketch

        sketch = photo_to_sketch(rgb, mask)
        out = write_image(args.output, sketch)
    except (ImageError, NoFaceError, ValueError) as exc:
        print(f"facesketch sketchify: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # missing HED weights (WeightsError) and the like
        print(f"facesketch sketchify: {exc}", file=sys.stderr)
        return 1
    print(f"{Path(out)}: {args.size} px sketch")
    return 0
