"""``facesketch cartoonize``: any photo (or a rendered face) to a cartoon (CartoonGAN).

facesketch cartoonize photo.jpg -o cartoon.png [--style NAME|PATH] [--size N]
facesketch cartoonize --import Hayao_net_G_float.pth --name Hayao
facesketch cartoonize --list
"""

from __future__ import annotations

import argparse
import sys

HELP = "turn a photo into a cartoon, or import a CartoonGAN style"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``facesketch cartoonize``."""
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="image to stylize")
    parser.add_argument("-o", "--output", metavar="OUT", help="output image (PNG, JPEG, …)")
    parser.add_argument(
        "--style",
        metavar="NAME|PATH",
        help="style name (see --list), .safetensors style or the authors' .pth "
        "(default: the shipped style)",
    )
    parser.add_argument(
        "--size", type=int, metavar="N", help="resize so the longer side is N first"
    )
    parser.add_argument(
        "--import",
        dest="import_path",
        metavar="PATH",
        help="import the authors' <Style>_net_G_float.pth as a style (with --name)",
    )
    parser.add_argument("--name", metavar="NAME", help="name of the imported style")
    parser.add_argument("--force", action="store_true", help="replace an imported style")
    parser.add_argument("--list", action="store_true", help="list the available styles")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] (default auto)")


def _fail(message: str, code: int = 1) -> int:
    print(f"facesketch cartoonize: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Import, list or stylize; returns 0 on success, 1 on failure, 2 on a usage error."""
    if args.import_path and not args.name:
        return _fail("--import needs --name NAME", 2)
    if args.image and not args.output:
        return _fail("give the output file with -o OUT.png", 2)
    if not (args.image or args.import_path or args.list):
        return _fail("give an IMAGE with -o OUT, --import PATH --name NAME, or --list", 2)
    if args.size is not None and not 8 <= args.size <= 8192:
        return _fail(f"--size must be between 8 and 8192, not {args.size}", 2)

    from facesketch.engine import cartoon
    from facesketch.engine.weights import WeightsError
    from facesketch.imaging import ImageError, check_output_image, read_image, write_image

    style_name = args.style
    try:
        if args.import_path:
            path = cartoon.import_style(args.import_path, args.name, overwrite=args.force)
            print(f"imported style {args.name!r} -> {path}")
            style_name = style_name or args.name
        if args.list:
            styles = cartoon.list_styles()
            for s in styles:
                print(f"{s['name']}\t{s['source']}\t{s['path']}")
            if not styles:
                print("no styles: import one with --import PATH --name NAME")
        if not args.image:
            return 0
        check_output_image(args.output)  # before loading the style and stylizing
        photo = read_image(args.image)
        style = cartoon.load_style(style_name or cartoon.DEFAULT_STYLE, args.device)
        out = cartoon.stylize(photo, style, size=args.size)
        write_image(args.output, out)
    except (cartoon.StyleError, ImageError, WeightsError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or args.output}: {exc.strerror or exc}")
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, style {style.name})")
    return 0
