"""Faces in photos: dlib detection, 68 landmarks, alignment to the face layout, crops.

Pure numpy / OpenCV; dlib is imported lazily so the package imports without it.
"""

from facesketch.face.align import (
    AlignedFace,
    align_face,
    component_crops,
    landmark_centres,
    similarity_transform,
    warp_to_canvas,
)
from facesketch.face.detect import FaceDetection, NoFaceError, detect_faces

__all__ = [
    "AlignedFace",
    "FaceDetection",
    "NoFaceError",
    "align_face",
    "component_crops",
    "detect_faces",
    "landmark_centres",
    "similarity_transform",
    "warp_to_canvas",
]
