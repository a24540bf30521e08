"""The sketch document: strokes, layout, appearance choices, undo, rasterization, files.

Pure numpy/OpenCV; the UI edits a :class:`Document` through a :class:`CommandStack`
and the engine renders :meth:`Document.snapshot`.
"""

from facesketch.layout import FaceLayout
from facesketch.sketch.autosave import (
    AutosaveInfo,
    autosave_path,
    discard_autosave_file,
    find_autosaves,
    read_autosave,
    remove_autosave,
    set_aside_autosave,
    write_autosave,
)
from facesketch.sketch.commands import (
    AddStrokes,
    ClearAppearance,
    ClearStrokes,
    Command,
    CommandStack,
    MoveStrokes,
    MoveWindow,
    RemoveStrokes,
    SetAppearance,
    SetBackground,
    SetLayout,
    SetScnStrength,
)
from facesketch.sketch.document import (
    APPEARANCE_KEYS,
    FACE,
    AppearanceSlot,
    Document,
    DocumentSnapshot,
    Stroke,
    new_stroke_id,
)
from facesketch.sketch.project import (
    ProjectError,
    load_project,
    save_project,
)
from facesketch.sketch.raster import (
    DEFAULT_LINE_WIDTH_512,
    default_pen_width,
    rasterize_strokes,
    smooth_polyline,
    width_at_reference,
    width_on_canvas,
)

__all__ = [
    "APPEARANCE_KEYS",
    "DEFAULT_LINE_WIDTH_512",
    "FACE",
    "AddStrokes",
    "AppearanceSlot",
    "AutosaveInfo",
    "ClearAppearance",
    "ClearStrokes",
    "Command",
    "CommandStack",
    "Document",
    "DocumentSnapshot",
    "FaceLayout",
    "MoveStrokes",
    "MoveWindow",
    "ProjectError",
    "RemoveStrokes",
    "SetAppearance",
    "SetBackground",
    "SetLayout",
    "SetScnStrength",
    "Stroke",
    "autosave_path",
    "discard_autosave_file",
    "default_pen_width",
    "width_at_reference",
    "width_on_canvas",
    "find_autosaves",
    "load_project",
    "new_stroke_id",
    "rasterize_strokes",
    "read_autosave",
    "remove_autosave",
    "save_project",
    "set_aside_autosave",
    "smooth_polyline",
    "write_autosave",
]
