"""``facesketch align``: a photo to an aligned face on the canonical layout (dlib)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "align a face photo to the canonical face layout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``facesketch align``."""
    parser.add_argument("photo", metavar="PHOTO", help="photo with a face")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="aligned image")
    parser.add_argument("--size", type=int, default=512, metavar="N", help="output size")
    parser.add_argument(
        "--face", type=int, default=0, metavar="N", help="which face (0 = most confident)"
    )
    parser.add_argument(
        "--mask", metavar="MASK", default=None, help="also write the validity mask (255 = photo)"
    )


def run(args: argparse.Namespace) -> int:
    """Align the photo's face and write it; errors are printed, exit code 1 (bad input)."""
    from facesketch.face import NoFaceError, align_face
    from facesketch.imaging import ImageError, check_output_image, read_image, write_image

    if args.size < 16:
        print(f"facesketch align: --size must be at least 16, got {args.size}", file=sys.stderr)
        return 2
    try:
        for out in filter(None, (args.output, args.mask)):
            check_output_image(out)  # before the slow face search
        rgb = read_image(args.photo)
        face = align_face(rgb, size=args.size, face_index=args.face, source=str(args.photo))
        out = write_image(args.output, face.image)
        if args.mask:
            write_image(args.mask, face.mask)
    except (ImageError, NoFaceError, ValueError) as exc:
        print(f"facesketch align: {exc}", file=sys.stderr)
        return 1
    print(f"{Path(out)}: face {args.face} (score {face.score:.2f}), {args.size} px")
    return 0
