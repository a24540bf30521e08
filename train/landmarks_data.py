"""dlib 68-point landmarks of the prepared 256 aligned photos (targets of the sketch
landmark network; the face model and the gallery read them too).

    python -m train.landmarks_data --data /work/cache/prepared [--limit N]

Writes ``<data>/landmarks256.npz``: ``ids`` (M,) str and ``landmarks`` (M, 68, 2)
float32, (x, y) pixels of the 256 canvas (dlib's convention: pixel centre at the
integer), plus ``source`` (M,) "detect" | "box".  Decisions:
- Each photo is detected (HOG, no up-sampling: an aligned face fills the canvas);
  when the detector misses, the landmark model runs on the face box every aligned
  photo shares (the median detected box), so alignment fixes what detection lost.
- A result is kept only when its eye / nose / mouth centres sit where the
  alignment put them (within :data:`MAX_CENTRE_ERROR` of the window size): dlib
  fails silently, and a wrong target teaches the network a wrong face.
dlib is imported only when the script runs (train/ never imports it at import time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.layout import LOCAL_COMPONENTS, FaceLayout
from train.config import default_data_root
from train.data import item_paths, load_index

OUT_FILE = "landmarks256.npz"
CANVAS = 256
#: Largest distance (fraction of the component's window side) between a landmark
#: centre and the window centre the alignment aimed it at.
MAX_CENTRE_ERROR = 0.25
#: Faces detected first to learn the shared box of aligned faces.
BOX_SAMPLES = 40


def centre_error(landmarks: np.ndarray, layout: FaceLayout) -> float:
    """Largest component-centre offset from its alignment target, in window sides.

    Only the axes the alignment fits count (nose and mouth constrain y only: a turned
    head legitimately moves them sideways)."""
    from facesketch.face.align import FIT_WEIGHTS, landmark_centres

    centres = landmark_centres(landmarks)
    targets = layout.alignment_targets()
    worst = 0.0
    for c in LOCAL_COMPONENTS:
        off = (centres[c] - np.asarray(targets[c])) * (np.array(FIT_WEIGHTS[c]) > 0)
        worst = max(worst, float(np.hypot(*off)) / layout.window(c).size)
    return worst


class _Dlib:
    """The detector and landmark model on one thread (dlib imported here, lazily)."""

    def __init__(self) -> None:
        from facesketch.face import detect

        self._detect = detect
        self.detector, self.predictor = detect._models()

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]] | None:
        faces = self._detect.detect_faces(rgb, upsample=0)
        if not faces:
            return None
        return faces[0].landmarks, faces[0].box

    def in_box(self, rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        import dlib

        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(np.ascontiguousarray(rgb), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def compute(root: Path, limit: int | None = None) -> dict[str, Any]:
    """Landmarks of every aligned photo in the index; returns arrays and a summary."""
    from facesketch.imaging import read_image

    index = load_index(root)
    ids = sorted(index["items_by_id"])[:limit]
    layout = FaceLayout.default(CANVAS)
    dl = _Dlib()
    t0 = time.perf_counter()

    # The shared box: median of the first detections (aligned faces barely move).
    boxes = []
    for item_id in ids[:BOX_SAMPLES]:
        found = dl.detect(read_image(item_paths(root, item_id)["img256"]))
        if found:
            boxes.append(found[1])
    if not boxes:
        raise RuntimeError(f"dlib found no face in the first {BOX_SAMPLES} photos of {root}")
    box = tuple(float(v) for v in np.median(np.array(boxes), 0))

    kept_ids, kept, how, failed, box_vs_detect = [], [], [], [], []
    for n, item_id in enumerate(ids):
        rgb = read_image(item_paths(root, item_id)["img256"])
        found = dl.detect(rgb)
        if found is not None:
            pts, src = found[0], "detect"
            if len(box_vs_detect) < 100:  # how good the fallback would have been
                alt = dl.in_box(rgb, box)
                iod = float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0)))
                box_vs_detect.append(float(np.linalg.norm(alt - pts, axis=1).mean()) / iod)
        else:
            pts, src = dl.in_box(rgb, box), "box"
        if centre_error(pts, layout) > MAX_CENTRE_ERROR:
            failed.append(item_id)
            continue
        kept_ids.append(item_id)
        kept.append(pts.astype(np.float32))
        how.append(src)
        if (n + 1) % 500 == 0:
            print(f"{n + 1}/{len(ids)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {
        "ids": np.array(kept_ids),
        "landmarks": np.stack(kept) if kept else np.zeros((0, 68, 2), np.float32),
        "source": np.array(how),
        "failed": failed,
        "box": box,
        "seconds": time.perf_counter() - t0,
        "box_vs_detect_nme": float(np.mean(box_vs_detect)) if box_vs_detect else float("nan"),
    }


def load_landmarks(root: str | Path) -> dict[str, np.ndarray]:
    """``id -> (68, 2)`` float32 landmarks from ``<root>/landmarks256.npz``."""
    path = Path(root) / OUT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m train.landmarks_data --data {root}`"
        )
    with np.load(path) as z:
        return {str(i): p for i, p in zip(z["ids"], z["landmarks"], strict=True)}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m train.landmarks_data", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--data", type=Path, default=None, help="prepared data root")
    ap.add_argument("--limit", type=int, default=None, help="first N ids only (testing)")
    args = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    root = args.data or default_data_root()
    res = compute(root, args.limit)
    out = root / OUT_FILE
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, ids=res["ids"], landmarks=res["landmarks"], source=res["source"])
    tmp.replace(out)
    n_box = int((res["source"] == "box").sum())
    print(
        f"wrote {out}: {len(res['ids'])} faces ({n_box} via the shared box "
        f"{tuple(round(v) for v in res['box'])}), {len(res['failed'])} failed, "
        f"{res['seconds']:.0f} s; fallback box vs detection: NME "
        f"{res['box_vs_detect_nme']:.4f}"
    )
    if res["failed"]:
        print("failed:", " ".join(res["failed"][:50]), "..." if len(res["failed"]) > 50 else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
