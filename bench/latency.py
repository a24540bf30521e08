"""Render latency of the engine, one JSON object per (device, size) on stdout.

    .venv/bin/python bench/latency.py [--devices cpu cuda] [--sizes 256 512] [--repeats 7]

Renders go through a real document (strokes rasterized at the internal canvas).
Keys: ``device``, ``size``, ``full_render_ms`` (every branch + fusion, nothing cached),
``component_edit_ms`` (a new stroke inside the nose window: nose branch + paste +
fusion + up head; the real-texture stage keeps its gallery pick there),
``component_edit_following_ms`` (that edit as the app runs it for a new drawing, with
"Follow my drawing" on: + the landmark network; the drawing is in place, so no warp),
``component_edit_part_photo_ms`` (that edit with a gallery face dropped on the nose:
+ the part's texture, matched to the face at its window's border),
``texture_identify_ms`` / ``texture_transfer_ms`` (the real-texture stage of a full
render: dlib's descriptor + gallery pick, and warp + transfer; both inside
``full_render_ms``), ``texture_hair_ms`` (the hair strands of a full render, computed
afresh: ``clear_cache`` drops them), ``full_render_no_texture_ms``, ``appearance_change_ms`` (the
whole-face reference mix moved: every branch re-runs with cached codes), ``scn_ms``
(the stroke calibrator over all five component inputs; ``scn_ms_per_crop``: each
input alone), ``weights`` (which networks ran).  Values are medians.
Uses the shipped weights when they load, else the ``lite`` networks at random init,
and says so: timings depend on the architecture, not on the weight values.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facesketch.engine.appearance import AlignedReference, file_digest
from facesketch.engine.bundle import NetworkBundle, load_bundle, random_bundle
from facesketch.engine.devices import select_device
from facesketch.engine.pipeline import FacePipeline
from facesketch.imaging import read_image, sketch_to_tensor
from facesketch.layout import COMPONENTS, LOCAL_COMPONENTS
from facesketch.models import preset
from facesketch.models.local import SKETCH_BLANK, component_input
from facesketch.sketch import AppearanceSlot, Document, Stroke

CANVAS = 256  # size of the synthetic references


def _resize_aligner(path: str, canvas: int) -> AlignedReference:
    """Benchmarks time the networks, not dlib: references are taken as already aligned
    (gallery faces are, with their landmarks)."""
    if str(path).startswith("gallery:"):
        from facesketch.engine.appearance import align_reference

        return align_reference(path, canvas)
    img = cv2.resize(read_image(path), (canvas, canvas), interpolation=cv2.INTER_AREA)
    return AlignedReference(str(path), file_digest(path), img, None)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1).astype(np.float32)


def face_document() -> Document:
    """A plausible line drawing on the 512 canvas the app uses: head, eyes, nose, mouth."""
    doc = Document.new(512)
    doc.strokes.append(Stroke(_ellipse(256, 272, 168, 216), 3.0))
    for name in LOCAL_COMPONENTS:
        cx, cy = doc.layout.window(name).center
        doc.strokes.append(Stroke(_ellipse(cx, cy, 28, 12, 24), 2.5))
    return doc


def nose_stroke(doc: Document, i: int) -> Document:
    """``doc`` plus a short stroke, different for each ``i``, inside the nose window only."""
    nose = doc.layout.window("nose")
    eye = doc.layout.window("left_eye")
    y = eye.y + eye.size + 4  # rows between the eye and mouth windows
    x = nose.x + 36 + (i % 20) * 4
    out = doc.copy()
    out.strokes.append(Stroke(np.array([[x, y], [x + 8, y + 6]], np.float32), 2.0))
    return out


def references(tmp: Path) -> tuple[str, str]:
    """Two reference photos: shared data when present, else two synthetic images."""
    hq = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "hq"
    found = sorted(hq.glob("*.jpg"))[:2] if hq.is_dir() else []
    if len(found) == 2:
        return str(found[0]), str(found[1])
    out = []
    for i, colour in enumerate(((200, 150, 120), (90, 60, 50))):
        img = np.zeros((CANVAS, CANVAS, 3), np.uint8)
        img[:] = colour
        cv2.circle(img, (128, 128), 80, [c // 2 for c in colour], -1)
        p = tmp / f"ref{i}.png"
        cv2.imwrite(str(p), img)
        out.append(str(p))
    return out[0], out[1]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)


def bench(bundle: NetworkBundle, device: str, size: int, repeats: int, refs) -> dict:
    """Median latencies of one (device, size) configuration."""
    pipe = FacePipeline(copy.deepcopy(bundle), select_device(device))
    pipe.appearance._align = _resize_aligner
    base = face_document()
    base.scn_strength = 0.5

    def render(doc, appearance=None):
        if appearance is not None:
            doc = doc.copy()
            doc.appearance = appearance
        return pipe.render(doc.snapshot(), size=size)

    for _ in range(2):  # warm up kernels and allocator
        pipe.clear_cache()
        render(base)

    stage: dict[str, list[float]] = {
        "real_pixels_identify": [],
        "real_pixels_transfer": [],
        "real_pixels_hair": [],
    }

    def full(_i):
        pipe.clear_cache()
        out = render(base)
        for k, v in stage.items():
            if k in out.timings:
                v.append(out.timings[k])

    full_ms = _median_ms(full, repeats)
    texture = {
        k.replace("real_pixels", "texture") + "_ms": round(statistics.median(v), 1) if v else None
        for k, v in stage.items()
    }
    plain_ms = None
    if pipe.real_pixels is not None:
        pipe.set_real_pixels(False)
        plain_ms = _median_ms(full, repeats)
        pipe.set_real_pixels(True)
    render(base)
    edit_ms = _median_ms(lambda i: render(nose_stroke(base, i + 1)), repeats)
    assert render(nose_stroke(base, repeats + 2)).recomputed == ["nose"]
    # the same edit with a photo (a gallery face: it has landmarks) dropped on the nose:
    # the stage lends that part the photo's texture, matched to the face at its border
    part_edit_ms = None
    if pipe.real_pixels is not None:
        part = {"nose": AppearanceSlot(("gallery:7",), 0.0)}
        render(base, part)
        part_edit_ms = _median_ms(lambda i: render(nose_stroke(base, i + 300), part), repeats)
    # the same edit as the app runs it by default: "Follow my drawing" on (new drawings)
    from facesketch.engine.landmarks import render_following

    follow_edit_ms = _median_ms(
        lambda i: render_following(pipe, nose_stroke(base, i + 200).snapshot(), size=size),
        repeats,
    )

    # gallery default look (issue 16): k nearest + LLE blend for every re-run part
    gallery_edit_ms = gallery_lookup_ms = None
    gal = pipe.appearance.gallery()
    if gal is not None:
        pipe.appearance.default_look = "gallery"
        render(base)
        gallery_edit_ms = _median_ms(lambda i: render(nose_stroke(base, i + 100)), repeats)
        geoms = {c: torch.randn(1, gal.geometry[c].shape[1] // 16, 16, 16) for c in COMPONENTS}
        gallery_lookup_ms = _median_ms(
            lambda _i: [pipe.appearance.resolve(c, g, None) for c, g in geoms.items()], repeats
        )
        pipe.appearance.default_look = "mean"

    render(base, {"face": AppearanceSlot(refs, 0.0)})  # encode both references once
    render(base, {"face": AppearanceSlot(refs, 1.0)})
    app_ms = _median_ms(
        lambda i: render(base, {"face": AppearanceSlot(refs, 0.1 + 0.8 * i / repeats)}), repeats
    )

    lay = base.layout.scaled(pipe.canvas)
    sk = base.rasterize(pipe.canvas)
    scn = pipe.bundle.scn
    scn_ms = None
    if scn is not None:
        t = sketch_to_tensor(sk)
        inputs = [pipe.spec.tensor(component_input(t, lay, n, SKETCH_BLANK)) for n in COMPONENTS]

        def run_scn(_i):
            with torch.inference_mode():
                for x in inputs:
                    y = scn(x)
            if y.is_cuda:
                torch.cuda.synchronize()

        scn_ms = _median_ms(run_scn, repeats)

        def one(x):
            def run(_i):
                with torch.inference_mode():
                    y = scn(x)
                if y.is_cuda:
                    torch.cuda.synchronize()

            return run

        # the one-part edit re-runs the SCN on one crop only (64-96 px, or the canvas)
        scn_crop_ms = {
            f"{n} {x.shape[-1]}px": _median_ms(one(x), repeats)
            for n, x in zip(COMPONENTS, inputs, strict=True)
        }
    lm = landmark_figures(pipe, base, size, repeats)
    return {
        "device": pipe.spec.describe(),
        "size": size,
        **lm,
        "full_render_ms": full_ms,
        **texture,
        "full_render_no_texture_ms": plain_ms,
        "component_edit_ms": edit_ms,
        "component_edit_following_ms": follow_edit_ms,
        "component_edit_part_photo_ms": part_edit_ms,
        "appearance_change_ms": app_ms,
        "gallery_look_edit_ms": gallery_edit_ms,
        "gallery_lookup_all_parts_ms": gallery_lookup_ms,
        "scn_ms": scn_ms,
        "scn_ms_per_crop": scn_crop_ms if scn is not None else None,
        "weights": bundle.info.get("weights", "shipped"),
        "threads": torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews times
    }


def landmark_figures(pipe: FacePipeline, base: Document, size: int, repeats: int) -> dict:
    """Sketch landmarks (issue 16): the network at its 128 input, and "Follow my drawing"
    on the face drawn at 0.6x off-centre (landmarks + canonical render + warp back) next
    to the plain render of that drawing, both from cold caches."""
    from facesketch.engine.landmarks import LandmarkPredictor, render_following
    from facesketch.engine.weights import WeightsError

    try:
        pred = LandmarkPredictor(pipe.spec)
    except (WeightsError, OSError) as exc:
        return {"landmarks_ms": None, "landmarks_note": str(exc)[:120]}
    c = base.canvas / 2
    small = base.copy()
    small.strokes = [
        Stroke((s.points - c) * 0.6 + c - np.float32(0.18 * base.canvas), s.width * 0.6)
        for s in base.strokes
    ]
    sketch = small.rasterize(pipe.canvas)

    def predict(_i):
        pred._cache.clear()
        pred.predict(sketch)

    def plain(_i):
        pipe.clear_cache()
        pipe.render(small.snapshot(), size=size)

    def follow(_i):
        pipe.clear_cache()
        pred._cache.clear()
        render_following(pipe, small.snapshot(), pred, size=size)

    plain_ms, follow_ms = _median_ms(plain, repeats), _median_ms(follow, repeats)
    return {
        f"landmarks_ms ({pred.size}px)": _median_ms(predict, repeats),
        "follow_full_render_ms": follow_ms,
        "follow_extra_ms": round(follow_ms - plain_ms, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON line per configuration."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ap.add_argument("--devices", nargs="+", default=default_devices)
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    ap.add_argument("--repeats", type=int, default=7, help="at most 18")
    ap.add_argument("--weights", default=None, help="weights folder (default: shipped)")
    args = ap.parse_args(argv)
    if not 1 <= args.repeats <= 18:
        ap.error("--repeats must be within 1..18")
    try:
        bundle = load_bundle(args.weights)
    except Exception as exc:  # any reason: fall back to the architecture alone
        bundle = random_bundle(preset("lite"), seed=0)
        bundle.info["weights"] = f"lite config, random init (shipped weights not loaded: {exc})"
    with tempfile.TemporaryDirectory() as tmp:
        refs = references(Path(tmp))
        for device in args.devices:
            for size in args.sizes:
                print(json.dumps(bench(bundle, device, size, args.repeats, refs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
