"""Issue 16's evaluation: artist sketches of real people rendered as a new user would.

Every CUHK pair (``--pairs``: ``sketch/`` + ``photo/``, both aligned by the photo's dlib
landmarks; shaded drawings turned into line sketches as ``facesketch render`` does) is
rendered by the app's own :class:`facesketch.engine.pipeline.FacePipeline` with the
default look, and scored with :mod:`train.face_metrics` (descriptor distance, landmark
error, Canny edge F1, KID).  With a reference fusion (``fusion_ref`` in the weights
folder) each render also gets the reference it would get at run time: the face of
the reference bank nearest by landmark shape (the shipped gallery,
``facesketch.engine.gallery``, when it loads; otherwise the prepared training faces,
``--bank-data``), TPS-warped from its dlib landmarks to the sketch's landmarks
(predicted from the sketch by the landmark network when its weights are installed,
otherwise the photo's dlib landmarks, as the issue's warp-only baseline did).  The
warped reference alone is scored too (``warp_only``).

    python -m train.eval --issue --weights resources/weights \\
        --pairs ../shared/data/sketches/cufs_train --data /work/cache/prepared
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facesketch.engine.gallery import landmark_shape
from facesketch.imaging import tensor_to_image, write_image


class ReferenceBank:
    """Aligned faces with their dlib landmarks: the reference a sketch gets at run time."""

    def __init__(self, landmarks: np.ndarray, image, mask, source: str) -> None:
        self.landmarks, self._image, self._mask, self.source = landmarks, image, mask, source
        self._shapes = np.stack([landmark_shape(p) for p in landmarks])

    @classmethod
    def load(cls, data_root: Path | None) -> ReferenceBank:
        """The shipped gallery if it loads, else the prepared training faces."""
        try:
            from facesketch.engine.gallery import Gallery

            g = Gallery.load()
            lms = np.stack([g.landmarks(i) for i in range(g.size)])
            return cls(lms, g.image, g.mask, f"shipped gallery ({g.size} faces)")
        except Exception as exc:  # no gallery shipped (yet): say so and use the stand-in
            if data_root is None:
                raise SystemExit(
                    f"error: no gallery ({exc}) and no --data for the stand-in"
                ) from None
            print(f"no shipped gallery ({exc}); reference bank: prepared training faces")
        from train.data import item_paths, load_index
        from train.fusion_ref import load_landmark_table

        table = load_landmark_table(data_root)
        if table is None:
            raise SystemExit(f"error: {data_root} has no landmarks256.npz (train.landmarks_data)")
        split = {k: e["split"] for k, e in load_index(data_root)["items_by_id"].items()}
        ids = sorted(k for k in table if split.get(k) == "train")
        paths = [item_paths(data_root, k) for k in ids]

        def image(i: int) -> np.ndarray:
            return cv2.cvtColor(cv2.imread(str(paths[i]["img256"])), cv2.COLOR_BGR2RGB)

        def mask(i: int) -> np.ndarray:
            return cv2.imread(str(paths[i]["mask256"]), cv2.IMREAD_GRAYSCALE)

        lms = np.stack([table[k] for k in ids])
        return cls(lms, image, mask, f"prepared training faces ({len(ids)}, {data_root})")

    def nearest(self, points: np.ndarray) -> int:
        """Index of the face whose landmark shape is nearest ``points``."""
        d = ((self._shapes - landmark_shape(points)[None]) ** 2).sum((1, 2))
        return int(np.argmin(d))

    def warped(self, index: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face ``index`` TPS-warped onto ``points``: (uint8 RGB, uint8 validity 0/255)."""
        from facesketch.imaging import image_to_tensor
        from facesketch.models.face_model import warp_reference

        img = image_to_tensor(self._image(index))
        m = torch.from_numpy(self._mask(index) >= 128).float()[None, None]
        src = torch.from_numpy(self.landmarks[index]).float()[None]
        dst = torch.from_numpy(np.asarray(points, np.float32))[None]
        with torch.no_grad():
            w, v = warp_reference(img, src, dst, m)
        return tensor_to_image(w[0]), (v[0, 0].numpy() * 255).astype(np.uint8)


