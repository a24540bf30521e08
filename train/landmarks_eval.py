"""Evaluate the sketch landmark network: NME (mean point error / inter-ocular distance,
eye centres) on the validation sketches, clean, rough (strength 0.7, evaluation seeds
never used in training) and moved by a seeded random similarity, and on artist sketches
of real people (CUHK pairs, aligned by their photos; targets = the photos' dlib
landmarks).  The mean training face is the baseline a network must beat.

    python -m train.landmarks_eval --weights resources/weights/landmarks.safetensors \
        --data /work/cache/prepared --pairs ../shared/data/sketches/cufs_train

Writes ``<out>/metrics.json`` and ``<out>/contact.png`` (green: target, red: prediction).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from train.landmarks import (
    SOURCE_SIZE,
    LandmarkSamples,
    PreparedLandmarkFaces,
    apply_matrix,
    random_similarity,
)


def _nme(pred: np.ndarray, target: np.ndarray) -> float:
    iod = np.linalg.norm(target[36:42].mean(0) - target[42:48].mean(0))
    return float(np.linalg.norm(pred - target, axis=1).mean() / max(iod, 1e-6))


def _summary(errors: list[float]) -> dict[str, float]:
    e = np.asarray(errors)
    return {
        "nme": round(float(e.mean()), 4),
        "median": round(float(np.median(e)), 4),
        "failure_rate_0.1": round(float((e > 0.1).mean()), 4),
        "n": int(len(e)),
    }


def _sheet_tile(sketch: np.ndarray, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    img = cv2.cvtColor(sketch, cv2.COLOR_GRAY2BGR)
    for pts, colour in ((target, (0, 160, 0)), (pred, (0, 0, 220))):
        for x, y in pts:
            cv2.circle(img, (round(float(x)), round(float(y))), 1, colour, -1)
    return cv2.resize(img, (192, 192), interpolation=cv2.INTER_AREA)


def cuhk_pairs(root: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """CUHK sketch/photo pairs on the 256 layout: raw drawing, line version, targets."""
    from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing
    from facesketch.face.sketch_pairs import aligned_pairs, print_skipped

    out = []
    for path, aligned, sketch in aligned_pairs(root, SOURCE_SIZE, limit, print_skipped):
        lines = drawing_to_lines(sketch) if is_shaded_drawing(sketch) else sketch
        out.append({"name": path.stem, "raw": sketch, "lines": lines, "target": aligned.landmarks})
    return out


def evaluate(
    weights: str, data: Path | None, pairs: Path | None, limit: int | None, out: Path
) -> dict[str, Any]:
    """Every NME of the module docstring, with the mean-face baseline beside each."""
    from facesketch.engine.landmarks import LandmarkPredictor
    from facesketch.imaging import tensor_to_image
    from train.landmarks_data import load_landmarks

    pred = LandmarkPredictor("cpu", weights=weights)
    metrics: dict[str, Any] = {"weights": str(weights)}
    tiles: list[np.ndarray] = []
    mean_face = None
    if data is not None:
        marks = load_landmarks(data)
        train_ids = PreparedLandmarkFaces(str(data), "train").ids
        mean_face = np.mean([marks[i] for i in train_ids], 0)
        base = PreparedLandmarkFaces(str(data), "val")
        t = {"val_strength": 0.7}
        n = min(len(base), limit or len(base))
        for mode in ("clean", "rough", "similarity"):
            ds = LandmarkSamples(base, t, SOURCE_SIZE, mode=mode)
            errs, mean_errs = [], []
            t0 = time.perf_counter()
            for i in range(n):
                item = ds[i]
                sketch = tensor_to_image(item["sketch"])
                target = item["landmarks"].numpy()
                p = pred.predict(sketch)
                errs.append(_nme(p, target))
                mean_errs.append(_nme(_moved_mean(mean_face, mode, i, t), target))
                if i < 4:
                    tiles.append(_sheet_tile(sketch, p, target))
            metrics[f"val_{mode}"] = {
                **_summary(errs),
                "mean_face_nme": _summary(mean_errs)["nme"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(mode, metrics[f"val_{mode}"], flush=True)
    if pairs is not None:
        items = cuhk_pairs(pairs, limit)
        for kind in ("lines", "raw"):
            errs = [_nme(pred.predict(it[kind]), it["target"]) for it in items]
            metrics[f"cuhk_{kind}"] = _summary(errs)
            if mean_face is not None:
                metrics[f"cuhk_{kind}"]["mean_face_nme"] = _summary(
                    [_nme(mean_face, it["target"]) for it in items]
                )["nme"]
            print(f"cuhk {kind}", metrics[f"cuhk_{kind}"], flush=True)
        for it in items[:4]:
            tiles.append(_sheet_tile(it["lines"], pred.predict(it["lines"]), it["target"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if tiles:
        rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles) - len(tiles) % 4, 4)]
        cv2.imwrite(str(out / "contact.png"), np.vstack(rows))
    return metrics


def _moved_mean(mean_face: np.ndarray, mode: str, i: int, t: dict) -> np.ndarray:
    """The mean face moved like the evaluated sample (same seeded similarity)."""
    from train.landmarks import EVAL_SEED_BASE, similarity_matrix

    if mode == "similarity":
        m = random_similarity(
            np.random.default_rng(EVAL_SEED_BASE + i), t, SOURCE_SIZE, SOURCE_SIZE
        )
    else:
        m = similarity_matrix(SOURCE_SIZE, SOURCE_SIZE, 1.0, 0.0, (0.0, 0.0))
    return apply_matrix(m, mean_face)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m train.landmarks_eval", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--weights", default="landmarks", help="weights file or registry name")
    ap.add_argument("--data", type=Path, default=None, help="prepared data root (val split)")
    ap.add_argument("--pairs", type=Path, default=None, help="CUHK-style sketch/photo folder")
    ap.add_argument("--limit", type=int, default=None, help="at most N items per set")
    ap.add_argument("--out", type=Path, default=Path("runs/landmarks_eval"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.data is None and args.pairs is None:
        ap.error("give --data and/or --pairs")
    evaluate(args.weights, args.data, args.pairs, args.limit, args.out)
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
