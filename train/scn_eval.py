"""Does stroke calibration help?  Sketch F1 and face distances on validation faces.

For every validation face: its clean sketch (HED contours + Canny details) and a rough
redrawing of it (``roughen_sketch`` at ``--rough`` = 0.7, seeds >= EVAL_SEED_BASE +
100000, never used in training nor in train.scn's validation).  Both go through the
app's own render path (``FacePipeline.render_sketch``: the SCN on each component
input, blended by the strength), and the sketch the networks received is compared:

- line F1 (``train.eval.edge_f1``: ink = pixels darker than 128, a line pixel of one
  sketch matches when the other has ink within 2 px (elliptical window), no thinning)
  of the calibrated rough sketch vs the clean sketch, against the raw rough sketch's F1
  (strength 0), for each strength of ``--strengths``; and of the calibrated clean sketch
  vs the clean sketch (what calibration costs a good drawing);
- faces (the first ``--face-limit`` faces; a render costs ~2 s on a busy CPU thread):
  the face rendered from the rough sketch without and with calibration (at the best
  strength: largest rough gain with a clean loss <= 0.03) against the face rendered
  from the clean sketch: dlib 68-landmark error over the inter-ocular distance, and the
  dlib face-descriptor distance (ResNet, face_recognition_models).

Writes a JSON report and a contact sheet: rough | calibrated | clean | face from each.

    python -m train.scn_eval --scn runs/scn17/export/scn.safetensors --out runs/scn17/eval
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from train.face_metrics import FaceMeter, landmark_error
from train.scn import EVAL_SEED_BASE

#: Offset of the evaluation seeds past the validation seeds of train.scn.
EVAL_SEED_OFFSET = 100_000
#: Largest F1 a clean sketch may lose to calibration at the chosen strength.
CLEAN_LOSS_MAX = 0.03


def calibrate(scn: Any, sketch: np.ndarray, strength: float, canvas: int = 256) -> np.ndarray:
    """The sketch the app's networks receive: the SCN on each component input
    (``component_input``), blended by ``strength``, assembled like the pipeline does
    (background, then the windows in PASTE_ORDER).  Without the generators, so a
    strength sweep is cheap; tests check it against ``FacePipeline.render_sketch``."""
    import torch

    from facesketch.engine.pipeline import prepare_sketch
    from facesketch.imaging import sketch_to_tensor, tensor_to_image
    from facesketch.layout import BACKGROUND, COMPONENTS, PASTE_ORDER, FaceLayout
    from facesketch.models.local import SKETCH_BLANK, component_input

    lay = FaceLayout.default(canvas)
    sk_t = sketch_to_tensor(prepare_sketch(np.asarray(sketch), canvas))
    parts = {}
    with torch.inference_mode():
        for name in COMPONENTS:
            x = component_input(sk_t, lay, name, SKETCH_BLANK)
            if strength > 0:
                x = torch.lerp(x, scn(x).to(x.dtype), float(strength))
            parts[name] = tensor_to_image(x[0])
    out = parts[BACKGROUND].copy()
    for name in PASTE_ORDER:
        rows, cols = lay.window(name).slices
        out[rows, cols] = parts[name]
    return out


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def evaluate(
    pipe: Any,
    items: list[tuple[str, np.ndarray]],
    strengths: list[float],
    rough_strength: float,
    meter: FaceMeter | None,
    face_limit: int = 30,
    sheet_rows: int = 4,
) -> tuple[dict[str, Any], list[list[np.ndarray]]]:
    """Metrics (see the module docstring) and contact-sheet rows."""
    from facesketch.sketch.rough import roughen_sketch
    from train.eval import edge_f1

    scn, size = pipe.bundle.scn, pipe.canvas
    levels = sorted({0.0, *strengths})
    f1_rough: dict[float, list[float]] = {s: [] for s in levels}
    f1_clean: dict[float, list[float]] = {s: [] for s in levels}
    roughs = []
    for i, (_id, clean) in enumerate(items):
        rough = roughen_sketch(clean, rough_strength, EVAL_SEED_BASE + EVAL_SEED_OFFSET + i)
        roughs.append(rough)
        for s in levels:
            f1_rough[s].append(edge_f1(calibrate(scn, rough, s, size), clean))
            f1_clean[s].append(edge_f1(calibrate(scn, clean, s, size), clean))

    mean = {s: (float(np.mean(f1_rough[s])), float(np.mean(f1_clean[s]))) for s in levels}
    raw_rough, raw_clean = mean[0.0]
    ok = [s for s in levels if s > 0 and raw_clean - mean[s][1] <= CLEAN_LOSS_MAX]
    best = max(ok, key=lambda s: mean[s][0]) if ok else 0.0
    report: dict[str, Any] = {
        "n": len(items),
        "rough_strength": rough_strength,
        "f1_metric": "train.eval.edge_f1: ink < 128, match within 2 px, no thinning",
        "f1_rough_raw": round(raw_rough, 4),
        "f1_clean_raw": round(raw_clean, 4),
        "per_strength": {
            f"{s:g}": {
                "f1_rough": round(mean[s][0], 4),
                "f1_rough_gain": round(mean[s][0] - raw_rough, 4),
                "f1_clean": round(mean[s][1], 4),
                "f1_clean_loss": round(raw_clean - mean[s][1], 4),
            }
            for s in levels
        },
        "best_strength": best,
    }

    s_face = best if best > 0 else max(levels)
    n_face = min(len(items), max(face_limit, sheet_rows))
    renders = []
    for i in range(n_face):
        clean = items[i][1]
        renders.append(
            {
                "clean": pipe.render_sketch(clean, size=size, scn_strength=0.0),
                "raw": pipe.render_sketch(roughs[i], size=size, scn_strength=0.0),
                "cal": pipe.render_sketch(roughs[i], size=size, scn_strength=s_face),
            }
        )
    if meter is not None:
        lm: dict[str, list[float]] = {"raw": [], "cal": []}
        desc: dict[str, list[float]] = {"raw": [], "cal": []}
        misses = 0
        for r in renders[:face_limit]:
            ref, got = meter(r["clean"].face), {k: meter(r[k].face) for k in ("raw", "cal")}
            if ref is None or any(v is None for v in got.values()):
                misses += 1
                continue
            for k, v in got.items():
                lm[k].append(landmark_error(v[0], ref[0]))
                desc[k].append(float(np.linalg.norm(v[1] - ref[1])))
        closer_lm = np.array(lm["cal"]) < np.array(lm["raw"])
        closer_desc = np.array(desc["cal"]) < np.array(desc["raw"])
        report["faces"] = {
            "strength": s_face,
            "compared_to": "the face rendered from the clean sketch (strength 0)",
            "n": len(lm["raw"]),
            "no_face_found": misses,
            "landmark_error_raw": _mean(lm["raw"]),
            "landmark_error_calibrated": _mean(lm["cal"]),
            "descriptor_distance_raw": _mean(desc["raw"]),
            "descriptor_distance_calibrated": _mean(desc["cal"]),
            "share_calibrated_closer_landmarks": _mean(list(closer_lm.astype(float))),
            "share_calibrated_closer_descriptor": _mean(list(closer_desc.astype(float))),
        }
    rows: list[list[np.ndarray]] = []
    for i in range(min(sheet_rows, len(renders))):
        r = renders[i]
        gray = [roughs[i], r["cal"].sketch, items[i][1]]
        faces = [r["raw"].face, r["cal"].face, r["clean"].face]
        rows.append([cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray] + faces)
    report["sheet_strength"] = s_face
    return report, rows


def contact_sheet(rows: list[list[np.ndarray]], path: Path, cell: int = 128) -> Path:
    """rough | calibrated | clean | face(rough) | face(calibrated) | face(clean), as JPEG."""
    from facesketch.imaging import write_image

    labels = ["rough", "calibrated", "clean", "face: rough", "face: calibrated", "face: clean"]
    head = np.full((18, cell * len(labels), 3), 255, np.uint8)
    for j, text in enumerate(labels):
        cv2.putText(head, text, (j * cell + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    body = [
        np.hstack([cv2.resize(c, (cell, cell), interpolation=cv2.INTER_AREA) for c in r])
        for r in rows
    ]
    return write_image(path, np.vstack([head, *body]), quality=85)


def load_items(root: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    """(id, clean uint8 sketch at 256) of the validation faces, in a fixed order."""
    from train.data import FaceDataset

    ds = FaceDataset(root, "val", size=256, augment=False)
    n = len(ds) if limit <= 0 else min(limit, len(ds))
    return [(ds.ids[i], ds.arrays(i)[2]) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m train.scn_eval", description=__doc__)
    ap.add_argument("--data", type=Path, default=None, help="prepared data root")
    ap.add_argument("--scn", type=Path, help="SCN weights (default: the installed ones)")
    ap.add_argument("--ckpt", type=Path, help="or a train.scn checkpoint (runs/<name>/ckpt.pt)")
    ap.add_argument("--weights", type=Path, help="weights folder for the other networks")
    ap.add_argument("--limit", type=int, default=0, help="validation faces (0 = all)")
    ap.add_argument("--rough", type=float, default=0.7, help="roughening strength")
    ap.add_argument("--strengths", default="0.5,0.6,0.7,0.8,0.9,1", help="SCN strengths to compare")
    ap.add_argument("--no-faces", action="store_true", help="skip the dlib face metrics")
    ap.add_argument("--face-limit", type=int, default=30, help="faces rendered and compared")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="folder for report.json + sheet")
    args = ap.parse_args(argv)

    import torch

    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.engine.weights import load_into, read_manifest
    from facesketch.models import StrokeCalibrator
    from facesketch.models.config import SCNConfig
    from train.config import default_data_root

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.weights)
    if args.scn is not None:
        conf = read_manifest(args.scn)["config"]
        scn = StrokeCalibrator(SCNConfig.from_dict(conf))
        load_into(scn, args.scn, "scn", conf)
        bundle.scn = scn.eval()
    elif args.ckpt is not None:
        from train.config import model_config

        stored = torch.load(args.ckpt, map_location="cpu", weights_only=False)
        scn = StrokeCalibrator(model_config(stored["config"]).scn)
        scn.load_state_dict(stored["nets"]["G"])
        bundle.scn = scn.eval()
        print(f"{args.ckpt}: step {stored['loop']['step']}")
    pipe = FacePipeline(bundle, "cpu")
    items = load_items(args.data or default_data_root(), args.limit)
    strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
    meter = None if args.no_faces else FaceMeter()
    t0 = time.monotonic()
    report, rows = evaluate(pipe, items, strengths, args.rough, meter, args.face_limit)
    report["wall_s"] = round(time.monotonic() - t0, 1)
    report["scn"] = str(args.scn or args.ckpt or "installed")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    sheet = contact_sheet(rows, args.out / "scn-contact.jpg")
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'report.json'} and {sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