def sketch_landmarks(sketches: list[np.ndarray], photo_points: list[Any]) -> tuple[list, str]:
    """Landmarks of each sketch: predicted by the landmark network when installed, else
    the photo's dlib landmarks (None where dlib found no face)."""
    try:
        from facesketch.engine.landmarks import predict_landmarks

        return [predict_landmarks(s) for s in sketches], "predicted from the sketch"
    except Exception as exc:
        print(f"no landmark network ({exc}): the photos' dlib landmarks stand in")
        return photo_points, "the photo's dlib landmarks (no landmark network)"


def evaluate_pairs(args: Any) -> dict:
    """Render every pair at the app's size with the shipped / given weights; measures + sheet."""
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline, load_reference_fusion
    from train.eval import load_sketch_pairs
    from train.face_metrics import FaceMeter, face_measures, kid_measures

    weights = args.weights[0] if args.weights else None
    bundle = load_bundle(weights)
    ref_fusion = None  # the first fusion_ref among the weights folders (e.g. a run's export)
    for d in args.weights or []:
        ref_fusion = ref_fusion or load_reference_fusion(d)
    pipe = FacePipeline(bundle, "cpu", reference_fusion=ref_fusion or "auto")
    if args.look == "mean" and hasattr(pipe.appearance, "gallery_problem"):
        pipe.appearance.gallery_problem = "evaluated with the mean look (--look mean)"
    canvas = bundle.canvas
    # what a user sees: the app's render size (512 with the 2x head); pairs aligned at it
    size = canvas * (2 if bundle.upsampler is not None else 1)
    pairs = load_sketch_pairs(args.pairs, size, args.limit, lines=not args.raw_drawings)
    photos = [tensor_to_image(p["image"]) for p in pairs]
    drawings = [tensor_to_image(p["sketch"]) for p in pairs]
    inputs = [tensor_to_image(p["input"]) for p in pairs]
    meter = FaceMeter()
    photo_pts = [(r[0] if r is not None else None) for r in (meter(p) for p in photos)]

    results: dict[str, Any] = {
        "size": size,
        "pairs": str(args.pairs),
        "weights": str(weights or "shipped"),
        "look": args.look,
    }
    renders: dict[str, list[np.ndarray]] = {}
    extra: dict[str, dict[str, Any]] = {}
    if not getattr(args, "only_reference", False):
        outs = [pipe.render_sketch(s, size=size) for s in inputs]
        renders["default look"] = [o.face for o in outs]
        extra["default look"] = texture_donors([o.texture for o in outs])
        extra["default look"].update(
            gender_measures([o.face for o in outs], photos, meter, [o.texture for o in outs])
        )
        extra["default look"].update(dropped_photo_seams(pipe, inputs, size))
        extra["default look"].update(dropped_part_box(pipe, inputs, [o.face for o in outs], size))
    if pipe.ref_model is not None or args.warp_only:
        bank = ReferenceBank.load(args.data)
        pts, how = sketch_landmarks(inputs, photo_pts)
        results["reference"] = {"bank": bank.source, "sketch_landmarks": how}
        refs = []
        scale = canvas / size  # the bank and the fusion work at the internal canvas
        for p in pts:
            if p is None:  # no landmarks: no reference (the engine falls back likewise)
                refs.append(None)
                continue
            q = (np.asarray(p, np.float32) + 0.5) * scale - 0.5
            refs.append(bank.warped(bank.nearest(q), q))
        if args.warp_only:
            renders["warp only"] = [
                cv2.resize(r[0], (size, size), interpolation=cv2.INTER_CUBIC)
                if r is not None
                else np.full_like(photos[0], 128)
                for r in refs
            ]
        if pipe.ref_model is not None:
            renders["reference fusion"] = [
                pipe.render_sketch(s, size=size, reference=r).face
                for s, r in zip(inputs, refs, strict=True)
            ]
    val = _val_photos(args.data, args.val_limit, size) if args.data else []
    for name, faces in renders.items():
        m = face_measures(faces, photos, drawings, meter)
        if val:
            m.update(kid_measures(faces, photos, val))
        m.update(extra.get(name, {}))
        results[name] = m
        print(name, json.dumps(m))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    contact_sheet(inputs, photos, renders, args.out / "contact.jpg")
    return results


