"""Photo to clean line sketch: HED contours + Canny details (Cali-Sketch style targets).

One code path makes the training sketches (``train/prepare.py``, thousands of
aligned 256 faces on a small CPU) and the app's "sketch from photo", so both look
the same.  The network part runs batched here; the drawing part is pure numpy in
``facesketch.sketch.edges``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from facesketch.engine.hed_weights import load_hed
from facesketch.imaging import image_to_tensor
from facesketch.layout import FaceLayout
from facesketch.models.hed import hed_preprocess
from facesketch.sketch.edges import SketchParams, compose_sketch

#: Accepted values of ``SketchExtractor(precision=...)``.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _cpu_has_fast_bf16() -> bool:
    """bf16 convolutions pay off only with AMX / AVX512-BF16 (then ~4x faster than fp32)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:
            continue
    return False


def _check_image(img: np.ndarray, i: int) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"image {i}: expected uint8 RGB (H, W, 3), got {arr.dtype} with shape {arr.shape}"
        )
    if arr.shape[0] != arr.shape[1] or arr.shape[0] < 16:
        raise ValueError(
            f"image {i}: expected a square aligned face (>= 16 px), got {arr.shape[:2]}"
        )
    return arr


class SketchExtractor:
    """Batched photo-to-sketch converter.

    ``extractor(images, masks)`` takes aligned uint8 RGB faces (a list, or an
    (N, H, W, 3) array) and optional validity masks and returns one uint8 sketch
    per image.  HED runs in batches of ``batch_size`` same-sized images, without
    autograd, channels-last, in bf16 on CPUs with AMX/AVX512-BF16 ("auto").
    """

    def __init__(
        self,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        threads: int | None = None,
        params: SketchParams | None = None,
        layout: FaceLayout | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.params = params or SketchParams()
        self.layout = layout
        if precision == "auto":
            if self.device.type == "cuda":
                precision = "fp16"
            else:
                precision = "bf16" if _cpu_has_fast_bf16() else "fp32"
        self.precision = precision
        # a private copy: the cached network is shared and must keep its layout
        self._model = copy.deepcopy(load_hed()).to(self.device, memory_format=torch.channels_last)
        self._lock = threading.Lock()

    def edge_maps(self, images: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """HED edge probabilities (H, W) float32 in [0, 1], one per image."""
        imgs = [_check_image(img, i) for i, img in enumerate(images)]
        out: list[np.ndarray | None] = [None] * len(imgs)
        by_size: dict[int, list[int]] = {}
        for i, img in enumerate(imgs):
            by_size.setdefault(img.shape[0], []).append(i)
        for idx in by_size.values():
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k : k + self.batch_size]
                probs = self._run(np.stack([imgs[i] for i in chunk]))
                for i, p in zip(chunk, probs, strict=True):
                    out[i] = p
        return [p for p in out if p is not None]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        x = hed_preprocess(image_to_tensor(batch)).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with self._lock, torch.inference_mode():
            if dtype is None:
                prob = self._model(x)
            else:
                with torch.autocast(self.device.type, dtype=dtype):
                    prob = self._model(x)
        return prob[:, 0].float().cpu().numpy()

    def __call__(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        masks: Sequence[np.ndarray | None] | np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Sketches (uint8 (H, W), white paper, black lines) of aligned faces."""
        if masks is not None and len(masks) != len(images):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        probs = self.edge_maps(images)
        return [
            compose_sketch(
                p, np.asarray(img), None if masks is None else masks[i], self.params, self.layout
            )
            for i, (p, img) in enumerate(zip(probs, images, strict=True))
        ]


_default: SketchExtractor | None = None
_default_lock = threading.Lock()


def default_extractor() -> SketchExtractor:
    """The process-wide CPU extractor used by :func:`photo_to_sketch`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SketchExtractor(batch_size=1)
        return _default


def photo_to_sketch(aligned_rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Clean line sketch (uint8 (H, W), white paper) of one aligned face photo.

    ``mask`` (uint8, 255 = pixel came from the photo) keeps lines off the padding
    that alignment adds around small photos.
    """
    return default_extractor()([aligned_rgb], None if mask is None else [mask])[0]


SHADED_FRACTION = 0.12  # mid-grey share above which a sketch image is a shaded drawing


def is_shaded_drawing(gray: np.ndarray) -> bool:
    """True for pencil drawings with tone (hair, shadows), not line sketches.

    Line sketches (drawn here, or made by :func:`photo_to_sketch`) are white paper and
    dark lines with a thin anti-aliased rim; artist sketches such as CUHK's are largely
    mid-grey.  The networks were trained on line sketches, so shaded ones are turned
    into lines first (:func:`drawing_to_lines`).
    """
    g = np.asarray(gray)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)
    return float(((g > 40) & (g < 215)).mean()) > SHADED_FRACTION


def drawing_to_lines(gray: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The line sketch of an aligned drawing: the photo-to-sketch extractor run on it
    (HED contours + Canny details find the drawing's contours, not its shading)."""
    g = np.asarray(gray)
    rgb = cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) if g.ndim == 2 else g
    return photo_to_sketch(np.ascontiguousarray(rgb), mask)
