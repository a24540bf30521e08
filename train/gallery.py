"""Build the shipped face gallery (the default look; see facesketch/engine/gallery.py).

    python -m train.gallery --out resources/gallery [--n 300] [--src DIR] [--threads 1]
    python -m train.gallery --out resources/gallery --add-descriptors   # to a built one

Picks ``--n`` UTKFace photos stratified by gender x ethnicity x age decade (from
the file names ``age_gender_race_date.jpg.chip.jpg``), aligns each to the
canonical layout at 256 with the package's own aligner (keeping its validity mask:
UTKFace crops are tight, the border is filled, never mirrored), makes its sketch
as the app does (HED + Canny, :func:`facesketch.engine.sketchify`), and stores each
component's pooled E_sketch latent of that sketch, its E_app codes (what a dropped
photo gives), its 68 dlib landmarks and its dlib face descriptor (who the face
looks like: the real-texture stage picks the gallery face nearest the render's, once
mapped by the render-to-photo map of ``train.render_map``; a rebuild keeps that map and
the drawn-gender reader of ``train.drawn_gender``).
Photos dlib cannot align are skipped and the next of the same group is taken.  dlib
loads only when this runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.engine.gallery import POOL_GRID, pool_latent, write_gallery
from facesketch.layout import COMPONENTS, FaceLayout

CANVAS = 256
GENDERS = {0: "male", 1: "female"}
ETHNICITIES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Other"}
LICENCE = (
    "UTKFace (Zhang, Song, Qi, CVPR 2017): non-commercial research use only. "
    "The images are not owned by the UTKFace authors; copyright stays with the original owners."
)
DEFAULT_SRC = Path("/work/shared/data/faces/utkface")
#: Photos screened out by eye (watermarks, occluded mouths): file name -> reason.
SCREENED = Path(__file__).with_name("gallery_screened.txt")


def read_screened(path: Path = SCREENED) -> dict[str, str]:
    """The screened-out photos of ``path``: file name -> reason (``#`` starts a comment)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        out[name] = reason.strip()
    return out


def parse_name(name: str) -> dict[str, Any] | None:
    """Labels from a UTKFace file name, None when it does not follow the scheme."""
    parts = name.split("_")
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        return None
    age, gender, race = (int(p) for p in parts[:3])
    if gender not in GENDERS or race not in ETHNICITIES:
        return None
    return {"age": age, "gender": GENDERS[gender], "ethnicity": ETHNICITIES[race]}


def decade(age: int) -> str:
    """Age group: 10s .. 60s, 70+."""
    return "70+" if age >= 70 else f"{age // 10 * 10}s"


def candidates(src: Path, seed: int) -> dict[tuple[str, str], dict[str, list[Path]]]:
    """Shuffled files per (gender, ethnicity), then per age decade."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], dict[str, list[Path]]] = {}
    for p in sorted(src.glob("*.jpg")):
        lab = parse_name(p.name)
        if lab is None:
            continue
        key = (lab["gender"], lab["ethnicity"])
        groups.setdefault(key, {}).setdefault(decade(lab["age"]), []).append(p)
    for by_dec in groups.values():
        for files in by_dec.values():
            rng.shuffle(files)
    return groups


def pick_faces(
    src: Path, n: int, seed: int, exclude: frozenset[str] | set[str] = frozenset()
) -> list[tuple[Path, Any]]:
    """Aligned faces, ``n`` in all, an equal share per (gender, ethnicity), spread
    round-robin over the age decades that group has; file names in ``exclude`` are
    skipped like photos dlib cannot align."""
    from facesketch.face import NoFaceError, align_face
    from facesketch.imaging import read_image

    groups = candidates(src, seed)
    share = n // len(groups)
    extra = n - share * len(groups)
    out: list[tuple[Path, Any]] = []
    lay = FaceLayout.default(CANVAS)
    for gi, key in enumerate(sorted(groups)):
        want = share + (1 if gi < extra else 0)
        queues = {d: list(f) for d, f in sorted(groups[key].items())}
        got = 0
        while got < want and any(queues.values()):
            for d in list(queues):
                if got >= want or not queues[d]:
                    continue
                p = queues[d].pop()
                if p.name in exclude:
                    continue
                try:
                    aligned = align_face(read_image(p), size=CANVAS, layout=lay, source=p.name)
                except NoFaceError:
                    continue
                out.append((p, aligned))
                got += 1
        print(f"  {key[0]:6s} {key[1]:6s}: {got}", flush=True)
    return out


def keep_numbers(faces: list[tuple[Path, Any]], previous: list[str]) -> list[tuple[Path, Any]]:
    """``faces`` reordered so that a photo already in the ``previous`` gallery (its
    ``source`` list) keeps its face number: projects refer to gallery faces as
    ``gallery:<n>``, and a rebuild must not hand them another person.  New photos take
    the freed numbers in order; with more faces than before, the rest follow."""
    where = {src: i for i, src in enumerate(previous)}
    slots: list[tuple[Path, Any] | None] = [None] * max(len(faces), len(previous))
    new = []
    for face in faces:
        i = where.get(f"utkface/{face[0].name}")
        if i is not None and i < len(slots):
            slots[i] = face
        else:
            new.append(face)
    for i in range(len(slots)):
        if slots[i] is None and new:
            slots[i] = new.pop(0)
    return [f for f in slots if f is not None] + new


#: Fitted parts a gallery carries across rebuilds: manifest record -> its arrays.  Both
#: read the networks' outputs, not the gallery's faces, so they hold for any faces.
CARRIED = {
    "render_map": ("render_map_weight", "render_map_bias"),  # train.render_map
    "drawn_gender": ("gender_weight", "gender_bias"),  # train.drawn_gender
}


def install_fitted(
    folder: Path, name: str, arrays: dict[str, np.ndarray], record: dict[str, Any]
) -> dict[str, Any]:
    """Write a fitted part (``arrays``, and ``record`` under ``name`` in the manifest)
    into the gallery in ``folder``, in place; returns the new manifest."""
    from facesketch.engine.gallery import ARRAYS_FILE, Gallery, clear_cache, write_gallery

    clear_cache()
    gal = Gallery.load(folder)
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
        old = {k: z[k] for k in z.files}
    out = write_gallery(folder, {**old, **arrays}, {**gal.manifest, name: record})
    clear_cache()
    return out


def report_and_install(
    record: dict[str, Any], folder: Path, dry_run: bool, install: Callable[[], Any]
) -> int:
    """Print a fit's ``record`` and, unless ``dry_run``, ``install()`` it into the gallery
    in ``folder``: the end of ``train.render_map`` and ``train.drawn_gender``."""
    print(json.dumps(record, indent=1), flush=True)
    if not dry_run:
        install()
        print(f"installed into {folder}")
    return 0


def carry_fitted(folder: Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """Copy the render-to-photo identity map (``train.render_map``) and the drawn-gender
    reader (``train.drawn_gender``) of the gallery in ``folder``, where it has them, into
    a rebuild's ``arrays`` and ``manifest``."""
    from facesketch.engine.gallery import ARRAYS_FILE, MANIFEST_FILE

    if not (folder / ARRAYS_FILE).is_file() or not (folder / MANIFEST_FILE).is_file():
        return
    old = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
        for record, names in CARRIED.items():
            if record in old and all(n in z.files for n in names):
                for n in names:
                    arrays[n] = z[n]
                manifest[record] = old[record]


def descriptors(images: list[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
    """(M, 128) float32 dlib descriptors of aligned faces (the landmarks' box where the
    detector misses one)."""
    from facesketch.face.detect import face_identity

    out = []
    for img, pts in zip(images, landmarks, strict=True):
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        ident = face_identity(img, box=(x0, y0, x1, y1))
        if ident is None:
            raise RuntimeError("no descriptor for a gallery face (dlib missing?)")
        out.append(ident.descriptor)
    return np.stack(out).astype(np.float32)


def add_descriptors(folder: Path) -> dict[str, Any]:
    """Add (or refresh) the descriptors of a built gallery in place; returns the manifest."""
    from facesketch.engine.gallery import ARRAYS_FILE, Gallery, clear_cache

    gal = Gallery.load(folder)
    t0 = time.perf_counter()
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    images = [gal.image(i) for i in range(gal.size)]
    arrays["descriptors"] = descriptors(images, gal.landmark_array)
    manifest = dict(gal.manifest)
    stages = dict(manifest.get("stages_seconds", {}))
    stages["descriptors"] = round(time.perf_counter() - t0, 1)
    manifest["stages_seconds"] = stages
    clear_cache()
    return write_gallery(folder, arrays, manifest)


def build(out: Path, n: int, src: Path, seed: int = 0, quality: int = 90) -> dict[str, Any]:
    """Write gallery.npz + gallery.json into ``out``; returns the manifest."""
    import cv2
    import torch

    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.sketchify import SketchExtractor
    from facesketch.engine.weights import read_manifest
    from facesketch.imaging import image_to_tensor, sketch_to_tensor
    from facesketch.models.face_model import FaceModel, appearance_input

    t0 = time.perf_counter()
    screened = read_screened()
    faces = pick_faces(src, n, seed, set(screened))
    previous = out / "gallery.json"
    if previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8")).get("faces", [])
        faces = keep_numbers(faces, [f.get("source", "") for f in old])
    t_align = time.perf_counter() - t0
    print(f"aligned {len(faces)} faces in {t_align:.0f} s", flush=True)
    images = [a.image for _, a in faces]
    masks = [a.mask for _, a in faces]
    sketches = SketchExtractor(batch_size=8, precision="fp32")(images, masks)
    t_sketch = time.perf_counter() - t0 - t_align
    print(f"sketched in {t_sketch:.0f} s", flush=True)

    bundle = load_bundle(default_appearance=False)
    lay = FaceLayout.default(CANVAS)
    geometry: dict[str, list[np.ndarray]] = {c: [] for c in COMPONENTS}
    appearance: dict[str, list[np.ndarray]] = {c: [] for c in COMPONENTS}
    with torch.inference_mode():
        for start in range(0, len(faces), 16):
            sk = torch.cat([sketch_to_tensor(s) for s in sketches[start : start + 16]])
            ph = torch.cat([image_to_tensor(i) for i in images[start : start + 16]])
            for c in COMPONENTS:
                nets = bundle.components[c]
                geom = nets.geometry(FaceModel.component_input(sk, lay, c))
                geometry[c].append(pool_latent(geom))
                appearance[c].append(nets.appearance(appearance_input(ph, lay, c)).float().numpy())
    t_latent = time.perf_counter() - t0 - t_align - t_sketch
    print(f"latents in {t_latent:.0f} s", flush=True)
    marks = np.stack([a.landmarks for _, a in faces]).astype(np.float32)
    descs = descriptors(images, marks)

    blobs = []
    for img in images:
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        blobs.append(buf.ravel())
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    arrays = {
        "jpeg": np.concatenate(blobs).astype(np.uint8),
        "offsets": offsets,
        "masks": np.stack([np.packbits(m > 127, axis=1) for m in masks]),
        "landmarks": marks,
        "descriptors": descs,
    }
    for c in COMPONENTS:
        arrays[f"geometry_{c}"] = np.concatenate(geometry[c]).astype(np.float16)
        arrays[f"appearance_{c}"] = np.concatenate(appearance[c]).astype(np.float32)
    records = []
    for p, a in faces:
        lab = parse_name(p.name) or {}
        cover = float((a.mask > 127).mean())
        records.append({"source": f"utkface/{p.name}", **lab, "coverage": round(cover, 3)})
    manifest = {
        "canvas": CANVAS,
        "pool_grid": POOL_GRID,
        "networks": {f"local/{c}": read_manifest(f"local_{c}")["sha256"] for c in COMPONENTS},
        "licence": LICENCE,
        "source": "UTKFace aligned & cropped faces (../shared/data/faces/utkface)",
        "seed": seed,
        "screened_out": screened,
        "threads": torch.get_num_threads(),
        "build_seconds": round(time.perf_counter() - t0, 1),
        "stages_seconds": {
            "align": round(t_align, 1),
            "sketch": round(t_sketch, 1),
            "latents": round(t_latent, 1),
            "descriptors": round(time.perf_counter() - t0 - t_align - t_sketch - t_latent, 1),
        },
        "faces": records,
    }
    carry_fitted(out, arrays, manifest)
    return write_gallery(out, arrays, manifest)


def group_counts(manifest: dict[str, Any]) -> dict[str, Counter]:
    """Counts per gender x ethnicity and per age decade (for the card)."""
    faces = manifest["faces"]
    return {
        "group": Counter(f"{f['gender']} {f['ethnicity']}" for f in faces),
        "age": Counter(decade(f["age"]) for f in faces),
    }


def eval_pairs(pairs: Path, limit: int = 88, k: int = 5) -> dict[str, Any]:
    """Issue 16's measures on artist sketch / photo pairs with the default look as the
    app renders it (the engine's pipeline, no photo dropped): mean vs gallery look."""
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.imaging import tensor_to_image
    from train.eval import load_sketch_pairs
    from train.face_metrics import FaceMeter, face_measures

    items = load_sketch_pairs(pairs, CANVAS, limit)
    photos = [tensor_to_image(it["image"]) for it in items]
    drawings = [tensor_to_image(it["sketch"]) for it in items]
    inputs = [tensor_to_image(it["input"]) for it in items]
    bundle = load_bundle()
    meter = FaceMeter()
    report: dict[str, Any] = {"pairs": str(pairs), "k": k}
    for look in ("mean", "gallery"):
        pipe = FacePipeline(bundle, "cpu")
        pipe.appearance.default_look = look
        pipe.appearance.gallery_k = k
        t0 = time.perf_counter()
        renders = [pipe.render_sketch(s, size=CANVAS).face for s in inputs]
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(inputs))
        if look == "gallery" and pipe.appearance.gallery_problem:
            raise SystemExit(f"gallery not usable: {pipe.appearance.gallery_problem}")
        report[look] = {**face_measures(renders, photos, drawings, meter), "ms_per_render": ms}
        print(look, report[look], flush=True)
    return report


def screened_text(manifest: dict[str, Any]) -> str:
    """The screened-out reasons of a manifest, counted: "3 x stock-photo watermark; ..."."""
    reasons = Counter(manifest.get("screened_out", {}).values())
    return "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items())) or "none"


def kept_sections(card: Path) -> str:
    """What an existing card says after its generated part (the evaluations written
    since the build), so a rebuild keeps them."""
    if not card.is_file():
        return ""
    text = card.read_text(encoding="utf-8")
    start = text.find("## How it was built")
    nxt = text.find("\n## ", start + 1) if start >= 0 else -1
    return text[nxt:] if nxt >= 0 else ""


def write_card(out: Path, manifest: dict[str, Any], extra: str = "") -> Path:
    """The gallery's card ``gallery.md``: source, licence, counts, how it was built."""
    counts = group_counts(manifest)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file() and f.suffix != ".md")
    cover = np.mean([f["coverage"] for f in manifest["faces"]])
    threads = int(manifest.get("threads", 1))
    eth = sorted({f["ethnicity"] for f in manifest["faces"]})
    table = ["| gender | " + " | ".join(eth) + " |", "|---|" + "---|" * len(eth)]
    for g in ("female", "male"):
        table.append(f"| {g} | " + " | ".join(str(counts["group"][f"{g} {e}"]) for e in eth) + " |")
    ages = ", ".join(f"{k}: {v}" for k, v in sorted(counts["age"].items()))
    st = manifest["stages_seconds"]
    text = f"""# Face gallery (the default look)

{len(manifest["faces"])} aligned faces the app uses when an appearance slot has no photo, and
offers as "suggested faces" in the appearance panel.  Per face: the 256 px aligned photo
(JPEG q90), its validity mask, its 68 dlib landmarks (256 canvas, dlib convention), the
geometry latent of its sketch for each component (E_sketch of the shipped local networks,
average-pooled to {manifest["pool_grid"]}x{manifest["pool_grid"]}, fp16) and its appearance codes
(E_app, fp32), and its 128-d dlib face descriptor (face_recognition_models' ResNet: the
real-texture stage takes the face whose descriptor is nearest the render's, once
the render's is mapped among the photos': `train.render_map`, below).  Files:
`gallery.npz` (no pickle; sha256 in `gallery.json`), `gallery.json`
(per-face source file, gender, age, ethnicity, coverage; the sha256 of the local networks
the latents belong to: the engine refuses a gallery of other weights and uses the mean look).
Size {size / 1e6:.2f} MB.

## Source and licence

**UTKFace** (Zhang, Song, Qi, "Age Progression/Regression by Conditional Adversarial
Autoencoder", CVPR 2017), the aligned & cropped faces, as in `../shared/data/faces/utkface`.
People photographed in the wild; UTKFace does not say who they are, but it was collected
from the web and some faces look like public figures (not screened here).
**Licence: non-commercial research use only.**  The UTKFace authors do not own the images;
copyright stays with the original owners.  This gallery may not be used commercially:
a commercial build of facesketch must replace it (`python -m train.gallery --src ...`).

## Counts (gender x ethnicity, from the UTKFace file names)

{chr(10).join(table)}

Age groups: {ages}.  Picked at random (seed {manifest["seed"]}) round-robin over age decades
within each gender x ethnicity group; photos dlib cannot align are replaced by the next
of the same group.  UTKFace's "Other" ethnicity label is UTKFace's own (Hispanic, Latino,
Middle Eastern and others).

## Screened out

{len(manifest.get("screened_out", {}))} photos that the random pick would have taken are kept out
(`train/gallery_screened.txt`, by eye, on contact sheets of the photos and of every face's
high-pass detail, what the real-texture stage copies onto a render): {screened_text(manifest)}.

## How it was built

    python -m train.gallery --out resources/gallery --n {len(manifest["faces"])} --threads {threads}

{threads} CPU thread{"s" if threads > 1 else ""} on a 2-core machine: align
{st["align"]:.0f} s, sketch (HED + Canny, as the app's photo-to-sketch) {st["sketch"]:.0f} s,
latents {st["latents"]:.0f} s; {manifest["build_seconds"]:.0f} s in all.  Aligned with the
package's own aligner (facesketch.face.align) at 256; UTKFace crops are tight, so a face covers
{cover * 100:.0f} % of the canvas on average: the border is the aligner's blurred fill
(never mirrored) and the mask marks it as unknown.
{extra}"""
    path = out / "gallery.md"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("resources/gallery"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-pairs", type=Path, default=None, help="CUHK pairs: mean vs gallery")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument(
        "--add-descriptors", action="store_true", help="add dlib descriptors to --out in place"
    )
    args = ap.parse_args(argv)
    if args.add_descriptors:
        manifest = add_descriptors(args.out)
        print(f"descriptors of {len(manifest['faces'])} faces added to {args.out}")
        return 0
    if args.eval_pairs is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
        report = eval_pairs(args.eval_pairs, k=args.k)
        print(json.dumps(report, indent=1))
        return 0
    if not args.src.is_dir():
        print(f"no UTKFace folder at {args.src} (pass --src)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(max(1, args.threads))
    kept = kept_sections(args.out / "gallery.md")
    manifest = build(args.out, args.n, args.src, args.seed)
    write_card(args.out, manifest, kept)
    counts = group_counts(manifest)
    size = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"{len(manifest['faces'])} faces, {size / 1e6:.2f} MB, {manifest['build_seconds']} s")
    print("groups:", dict(sorted(counts["group"].items())))
    print("ages:", dict(sorted(counts["age"].items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
