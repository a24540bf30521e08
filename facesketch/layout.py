"""The canonical face layout: the one place that knows where face components live.

Every other module (rasterization, alignment, training crops, the engine's paste,
the canvas outlines) asks a :class:`FaceLayout` instead of repeating numbers.
The windows are those of DeepFaceDrawing / DeepFaceEditing on a 512 canvas; other
canvas sizes scale them.  A document may move a window (geometry editing), so a
layout is a value that travels with the document, not a global constant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEFT_EYE = "left_eye"
RIGHT_EYE = "right_eye"
NOSE = "nose"
MOUTH = "mouth"
BACKGROUND = "background"

#: All components, in a stable order (local ones first, background last).
COMPONENTS: tuple[str, ...] = (LEFT_EYE, RIGHT_EYE, NOSE, MOUTH, BACKGROUND)
#: The components that have their own small window.
LOCAL_COMPONENTS: tuple[str, ...] = (LEFT_EYE, RIGHT_EYE, NOSE, MOUTH)
#: Human-readable names for the UI and messages.
COMPONENT_LABELS: Mapping[str, str] = {
    LEFT_EYE: "Left eye",
    RIGHT_EYE: "Right eye",
    NOSE: "Nose",
    MOUTH: "Mouth",
    BACKGROUND: "Rest of face",
}

#: The canvas size on which the reference windows are defined.
REFERENCE_CANVAS = 512
_REFERENCE_WINDOWS: Mapping[str, tuple[int, int, int]] = {
    LEFT_EYE: (108, 156, 128),
    RIGHT_EYE: (255, 156, 128),
    NOSE: (182, 232, 160),
    MOUTH: (169, 301, 192),
    BACKGROUND: (0, 0, 512),
}
#: Rows cut from the bottom of the nose map before pasting (on a 512 canvas), so the
#: nose does not overwrite the upper lip: the reference systems' unnamed "36".
NOSE_BOTTOM_CUT = 36
#: Order in which local maps are pasted onto the background map (later wins).
PASTE_ORDER: tuple[str, ...] = (MOUTH, NOSE, LEFT_EYE, RIGHT_EYE)
#: Default feather width (pixels on a 512 canvas) of the soft paste mask.
DEFAULT_FEATHER = 12


@dataclass(frozen=True)
class Window:
    """A square component window: top-left corner and side length, in canvas pixels."""

    x: int
    y: int
    size: int

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) of the window, the alignment target for its component."""
        return (self.x + self.size / 2.0, self.y + self.size / 2.0)

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of this window in a canvas-sized array."""
        return (slice(self.y, self.y + self.size), slice(self.x, self.x + self.size))

    def contains(self, px: float, py: float) -> bool:
        """Whether canvas point (px, py) lies inside the window."""
        return self.x <= px < self.x + self.size and self.y <= py < self.y + self.size

    def scaled(self, factor: float) -> Window:
        """This window on a canvas ``factor`` times as large (sizes rounded to ints)."""
        return Window(round(self.x * factor), round(self.y * factor), round(self.size * factor))


def _clamp_window(w: Window, canvas: int) -> Window:
    size = min(w.size, canvas)
    x = min(max(0, w.x), canvas - size)
    y = min(max(0, w.y), canvas - size)
    return Window(x, y, size)


@dataclass(frozen=True)
class FaceLayout:
    """Component windows on a square canvas of side ``canvas``.

    Immutable: moving a window returns a new layout, which keeps undo simple.
    """

    canvas: int = REFERENCE_CANVAS
    windows: Mapping[str, Window] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.windows:
            factor = self.canvas / REFERENCE_CANVAS
            wins = {n: Window(*xyz).scaled(factor) for n, xyz in _REFERENCE_WINDOWS.items()}
            object.__setattr__(self, "windows", wins)
        missing = set(COMPONENTS) - set(self.windows)
        if missing:
            raise ValueError(f"layout lacks windows for: {', '.join(sorted(missing))}")
        object.__setattr__(self, "windows", dict(self.windows))

    # -- construction -------------------------------------------------------------
    @classmethod
    def default(cls, canvas: int = REFERENCE_CANVAS) -> FaceLayout:
        """The canonical layout of the reference systems at ``canvas`` pixels."""
        return cls(canvas=canvas)

    def scaled(self, canvas: int) -> FaceLayout:
        """The same layout (moved windows included) on a canvas of another size.

        Window sizes always come from the canonical sizes so that a component's
        crop size is the one its network was trained on, whatever the moves.
        """
        if canvas == self.canvas:
            return self
        factor = canvas / self.canvas
        ref = FaceLayout.default(canvas)
        wins = {}
        for name, w in self.windows.items():
            size = ref.windows[name].size
            cx, cy = w.center
            wins[name] = _clamp_window(
                Window(round(cx * factor - size / 2), round(cy * factor - size / 2), size), canvas
            )
        return FaceLayout(canvas=canvas, windows=wins)

    def moved(self, name: str, x: int, y: int) -> FaceLayout:
        """A layout with component ``name``'s window moved to top-left (x, y), kept inside."""
        if name == BACKGROUND:
            raise ValueError("the background window covers the canvas and cannot move")
        w = self.window(name)
        wins = dict(self.windows)
        wins[name] = _clamp_window(Window(int(x), int(y), w.size), self.canvas)
        return FaceLayout(canvas=self.canvas, windows=wins)

    # -- queries ------------------------------------------------------------------
    def window(self, name: str) -> Window:
        """The window of component ``name`` (KeyError with the valid names otherwise)."""
        try:
            return self.windows[name]
        except KeyError:
            raise KeyError(f"unknown component {name!r}; expected one of {COMPONENTS}") from None

    def __iter__(self) -> Iterator[tuple[str, Window]]:
        return ((n, self.windows[n]) for n in COMPONENTS)

    def component_at(self, px: float, py: float) -> str:
        """The topmost local component whose window holds (px, py), else the background."""
        for name in reversed(PASTE_ORDER):
            if self.windows[name].contains(px, py):
                return name
        return BACKGROUND

    def is_default(self) -> bool:
        """Whether no window was moved."""
        return dict(self.windows) == dict(FaceLayout.default(self.canvas).windows)

    @property
    def nose_bottom_cut(self) -> int:
        """Rows cut from the bottom of the nose map at this canvas size."""
        return round(NOSE_BOTTOM_CUT * self.canvas / REFERENCE_CANVAS)

    # -- crop and paste -----------------------------------------------------------
    def crop(self, image: Any, name: str) -> Any:
        """Crop component ``name`` from a canvas-sized array.

        Works on numpy arrays laid out (H, W[, C]) and on torch tensors (..., H, W):
        numpy arrays are taken as image-like when they have 2 or 3 dims with H first.
        """
        rows, cols = self.window(name).slices
        if isinstance(image, np.ndarray) and image.ndim in (2, 3) and image.shape[0] == self.canvas:
            return image[rows, cols]
        return image[..., rows, cols]

    def paste_mask(self, name: str, feather: int | None = DEFAULT_FEATHER) -> np.ndarray:
        """Soft (size, size) float32 mask for pasting component ``name``.

        1 inside, ramping to 0 over ``feather`` pixels (scaled to this canvas) at the
        border; the nose's bottom rows are cut as in the reference systems.  A
        ``feather`` of 0 or None gives the reference systems' hard overwrite.
        """
        w = self.window(name)
        mask = np.ones((w.size, w.size), np.float32)
        if name == NOSE:
            mask[w.size - self.nose_bottom_cut :] = 0.0
        if name == BACKGROUND or not feather:
            return mask
        f = max(1, round(feather * self.canvas / REFERENCE_CANVAS))
        ramp = np.minimum(np.arange(w.size, dtype=np.float32) + 0.5, f) / f
        ramp = np.minimum(ramp, ramp[::-1])
        inner_h = w.size - (self.nose_bottom_cut if name == NOSE else 0)
        rows = np.minimum(np.arange(w.size, dtype=np.float32) + 0.5, f) / f
        rows = np.minimum(rows, np.clip((inner_h - np.arange(w.size) - 0.5) / f, 0, 1))
        return (mask * rows[:, None] * ramp[None, :]).astype(np.float32)

    def paste(self, base: Any, name: str, patch: Any, feather: int | None = DEFAULT_FEATHER) -> Any:
        """Blend ``patch`` into a copy of ``base`` at component ``name``'s window.

        ``base`` is canvas-sized, ``patch`` window-sized; both (..., H, W) torch tensors
        or both numpy arrays laid out (..., H, W).  Returns the new map.
        """
        rows, cols = self.window(name).slices
        mask = self.paste_mask(name, feather)
        out = base.clone() if hasattr(base, "clone") else base.copy()
        if hasattr(base, "clone"):
            import torch  # local: layout stays importable without torch

            mask = torch.as_tensor(mask, dtype=base.dtype, device=base.device)
        region = out[..., rows, cols]
        out[..., rows, cols] = region * (1 - mask) + patch * mask
        return out

    def paste_all(
        self, base: Any, patches: Mapping[str, Any], feather: int | None = DEFAULT_FEATHER
    ) -> Any:
        """Paste every local patch given, in the reference order (mouth, nose, eyes)."""
        out = base
        for name in PASTE_ORDER:
            if name in patches:
                out = self.paste(out, name, patches[name], feather)
        return out

    # -- alignment targets and serialization --------------------------------------
    def alignment_targets(self) -> dict[str, tuple[float, float]]:
        """Canvas points that landmark centres of each local component are mapped to."""
        return {n: self.windows[n].center for n in LOCAL_COMPONENTS}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for project files."""
        return {
            "canvas": self.canvas,
            "windows": {n: [w.x, w.y, w.size] for n, w in self},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaceLayout:
        """Inverse of :meth:`to_dict`; raises ValueError on malformed data."""
        try:
            canvas = int(data["canvas"])
            wins = {str(n): Window(*(int(v) for v in xyz)) for n, xyz in data["windows"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed face layout: {exc}") from exc
        if canvas <= 0:
            raise ValueError("malformed face layout: canvas must be positive")
        return cls(canvas=canvas, windows=wins)
