"""Fit the gallery's drawn-gender reader (who may lend a drawing its texture).

    python -m train.drawn_gender --data /work/cache/prepared --gallery resources/gallery \
        [--pairs ../shared/data/sketches/cufs_train] [--render-pairs runs/render_map]

The real-texture stage picks the gallery face nearest the render's dlib descriptor
(facesketch/engine/real_pixels.py).  The networks render many drawn men softly, and a
soft face reads as a woman: of the 58 men among the 88 CUHK drawings (gender read from
their photos), 33 renders read as women and 35 got a woman's texture, which made up
their eyes and lips.  The drawing itself tells better: a logistic regression on the
sketch's own geometry latents (what the component encoders see, pooled as the gallery
stores them) reads the drawn gender right for 87 % of validation sketches (78 % of them
roughened as a hand draws) and 84 % of CUHK drawings.  When it is confident
(:data:`facesketch.engine.real_pixels.GENDER_MARGIN`) the stage lends texture only from
faces of that gender.

1. **Data.**  UTKFace faces of the prepared data (gender from the file name), their
   sketches as prepared (HED + Canny, the app's photo-to-sketch), the shipped E_sketch
   of each component, pooled to the gallery's grid and concatenated
   (:func:`facesketch.engine.gallery.drawn_features`).
2. **Fit.**  Standardised features, logistic regression with an L2 penalty (``--l2``
   0.1, the best of 1e-4 .. 1 on the validation split: 87 % there, 97 % on the
   training faces with almost none), by L-BFGS from zero, so a refit gives the same
   weights; the standardisation is folded into one weight vector and a bias.
   Each training sketch also goes in once redrawn by the rough-sketch synthesis
   (``--rough``, strength 0.25-1): fitted on clean sketches only, the reader read
   validation sketches roughened at strength 1 right 66 % of the time (87 % clean), and
   mostly as men, and a hand in the app draws rough strokes.
3. **Checks.**  Accuracy on the validation split, clean and roughened (0.5, 1); with
   ``--pairs``, the share of CUHK drawings (turned into lines as the app does) read as
   women, how many are read with confidence, and, with ``--render-pairs`` (the render
   map's cached photo descriptors, ``train.render_map``), the agreement with the gender
   a photo-descriptor classifier reads from each drawing's photo.
4. **Install.**  ``gender_weight``/``gender_bias`` into the gallery's arrays, the record
   (networks, data, fit, checks) into ``gallery.json`` under ``drawn_gender``.  A rebuild
   of the gallery keeps it; a change of the local networks calls for a refit (a test
   compares the record with the shipped weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Networks whose geometry latents the reader takes (read_manifest names).
LATENT_NETWORKS = tuple(
    f"local_{c}" for c in ("left_eye", "right_eye", "nose", "mouth", "background")
)
SOURCE = "utkface"


def network_shas() -> dict[str, str]:
    """sha256 of the shipped component networks whose latents the reader reads."""
    from facesketch.engine.weights import read_manifest

    return {name: read_manifest(name)["sha256"] for name in LATENT_NETWORKS}


def labelled_items(data: Path) -> list[dict[str, Any]]:
    """Prepared UTKFace items with ``female`` (0/1) from their file names."""
    from train.gallery import parse_name

    items = json.loads((data / "index.json").read_text(encoding="utf-8"))["items"]
    out = []
    for item in items:
        if item.get("source") != SOURCE:
            continue
        lab = parse_name(Path(item["file"]).name)
        if lab is None:
            continue
        out.append({**item, "female": float(lab["gender"] == "female")})
    return out


def sketch_features(sketches: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """(N, D) drawn features of uint8 sketches at the networks' canvas, as the engine
    pools them (:func:`facesketch.engine.gallery.drawn_features`)."""
    import torch

    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.gallery import drawn_features, pool_latent
    from facesketch.imaging import sketch_to_tensor
    from facesketch.layout import COMPONENTS, FaceLayout
    from facesketch.models.face_model import FaceModel

    bundle = load_bundle(default_appearance=False)
    lay = FaceLayout.default(bundle.canvas)
    rows = []
    with torch.inference_mode():
        for s in range(0, len(sketches), batch):
            sk = torch.cat([sketch_to_tensor(x) for x in sketches[s : s + batch]])
            pooled = {
                c: pool_latent(bundle.components[c].geometry(FaceModel.component_input(sk, lay, c)))
                for c in COMPONENTS
            }
            rows.append(
                np.stack(
                    [drawn_features({c: pooled[c][i] for c in COMPONENTS}) for i in range(len(sk))]
                )
            )
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


def rough_copies(
    sketches: list[np.ndarray], low: float, high: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each sketch redrawn by the rough-sketch synthesis (wobbly, broken, overshooting
    strokes: what a hand in the app draws) at a strength drawn in ``low..high``."""
    from facesketch.sketch.rough import roughen_sketch

    strengths = rng.uniform(low, high, len(sketches))
    seeds = rng.integers(0, 2**31 - 1, len(sketches))
    return [
        roughen_sketch(sk, float(s), int(seed))
        for sk, s, seed in zip(sketches, strengths, seeds, strict=True)
    ]


