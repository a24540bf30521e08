"""How anime-like a cartoon style is: KID to the anime faces, and whether faces survive.

On the held-out selfies (:func:`train.cartoon_fast.heldout_selfies`, never trained
on), centre-squared at 256: KID x1000 (:mod:`train.kid`) of the photos themselves,
of each style's cartoons, against the shared anime faces; and the fraction of
cartoons in which dlib still finds a face (``facesketch.face.detect_faces``).

    python -m train.cartoon_eval resources/weights/cartoon-anime.safetensors \\
        --style /work/shared/weights/cartoongan/Hayao_net_G_fp16.pth --json out.json \\
        --sheet sheet.png

dlib is imported only when the face check runs (train/ stays Qt- and dlib-free at
import time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from train.cartoon_fast import heldout_selfies
from train.cartoongan import list_images, load_square
from train.kid import kid, pooled_features

DEFAULT_SELFIES = "/work/shared/data/faces/selfies"
DEFAULT_ANIME = "/work/shared/data/anime"


def anime_features(folder: str | Path, cache: Path | None) -> torch.Tensor:
    """Pooled features of every anime face (cached: they never change)."""
    files = list_images([folder])
    key = f"{Path(folder).resolve()}:{len(files)}"
    if cache and cache.is_file():
        stored = torch.load(cache, weights_only=False)
        if stored.get("key") == key:
            return stored["feats"]
    feats = pooled_features(load_square(f, 256) for f in files)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "feats": feats}, cache)
    return feats


def face_found_fraction(images: list[np.ndarray]) -> float:
    """Fraction of images where dlib finds at least one face."""
    from facesketch.face import detect_faces

    return float(np.mean([len(detect_faces(im)) > 0 for im in images]))


def evaluate(
    styles: list[str],
    selfies: str | Path = DEFAULT_SELFIES,
    anime: str | Path = DEFAULT_ANIME,
    limit: int = 0,
    cache: Path | None = None,
    size: int = 256,
) -> dict[str, dict[str, float]]:
    """KID x1000 (mean, std) and face-found fraction for the photos and each style."""
    from facesketch.engine.cartoon import load_style, stylize

    files = heldout_selfies(selfies)
    if limit:
        files = files[:limit]
    photos = [load_square(f, size) for f in files]
    ref = anime_features(anime, cache)
    sets = {"photos": photos}
    timing = {}
    for s in styles:
        st = load_style(s, device="cpu")
        t0 = time.perf_counter()
        sets[s] = [stylize(p, st) for p in photos]
        timing[s] = (time.perf_counter() - t0) / len(photos)
    out: dict[str, dict[str, float]] = {}
    for name, imgs in sets.items():
        m, sd = kid(pooled_features(imgs), ref)
        out[name] = {
            "kid_x1000": round(m, 2),
            "kid_std": round(sd, 2),
            "face_found": round(face_found_fraction(imgs), 4),
            "n": len(imgs),
        }
        if name in timing:
            out[name]["s_per_image"] = round(timing[name], 4)
    return out


def sheet(
    style: str,
    out: str | Path,
    selfies: str | Path = DEFAULT_SELFIES,
    n: int = 8,
    extra: str | None = None,
) -> Path:
    """Before/after grid of ``n`` held-out selfies: photo | style (| extra style) per tile."""
    from facesketch.engine.cartoon import load_style, stylize
    from facesketch.imaging import write_image

    files = heldout_selfies(selfies)
    picks = [files[round(i * (len(files) - 1) / max(1, n - 1))] for i in range(n)]
    sts = [load_style(style, device="cpu")] + ([load_style(extra, device="cpu")] if extra else [])
    tiles = []
    for f in picks:
        p = load_square(f, 256)
        tiles.append(np.hstack([p] + [stylize(p, st) for st in sts]))
    if len(tiles) % 2:
        tiles.append(np.full_like(tiles[0], 255))
    gap = np.full((tiles[0].shape[0], 8, 3), 255, np.uint8)
    rows = [np.hstack([tiles[i], gap, tiles[i + 1]]) for i in range(0, len(tiles), 2)]
    return write_image(out, np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m train.cartoon_eval", description=__doc__)
    ap.add_argument("styles", nargs="+", help="style names or files (.safetensors, authors' .pth)")
    ap.add_argument("--selfies", default=DEFAULT_SELFIES)
    ap.add_argument("--anime", default=DEFAULT_ANIME)
    ap.add_argument("--limit", type=int, default=0, help="at most this many held-out selfies")
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/cartoon/anime_feats.pt"))
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument(
        "--sheet", type=Path, default=None, help="before/after sheet of the first style"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = evaluate(args.styles, args.selfies, args.anime, args.limit, args.cache)
    for name, r in res.items():
        print(
            f"{name}: KID x1000 {r['kid_x1000']:.1f} +- {r['kid_std']:.1f}, "
            f"face found {100 * r['face_found']:.1f} % (n={r['n']})"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    if args.sheet:
        print(sheet(args.styles[0], args.sheet, args.selfies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
