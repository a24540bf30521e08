"""Face detection and 68-point landmarks with dlib.

dlib is imported lazily, inside :func:`_models`, so training machines without
dlib can still import the package.  The detector and the landmark model are
loaded once per process and guarded by a lock: the engine calls from a worker
thread and dlib objects are not documented as thread-safe.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesketch.imaging import as_rgb

#: Longest side of the image the detector sees; larger images are shrunk first.
DETECT_MAX_SIDE = 1024
#: Images whose longest side is at most this are re-scanned with 2x up-sampling
#: when no face is found (dlib's HOG detector misses faces under ~80 px).
SMALL_IMAGE_SIDE = 640
#: Name of the 68-point landmark model inside the ``face_recognition_models`` package.
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
#: Number of landmarks of the iBUG 300-W scheme that dlib's model predicts.
N_LANDMARKS = 68

_LOCK = threading.Lock()
_MODELS: tuple[Any, Any] | None = None


class NoFaceError(ValueError):
    """No (or not enough) faces were found; the message tells the user what to do."""


@dataclass(frozen=True)
class FaceDetection:
    """One detected face: box (x0, y0, x1, y1) in image pixels, score, landmarks (68, 2)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray


def landmark_model_path() -> Path:
    """Where the 68-point model file lives (without importing face_recognition_models,
    whose ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the face_recognition_models package is not installed; "
            "run `make setup` (or pip install face_recognition_models)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / LANDMARK_MODEL
    if not path.is_file():
        raise RuntimeError(
            f"{path}: dlib landmark model missing; reinstall face_recognition_models"
        )
    return path


def _models() -> tuple[Any, Any]:
    """The (detector, predictor) pair, loaded once per process.  Call under ``_LOCK``."""
    global _MODELS
    if _MODELS is None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError(
                "face detection needs dlib (pip install dlib-bin); training machines "
                "without it must use prepared data"
            ) from exc
        _MODELS = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(landmark_model_path())),
        )
    return _MODELS


def _run_detector(img: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
    detector, _ = _models()
    rects, scores, _ = detector.run(img, upsample, 0.0)
    return list(zip(rects, scores, strict=True))


def detect_faces(rgb: np.ndarray, upsample: int | None = None) -> list[FaceDetection]:
    """All faces in an RGB (or gray/RGBA) image, highest detection score first.

    ``upsample`` is dlib's number of 2x up-samplings; ``None`` means 0, retried
    once with 1 on small images when nothing is found.  Images larger than
    :data:`DETECT_MAX_SIDE` are shrunk for detection and landmarks are mapped
    back to the input's pixel coordinates.
    """
    img = as_rgb(np.asarray(rgb))
    h, w = img.shape[:2]
    if h < 8 or w < 8:
        return []
    factor = 1.0
    if max(h, w) > DETECT_MAX_SIDE:
        factor = DETECT_MAX_SIDE / max(h, w)
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img)
    with _LOCK:
        found = _run_detector(img, upsample or 0)
        if not found and upsample is None and max(img.shape[:2]) <= SMALL_IMAGE_SIDE:
            found = _run_detector(img, 1)
        _, predictor = _models()
        faces = []
        for rect, score in found:
            shape = predictor(img, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            faces.append(
                FaceDetection(
                    box=tuple(float(v) / factor for v in box),  # type: ignore[arg-type]
                    score=float(score),
                    landmarks=(pts + 0.5) / factor - 0.5,
                )
            )
    faces.sort(key=lambda f: f.score, reverse=True)
    return faces


#: Name of dlib's face-recognition ResNet inside ``face_recognition_models``.
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
_RECOGNIZER: Any = None


def _recognizer() -> Any:
    """dlib's 128-d face descriptor network, loaded once.  Call under ``_LOCK``."""
    global _RECOGNIZER
    if _RECOGNIZER is None:
        import dlib

        path = landmark_model_path().parent / DESCRIPTOR_MODEL
        if not path.is_file():
            raise RuntimeError(f"{path}: dlib face descriptor model missing; reinstall it")
        _RECOGNIZER = dlib.face_recognition_model_v1(str(path))
    return _RECOGNIZER


@dataclass(frozen=True)
class FaceIdentity:
    """dlib's 68 landmarks (pixels of the image) and 128-d descriptor of one face:
    descriptors of the same person lie within ~0.6 of each other."""

    landmarks: np.ndarray
    descriptor: np.ndarray


def face_identity(
    rgb: np.ndarray, box: tuple[float, float, float, float] | None = None
) -> FaceIdentity | None:
    """Landmarks and descriptor of the most confident face of an RGB image, or None.

    ``box`` (x0, y0, x1, y1): where the face is when the detector does not find it (a
    render at the canonical layout); without it such an image gives None.  Detection
    runs on at most a 256-px copy (a canonical face is large there and it is 3x faster).
    """
    import dlib

    img = np.ascontiguousarray(as_rgb(np.asarray(rgb)))
    h, w = img.shape[:2]
    f = min(1.0, 256.0 / max(h, w))
    small = img if f == 1.0 else cv2.resize(img, (round(w * f), round(h * f)), cv2.INTER_AREA)
    with _LOCK:
        found = _run_detector(np.ascontiguousarray(small), 0)
        if found:
            r = max(found, key=lambda rs: rs[1])[0]
            rect = dlib.rectangle(
                round(r.left() / f), round(r.top() / f), round(r.right() / f), round(r.bottom() / f)
            )
        elif box is not None:
            rect = dlib.rectangle(*(round(v) for v in box))
        else:
            return None
        _, predictor = _models()
        shape = predictor(img, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        desc = np.array(_recognizer().compute_face_descriptor(img, shape), np.float32)
    return FaceIdentity(pts, desc)