#: How many pairs :func:`dropped_photo_seams` renders again with a gallery face dropped.
DROPPED_PAIRS = 24


def dropped_photo_seams(pipe: Any, inputs: list[np.ndarray], size: int) -> dict[str, float]:
    """Seam excess (:func:`train.face_metrics.seam_excess`) of renders with a gallery
    face dropped on the whole face and on the mouth, against the same drawings' default
    renders (the first :data:`DROPPED_PAIRS`; the faces spread over the gallery), all
    with the real texture off.  Why: the default look never showed the windows, a
    dropped photo did, and no measure saw it; the texture stage does not know the
    windows, and its detail (the dropped photo's, or another gallery face's) would be
    most of what differs."""
    from types import SimpleNamespace

    from facesketch.engine.gallery import Gallery, GalleryError
    from facesketch.layout import FaceLayout
    from train.face_metrics import seam_excess

    try:
        faces = Gallery.load().size
    except (GalleryError, OSError):
        return {}
    layout = FaceLayout.default(size)
    keys = {"face": "dropped_photo_seam_excess", "mouth": "dropped_mouth_seam_excess"}
    out: dict[str, list[float]] = {k: [] for k in keys.values()}
    texture = pipe.texture_wanted
    pipe.set_real_pixels(False)
    try:
        for i, sketch in enumerate(inputs[:DROPPED_PAIRS]):
            base = pipe.render_sketch(sketch, size=size).face
            slot = SimpleNamespace(paths=(f"gallery:{(i * 97 + 13) % faces}",), mix=0.5)
            for part, key in keys.items():
                face = pipe.render_sketch(sketch, None, {part: slot}, size=size).face
                out[key].append(seam_excess(face, base, layout))
    finally:
        pipe.set_real_pixels(texture)
    res = {k: round(float(np.mean(v)), 4) for k, v in out.items()}
    res.update({f"{k}_p90": round(float(np.percentile(v, 90)), 4) for k, v in out.items()})
    return res


def dropped_part_box(
    pipe: Any, inputs: list[np.ndarray], defaults: list[np.ndarray], size: int
) -> dict[str, float]:
    """Box step (:func:`train.face_metrics.box_step`) of the mouth's window with a gallery
    face dropped on the mouth, against the same drawings' default renders, as the app
    shows them (texture on): the first :data:`DROPPED_PAIRS` pairs.  Why: the texture
    stage gave such a part its photo's whole-face colour, a box of another skin."""
    from types import SimpleNamespace

    from facesketch.engine.gallery import Gallery, GalleryError
    from facesketch.layout import FaceLayout
    from train.face_metrics import box_step

    try:
        faces = Gallery.load().size
    except (GalleryError, OSError):
        return {}
    window = FaceLayout.default(size).window("mouth")
    steps = []
    for i, (sketch, base) in enumerate(zip(inputs[:DROPPED_PAIRS], defaults, strict=False)):
        slot = SimpleNamespace(paths=(f"gallery:{(i * 97 + 13) % faces}",), mix=0.5)
        face = pipe.render_sketch(sketch, None, {"mouth": slot}, size=size).face
        steps.append(box_step(face, base, window))
    return {
        "dropped_mouth_box_step": round(float(np.mean(steps)), 2),
        "dropped_mouth_box_step_p90": round(float(np.percentile(steps, 90)), 2),
    }


def texture_donors(textures: list[list[str]]) -> dict[str, Any]:
    """Which faces lent the renders their real texture (``PipelineOutput.texture``): how
    many renders took one, how many distinct faces, how many renders the most-picked one
    served.  KID on a few dozen renders follows the donors (the gallery card), so a KID
    change is read beside these."""
    first = [t[0] for t in textures if t]
    counts = Counter(first)
    return {
        "textured": len(first),
        "texture_donors": len(counts),
        "texture_top_donor_serves": counts.most_common(1)[0][1] if counts else 0,
    }


