"""How a document's face becomes a cartoon: ink from the user's sketch, anime proportions.

Plain, immutable data kept in the :class:`~facesketch.sketch.document.Document`
(saved in the project, edited only through :class:`SetCartoonSettings`, so every
change is one undo step) and read by the engine (``facesketch.engine.cartoon``)
and by ``facesketch render --cartoon``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Ranges of the numeric settings (the UI's sliders use them too).
INK_WIDTH_RANGE = (0.25, 4.0)
INK_DARKNESS_RANGE = (0.0, 1.0)
PROPORTIONS_RANGE = (0.0, 1.0)


def _check(name: str, value: Any, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cartoon {name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"cartoon {name} must be within {lo:g}..{hi:g}, got {value!r}")
    return v


@dataclass(frozen=True)
class CartoonSettings:
    """``ink``: draw the calibrated strokes over the cartoon (``ink_width`` x the line
    width, ``ink_darkness`` 0 = invisible .. 1 = black); ``proportions``: strength of
    the anime warp (0 = off)."""

    ink: bool = False
    ink_width: float = 1.0
    ink_darkness: float = 0.85
    proportions: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.ink, bool):
            raise ValueError(f"cartoon ink must be true or false, got {self.ink!r}")
        object.__setattr__(self, "ink_width", _check("ink width", self.ink_width, *INK_WIDTH_RANGE))
        object.__setattr__(
            self, "ink_darkness", _check("ink darkness", self.ink_darkness, *INK_DARKNESS_RANGE)
        )
        object.__setattr__(
            self, "proportions", _check("proportions", self.proportions, *PROPORTIONS_RANGE)
        )

    @property
    def is_default(self) -> bool:
        """True when nothing is changed from a plain stylization."""
        return self == CartoonSettings()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for project files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> CartoonSettings:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are refused."""
        if not isinstance(data, dict):
            raise ValueError(f"cartoon settings must be an object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown cartoon settings {sorted(unknown)}")
        return cls(**data)

    def with_(self, **changes: Any) -> CartoonSettings:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)


def with_overrides(
    base: CartoonSettings | None,
    ink: bool | None = None,
    ink_width: float | None = None,
    ink_darkness: float | None = None,
    proportions: float | None = None,
) -> CartoonSettings:
    """``base`` (None = defaults) with the given values replaced (``facesketch render``).

    A width or darkness without an explicit ``ink`` turns the ink on: asking for a
    line width means wanting the lines; ``ink=False`` still wins."""
    s = base if base is not None else CartoonSettings()
    changes: dict[str, Any] = {}
    if ink_width is not None:
        changes["ink_width"] = ink_width
    if ink_darkness is not None:
        changes["ink_darkness"] = ink_darkness
    if ink is None and changes:
        ink = True
    if ink is not None:
        changes["ink"] = bool(ink)
    if proportions is not None:
        changes["proportions"] = proportions
    return s.with_(**changes) if changes else s


class SetCartoonSettings:
    """Set the document's cartoon settings (ink, width, darkness, proportions)."""

    text = "Cartoon settings"

    def __init__(self, settings: CartoonSettings) -> None:
        if not isinstance(settings, CartoonSettings):
            raise ValueError("SetCartoonSettings needs a CartoonSettings value")
        self.settings = settings
        self._before = CartoonSettings()

    def apply(self, doc: Any) -> None:
        self._before = doc.cartoon
        doc.cartoon = self.settings

    def revert(self, doc: Any) -> None:
        doc.cartoon = self._before
