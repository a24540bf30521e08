"""A tiny synthetic face dataset for smoke runs and tests (no files needed).

Each sample is a cartoon face drawn on the canonical layout: a skin-coloured oval,
eyes, nose and mouth at their windows (randomly jittered), the matching line
sketch, and a validity mask with unknown left/right borders like the UTKFace crops.
Same dict format as ``train.data.FaceDataset``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from facesketch.imaging import image_to_tensor, sketch_to_tensor
from facesketch.layout import LOCAL_COMPONENTS, MOUTH, NOSE, FaceLayout


class SyntheticFaces(Dataset):
    """``count`` deterministic drawn faces of side ``size``: image, mask, sketch tensors."""

    def __init__(self, count: int, size: int = 256, seed: int = 0) -> None:
        self.count, self.size, self.seed = count, size, seed
        self.layout = FaceLayout.default(size)

    def __len__(self) -> int:
        return self.count

    def draw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 image (S,S,3), mask (S,S) 0/255, sketch (S,S) for sample ``index``."""
        rng = np.random.default_rng(self.seed * 1_000_003 + index)
        s = self.size
        bg = rng.integers(40, 220, 3)
        skin = rng.integers(90, 240, 3)
        img = np.empty((s, s, 3), np.uint8)
        img[:] = bg
        sk = np.full((s, s), 255, np.uint8)
        lw = max(1, s // 128)
        c = (s // 2 + int(rng.integers(-s // 32, s // 32 + 1)), int(s * 0.55))
        axes = (int(s * rng.uniform(0.28, 0.36)), int(s * rng.uniform(0.38, 0.45)))
        cv2.ellipse(img, c, axes, 0, 0, 360, skin.tolist(), -1)
        cv2.ellipse(sk, c, axes, 0, 0, 360, 0, lw)
        feat = (skin * rng.uniform(0.2, 0.6)).astype(int).tolist()
        for name in LOCAL_COMPONENTS:
            w = self.layout.window(name)
            cx, cy = (int(v + rng.integers(-w.size // 10, w.size // 10 + 1)) for v in w.center)
            if name == NOSE:
                pts = np.array(
                    [
                        [cx, cy - w.size // 4],
                        [cx - w.size // 8, cy + w.size // 8],
                        [cx + w.size // 8, cy + w.size // 8],
                    ]
                )
                cv2.polylines(img, [pts], False, feat, lw + 1)
                cv2.polylines(sk, [pts], False, 0, lw)
                continue
            ax = (
                int(w.size * rng.uniform(0.2, 0.35)),
                int(w.size * (rng.uniform(0.08, 0.15) if name == MOUTH else rng.uniform(0.1, 0.2))),
            )
            color = [int(rng.integers(120, 220)), 40, 60] if name == MOUTH else feat
            cv2.ellipse(img, (cx, cy), ax, 0, 0, 360, color, -1)
            cv2.ellipse(sk, (cx, cy), ax, 0, 0, 360, 0, lw)
        mask = np.full((s, s), 255, np.uint8)
        border = int(s * rng.uniform(0.0, 0.15))
        if border:
            mask[:, :border] = 0
            mask[:, s - border :] = 0
            img[mask == 0] = cv2.blur(img, (15, 15))[mask == 0]
        return img, mask, sk

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        img, mask, sk = self.draw(index)
        return {
            "image": image_to_tensor(img)[0],
            "mask": torch.from_numpy(mask[None] > 127).float(),
            "sketch": sketch_to_tensor(sk)[0],
        }
