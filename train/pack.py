"""Pack the prepared 256 faces into one file that a training run loads in seconds.

    python -m train.pack [--root DIR] [--compact] [--max-mib 60]

``pack_256.npz``: uint8 ``images (N,256,256,3)``, ``masks (N,256,256)``,
``sketches (N,256,256)``, ``split (N,)`` (0 train, 1 val) and ``ids``.
``--compact`` instead writes ``pack_256_compact.npz`` with JPEG images and PNG
masks/sketches as concatenated byte buffers plus offsets (``images_jpg``,
``images_off``, ...), small enough to carry to a GPU machine; JPEG quality is
lowered, then train items dropped from the end, until it fits ``--max-mib``.
Only items with a sketch are packed; degraded items (see train.prepare) never are.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from train.config import default_data_root
from train.data import COMPACT_PACK_FILE, PACK_FILE, item_paths, load_index

SPLIT_CODES = {"train": 0, "val": 1}
COMPACT_QUALITIES = (90, 85, 80, 75)


def packable(root: Path) -> list[dict]:
    """Index entries that have all 256 files and are fit to be training targets."""
    index = load_index(root)
    out = []
    for e in sorted(index["items_by_id"].values(), key=lambda e: e["id"]):
        p = item_paths(root, e["id"])
        if e.get("degraded") or not all(p[k].exists() for k in ("img256", "mask256", "sketch256")):
            continue
        out.append(e)
    return out


def _load(root: Path, item_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = item_paths(root, item_id)
    img = cv2.imread(str(p["img256"]), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(p["mask256"]), cv2.IMREAD_GRAYSCALE)
    sketch = cv2.imread(str(p["sketch256"]), cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None or sketch is None:
        raise RuntimeError(f"{p['img256'].parent.parent}: corrupt files for {item_id}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), mask, sketch


def _atomic_savez(path: Path, **arrays: np.ndarray) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def pack(root: str | os.PathLike[str], progress: bool = True) -> Path:
    """Write ``pack_256.npz`` (uncompressed, loads fast) from the prepared files."""
    root = Path(root)
    entries = packable(root)
    if not entries:
        raise RuntimeError(f"{root}: nothing to pack (no aligned faces with sketches)")
    n = len(entries)
    images = np.empty((n, 256, 256, 3), np.uint8)
    masks = np.empty((n, 256, 256), np.uint8)
    sketches = np.empty((n, 256, 256), np.uint8)
    for i, e in enumerate(tqdm(entries, desc="pack", unit="img", disable=not progress)):
        images[i], masks[i], sketches[i] = _load(root, e["id"])
    split = np.array([SPLIT_CODES[e["split"]] for e in entries], np.uint8)
    ids = np.array([e["id"] for e in entries])
    return _atomic_savez(
        root / PACK_FILE, images=images, masks=masks, sketches=sketches, split=split, ids=ids
    )


def _encode(img: np.ndarray, ext: str, params: list[int]) -> bytes:
    arr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:
        raise RuntimeError(f"cannot encode {ext}")
    return buf.tobytes()


def _concat(chunks: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(chunks) + 1, np.int64)
    off[1:] = np.cumsum([len(c) for c in chunks])
    return np.frombuffer(b"".join(chunks), np.uint8), off


def pack_compact(root: str | os.PathLike[str], max_mib: float = 60.0, progress: bool = True):
    """Write ``pack_256_compact.npz`` under ``max_mib``; returns (path, items, quality)."""
    root = Path(root)
    entries = packable(root)
    if not entries:
        raise RuntimeError(f"{root}: nothing to pack (no aligned faces with sketches)")
    # val first, so dropping from the end to fit the budget only drops train items
    entries.sort(key=lambda e: (SPLIT_CODES[e["split"]] == 0, e["id"]))
    png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    masks, sketches, raw = [], [], []
    for e in tqdm(entries, desc="encode", unit="img", disable=not progress):
        img, mask, sketch = _load(root, e["id"])
        raw.append(img)
        masks.append(_encode(mask, ".png", png))
        sketches.append(_encode(sketch, ".png", png))
    budget = int(max_mib * 2**20) - 64 * 1024 * 3 - 2**16  # offsets, ids, npz headers
    for quality in COMPACT_QUALITIES:
        images = [_encode(im, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]) for im in raw]
        sizes = np.cumsum(
            [len(a) + len(b) + len(c) + 80 for a, b, c in zip(images, masks, sketches, strict=True)]
        )
        if sizes[-1] <= budget or quality == COMPACT_QUALITIES[-1]:
            break
    keep = int(np.searchsorted(sizes, budget, side="right"))
    if keep == 0:
        raise RuntimeError(f"--max-mib {max_mib} is too small for even one item")
    entries = entries[:keep]
    img_buf, img_off = _concat(images[:keep])
    mask_buf, mask_off = _concat(masks[:keep])
    sk_buf, sk_off = _concat(sketches[:keep])
    path = _atomic_savez(
        root / COMPACT_PACK_FILE,
        images_jpg=img_buf,
        images_off=img_off,
        masks_png=mask_buf,
        masks_off=mask_off,
        sketches_png=sk_buf,
        sketches_off=sk_off,
        split=np.array([SPLIT_CODES[e["split"]] for e in entries], np.uint8),
        ids=np.array([e["id"] for e in entries]),
        jpeg_quality=np.array(quality),
    )
    return path, keep, quality


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m train.pack``)."""
    ap = argparse.ArgumentParser(prog="python -m train.pack", description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(default_data_root()), help="prepared-data cache")
    ap.add_argument("--compact", action="store_true", help="JPEG/PNG bytes variant (small)")
    ap.add_argument("--max-mib", type=float, default=60.0, help="size budget of --compact")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.compact:
            path, n, q = pack_compact(args.root, args.max_mib, not args.no_progress)
            print(f"{path}: {n} items, JPEG q{q}, {path.stat().st_size / 2**20:.1f} MiB")
        else:
            path = pack(args.root, not args.no_progress)
            print(f"{path}: {path.stat().st_size / 2**20:.0f} MiB")
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"pack: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
