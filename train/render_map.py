"""Fit the gallery's render-to-photo identity map (who lends a render its texture).

    python -m train.render_map --data /work/cache/prepared --gallery resources/gallery \
        [--faces 3200] [--cache runs/render_map] [--pairs ../shared/data/sketches/cufs_train]

The real-texture stage picks the gallery face whose dlib descriptor is nearest the
render's (facesketch/engine/real_pixels.py).  A render's descriptor sits apart from
photos' ones, and among photos the nearest to it were mostly a few "hub" faces: on the
88 CUHK sketches two gallery faces served 40 renders, and the picked face was no nearer
the drawn person than a mean-shifted guess.  This fits a linear map from a render's
descriptor to the photos' descriptor space so that *the photos nearest the mapped
render are the ones nearest its true photo*:

1. **Pairs.**  Prepared faces (the validation split and ``--faces`` of the training
   split, shuffled with the seed): the app's render of each one's sketch (512, real
   texture off: what the stage identifies) and its photo, both through dlib's
   descriptor.  About 0.2 s a face on 2 cores; cached in ``--cache`` with the sha256 of
   the networks that rendered them, and resumed from there.
2. **Fit.**  ``A r + b``, started at the identity plus the mean shift, trained by
   distillation: over a batch of training pairs, the softmax over the *other* photos of
   minus the squared distance to the mapped render must match the one of minus the
   squared distance to the render's own photo (temperature ``--tau``).  A regression to
   the photo descriptor would shrink every render towards the mean photo and make the
   hubs worse; this keeps the ranking, which is what the pick uses.  Last, each
   dimension is given the photos' mean and spread: the mapped renders still crowd.
3. **Checks.**  On the validation pairs: the descriptor distance between each face's
   photo and the photo picked for its render among the *other* validation faces (as the
   gallery never holds the drawn person), raw, mean-shifted and mapped; with
   ``--pairs``, the same on CUHK artist sketches against the shipped gallery, and how
   many renders the most-picked face serves.
4. **Install.**  The map goes into the gallery (``render_map_weight``/``_bias``) and its
   record (networks, pairs, fit, checks) into ``gallery.json`` under ``render_map``.
   A rebuild of the gallery keeps it; a change of the fusion or the local networks
   calls for a refit (a test compares the record with the shipped weights).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: Networks whose renders the map is fitted to (read_manifest names).
RENDER_NETWORKS = (
    "fusion",
    "up",
    *(f"local_{c}" for c in ("left_eye", "right_eye", "nose", "mouth", "background")),
)
PAIRS_FILE = "pairs.npz"
#: Render size the stage identifies at (the app's 2x output).
RENDER_SIZE = 512


def network_shas() -> dict[str, str]:
    """sha256 of the shipped networks that render the faces the map is fitted to."""
    from facesketch.engine.weights import read_manifest

    return {name: read_manifest(name)["sha256"] for name in RENDER_NETWORKS}


def prepared_items(data: Path, n_train: int, seed: int = 0) -> list[dict[str, Any]]:
    """The validation split and ``n_train`` faces of the training split (shuffled)."""
    items = json.loads((data / "index.json").read_text(encoding="utf-8"))["items"]
    random.Random(seed).shuffle(items)
    val = [i for i in items if i["split"] == "val"]
    return val + [i for i in items if i["split"] == "train"][:n_train]


def collect_pairs(
    items: Iterable[tuple[str, str, Callable[[], tuple[np.ndarray, np.ndarray]]]],
    describe_render: Callable[[np.ndarray], np.ndarray | None],
    describe_photo: Callable[[np.ndarray], np.ndarray | None],
    cache: Path,
    networks: dict[str, str],
    every: int = 100,
) -> dict[str, np.ndarray]:
    """Descriptor pairs of ``items`` ((id, split, load -> (sketch, photo))), resumed from
    ``cache/pairs.npz`` when it was made by the same ``networks``; faces dlib finds no
    face in are left out.  Returns ids, split, R (render) and G (photo) arrays."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / PAIRS_FILE
    ids: list[str] = []
    split: list[str] = []
    rs: list[np.ndarray] = []
    gs: list[np.ndarray] = []
    done: set[str] = set()
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["networks"])) == networks:
                ids, split = list(z["ids"]), list(z["split"])
                rs, gs = list(z["R"]), list(z["G"])
                done = set(str(x) for x in z["tried"])
            else:
                print(f"{path}: made by other networks, starting again", flush=True)

    def save() -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            ids=np.array(ids, dtype=str),
            split=np.array(split, dtype=str),
            R=np.array(rs, np.float32).reshape(-1, 128),
            G=np.array(gs, np.float32).reshape(-1, 128),
            tried=np.array(sorted(done), dtype=str),
            networks=np.array(json.dumps(networks, sort_keys=True)),
        )
        tmp.replace(path)

    t0, fresh = time.perf_counter(), 0
    for key, part, load in items:
        if key in done:
            continue
        sketch, photo = load()
        r, g = describe_render(sketch), describe_photo(photo)
        done.add(key)
        fresh += 1
        if r is not None and g is not None:
            ids.append(key)
            split.append(part)
            rs.append(np.asarray(r, np.float32))
            gs.append(np.asarray(g, np.float32))
        if fresh % every == 0:
            save()
            print(
                f"{len(done)} faces, {len(ids)} pairs, {time.perf_counter() - t0:.0f} s", flush=True
            )
    save()
    return {
        "ids": np.array(ids, dtype=str),
        "split": np.array(split, dtype=str),
        "R": np.array(rs, np.float32).reshape(-1, 128),
        "G": np.array(gs, np.float32).reshape(-1, 128),
    }