def fit_reader(
    x: np.ndarray, y: np.ndarray, l2: float = 0.1, iterations: int = 300
) -> tuple[np.ndarray, float]:
    """Logistic regression of ``y`` (1 = female) on standardised ``x`` with an L2
    penalty ``l2`` on the weights, by L-BFGS from zero (deterministic); returns (weight,
    bias) on the raw features (the standardisation folded in)."""
    import torch

    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = torch.tensor((x - mean) / scale, dtype=torch.float32)
    ys = torch.tensor(y, dtype=torch.float32)
    lin = torch.nn.Linear(x.shape[1], 1)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(
        lin.parameters(), lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(xs)[:, 0], ys)
        loss = loss + l2 * (lin.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = lin.weight.detach().numpy()[0].astype(np.float64) / scale
    b = float(lin.bias.detach().numpy()[0]) - float((w * mean).sum())
    return w.astype(np.float32), b


def p_female(weight: np.ndarray, bias: float, x: np.ndarray) -> np.ndarray:
    """Probability that each row of ``x`` is a drawing of a woman."""
    z = np.asarray(x, np.float64) @ np.asarray(weight, np.float64) + float(bias)
    return 1.0 / (1.0 + np.exp(-z))


def summary(p: np.ndarray, y: np.ndarray | None, margin: float) -> dict[str, Any]:
    """Accuracy (when labels are known), share read as women, confident share."""
    sure = np.abs(p - 0.5) >= margin
    out: dict[str, Any] = {
        "faces": len(p),
        "read_as_women": round(float((p > 0.5).mean()), 3),
        "confident": round(float(sure.mean()), 3),
    }
    if y is not None:
        right = (p > 0.5) == (y > 0.5)
        out["accuracy"] = round(float(right.mean()), 3)
        out["accuracy_when_confident"] = round(float(right[sure].mean()), 3) if sure.any() else None
    return out


def photo_gender(render_pairs: Path, data: Path, photos: np.ndarray) -> np.ndarray | None:
    """Gender (1 = female) of ``photos`` (dlib descriptors) by a ridge classifier on the
    render map's cached photo descriptors of labelled training faces; None without them."""
    from train.gallery import parse_name
    from train.render_map import PAIRS_FILE

    path = render_pairs / PAIRS_FILE
    if not path.is_file():
        return None
    index = json.loads((data / "index.json").read_text(encoding="utf-8"))["items"]
    files = {i["id"]: Path(i["file"]).name for i in index}
    with np.load(path, allow_pickle=False) as z:
        ids, split, g = z["ids"], z["split"], z["G"]
    lab = [parse_name(files.get(str(i), "")) for i in ids]
    keep = np.array([x is not None for x in lab]) & (split == "train")
    if keep.sum() < 10:
        return None
    y = np.array([x["gender"] == "female" for x, k in zip(lab, keep, strict=True) if k], float)
    a = np.c_[g[keep], np.ones(int(keep.sum()))]
    w = np.linalg.solve(a.T @ a + 0.1 * np.eye(a.shape[1]), a.T @ y)
    return ((np.c_[photos, np.ones(len(photos))] @ w) > 0.5).astype(float)


def check_cuhk(
    weight: np.ndarray,
    bias: float,
    pairs: Path,
    limit: int,
    margin: float,
    render_pairs: Path | None,
    data: Path,
) -> dict[str, Any]:
    """The reader on CUHK drawings as the app gets them (lines, at the canvas)."""
    from facesketch.engine.pipeline import prepare_sketch
    from facesketch.engine.real_pixels import render_descriptor
    from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing
    from facesketch.face.sketch_pairs import aligned_pairs, print_skipped

    sketches, photos = [], []
    for _path, aligned, drawing in aligned_pairs(pairs, 512, limit, print_skipped):
        lines = drawing_to_lines(drawing) if is_shaded_drawing(drawing) else drawing
        sketches.append(prepare_sketch(lines, 256))
        photos.append(render_descriptor(np.asarray(aligned.image)))
    p = p_female(weight, bias, sketch_features(sketches))
    truth = None
    if render_pairs is not None and all(d is not None for d in photos):
        truth = photo_gender(render_pairs, data, np.stack(photos))
    out = summary(p, truth, margin)
    out["truth"] = "gender read from the photos' dlib descriptors" if truth is not None else None
    return out


def install(gallery: Path, weight: np.ndarray, bias: float, record: dict[str, Any]) -> dict:
    """Write the reader and its record into the gallery in ``gallery`` (in place)."""
    from train.gallery import install_fitted

    arrays = {
        "gender_weight": np.asarray(weight, np.float32),
        "gender_bias": np.asarray([bias], np.float32),
    }
    return install_fitted(gallery, "drawn_gender", arrays, record)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="prepared data root")
    ap.add_argument("--gallery", type=Path, default=Path("resources/gallery"))
    ap.add_argument("--l2", type=float, default=0.1, help="weight penalty (chosen on val)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument(
        "--rough",
        type=float,
        nargs=2,
        default=(0.25, 1.0),
        metavar=("LOW", "HIGH"),
        help="each training sketch also redrawn rough at a strength in LOW..HIGH (0 0: off)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=Path, default=None, help="CUHK pairs to check on")
    ap.add_argument("--limit", type=int, default=88)
    ap.add_argument(
        "--render-pairs", type=Path, default=None, help="train.render_map cache (photo truth)"
    )
    ap.add_argument("--dry-run", action="store_true", help="fit and check, do not install")
    args = ap.parse_args(argv)
    if not (args.data / "index.json").is_file():
        print(f"no prepared data at {args.data} (run train.prepare)", file=sys.stderr)
        return 2
    import cv2
    import torch

    from facesketch.engine.real_pixels import GENDER_MARGIN

    torch.set_num_threads(max(1, args.threads))
    items = labelled_items(args.data)
    sketches, kept = [], []
    for item in items:
        sk = cv2.imread(str(args.data / "256" / "sketch" / f"{item['id']}.png"), 0)
        if sk is not None:
            sketches.append(sk)
            kept.append(item)
    train = np.array([i["split"] == "train" for i in kept])
    y = np.array([i["female"] for i in kept])
    women = int(y[train].sum())
    if min(women, int(train.sum()) - women) < 2 or (~train).sum() < 1:
        print(
            f"too few labelled {SOURCE} sketches in {args.data} ({women} women and "
            f"{int(train.sum()) - women} men to fit on, {int((~train).sum())} to check on)",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    x = sketch_features(sketches)
    fit_x, fit_y = x[train], y[train]
    low, high = args.rough
    if high > 0:
        rng = np.random.default_rng(args.seed)
        idx = np.flatnonzero(train)
        rough = rough_copies([sketches[i] for i in idx], low, high, rng)
        fit_x = np.concatenate([fit_x, sketch_features(rough)])
        fit_y = np.concatenate([fit_y, y[idx]])
    t_feat = time.perf_counter() - t0
    t1 = time.perf_counter()
    weight, bias = fit_reader(fit_x, fit_y, args.l2, args.iterations)
    t_fit = time.perf_counter() - t1
    val = np.flatnonzero(~train)
    checks: dict[str, Any] = {
        "train": summary(p_female(weight, bias, x[train]), y[train], GENDER_MARGIN),
        "validation": summary(p_female(weight, bias, x[val]), y[val], GENDER_MARGIN),
    }
    for strength in (0.5, 1.0):
        rough_val = rough_copies(
            [sketches[i] for i in val], strength, strength, np.random.default_rng(1)
        )
        checks[f"validation_rough_{strength}"] = summary(
            p_female(weight, bias, sketch_features(rough_val)), y[val], GENDER_MARGIN
        )
    if args.pairs is not None:
        checks["cuhk"] = check_cuhk(
            weight, bias, args.pairs, args.limit, GENDER_MARGIN, args.render_pairs, args.data
        )
    record = {
        "networks": network_shas(),
        "data": str(args.data),
        "faces": {"train": int(train.sum()), "val": int((~train).sum())},
        "fit": {
            "l2": args.l2,
            "iterations": args.iterations,
            "rough": list(args.rough),
            "seed": args.seed,
            "seconds": round(t_fit, 1),
            "feature_seconds": round(t_feat, 1),
        },
        "margin": GENDER_MARGIN,
        "threads": torch.get_num_threads(),
        "checks": checks,
    }
    from train.gallery import report_and_install

    return report_and_install(
        record, args.gallery, args.dry_run, lambda: install(args.gallery, weight, bias, record)
    )


if __name__ == "__main__":
    raise SystemExit(main())
