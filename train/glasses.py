"""Fit the glasses reader: does a dropped photo show glasses?

    python -m train.glasses --faces ../shared/data/faces/utkface [--gallery resources/gallery]

Why: the real-texture stage copies a photo's detail around the eyes, brows and nose in
full (lashes, irises, brow hair), so a photo with glasses lent the drawn face a ghost of
its frame along the brows and across the nose.  The gallery is screened for glasses by
eye (``train/gallery_screened.txt``); a photo a user drops is not.  When this reader says
"glasses", the stage copies detail in full only on the eyes themselves (a narrow margin),
the lower nose and the mouth (:data:`facesketch.engine.real_pixels.GLASSES_MARGINS`).

1. **Data.**  Positives: the UTKFace photos kept out of the gallery for glasses (their
   screening reason says so), aligned as a dropped photo is.  Negatives: the gallery's
   faces (screened: none wears glasses).
2. **Features.**  dlib's 128-d face descriptor, as the engine reads it of an aligned
   face (:func:`facesketch.engine.real_pixels.render_descriptor`, at the engine's
   canvas).  It tells glasses far better than edges across the nose bridge or below
   the eyes did (cross-validated AUC 0.97 against 0.93 at best).
3. **Fit.**  Ridge regression to +-1 with a bias (``--l2`` chosen by 5-fold AUC), the
   threshold at the ``--false-alarms`` quantile of the negatives' cross-validated
   scores.
4. **Install.**  ``glasses.json`` beside the gallery: weights, bias, threshold and the
   checks.  It depends on dlib's descriptor model only (a declared dependency), not on
   facesketch's networks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: The reader's file, beside the gallery.
READER_FILE = "glasses.json"


def screened_glasses(listing: Path) -> list[str]:
    """File names that ``gallery_screened.txt`` keeps out for glasses."""
    names = []
    for line in listing.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, why = line.partition(" ")
        if "glasses" in why:
            names.append(name)
    return names


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint index sets covering ``range(n)`` (a fixed shuffle)."""
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def fit_ridge(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weights and bias of ridge regression of ``y`` (0/1) coded +-1 on ``x`` (the bias
    not penalised)."""
    xb = np.c_[x, np.ones(len(x))]
    pen = l2 * np.eye(xb.shape[1])
    pen[-1, -1] = 0.0
    w = np.linalg.solve(xb.T @ xb + pen, xb.T @ (2.0 * y - 1.0))
    return w[:-1], float(w[-1])


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Share of (positive, negative) pairs ranked right (ties half)."""
    p, n = pos[:, None], neg[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def cross_scores(x: np.ndarray, y: np.ndarray, l2: float, k: int = 5, seed: int = 0) -> np.ndarray:
    """Each sample's score from a reader fitted without its fold."""
    out = np.zeros(len(y))
    for f in folds(len(y), k, seed):
        rest = np.setdiff1d(np.arange(len(y)), f)
        w, b = fit_ridge(x[rest], y[rest], l2)
        out[f] = x[f] @ w + b
    return out


def fit_reader(
    pos: np.ndarray, neg: np.ndarray, l2s: tuple[float, ...], false_alarms: float
) -> dict[str, Any]:
    """The reader (weights, bias, threshold) and its cross-validated checks."""
    x = np.concatenate([pos, neg]).astype(np.float64)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    tried = {}
    for l2 in l2s:
        s = cross_scores(x, y, l2)
        tried[l2] = (auc(s[y == 1], s[y == 0]), s)
    best = max(tried, key=lambda v: tried[v][0])
    area, s = tried[best]
    threshold = float(np.quantile(s[y == 0], 1.0 - false_alarms))
    w, b = fit_ridge(x, y, best)
    return {
        "weight": [round(float(v), 7) for v in w],
        "bias": round(b, 7),
        "threshold": round(threshold, 7),
        "l2": best,
        "cv_auc": round(area, 4),
        "cv_auc_by_l2": {str(k): round(v[0], 4) for k, v in tried.items()},
        "cv_found": round(float((s[y == 1] > threshold).mean()), 4),
        "cv_false_alarms": round(float((s[y == 0] > threshold).mean()), 4),
        "positives": int(len(pos)),
        "negatives": int(len(neg)),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, required=True, help="UTKFace photo folder")
    ap.add_argument("--gallery", type=Path, default=Path("resources/gallery"))
    ap.add_argument(
        "--screened", type=Path, default=Path(__file__).with_name("gallery_screened.txt")
    )
    ap.add_argument("--l2", type=float, nargs="+", default=(0.03, 0.1, 0.3, 1.0))
    ap.add_argument("--false-alarms", type=float, default=0.03)
    ap.add_argument("--dry-run", action="store_true", help="fit and report, do not install")
    args = ap.parse_args(argv)
    from facesketch.engine.appearance import AppearanceError, align_reference
    from facesketch.engine.bundle import INTERNAL_CANVAS
    from facesketch.engine.gallery import Gallery
    from facesketch.engine.real_pixels import render_descriptor

    t0 = time.time()
    names = screened_glasses(args.screened)
    files = {p.name: p for p in args.faces.rglob("*.jpg")}
    pos = []
    for name in names:
        if name not in files:
            continue
        try:
            face = align_reference(files[name], INTERNAL_CANVAS).image
        except AppearanceError:
            continue
        d = render_descriptor(face)
        if d is not None:
            pos.append(d)
    gallery = Gallery.load(args.gallery)
    neg = [render_descriptor(gallery.image(i)) for i in range(gallery.size)]
    neg = [d for d in neg if d is not None]
    if len(pos) < 20 or len(neg) < 100:
        print(f"too few faces to fit: {len(pos)} with glasses, {len(neg)} without", file=sys.stderr)
        return 2
    reader = fit_reader(np.array(pos), np.array(neg), tuple(args.l2), args.false_alarms)
    reader.update(
        {
            "features": "dlib face descriptor (real_pixels.render_descriptor) of the face "
            f"aligned at {INTERNAL_CANVAS} px",
            "data": f"{len(pos)} UTKFace photos screened out of the gallery for glasses "
            f"({args.screened.name}) against the {len(neg)} gallery faces",
            "command": "python -m train.glasses --faces " + str(args.faces),
            "seconds": round(time.time() - t0, 1),
        }
    )
    print(json.dumps({k: v for k, v in reader.items() if k != "weight"}, indent=2))
    if not args.dry_run:
        out = args.gallery / READER_FILE
        out.write_text(json.dumps(reader, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
