"""Evaluate trained sketch-to-face networks on the validation split, and time them.

Metrics (printed and written as JSON):
- sketch fidelity: F1 (pixel tolerance 2) between the input sketch and the sketch
  re-extracted from the rendered face with ``photo_to_sketch``; the same F1 for the
  real photo is the bar;
- reconstruction: masked PSNR / SSIM of the face rendered from a photo's own sketch
  and own appearance against that photo;
- appearance transfer: per-component masked mean colour distance to a reference
  photo, before (own appearance) and after (the reference's appearance codes);
- disentanglement: edge F1 between the renders with own and with reference
  appearance (geometry should not move when only appearance changes);
- mesh: RMS (8-bit grey levels) of the fusion's raw output on the up-sampling grid's
  harmonics, coherent over 16 px (``facesketch.models.filters.mesh_level``), beside
  the photos' own and what is shown after the engine's notch filter (if any).
A contact sheet shows: rough sketch | calibrated sketch | face | the same face
with two other appearance references.

    python -m train.eval --weights runs/local3-all/export runs/fusion/export runs/scn/export
    python -m train.eval --bench            # CPU inference ms of each lite network
    python -m train.eval --issue --pairs ../shared/data/sketches/cufs_train \
        --data /work/cache/prepared --warp-only   # issue 16's measures (train.eval_pairs)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesketch.imaging import sketch_to_tensor, tensor_to_image, write_image
from facesketch.layout import COMPONENTS, LOCAL_COMPONENTS, FaceLayout
from facesketch.models import ComponentModel, GlobalFusion, StrokeCalibrator, Upsampler2x, preset
from facesketch.models.config import FusionConfig, LocalConfig, SCNConfig
from facesketch.models.face_model import FaceModel
from facesketch.models.filters import mesh_level
from facesketch.models.losses import mean_color
from train.face_metrics import TINT_ROWS, top_tint

TOLERANCE = 2  # pixels, for edge F1


# -- metrics ---------------------------------------------------------------------------
def edge_f1(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """F1 of the dark lines of two uint8 sketches, a line pixel matching within TOLERANCE px."""
    p, t = pred < 128, target < 128
    if mask is not None:
        p, t = p & (mask > 0), t & (mask > 0)
    if not p.any() and not t.any():
        return 1.0
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOLERANCE + 1,) * 2)
    near_t = cv2.dilate(t.astype(np.uint8), k) > 0
    near_p = cv2.dilate(p.astype(np.uint8), k) > 0
    precision = (p & near_t).sum() / max(p.sum(), 1)
    recall = (t & near_p).sum() / max(t.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-9))


#: Rows at the top of the 256 canvas where the fusion drew its band of coloured noise.
BAND_ROWS = 32


def chroma_noise(img: np.ndarray, mask: np.ndarray | None = None, rows: int = BAND_ROWS) -> float:
    """Mean high-frequency chroma (Lab a/b minus its Gaussian blur, sigma 2 px) in the
    top ``rows`` of a uint8 RGB image at 256, over ``mask`` pixels (None = all): coloured
    noise scores high, hair, skin and soft backgrounds low.  NaN when no pixel counts."""
    size = img.shape[0]
    rows = max(1, round(rows * size / 256))
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)[..., 1:]
    hf = np.abs(lab - cv2.GaussianBlur(lab, (0, 0), 2.0 * size / 256)).sum(-1)[:rows]
    m = np.ones(hf.shape, bool) if mask is None else mask[:rows] > 0
    return float(hf[m].mean()) if m.any() else float("nan")


#: Rows (at 256) of the top edge whose lightness detail :func:`top_detail` measures.
TOP_ROWS = 16


def top_detail(img: np.ndarray, mask: np.ndarray | None = None, rows: int = TOP_ROWS) -> float:
    """Mean |grey - its Gaussian blur (sigma 2 px at 256)| in the top ``rows`` of a uint8
    RGB image, over ``mask`` pixels (None = all), in grey levels.  Why: a decoder can park
    a lightness mesh along the top edge (``fusion_clean10``: period 8 at 256), which
    :func:`chroma_noise` (colour only) and the mesh measure (borders left out) miss.
    NaN when no pixel counts."""
    size = img.shape[0]
    rows = max(1, round(rows * size / 256))
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hf = np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 2.0 * size / 256))[:rows]
    m = np.ones(hf.shape, bool) if mask is None else mask[:rows] > 0
    return float(hf[m].mean()) if m.any() else float("nan")


#: Offsets (px at 256) of the parallel lines a window border's step is compared with.
SEAM_OFFSETS = (-6, -5, 5, 6)


def seam_ratio(img: np.ndarray, layout: FaceLayout) -> float:
    """How much the grey level steps across the local windows' borders, over how much it
    steps on parallel lines a few pixels away (mean absolute one-pixel difference along
    each border's inner 80 %).  About 1 with no seams (real photos); above 1 when the
    pasted windows show."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    size = g.shape[0]
    dx, dy = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    on, off = [], []
    for name in LOCAL_COMPONENTS:
        w = layout.window(name)
        lo, hi = w.x + w.size // 10, w.x + w.size - w.size // 10
        vlo, vhi = w.y + w.size // 10, w.y + w.size - w.size // 10
        for b in (w.x, w.x + w.size):  # vertical borders: steps between columns b-1, b
            if 6 < b < size - 7:
                on.append(dx[vlo:vhi, b - 1].mean())
                off.append(np.mean([dx[vlo:vhi, b - 1 + k].mean() for k in SEAM_OFFSETS]))
        for b in (w.y, w.y + w.size):
            if 6 < b < size - 7:
                on.append(dy[b - 1, lo:hi].mean())
                off.append(np.mean([dy[b - 1 + k, lo:hi].mean() for k in SEAM_OFFSETS]))
    return float(np.sum(on) / max(np.sum(off), 1e-6))


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB) over valid pixels of images in [-1, 1]."""
    m = mask.expand_as(a)
    mse = ((a.clamp(-1, 1) - b) ** 2 * m).sum() / m.sum().clamp_min(1)
    return float(10 * torch.log10(4.0 / mse.clamp_min(1e-10)))


def masked_ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """SSIM (Gaussian 11x11, sigma 1.5, on [0, 1] images) averaged over valid pixels."""
    a, b = (a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g = (g / g.sum()).to(a)
    c = a.shape[1]
    win = (g[:, None] * g[None, :]).expand(c, 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (5, 5, 5, 5), mode="reflect"), win, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    m = mask.expand_as(ssim)
    return float((ssim * m).sum() / m.sum().clamp_min(1))


# -- networks ----------------------------------------------------------------------------
class Renderer:
    """Sketch + per-component appearance codes -> face, by :class:`FaceModel` (the
    engine's stages), on the canonical layout of ``canvas``."""

    def __init__(self, model: FaceModel, canvas: int) -> None:
        self.model, self.scn = model, model.scn
        self.layout = FaceLayout.default(canvas)

    def codes(self, photo: torch.Tensor) -> dict[str, torch.Tensor]:
        """Appearance code of every component of a batch of aligned photos."""
        return self.model.codes(photo, self.layout)

    def render(
        self,
        sketch: torch.Tensor,
        codes: dict[str, torch.Tensor],
        reference: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Faces (N, 3, S, S) for sketches (N, 1, S, S), as the engine shows them."""
        return self.model(sketch, codes, self.layout, reference=reference, valid=valid)


def load_networks(dirs: list[Path], fusion_network: str = "fusion") -> tuple[Renderer, int]:
    """Build and load the networks exported into ``dirs`` (checked by the registry);
    ``fusion_network`` picks the fusion (``fusion_ref``: the reference fusion) when found."""
    from facesketch.engine.weights import load_into, read_manifest

    found: dict[str, tuple[Path, dict]] = {}
    for d in dirs:
        for f in sorted(Path(d).glob("*.safetensors")):
            if not f.with_suffix(".json").exists():
                continue  # data files such as appearance_mean carry no network manifest
            man = read_manifest(f)
            found[man["network"]] = (f, man)
    missing = [n for n in ["fusion", *(f"local/{c}" for c in COMPONENTS)] if n not in found]
    if missing:
        raise SystemExit(f"error: no exported weights for {missing} in {[str(d) for d in dirs]}")

    def load(module: nn.Module, net: str) -> nn.Module:
        load_into(module, found[net][0], net, found[net][1]["config"])
        return module.eval()

    locals_ = {}
    for c in COMPONENTS:
        conf = found[f"local/{c}"][1]["config"]
        locals_[c] = load(ComponentModel(LocalConfig.from_dict(conf["local"]), c), f"local/{c}")
    net = fusion_network if fusion_network in found else "fusion"
    fusion = load(GlobalFusion(FusionConfig.from_dict(found[net][1]["config"])), net)
    scn = None
    if "scn" in found:
        scn = load(StrokeCalibrator(SCNConfig.from_dict(found["scn"][1]["config"])), "scn")
    canvas = 256  # the networks' training canvas (the engine's internal canvas)
    model = FaceModel.from_components(locals_, fusion, scn=scn)
    return Renderer(model, canvas), canvas


def _sketch_of(face: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    from facesketch.engine.sketchify import photo_to_sketch

    m = (mask[0].cpu().numpy() * 255).astype(np.uint8)
    return photo_to_sketch(tensor_to_image(face), m)


def _rough(sketch: torch.Tensor, seed: int) -> torch.Tensor:
    from facesketch.sketch.rough import roughen_sketch

    return sketch_to_tensor(roughen_sketch(tensor_to_image(sketch), 0.6, seed))


@torch.inference_mode()
def evaluate(renderer: Renderer, dataset, limit: int, out_dir: Path) -> dict:
    """All metrics over the first ``limit`` samples; writes metrics.json + contact.png."""
    n = min(limit, len(dataset))
    if n < 3:
        raise SystemExit("error: evaluation needs at least 3 validation samples")
    samples = [dataset[i] for i in range(n)]
    photos = torch.stack([s["image"] for s in samples])
    masks = torch.stack([s["mask"] for s in samples])
    sketches = torch.stack([s["sketch"] for s in samples])  # the F1 reference
    inputs = torch.stack([s.get("input", s["sketch"]) for s in samples])  # what is rendered
    codes = renderer.codes(photos)
    faces = torch.cat(
        [
            renderer.render(inputs[i : i + 8], {c: v[i : i + 8] for c, v in codes.items()})
            for i in range(0, n, 8)
        ]
    )
    # the fusion's own output (no notch filter): what "no mesh" is measured on
    raw = torch.cat(
        [
            renderer.model(
                inputs[i : i + 8],
                {c: v[i : i + 8] for c, v in codes.items()},
                renderer.layout,
                filtered=False,
            )
            for i in range(0, n, 8)
        ]
    )
    ref = [(i + 1) % n for i in range(n)]
    swapped_codes = {c: v[ref] for c, v in codes.items()}
    swapped = torch.cat(
        [
            renderer.render(inputs[i : i + 8], {c: v[i : i + 8] for c, v in swapped_codes.items()})
            for i in range(0, n, 8)
        ]
    )
    res: dict[str, list[float]] = {
        k: []
        for k in (
            "f1_face",
            "f1_photo",
            "psnr",
            "ssim",
            "f1_swap",
            "color_before",
            "color_after",
            "band_noise",
            "band_noise_photo",
            "top_detail",
            "top_detail_photo",
            "top_tint",
            "top_tint_photo",
            "seam_ratio",
            "seam_ratio_photo",
            "mesh",
            "mesh_shown",
            "mesh_photo",
        )
    }
    lay = renderer.layout
    for i in range(n):
        m_top = (masks[i, 0].numpy() > 0.5).astype(np.uint8)
        res["band_noise"].append(chroma_noise(tensor_to_image(faces[i])))
        if m_top[: max(1, round(BAND_ROWS * m_top.shape[0] / 256))].mean() > 0.5:
            res["band_noise_photo"].append(chroma_noise(tensor_to_image(photos[i]), m_top))
        res["top_detail"].append(top_detail(tensor_to_image(faces[i])))
        if m_top[: max(1, round(TOP_ROWS * m_top.shape[0] / 256))].mean() > 0.95:
            res["top_detail_photo"].append(top_detail(tensor_to_image(photos[i])))
        res["top_tint"].append(top_tint(tensor_to_image(faces[i])))
        if m_top[: max(1, round(TINT_ROWS * m_top.shape[0] / 256))].mean() > 0.95:
            res["top_tint_photo"].append(top_tint(tensor_to_image(photos[i])))
        res["seam_ratio"].append(seam_ratio(tensor_to_image(faces[i]), lay))
        res["mesh"].append(mesh_level(raw[i : i + 1]))
        res["mesh_shown"].append(mesh_level(faces[i : i + 1]))
        res["mesh_photo"].append(mesh_level(photos[i : i + 1]))
        if m_top.mean() > 0.95:  # a photo that fills the canvas (no filled border)
            res["seam_ratio_photo"].append(seam_ratio(tensor_to_image(photos[i]), lay))
        sk = tensor_to_image(sketches[i])
        m8 = (masks[i, 0].numpy() * 255).astype(np.uint8)
        face_sk, swap_sk = _sketch_of(faces[i], masks[i]), _sketch_of(swapped[i], masks[i])
        res["f1_face"].append(edge_f1(face_sk, sk, m8))
        res["f1_photo"].append(edge_f1(_sketch_of(photos[i], masks[i]), sk, m8))
        res["f1_swap"].append(edge_f1(swap_sk, face_sk, m8))
        res["psnr"].append(masked_psnr(faces[i : i + 1], photos[i : i + 1], masks[i : i + 1]))
        res["ssim"].append(masked_ssim(faces[i : i + 1], photos[i : i + 1], masks[i : i + 1]))
        j = ref[i]
        before, after = [], []
        for c in LOCAL_COMPONENTS:
            target = mean_color(lay.crop(photos[j : j + 1], c), lay.crop(masks[j : j + 1], c))
            m = lay.crop(masks[i : i + 1], c)
            before.append(float((mean_color(lay.crop(faces[i : i + 1], c), m) - target).norm()))
            after.append(float((mean_color(lay.crop(swapped[i : i + 1], c), m) - target).norm()))
        res["color_before"].append(float(np.mean(before)))
        res["color_after"].append(float(np.mean(after)))
    metrics = {k: round(float(np.mean(v)), 4) for k, v in res.items() if v}
    metrics["samples"] = n
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _contact_sheet(renderer, inputs, codes, faces, out_dir / "contact.png")
    return metrics


def _contact_sheet(renderer: Renderer, sketches, codes, faces, path: Path, rows: int = 4) -> None:
    """rough sketch | calibrated | face | face with two other references, one row per sample."""
    n = sketches.shape[0]
    lines = []
    for i in range(min(rows, n)):
        rough = _rough(sketches[i], i) if renderer.scn is not None else sketches[i : i + 1]
        cal = renderer.scn(rough) if renderer.scn is not None else rough
        own = {c: v[i : i + 1] for c, v in codes.items()}
        row = [rough, cal, renderer.render(cal, own)]
        for k in (1, 2):
            row.append(
                renderer.render(
                    cal, {c: v[(i + k) % n : (i + k) % n + 1] for c, v in codes.items()}
                )
            )
        row = [r.expand(-1, 3, -1, -1) for r in row]
        lines.append(torch.cat(row, dim=3))
    write_image(path, tensor_to_image(torch.cat(lines, dim=2))[0])


# -- artist sketches ---------------------------------------------------------------------
def load_sketch_pairs(
    root: Path, canvas: int, limit: int, lines: bool = True
) -> list[dict[str, torch.Tensor]]:
    """Artist sketch / photo pairs (``root/sketch``, ``root/photo``, CUHK naming), both
    warped onto the layout by the dlib alignment of the photo; unusable pairs are skipped.

    ``sketch`` is the drawing (the reference for the F1 bar); ``input`` what the networks
    get: with ``lines``, shaded drawings turned into line sketches as ``facesketch
    render`` does."""
    from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing
    from facesketch.face.sketch_pairs import aligned_pairs, print_skipped
    from facesketch.imaging import image_to_tensor

    items = []
    for _path, aligned, sketch in aligned_pairs(root, canvas, limit, print_skipped):
        mask = (np.asarray(aligned.mask) > 0).astype(np.float32)
        drawn = drawing_to_lines(sketch) if lines and is_shaded_drawing(sketch) else sketch
        items.append(
            {
                "image": image_to_tensor(aligned.image)[0],
                "mask": torch.from_numpy(mask)[None],
                "sketch": sketch_to_tensor(sketch)[0],
                "input": sketch_to_tensor(drawn)[0],
            }
        )
    return items


# -- timing ------------------------------------------------------------------------------
def bench(name: str = "lite", threads: int = 2, repeats: int = 10) -> dict[str, float]:
    """Median CPU ms per network (batch 1, channels_last, inference_mode) at ``name`` sizes."""
    torch.set_num_threads(threads)
    cfg = preset(name)
    lay = FaceLayout.default(cfg.canvas)
    cl = torch.channels_last

    def ms(fn) -> float:
        with torch.inference_mode():
            fn(), fn()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
        return round(sorted(times)[len(times) // 2], 1)

    out: dict[str, float] = {}
    for c in COMPONENTS:
        m = ComponentModel(cfg.local, c).eval().to(memory_format=cl)
        s = lay.window(c).size
        sk = torch.rand(1, 1, s, s).to(memory_format=cl)
        code = torch.randn(1, cfg.local.app_dim)
        out[f"branch/{c} ({s}px)"] = ms(lambda m=m, sk=sk, code=code: m(sk, code))
        ph = torch.rand(1, 3, s, s).to(memory_format=cl)
        out[f"E_app/{c}"] = ms(lambda m=m, ph=ph: m.E_app(ph))
    fusion = GlobalFusion(cfg.fusion).eval().to(memory_format=cl)
    x = torch.randn(1, cfg.local.feat_ch, cfg.canvas, cfg.canvas).to(memory_format=cl)
    out[f"fusion ({cfg.canvas}px)"] = ms(lambda: fusion(x))
    up = Upsampler2x(cfg.up).eval().to(memory_format=cl)
    y = torch.rand(1, 3, cfg.canvas, cfg.canvas).to(memory_format=cl)
    out[f"up ({cfg.canvas}->{2 * cfg.canvas}px)"] = ms(lambda: up(y))
    scn = StrokeCalibrator(cfg.scn).eval().to(memory_format=cl)
    out[f"scn ({cfg.canvas}px)"] = ms(lambda: scn(torch.rand(1, 1, cfg.canvas, cfg.canvas)))
    out["scn (nose crop)"] = ms(lambda: scn(torch.rand(1, 1, 80, 80)))
    branches = [v for k, v in out.items() if k.startswith("branch/")]
    tail = out[f"fusion ({cfg.canvas}px)"] + out[f"up ({cfg.canvas}->{2 * cfg.canvas}px)"]
    out["full render (5 branches + fusion + up)"] = round(sum(branches) + tail, 1)
    out["nose edit (branch + fusion + up)"] = round(
        out[f"branch/nose ({lay.window('nose').size}px)"] + tail, 1
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m train.eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", type=Path, help="folders with exported weights")
    ap.add_argument("--data", type=Path, default=None, help="prepared data root")
    ap.add_argument("--synthetic", action="store_true", help="synthetic faces instead of data")
    ap.add_argument(
        "--raw-drawings", action="store_true", help="with --pairs: render shaded drawings as is"
    )
    ap.add_argument(
        "--pairs",
        type=Path,
        default=None,
        help="artist sketch/photo pairs instead (e.g. ../shared/data/sketches/cufs_train)",
    )
    ap.add_argument("--limit", type=int, default=64, help="validation samples to use")
    ap.add_argument("--out", type=Path, default=Path("runs/eval"))
    ap.add_argument("--bench", nargs="?", const="lite", default=None, help="time a preset")
    ap.add_argument(
        "--issue",
        action="store_true",
        help="with --pairs: issue 16's measures of the app's renders (train.eval_pairs)",
    )
    ap.add_argument(
        "--warp-only", action="store_true", help="with --issue: also score the warped references"
    )
    ap.add_argument("--val-limit", type=int, default=400, help="with --issue: KID val photos")
    ap.add_argument(
        "--only-reference",
        action="store_true",
        help="with --issue: score only the reference fusion's renders",
    )
    ap.add_argument(
        "--look",
        choices=("app", "mean"),
        default="app",
        help="with --issue: the app's default look (gallery when shipped) or the mean face",
    )
    args = ap.parse_args(argv)
    if args.issue:
        if not args.pairs:
            ap.error("--issue needs --pairs (artist sketch / photo pairs)")
        from train.eval_pairs import evaluate_pairs

        torch.set_num_threads(max(1, torch.get_num_threads()))
        evaluate_pairs(args)
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'contact.jpg'}")
        return 0
    if args.bench:
        for k, v in bench(args.bench).items():
            print(f"{k:45s} {v:8.1f} ms")
        return 0
    if not args.weights:
        ap.error("--weights is required (or use --bench)")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    renderer, canvas = load_networks(args.weights)
    if args.pairs:
        ds = load_sketch_pairs(args.pairs, canvas, args.limit, lines=not args.raw_drawings)
    elif args.synthetic:
        from train.synthetic import SyntheticFaces

        ds = SyntheticFaces(max(args.limit, 3), canvas, seed=2)
    else:
        from train.config import default_data_root
        from train.data import FaceDataset

        ds = FaceDataset(args.data or default_data_root(), "val", size=canvas, augment=False)
    metrics = evaluate(renderer, ds, args.limit, args.out)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'contact.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