def gender_reader() -> tuple[np.ndarray, Any] | None:
    """(weight (129,), gallery): a ridge classifier (1 = woman) on the shipped gallery's
    photo descriptors and gender labels, or None without them.  On the render-map pairs'
    photos of the validation split it reads UTKFace's labels right for about 97 %."""
    from facesketch.engine.gallery import Gallery, GalleryError

    try:
        gal = Gallery.load()
    except GalleryError:
        return None
    if gal.descriptors is None or gal.female is None:
        return None
    a = np.c_[gal.descriptors.astype(np.float64), np.ones(gal.size)]
    w = np.linalg.solve(a.T @ a + 0.1 * np.eye(a.shape[1]), a.T @ gal.female.astype(float))
    return w, gal


def gender_measures(
    faces: list[np.ndarray], photos: list[np.ndarray], meter: Any, textures: list[list[str]]
) -> dict[str, Any]:
    """Whether renders keep the drawn person's gender, read from dlib descriptors by
    :func:`gender_reader` (CUHK has no labels: the photo's reading is the truth here):
    men whose render reads as a woman and the reverse, and renders whose texture came
    from a gallery face of the other gender.  A soft render of a man read as a woman
    and took a woman's texture (made-up eyes and lips) for 35 of 58 CUHK men."""
    from facesketch.engine.gallery import parse_reference

    reader = gender_reader()
    if reader is None:
        return {}
    w, gal = reader

    def woman(img: np.ndarray) -> bool | None:
        found = meter(img)
        return None if found is None else bool(np.r_[found[1], 1.0] @ w > 0.5)

    flips = {"men_rendered_as_women": [0, 0], "women_rendered_as_men": [0, 0]}
    donors = [0, 0]
    for face, photo, tex in zip(faces, photos, textures, strict=True):
        truth = woman(photo)
        if truth is None:
            continue
        seen = woman(face)
        key = "women_rendered_as_men" if truth else "men_rendered_as_women"
        if seen is not None:
            flips[key][1] += 1
            flips[key][0] += int(seen != truth)
        index = parse_reference(tex[0]) if tex else None
        if index is not None and 0 <= index < gal.size:
            donors[1] += 1
            donors[0] += int(bool(gal.female[index]) != truth)
    out: dict[str, Any] = {k: f"{v[0]}/{v[1]}" for k, v in flips.items()}
    out["texture_of_other_gender"] = f"{donors[0]}/{donors[1]}"
    return out


def _val_photos(root: Path, limit: int, size: int = 512) -> list[np.ndarray]:
    from train.data import FaceDataset

    ds = FaceDataset(root, "val", size=size, augment=False)
    return [ds.arrays(i)[0] for i in range(min(limit, len(ds)))]


def contact_sheet(
    sketches: list[np.ndarray],
    photos: list[np.ndarray],
    renders: dict[str, list[np.ndarray]],
    path: Path,
    rows: int = 4,
) -> None:
    """Rows: sketch | photo | each render at 512, then 2x crops (eyes, cheek) of each render."""
    lines = []
    for i in range(min(rows, len(sketches))):
        tiles = [cv2.cvtColor(sketches[i], cv2.COLOR_GRAY2RGB), photos[i]]
        tiles += [r[i] for r in renders.values()]
        big = [
            t if t.shape[0] == 512 else cv2.resize(t, (512, 512), interpolation=cv2.INTER_CUBIC)
            for t in tiles
        ]
        crops = []
        for r in renders.values():
            face = r[i]
            if face.shape[0] != 512:
                face = cv2.resize(face, (512, 512), interpolation=cv2.INTER_CUBIC)
            eyes = face[150:278, 128:384]  # 256x128 around both eyes
            cheek = face[260:388, 100:228]
            crops.append(
                np.concatenate(
                    [
                        cv2.resize(eyes, (512, 256), interpolation=cv2.INTER_NEAREST),
                        cv2.resize(cheek, (256, 256), interpolation=cv2.INTER_NEAREST),
                    ],
                    axis=1,
                )
            )
        top = np.concatenate(big, axis=1)
        bottom = np.concatenate(crops, axis=1)
        pad = np.full((256, top.shape[1] - bottom.shape[1], 3), 255, np.uint8)
        lines.append(np.concatenate([top, np.concatenate([bottom, pad], axis=1)], axis=0))
    write_image(path, np.concatenate(lines, axis=0))
