"""What the UI asks of the lower layers, gathered so widgets never import them.

Every function here may be slow (dlib, HED, torch): the window runs them through
:meth:`EngineClient.run_job` on the engine's worker thread, never on the GUI thread.
Imports are lazy so that opening the window does not wait for torch to load twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesketch.engine.contract import RenderEngine
from facesketch.sketch.document import Stroke

#: Canvas at which reference photos are aligned for the slot thumbnails.
THUMBNAIL_CANVAS = 256


@dataclass
class PhotoImport:
    """A photo turned into an editable document: its strokes and aligned face."""

    path: str
    strokes: list[Stroke]
    aligned: np.ndarray
    sketch: np.ndarray


class Backend:
    """The real engine and sketch functions (tests substitute a double)."""

    def make_service(self, device: str = "auto") -> RenderEngine:
        """The render service (one worker thread that owns torch; loads torch)."""
        from facesketch.engine.service import RenderService

        return RenderService(device=device)

    def reference_thumbnails(self, path: str) -> dict[str, np.ndarray]:
        """Aligned crops of a reference photo per slot (raises with a clear message)."""
        from facesketch.engine.appearance import reference_thumbnails

        return reference_thumbnails(path, THUMBNAIL_CANVAS)

    def gallery_suggestions(self) -> dict:
        """Gallery faces nearest to each part of the last render (crops, weights)."""
        from facesketch.engine.appearance import gallery_suggestions

        return gallery_suggestions(THUMBNAIL_CANVAS)

    def list_styles(self) -> list[str]:
        """Names of the installed cartoon styles."""
        from facesketch.engine.cartoon import list_styles

        return [str(s["name"]) for s in list_styles()]

    def import_style(self, path: str, name: str) -> Path:
        """Import an official CartoonGAN generator file as style ``name``."""
        from facesketch.engine.cartoon import import_style

        return import_style(path, name)

    def sketch_to_strokes(self, sketch: np.ndarray) -> list[Stroke]:
        """A sketch image (already at canvas size) as editable vector strokes.

        A shaded pencil drawing is first reduced to its lines (as ``facesketch render``
        does): its tone would vectorize into a scribble."""
        from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing
        from facesketch.sketch.vectorize import sketch_to_strokes

        if is_shaded_drawing(sketch):
            sketch = drawing_to_lines(sketch)
        return list(sketch_to_strokes(sketch))

    def photo_to_document(self, path: str, canvas: int) -> PhotoImport:
        """Align a photo, sketch it (HED + Canny) and vectorize the sketch."""
        from facesketch.engine.sketchify import photo_to_sketch
        from facesketch.face import align_face
        from facesketch.imaging import read_image

        aligned = align_face(read_image(path), size=canvas)
        sketch = photo_to_sketch(aligned.image, aligned.mask)
        return PhotoImport(str(path), self.sketch_to_strokes(sketch), aligned.image, sketch)
