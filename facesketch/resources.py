"""Where the shipped data is: weights with their manifests and cards, samples, gallery.

The source tree keeps it in ``resources/`` at the top; ``pyproject.toml`` maps that
folder into the wheel as the package ``facesketch_resources`` (and an editable
install maps it the same way), so this one function finds it through
``importlib.resources`` in a checkout and in an installed wheel alike.  A source
tree used without any install (``PYTHONPATH=.``) falls back to its ``resources/``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

#: Import name of the shipped data (``resources/`` in the source tree).
RESOURCES_PACKAGE = "facesketch_resources"


class ResourcesError(RuntimeError):
    """The shipped data cannot be found; the message says how to get it back."""


def resources_dir() -> Path:
    """The folder of the shipped data (``weights/``, ``samples/``, …) as a real path."""
    if importlib.util.find_spec(RESOURCES_PACKAGE) is not None:
        root = importlib.resources.files(RESOURCES_PACKAGE)
        if isinstance(root, Path):
            return root
        raise ResourcesError(
            f"facesketch's data ({RESOURCES_PACKAGE}) is inside an archive ({root}); "
            "install facesketch with pip so its files are on disk"
        )
    checkout = Path(__file__).resolve().parent.parent / "resources"
    if (checkout / "__init__.py").is_file():
        return checkout
    raise ResourcesError(
        f"facesketch's data ({RESOURCES_PACKAGE}: weights and samples) is not installed; "
        "reinstall facesketch (pip install --force-reinstall facesketch)"
    )


def shipped_weights_dir() -> Path:
    """The shipped weights folder (ignores ``$FACESKETCH_WEIGHTS``)."""
    return resources_dir() / "weights"


def samples_dir() -> Path:
    """The bundled samples: reference photos and the demo project."""
    return resources_dir() / "samples"


def gallery_dir() -> Path:
    """The shipped face gallery (the default look; see facesketch.engine.gallery)."""
    return resources_dir() / "gallery"
