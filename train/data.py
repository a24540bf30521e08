"""Prepared training data: the cache layout, its index, and torch datasets over it.

The cache (written by ``train.prepare``, packed by ``train.pack``) lives outside
the repository, at :func:`train.config.default_data_root` unless a folder is given.
Datasets read ``pack_256.npz`` (or the compact pack) when present, else the files.
No Qt or dlib here: this runs on GPU machines that have neither.

Horizontal flips move image, mask and sketch together.  A flip puts the
person's left eye in the image-left window; the layout is nearly symmetric and
eye branches see both eyes' shapes this way, so it is a fair augmentation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from train.config import default_data_root

INDEX_FILE = "index.json"
PACK_FILE = "pack_256.npz"
COMPACT_PACK_FILE = "pack_256_compact.npz"
INDEX_VERSION = 1
SPLITS = ("train", "val")


def item_paths(root: str | os.PathLike[str], item_id: str) -> dict[str, Path]:
    """Files of one aligned face in the cache."""
    r = Path(root)
    return {
        "img256": r / "256" / "img" / f"{item_id}.png",
        "mask256": r / "256" / "mask" / f"{item_id}.png",
        "sketch256": r / "256" / "sketch" / f"{item_id}.png",
        "img512": r / "512" / "img" / f"{item_id}.jpg",
        "mask512": r / "512" / "mask" / f"{item_id}.png",
    }


def anime_paths(root: str | os.PathLike[str], item_id: str) -> dict[str, Path]:
    """Files of one anime face (256) and its edge-smoothed copy."""
    r = Path(root) / "anime"
    return {"img": r / "img" / f"{item_id}.png", "smooth": r / "smooth" / f"{item_id}.png"}


def load_index(root: str | os.PathLike[str], missing_ok: bool = False) -> dict[str, Any]:
    """The index as dicts keyed by id: ``items_by_id``, ``failures_by_id``, ``anime_by_id``."""
    path = Path(root) / INDEX_FILE
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{path}: unreadable index ({exc}); re-run train.prepare") from exc
    elif not missing_ok:
        raise FileNotFoundError(
            f"{path}: no prepared data here; run `python -m train.prepare --out {root}` first"
        )
    return {
        "items_by_id": {e["id"]: e for e in raw.get("items", [])},
        "failures_by_id": {e["id"]: e for e in raw.get("failures", [])},
        "anime_by_id": {e["id"]: e for e in raw.get("anime", [])},
    }


def save_index(root: str | os.PathLike[str], index: dict[str, Any]) -> Path:
    """Write the index atomically (temp file + rename), items sorted by id."""
    path = Path(root) / INDEX_FILE
    data = {
        "version": INDEX_VERSION,
        "items": [index["items_by_id"][k] for k in sorted(index["items_by_id"])],
        "failures": [index["failures_by_id"][k] for k in sorted(index["failures_by_id"])],
        "anime": [index["anime_by_id"][k] for k in sorted(index["anime_by_id"])],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError(f"{path}: missing or corrupt prepared file; re-run train.prepare")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise RuntimeError(f"{path}: missing or corrupt prepared file; re-run train.prepare")
    return img


def _decode(buf: np.ndarray, offsets: np.ndarray, i: int, flags: int) -> np.ndarray:
    img = cv2.imdecode(buf[offsets[i] : offsets[i + 1]], flags)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def _resize(img: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    if img.shape[0] == size:
        return img
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    if not nearest and size > img.shape[0]:
        interp = cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W[, C]) to float (C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(img))
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float().div(127.5).sub(1.0)


class _ProcessRng:
    """A numpy Generator re-seeded in every DataLoader worker process, so workers
    do not all draw the same augmentations (they start as copies of one object)."""

    def __init__(self, seed: int | None) -> None:
        self.seed, self.pid, self.gen = seed, -1, np.random.default_rng(seed)

    def __call__(self) -> np.random.Generator:
        if self.pid != os.getpid():
            if self.pid != -1 or self.seed is None:
                self.gen = np.random.default_rng([torch.initial_seed() % 2**32, self.seed or 0])
            self.pid = os.getpid()
        return self.gen


def _jitter(img: np.ndarray, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    """Small brightness / contrast / saturation changes so colour is not memorised."""
    x = img.astype(np.float32)
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * (1 + rng.uniform(-amount, amount) * 2)  # saturation
    x = (x - x.mean()) * (1 + rng.uniform(-amount, amount)) + x.mean()  # contrast
    x = x * (1 + rng.uniform(-amount, amount))  # brightness
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


class FaceDataset(Dataset):
    """Aligned faces with validity masks and synthesized sketches.

    Items: ``image`` (3, H, W) in [-1, 1], ``mask`` (1, H, W) in {0, 1} (1 = real
    photo pixel), ``sketch`` (1, H, W) in [-1, 1] (white paper = +1), ``id``.
    Degraded items (CodeFormer samples) are left out unless ``include_degraded``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        size: int = 256,
        augment: bool = True,
        include_degraded: bool = False,
        use_pack: bool = True,
        seed: int | None = None,
    ) -> None:
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of {SPLITS} or 'all', not {split!r}")
        self.root = Path(root) if root is not None else default_data_root()
        self.size, self.augment = int(size), augment
        self.rng = _ProcessRng(seed)
        self.pack: dict[str, np.ndarray] | None = None
        self.compact = False
        want = {"train": 0, "val": 1}.get(split)
        pack_path = self.root / PACK_FILE
        compact_path = self.root / COMPACT_PACK_FILE
        if use_pack and size <= 256 and (pack_path.exists() or compact_path.exists()):
            self.compact = not pack_path.exists()
            with np.load(compact_path if self.compact else pack_path) as z:
                self.pack = {k: z[k] for k in z.files}
            split_arr = self.pack["split"]
            self.rows = [i for i in range(len(split_arr)) if want is None or split_arr[i] == want]
            self.ids = [str(self.pack["ids"][i]) for i in self.rows]
        else:
            index = load_index(self.root)
            entries = [
                e
                for e in index["items_by_id"].values()
                if (split == "all" or e["split"] == split)
                and (include_degraded or not e.get("degraded"))
                and item_paths(self.root, e["id"])["sketch256"].exists()
            ]
            self.ids = sorted(e["id"] for e in entries)
            self.rows = list(range(len(self.ids)))
        if not self.ids:
            raise RuntimeError(f"{self.root}: no {split} faces with sketches; run train.prepare")

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 (image, mask, sketch) of item ``i`` at the dataset size, not augmented."""
        if self.pack is not None:
            r, p = self.rows[i], self.pack
            if self.compact:
                img = _decode(p["images_jpg"], p["images_off"], r, cv2.IMREAD_COLOR)
                mask = _decode(p["masks_png"], p["masks_off"], r, cv2.IMREAD_GRAYSCALE)
                sketch = _decode(p["sketches_png"], p["sketches_off"], r, cv2.IMREAD_GRAYSCALE)
            else:
                img, mask, sketch = p["images"][r], p["masks"][r], p["sketches"][r]
        else:
            paths = item_paths(self.root, self.ids[i])
            big = self.size > 256
            img = _read_rgb(paths["img512" if big else "img256"])
            mask = _read_gray(paths["mask512" if big else "mask256"])
            sketch = _read_gray(paths["sketch256"])
        return (
            _resize(img, self.size),
            _resize(mask, self.size, nearest=True),
            _resize(sketch, self.size),
        )

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, mask, sketch = self.arrays(i)
        if self.augment:
            rng = self.rng()
            if rng.random() < 0.5:
                img, mask, sketch = img[:, ::-1], mask[:, ::-1], sketch[:, ::-1]
            img = _jitter(img, rng)
        return {
            "image": _to_tensor(img),
            "mask": torch.from_numpy((np.ascontiguousarray(mask) >= 128)[None]).float(),
            "sketch": _to_tensor(sketch),
            "id": self.ids[i],
        }


def oversample_full_canvas(ds: FaceDataset, times: int, min_coverage: float = 0.8) -> Dataset:
    """``ds`` with every face whose photo covers at least ``min_coverage`` of the canvas
    listed ``times`` times.  UTKFace crops stop at the forehead, so without this the
    top rows of the canvas are almost never supervised (valid in 5-14 % of faces) and
    the fusion paints a band of noise there; selfies and HQ faces cover the canvas."""
    if times <= 1:
        return ds
    from torch.utils.data import Subset

    by_id: dict[str, float] = {}
    if (Path(ds.root) / INDEX_FILE).exists():
        by_id = {
            e["id"]: float(e["coverage"])
            for e in load_index(ds.root).get("items_by_id", {}).values()
            if "coverage" in e
        }
    rows: list[int] = []
    for i, item_id in enumerate(ds.ids):
        cover = by_id.get(item_id)
        if cover is None:
            cover = float((ds.arrays(i)[1] >= 128).mean())
        rows += [i] * (times if cover >= min_coverage else 1)
    sub = Subset(ds, rows)
    sub.ids = [ds.ids[i] for i in rows]  # type: ignore[attr-defined]
    return sub