def fit_map(
    renders: np.ndarray,
    photos: np.ndarray,
    steps: int = 2000,
    batch: int = 256,
    tau: float = 0.1,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(W (128, 128), b (128,)) so that the photos nearest ``W r + b`` rank like those
    nearest the render's own photo (the distillation of the module docstring)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    r = torch.as_tensor(renders, dtype=torch.float32)
    g = torch.as_tensor(photos, dtype=torch.float32)
    dim = r.shape[1]
    weight = torch.eye(dim).requires_grad_(True)
    bias = (g.mean(0) - r.mean(0)).clone().requires_grad_(True)
    opt = torch.optim.AdamW([weight, bias], lr, weight_decay=weight_decay)
    n = len(r)
    size = min(batch, n)
    eye = torch.eye(size, dtype=torch.bool)
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[:size]
        gi, mapped = g[idx], r[idx] @ weight.T + bias
        target = (torch.cdist(gi, gi) ** 2).masked_fill(eye, 1e4)
        pred = (torch.cdist(mapped, gi) ** 2).masked_fill(eye, 1e4)
        loss = -(F.softmax(-target / tau, 1) * F.log_softmax(-pred / tau, 1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        # the mapped renders still crowd (their spread is a render's, smaller than the
        # photos'): given the photos' spread per dimension, fewer renders share one
        # nearest photo (CUHK: the most-picked face served 36 of 88, 20 after this)
        mapped = r @ weight.T + bias
        scale = g.std(0) / mapped.std(0).clamp_min(1e-6)
        weight = weight * scale[:, None]
        bias = (bias - mapped.mean(0)) * scale + g.mean(0)
    return weight.numpy().astype(np.float32), bias.numpy().astype(np.float32)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0))


def pick_quality(
    queries: np.ndarray, photos: np.ndarray, own: np.ndarray, self_out: bool
) -> dict[str, float]:
    """Descriptor distance between each query's true photo (``own``) and the photo of
    ``photos`` nearest the query (with ``self_out``: the query's own row left out, the
    photos being the queries' own), and how many queries the most-picked photo serves."""
    d = _dist(queries, photos)
    if self_out:
        np.fill_diagonal(d, np.inf)
    pick = d.argmin(1)
    err = np.sqrt(((photos[pick] - own) ** 2).sum(1))
    counts = Counter(pick.tolist())
    return {
        "distance_to_true_photo": round(float(err.mean()), 4),
        "distinct_picks": len(counts),
        "most_picked_serves": counts.most_common(1)[0][1],
    }


def apply_map(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The map on a batch of render descriptors (N, 128)."""
    return (x @ weight.T + bias).astype(np.float32)


def check(weight: np.ndarray, bias: np.ndarray, pairs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Raw, mean-shifted and mapped picks on the validation pairs (the module's step 3)."""
    tr, va = pairs["split"] == "train", pairs["split"] == "val"
    r, g = pairs["R"], pairs["G"]
    shift = g[tr].mean(0) - r[tr].mean(0)
    out = {}
    for name, q in (
        ("raw", r[va]),
        ("mean_shift", r[va] + shift),
        ("map", apply_map(weight, bias, r[va])),
    ):
        out[name] = pick_quality(q, g[va], g[va], self_out=True)
    out["faces"] = int(va.sum())
    return out


def check_cuhk(
    weight: np.ndarray,
    bias: np.ndarray,
    pairs_root: Path,
    limit: int,
    render: Callable[[np.ndarray], np.ndarray | None],
) -> dict[str, Any]:
    """The same picks on CUHK artist sketches against the shipped gallery (top-1, no
    shape re-ranking), with the best possible pick for reference."""
    from facesketch.engine.gallery import Gallery
    from facesketch.engine.real_pixels import render_descriptor
    from facesketch.imaging import tensor_to_image
    from train.eval import load_sketch_pairs

    gal = Gallery.load()
    assert gal.descriptors is not None
    qs, own = [], []
    for p in load_sketch_pairs(pairs_root, RENDER_SIZE, limit, lines=True):
        q = render(tensor_to_image(p["input"]))
        photo = render_descriptor(tensor_to_image(p["image"]))
        if q is not None and photo is not None:
            qs.append(q)
            own.append(photo)
    q, o = np.array(qs, np.float32), np.array(own, np.float32)
    out = {
        "raw": pick_quality(q, gal.descriptors, o, self_out=False),
        "map": pick_quality(apply_map(weight, bias, q), gal.descriptors, o, self_out=False),
        "best_possible": round(float(_dist(o, gal.descriptors).min(1).mean()), 4),
        "pairs": len(q),
    }
    return out


def install(
    gallery: Path, weight: np.ndarray, bias: np.ndarray, record: dict[str, Any]
) -> dict[str, Any]:
    """Write the map and its record into the gallery in ``gallery`` (in place)."""
    from train.gallery import install_fitted

    arrays = {
        "render_map_weight": weight.astype(np.float32),
        "render_map_bias": bias.astype(np.float32),
    }
    return install_fitted(gallery, "render_map", arrays, record)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="prepared data root")
    ap.add_argument("--gallery", type=Path, default=Path("resources/gallery"))
    ap.add_argument("--cache", type=Path, default=Path("runs/render_map"))
    ap.add_argument("--faces", type=int, default=3200, help="training faces to render")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=Path, default=None, help="CUHK pairs to check on")
    ap.add_argument("--limit", type=int, default=88)
    ap.add_argument("--dry-run", action="store_true", help="fit and check, do not install")
    args = ap.parse_args(argv)
    if not (args.data / "index.json").is_file():
        print(f"no prepared data at {args.data} (run train.prepare)", file=sys.stderr)
        return 2
    import os

    import cv2
    import torch

    os.environ["FACESKETCH_TEXTURE"] = "0"  # the stage identifies the render without texture
    torch.set_num_threads(max(1, args.threads))
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.engine.real_pixels import render_descriptor

    pipe = FacePipeline(load_bundle(), "cpu", real_pixels=False)

    def describe_render(sketch: np.ndarray) -> np.ndarray | None:
        return render_descriptor(pipe.render_sketch(sketch, size=RENDER_SIZE).face)

    def loader(item_id: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            sk = cv2.imread(
                str(args.data / "256" / "sketch" / f"{item_id}.png"), cv2.IMREAD_GRAYSCALE
            )
            ph = cv2.imread(str(args.data / "256" / "img" / f"{item_id}.png"), cv2.IMREAD_COLOR)
            if sk is None or ph is None:
                raise SystemExit(f"{args.data}: face {item_id} is missing or unreadable")
            return sk, cv2.cvtColor(ph, cv2.COLOR_BGR2RGB)

        return load

    networks = network_shas()
    items = prepared_items(args.data, args.faces, args.seed)
    t0 = time.perf_counter()
    pairs = collect_pairs(
        ((i["id"], i["split"], loader(i["id"])) for i in items),
        describe_render,
        render_descriptor,  # an aligned photo is at the same layout
        args.cache,
        networks,
    )
    t_pairs = time.perf_counter() - t0
    train_rows = pairs["split"] == "train"
    if train_rows.sum() < 2 or (~train_rows).sum() < 2:
        print(
            f"too few faces with a face found in render and photo ({int(train_rows.sum())} "
            f"training, {int((~train_rows).sum())} validation): nothing to fit",
            file=sys.stderr,
        )
        return 2
    print(
        f"{len(pairs['ids'])} pairs ({int(train_rows.sum())} training) in {t_pairs:.0f} s",
        flush=True,
    )
    t1 = time.perf_counter()
    weight, bias = fit_map(
        pairs["R"][train_rows], pairs["G"][train_rows], args.steps, tau=args.tau, seed=args.seed
    )
    t_fit = time.perf_counter() - t1
    checks: dict[str, Any] = {"validation": check(weight, bias, pairs)}
    if args.pairs is not None:
        checks["cuhk"] = check_cuhk(weight, bias, args.pairs, args.limit, describe_render)
    record = {
        "networks": networks,
        "data": str(args.data),
        "faces": {"train": int(train_rows.sum()), "val": int((~train_rows).sum())},
        "fit": {
            "steps": args.steps,
            "tau": args.tau,
            "seed": args.seed,
            "seconds": round(t_fit, 1),
        },
        "pairs_seconds_this_run": round(t_pairs, 1),
        "threads": torch.get_num_threads(),
        "checks": checks,
    }
    from train.gallery import report_and_install

    return report_and_install(
        record, args.gallery, args.dry_run, lambda: install(args.gallery, weight, bias, record)
    )


if __name__ == "__main__":
    raise SystemExit(main())
