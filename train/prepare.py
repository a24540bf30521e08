"""Prepare training data: align every face photo to the layout, sketch it, smooth anime.

    python -m train.prepare --data ../shared/data --out ~/.cache/facesketch/prepared \
        [--limit N] [--sources utkface,selfies,hq,anime] [--workers 2] [--only ...]

Writes the cache layout of docs/ARCHITECTURE.md (see ``train.data.item_paths``).
Decisions worth knowing:
- Sources are interleaved in proportion to their sizes (each shuffled by a hash of
  the file name), so the first ``--limit`` items are already a mixed training set;
  ``--limit`` counts face photos only, anime is always done in full.
- Split: 5 % val by a hash of the id, which is uniform within every source.
- CodeFormer faces (``hq/codeformer_*``) include deliberately blurred / noisy
  images: all of them are marked ``degraded`` and put in val; datasets and the
  pack leave degraded items out of training targets.
- Component crops are not stored: they are fixed windows of the aligned canvas
  (``FaceLayout.crop``), so storing them would only duplicate pixels.
- Resumable: an item whose files all exist is skipped; failures (no face,
  unreadable file) are listed in ``index.json`` with their reason and not retried
  unless ``--retry-failed``.  The index is rewritten atomically every few hundred
  items and at the end.

About 450 lines on purpose: one pipeline whose passes (faces in a process pool,
sketches batched in the main process, anime for ``train.cartoon_fast``, the index
and the contact sheet) share the pool, the index and the resume rules.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from train.config import default_data_root
from train.data import anime_paths, item_paths, load_index, save_index

#: Source name -> folder under the data root.
SOURCE_DIRS: dict[str, str] = {
    "utkface": "faces/utkface",
    "selfies": "faces/selfies",
    "hq": "faces/hq",
    "anime": "anime",
}
FACE_SOURCES = ("utkface", "selfies", "hq")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
#: Percentage of ids (by hash) that go to the validation split.
VAL_PERCENT = 5
#: hq file-name prefix of the CodeFormer samples, some deliberately degraded.
DEGRADED_PREFIX = "codeformer"
SIZES = (512, 256)
SKETCH_BATCH = 16
INDEX_EVERY = 250
SHEET_ITEMS = 16

Sketcher = Callable[[Sequence[np.ndarray], Sequence[np.ndarray] | None], list[np.ndarray]]
Smoother = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Item:
    """One source photo: its cache id, source name and path relative to the data root."""

    id: str
    source: str
    file: str


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def make_id(source: str, rel_file: str) -> str:
    """Cache id: the source plus the file stem, reduced to safe characters."""
    stem = Path(rel_file).name
    for suffix in (".chip.jpg", ".jpg", ".jpeg", ".png", ".webp", ".bmp"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return f"{source}_" + re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_")


def split_of(item_id: str) -> str:
    """Deterministic train/val split by a hash of the id (uniform within each source)."""
    return "val" if _hash("split:" + item_id) % 100 < VAL_PERCENT else "train"


def is_degraded(item: Item) -> bool:
    """CodeFormer samples are kept out of training targets (some are degraded on purpose)."""
    return item.source == "hq" and Path(item.file).name.startswith(DEGRADED_PREFIX)


def list_source(data: Path, source: str) -> list[Item]:
    """Items of one source in a fixed pseudo-random order (file names hashed)."""
    folder = data / SOURCE_DIRS[source]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: source {source!r} not found under the data root")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    items = [Item(make_id(source, p.name), source, str(p.relative_to(data))) for p in files]
    return sorted(items, key=lambda it: (_hash(it.id), it.id))


def interleave(groups: Sequence[Sequence[Item]]) -> list[Item]:
    """Merge lists so every prefix holds each list in proportion to its length."""
    keyed = [((k + 0.5) / len(g), gi, it) for gi, g in enumerate(groups) for k, it in enumerate(g)]
    return [it for _, _, it in sorted(keyed, key=lambda t: (t[0], t[1]))]


# -- work done in the pool ---------------------------------------------------------
_OUT: Path | None = None
_DATA: Path | None = None
_SMOOTHER: Smoother | None = None


def _init_worker(data: Path, out: Path, smoother: Smoother | None) -> None:
    global _OUT, _DATA, _SMOOTHER
    _OUT, _DATA, _SMOOTHER = out, data, smoother
    cv2.setNumThreads(1)


def _shrink(img: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def align_item(item: Item) -> dict[str, Any]:
    """Read, detect, align at 512 and 256 and write the image and mask files.

    Returns the index entry (with the 256 image and mask for sketching) or a failure.
    """
    from facesketch.face import NoFaceError, align_face
    from facesketch.imaging import ImageError, read_image, write_image

    assert _OUT is not None and _DATA is not None
    try:
        rgb = read_image(_DATA / item.file)
        face = align_face(rgb, size=SIZES[0], source=item.file)
    except (ImageError, NoFaceError) as exc:
        return {"id": item.id, "source": item.source, "file": item.file, "reason": str(exc)}
    paths = item_paths(_OUT, item.id)
    img256 = _shrink(face.image, 256)
    mask256 = np.where(_shrink(face.mask, 256) >= 250, 255, 0).astype(np.uint8)
    write_image(paths["img512"], face.image, quality=95)
    write_image(paths["mask512"], face.mask)
    write_image(paths["mask256"], mask256)
    write_image(paths["img256"], img256)  # last: its presence marks a finished alignment
    entry = {
        "id": item.id,
        "source": item.source,
        "split": "val" if is_degraded(item) else split_of(item.id),
        "file": item.file,
        "score": round(face.score, 3),
        "coverage": round(float(mask256.mean() / 255.0), 3),
    }
    if is_degraded(item):
        entry["degraded"] = True
    return {"entry": entry, "image": img256, "mask": mask256}


def anime_item(item: Item) -> dict[str, Any]:
    """Resize an anime face to 256 and write it with its edge-smoothed copy."""
    from facesketch.imaging import ImageError, read_image, write_image

    assert _OUT is not None and _DATA is not None
    try:
        rgb = read_image(_DATA / item.file)
    except ImageError as exc:
        return {"id": item.id, "source": item.source, "file": item.file, "reason": str(exc)}
    paths = anime_paths(_OUT, item.id)
    if rgb.shape[:2] != (256, 256):
        rgb = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
    if not paths["img"].exists():
        write_image(paths["img"], rgb)
    if _SMOOTHER is not None and not paths["smooth"].exists():
        write_image(paths["smooth"], _SMOOTHER(rgb))
    return {"entry": {"id": item.id, "source": item.source, "file": item.file}}


def _pool_map(fn: Callable[[Item], dict], items: list[Item], init_args: tuple, workers: int):
    """Ordered-ish lazy map: a process pool when ``workers`` > 0, else in-process."""
    if workers <= 0:
        _init_worker(*init_args)
        yield from map(fn, items)
        return
    # spawn, not fork: a forked child inherits the parent's thread pools (torch's OpenMP,
    # dlib) in whatever state they were, which can deadlock; spawn costs a second per worker
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(fn, items, chunksize=4)


# -- the main process: orchestration, sketches, index ------------------------------
def _default_sketcher() -> Sketcher | None:
    try:
        from facesketch.engine.sketchify import SketchExtractor
    except ImportError as exc:
        print(f"sketches skipped ({exc}); run again with --only sketches later", file=sys.stderr)
        return None
    return SketchExtractor(batch_size=SKETCH_BATCH)


def _default_smoother() -> Smoother | None:
    try:
        from train.edge_smooth import edge_smooth
    except ImportError as exc:
        print(f"anime smoothing skipped ({exc}); use --only anime_smooth later", file=sys.stderr)
        return None
    return edge_smooth


class _SketchQueue:
    """Batches aligned 256 faces through the (expensive, batched) sketch extractor."""

    def __init__(self, out: Path, sketcher: Sketcher | None) -> None:
        self.out, self.sketcher = out, sketcher
        self.ids: list[str] = []
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.done = 0

    def add(self, item_id: str, image: np.ndarray, mask: np.ndarray) -> None:
        if self.sketcher is None:
            return
        self.ids.append(item_id)
        self.images.append(image)
        self.masks.append(mask)
        if len(self.ids) >= SKETCH_BATCH:
            self.flush()

    def flush(self) -> None:
        from facesketch.imaging import write_image

        if not self.ids or self.sketcher is None:
            return
        for item_id, sketch in zip(self.ids, self.sketcher(self.images, self.masks), strict=True):
            write_image(item_paths(self.out, item_id)["sketch256"], sketch)
        self.done += len(self.ids)
        self.ids, self.images, self.masks = [], [], []


def _read_aligned(out: Path, item_id: str) -> tuple[np.ndarray, np.ndarray]:
    from facesketch.imaging import read_image

    p = item_paths(out, item_id)
    mask = cv2.imread(str(p["mask256"]), cv2.IMREAD_GRAYSCALE)
    return read_image(p["img256"]), mask


def _faces_pass(
    data: Path,
    out: Path,
    items: list[Item],
    index: dict[str, Any],
    workers: int,
    sketcher: Sketcher | None,
    retry_failed: bool,
    progress: bool,
    stats: Counter,
) -> None:
    entries: dict[str, dict] = index["items_by_id"]
    failures: dict[str, dict] = index["failures_by_id"]
    queue = _SketchQueue(out, sketcher)
    todo = []
    for it in items:
        p = item_paths(out, it.id)
        if it.id in failures and not retry_failed:
            stats[f"{it.source}/failed"] += 1
            continue
        if it.id in entries and p["img256"].exists() and p["img512"].exists():
            stats[f"{it.source}/aligned"] += 1
            if not p["sketch256"].exists():
                queue.add(it.id, *_read_aligned(out, it.id))
            continue
        todo.append(it)
    bar = tqdm(total=len(todo), desc="faces", unit="img", disable=not progress)
    for n, res in enumerate(_pool_map(align_item, todo, (data, out, None), workers), 1):
        if "reason" in res:
            failures[res["id"]] = res
            stats[f"{res['source']}/failed"] += 1
        else:
            entry = res["entry"]
            failures.pop(entry["id"], None)
            entries[entry["id"]] = entry
            stats[f"{entry['source']}/aligned"] += 1
            queue.add(entry["id"], res["image"], res["mask"])
        bar.update()
        if n % INDEX_EVERY == 0:
            save_index(out, index)
    queue.flush()
    bar.close()
    stats["sketched"] += queue.done


def _sketch_pass(out: Path, index: dict[str, Any], sketcher: Sketcher, progress: bool) -> int:
    """Sketch every aligned item that has no sketch yet (``--only sketches``)."""
    queue = _SketchQueue(out, sketcher)
    missing = [i for i in index["items_by_id"] if not item_paths(out, i)["sketch256"].exists()]
    for item_id in tqdm(missing, desc="sketches", unit="img", disable=not progress):
        queue.add(item_id, *_read_aligned(out, item_id))
    queue.flush()
    return queue.done


def _anime_pass(data, out, items, index, workers, smoother, progress, stats) -> None:
    todo = [
        it
        for it in items
        if not all(p.exists() for k, p in anime_paths(out, it.id).items() if smoother or k == "img")
    ]
    stats["anime/aligned"] += len(items) - len(todo)
    for res in tqdm(
        _pool_map(anime_item, todo, (data, out, smoother), workers),
        total=len(todo), desc="anime", unit="img", disable=not progress,
    ):  # fmt: skip
        if "reason" in res:
            index["failures_by_id"][res["id"]] = res
            stats["anime/failed"] += 1
        else:
            index["anime_by_id"][res["entry"]["id"]] = res["entry"]
            stats["anime/aligned"] += 1


def contact_sheet(out: Path, ids: Iterable[str], tile: int = 128, per_row: int = 4) -> Path | None:
    """A PNG of (aligned photo | mask | sketch) triplets, to eyeball the prepared data."""
    from facesketch.imaging import write_image

    tiles = []
    for item_id in ids:
        p = item_paths(out, item_id)
        if not (p["img256"].exists() and p["sketch256"].exists()):
            continue
        img, mask = _read_aligned(out, item_id)
        sketch = cv2.imread(str(p["sketch256"]), cv2.IMREAD_GRAYSCALE)
        parts = [img, np.repeat(mask[..., None], 3, 2), np.repeat(sketch[..., None], 3, 2)]
        tiles.append(np.concatenate([_shrink(x, tile) for x in parts], 1))
        if len(tiles) == SHEET_ITEMS:
            break
    if not tiles:
        return None
    while len(tiles) % per_row:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + per_row], 1) for i in range(0, len(tiles), per_row)]
    path = out / "contact_sheet.png"
    write_image(path, np.concatenate(rows, 0))
    return path


def prepare(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    limit: int | None = None,
    sources: Sequence[str] = (*FACE_SOURCES, "anime"),
    workers: int = 2,
    only: str | None = None,
    sketcher: Sketcher | None | str = "default",
    smoother: Smoother | None | str = "default",
    retry_failed: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the preparation; returns a summary (counts per source, wall time, paths).

    ``sketcher`` / ``smoother`` default to the project's SketchExtractor and
    edge_smooth; tests inject cheap ones.  ``only`` is one of ``faces``,
    ``sketches``, ``anime``, ``anime_smooth`` (``None``: everything).
    """
    t0 = time.perf_counter()
    data, out = Path(data).expanduser(), Path(out).expanduser()
    unknown = set(sources) - set(SOURCE_DIRS)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {sorted(SOURCE_DIRS)}")
    if only not in (None, "faces", "sketches", "anime", "anime_smooth"):
        raise ValueError(f"--only must be faces, sketches, anime or anime_smooth, not {only!r}")
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: data root not found (see ../shared/data/README.md)")
    out.mkdir(parents=True, exist_ok=True)
    index = load_index(out, missing_ok=True)
    stats: Counter = Counter()
    face_sources = [s for s in sources if s in FACE_SOURCES]
    do_faces = only in (None, "faces", "sketches") and face_sources
    if do_faces and sketcher == "default":
        sketcher = _default_sketcher()
    if "anime" in sources and only in (None, "anime", "anime_smooth") and smoother == "default":
        smoother = _default_smoother()
    if "anime" in sources and only in (None, "anime", "anime_smooth"):
        items = list_source(data, "anime")
        _anime_pass(data, out, items, index, workers, smoother, progress, stats)
        save_index(out, index)
    if do_faces and only == "sketches":
        if sketcher is None:
            raise RuntimeError("no sketch extractor available (facesketch.engine.sketchify)")
        stats["sketched"] += _sketch_pass(out, index, sketcher, progress)  # type: ignore[arg-type]
    elif do_faces:
        items = interleave([list_source(data, s) for s in face_sources])
        if limit is not None:
            items = items[: max(0, limit)]
        _faces_pass(data, out, items, index, workers, sketcher, retry_failed, progress, stats)  # type: ignore[arg-type]
    save_index(out, index)
    sheet = contact_sheet(out, list(index["items_by_id"])) if do_faces else None
    wall = time.perf_counter() - t0
    summary = {
        "out": str(out),
        "counts": dict(sorted(stats.items())),
        "items": len(index["items_by_id"]),
        "failures": len(index["failures_by_id"]),
        "anime": len(index["anime_by_id"]),
        "wall_s": round(wall, 1),
        "contact_sheet": str(sheet) if sheet else None,
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m train.prepare``)."""
    ap = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data", help="shared data root")
    ap.add_argument("--out", default=str(default_data_root()), help="prepared-data cache")
    ap.add_argument("--limit", type=int, default=None, help="at most N face photos (mixed)")
    ap.add_argument("--sources", default=",".join(SOURCE_DIRS), help="comma-separated sources")
    ap.add_argument("--workers", type=int, default=2, help="alignment processes (0: in-process)")
    ap.add_argument("--only", choices=["faces", "sketches", "anime", "anime_smooth"], default=None)
    ap.add_argument("--retry-failed", action="store_true", help="retry items that failed before")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    try:
        summary = prepare(
            args.data,
            args.out,
            limit=args.limit,
            sources=sources,
            workers=args.workers,
            only=args.only,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 2
    print("summary:")
    for key, value in summary["counts"].items():
        print(f"  {key:20s} {value}")
    print(
        f"  items {summary['items']}  failures {summary['failures']}  anime {summary['anime']}"
        f"  wall {summary['wall_s']} s  sheet {summary['contact_sheet']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
