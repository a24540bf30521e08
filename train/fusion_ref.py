"""Train the reference fusion: real pixels, warped to the sketch, copied where they fit.

The fusion (``FusionConfig`` version 2: ``decoder="resize"``, ``ref_ch=4``) gets, besides
the pasted component maps of the frozen shipped local networks and the sketch, a warped
reference photo and its validity mask (DESIGN.md, "Real pixels").  Per sample, the
reference is one of

* ``self`` — the target photo itself under a random smooth deformation
  (:func:`facesketch.models.warp.random_smooth_flow`) and colour jitter: the fusion
  learns to undo the warp (its residual flow) and to copy texture;
* ``other`` — another person's photo TPS-warped from its dlib landmarks to the
  target's (``<data>/landmarks256.npz``, ``python -m train.landmarks_data``): only the
  adversarial and the sketch-consistency losses apply, the target's pixels are not
  what this reference can give;
* ``none`` — no reference (validity 0): the fusion must synthesize.

Losses: L1 inside the data's validity mask (and, weakly, outside it against the
prepared border fill: the old fusion had no loss there, which is where its top-edge
band came from), a perceptual loss on frozen ImageNet EfficientNet-Lite0 features,
a projected discriminator on the same features (:mod:`train.projected`, Sauer et al.
2021; one EfficientNet pass serves both), and HED edge consistency on ``other``
samples (HED-VGG: where edges matter).

    python -m train.fusion_ref --data /work/cache/prepared --set train.threads=1
    python -m train.fusion_ref --synthetic --max-steps 4 --run-dir /tmp/fr   # smoke run

Why one ~400-line module: the reference sampling (self / other / none) and the losses that
depend on which was drawn belong to one Task; the networks are in models/, the metrics elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.models import losses
from facesketch.models.config import LocalConfig
from facesketch.models.face_model import FaceModel
from facesketch.models.fusion import GlobalFusion, init_from_transposed
from facesketch.models.local import ComponentModel
from facesketch.models.warp import apply_flow, random_smooth_flow, tps_warp
from train import loop, projected
from train.fusion import psnr, random_crop_batch

#: iBUG-68 index of each landmark's mirror image (for horizontal flips).
FLIP_68 = (
    list(range(16, -1, -1))
    + list(range(26, 21, -1))
    + list(range(21, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]
    + [59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60]
    + [67, 66, 65]
)
LANDMARKS_FILE = "landmarks256.npz"
MODES = ("self", "other", "none")


def template_landmarks(size: int) -> np.ndarray:
    """A rough 68-point face on the canonical layout (synthetic data has no dlib points)."""
    lay = FaceLayout.default(size)
    pts = []
    cx, cy = lay.window("nose").center
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    pts += list(
        zip(cx - 0.36 * size * np.cos(t), cy + 0.3 * size * np.sin(t) - 0.1 * size, strict=True)
    )
    for eye in ("left_eye", "right_eye"):
        ex, ey = lay.window(eye).center
        pts += [(ex - 0.06 * size + 0.03 * size * i, ey - 0.07 * size) for i in range(5)]
    pts += [(cx, cy - 0.08 * size + 0.03 * size * i) for i in range(4)]
    pts += [(cx - 0.04 * size + 0.02 * size * i, cy + 0.05 * size) for i in range(5)]
    for eye in ("left_eye", "right_eye"):
        ex, ey = lay.window(eye).center
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False) + np.pi
        pts += list(zip(ex + 0.04 * size * np.cos(a), ey + 0.015 * size * np.sin(a), strict=True))
    mx, my = lay.window("mouth").center
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False) + np.pi
    pts += list(zip(mx + 0.08 * size * np.cos(a), my + 0.03 * size * np.sin(a), strict=True))
    a = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi
    pts += list(zip(mx + 0.05 * size * np.cos(a), my + 0.01 * size * np.sin(a), strict=True))
    return np.asarray(pts, np.float32)


class LandmarkFaces(Dataset):
    """A face dataset's samples plus their dlib landmarks (``landmarks`` (68, 2),
    ``has_lm``), flipped horizontally with the image (mirrored point order) when
    ``flip``.  Without a landmark table every sample gets the template points."""

    def __init__(self, base: Dataset, table: dict[str, np.ndarray] | None, flip: bool) -> None:
        self.base, self.table, self.flip = base, table, flip
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        s = dict(self.base[i])
        size = s["image"].shape[-1]
        key = s.get("id")
        if self.table is None:
            lm, has = template_landmarks(size), True
        else:
            has = isinstance(key, str) and key in self.table
            lm = self.table[key] if has else template_landmarks(size)
        lm = lm.astype(np.float32) * (size / 256 if self.table is not None else 1.0)
        if self.flip and self.rng.random() < 0.5:
            for k in ("image", "mask", "sketch"):
                s[k] = s[k].flip(-1)
            lm = lm[FLIP_68].copy()
            lm[:, 0] = size - 1 - lm[:, 0]
        s["landmarks"] = torch.from_numpy(lm)
        s["has_lm"] = torch.tensor(bool(has))
        return s


def load_landmark_table(root: Path) -> dict[str, np.ndarray] | None:
    """ids -> (68, 2) dlib landmarks at the 256 canvas, or None when not prepared."""
    path = Path(root) / LANDMARKS_FILE
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {str(k): v for k, v in zip(z["ids"], z["landmarks"], strict=True)}


def warm_start(fusion: GlobalFusion, source: str) -> GlobalFusion:
    """The reference fusion started from a version-1 fusion's weights (``shipped``: the
    app's fusion.safetensors) instead of from noise: the synthesis it starts from is
    close to today's renders (:func:`facesketch.models.fusion.init_from_transposed`)."""
    from facesketch.engine.weights import load_state_dict
    from facesketch.resources import shipped_weights_dir

    path = shipped_weights_dir() / "fusion.safetensors" if source == "shipped" else Path(source)
    state, _ = load_state_dict(path, "fusion")
    try:
        return init_from_transposed(fusion, {k: v.float() for k, v in state.items()})
    except (KeyError, RuntimeError) as exc:
        raise ValueError(
            f"task.init_fusion={source}: {path} does not fit this fusion config ({exc}); "
            "use task.init_fusion=none"
        ) from None


def load_shipped_locals(cfg: LocalConfig, directory: str | None) -> dict[str, ComponentModel]:
    """The frozen local networks: the shipped ones (``directory`` None: resources/weights)."""
    from facesketch.engine.weights import list_weights, load_into

    entries = {e.get("network"): e for e in list_weights(Path(directory) if directory else None)}
    out = {}
    for c in COMPONENTS:
        e = entries.get(f"local/{c}")
        if e is None:
            raise FileNotFoundError(f"no local/{c} weights in {directory or 'resources/weights'}")
        m = ComponentModel(LocalConfig.from_dict(e["config"]["local"]), c)
        if m.cfg != cfg:
            raise ValueError(f"local/{c} weights are of another LocalConfig than this run's")
        load_into(m, e["path"], f"local/{c}", e["config"])
        out[c] = m
    return out


def colour_jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Per-image gain per channel, brightness, contrast and saturation ([-1, 1] RGB)."""
    n = x.shape[0]

    def r(*shape: int) -> torch.Tensor:
        return ((torch.rand(*shape, generator=gen) * 2 - 1) * amount).to(x)

    x = x * (1 + r(n, 3, 1, 1) * 0.5) + r(n, 1, 1, 1) * 0.5
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * (1 + r(n, 1, 1, 1))
    mean = x.mean((1, 2, 3), keepdim=True)
    return ((x - mean) * (1 + r(n, 1, 1, 1)) + mean).clamp(-1, 1)


class FusionRefTask(loop.Task):
    """Reference GlobalFusion + projected discriminator on frozen shipped local networks."""

    name = "fusion_ref"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        mc, t = ctx.model_cfg, self.tcfg
        if not mc.fusion.ref_ch or mc.fusion.decoder != "resize":
            raise ValueError("train.fusion_ref needs model.fusion.ref_ch=4 and decoder=resize")
        self.layout = FaceLayout.default(mc.canvas)
        src = t.get("locals_from", "shipped")
        if src == "random":  # smoke runs on the tiny preset
            self.models = {c: ComponentModel(mc.local, c) for c in COMPONENTS}
        else:
            self.models = load_shipped_locals(mc.local, None if src == "shipped" else src)
        for m in self.models.values():
            m.to(ctx.device).requires_grad_(False).eval()
        self.fusion = GlobalFusion(mc.fusion)
        if t.get("init_fusion", "none") != "none":  # a resumed run overwrites this
            self.fusion = warm_start(self.fusion, t["init_fusion"])
        self.fusion.to(ctx.device)
        self.model = FaceModel.from_components(self.models, self.fusion)
        self.feat = projected.EffNetFeatures().to(ctx.device)
        self.P = projected.ProjectedDiscriminator(int(t.get("d_width", 32))).to(ctx.device)
        self.nets = {"fusion": self.fusion, "P": self.P}
        self.optims = {"fusion": ctx.adam(self.fusion), "P": ctx.adam(self.P)}
        self.hed = None
        if float(t.get("w_sketch", 0)) > 0:
            from facesketch.engine.hed_weights import load_hed

            self.hed = load_hed().to(ctx.device).eval().requires_grad_(False)
        self.gen = torch.Generator().manual_seed(int(cfg["train"]["seed"]) + 17)

    # -- data ----------------------------------------------------------------------------
    def datasets(self) -> tuple[Dataset, Dataset]:
        size = self.ctx.model_cfg.canvas
        d = self.cfg["data"]
        table = None
        if not d.get("synthetic"):
            from train.config import default_data_root
            from train.data import FaceDataset

            root = Path(d.get("root") or default_data_root())
            table = load_landmark_table(root)
            if table is None:
                print(f"[fusion_ref] no {root / LANDMARKS_FILE}: 'other' references disabled")
                self.tcfg = {**self.tcfg, "p_other": 0.0}
            train = FaceDataset(root, "train", size=size, augment=False)
            val = FaceDataset(root, "val", size=size, augment=False)
            return LandmarkFaces(train, table, True), LandmarkFaces(val, table, False)
        return (
            LandmarkFaces(self.ctx.dataset("train", size), None, True),
            LandmarkFaces(self.ctx.dataset("val", size), None, False),
        )

    def references(
        self, batch: dict[str, torch.Tensor], modes: list[str], gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reference RGB, validity) per sample for the given modes."""
        t = self.tcfg
        img, mask = batch["image"], batch["mask"]
        n, _, h, w = img.shape
        flow = random_smooth_flow(n, h, w, float(t.get("flow_px", 6.0)) * h / 256, gen).to(img)
        moved = apply_flow(torch.cat([img, mask], 1), flow)
        ref = colour_jitter(moved[:, :3], float(t.get("jitter", 0.12)), gen)
        valid = (moved[:, 3:] > 0.5).to(img) * _inside(flow, h, w)[:, None]
        others = [i for i, m in enumerate(modes) if m == "other"]
        if others:
            perm = torch.roll(torch.arange(n), 1)
            src = perm[others]
            warped, v = tps_warp(
                img[src],
                batch["landmarks"][src] + 0.5,
                batch["landmarks"][others] + 0.5,
                reg=1.0,
                src_valid=mask[src],
            )
            ref[others] = colour_jitter(warped, float(t.get("jitter", 0.12)), gen)
            valid[others] = (v > 0.5).to(img)
        for i, m in enumerate(modes):
            if m == "none":
                valid[i] = 0
        return ref, valid

    def draw_modes(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> list[str]:
        t = self.tcfg
        p = torch.tensor([t.get("p_self", 0.6), t.get("p_other", 0.3), t.get("p_none", 0.1)])
        pick = torch.multinomial(p / p.sum(), batch["image"].shape[0], True, generator=gen)
        modes = [MODES[int(k)] for k in pick]
        has = batch["has_lm"].tolist()
        n = len(modes)
        # an 'other' reference needs landmarks on both sides (the source is the previous one)
        return [
            "self" if m == "other" and not (has[i] and has[(i - 1) % n]) else m
            for i, m in enumerate(modes)
        ]

    # -- losses --------------------------------------------------------------------------
    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            codes = self.model.codes(batch["image"], self.layout)
            return self.model.features(batch["sketch"], codes, self.layout)[0]

    def _aug_pair(self, fake: torch.Tensor, real: torch.Tensor, seed: int):
        """The same DiffAugment draw for fake and real (so their features stay aligned)."""
        a = projected.diff_augment(fake, torch.Generator().manual_seed(seed))
        b = projected.diff_augment(real, torch.Generator().manual_seed(seed))
        return a, b

    def _edges(self, x: torch.Tensor, side: int) -> torch.Tensor:
        if x.shape[-1] > side:
            x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
        from facesketch.models.hed import hed_preprocess

        return self.hed(hed_preprocess(x))

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        t = self.tcfg
        modes = self.draw_modes(batch, self.gen)
        ref, valid = self.references(batch, modes, self.gen)
        feat = self.features(batch)
        # several crops of each sample per step: the frozen local branches (run on the
        # whole canvas) cost more than the fusion on a crop
        tensors = (feat, batch["image"], batch["mask"], batch["sketch"], ref, valid)
        crops = [
            random_crop_batch(int(t.get("crop", 128)), *tensors)
            for _ in range(int(t.get("crops_per_sample", 2)))
        ]
        feat, img, mask, sk, ref, valid = (torch.cat(p) for p in zip(*crops, strict=True))
        modes = modes * len(crops)
        rec = torch.tensor([m != "other" for m in modes], dtype=img.dtype, device=img.device)
        rec4 = rec.view(-1, 1, 1, 1)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen))
        with torch.no_grad():
            f_real_list = self.feat(
                projected.diff_augment(img, torch.Generator().manual_seed(seed))
            )

        def g_loss() -> tuple:
            out = self.model.fuse(feat, sk, ref, valid, filtered=False)
            f_fake = self.feat(projected.diff_augment(out, torch.Generator().manual_seed(seed)))
            adv = projected.hinge_g(self.P(f_fake))
            l1_in = (torch.abs(out - img) * mask * rec4).sum() / (mask * rec4).sum().clamp_min(1)
            outside = (1 - mask) * rec4
            l1_out = (torch.abs(out - img) * outside).sum() / outside.sum().clamp_min(1)
            perc = (
                sum(
                    ((a - b).abs().mean((1, 2, 3)) * rec).sum() / rec.sum().clamp_min(1)
                    for a, b in zip(f_fake[:3], f_real_list[:3], strict=True)
                )
                / 3
            )
            sketch = out.new_zeros(())
            if self.hed is not None and rec.sum() < len(modes):
                other = (1 - rec).bool()
                side = int(t.get("hed_side", 96))
                with torch.no_grad():
                    e_real = self._edges(img[other], side)
                sketch = F.l1_loss(self._edges(out[other], side), e_real)
            loss = (
                float(t.get("w_adv", 1.0)) * adv
                + float(t.get("w_l1", 10.0)) * l1_in
                + float(t.get("w_l1_out", 2.0)) * l1_out
                + float(t.get("w_perc", 2.0)) * perc
                + float(t.get("w_sketch", 5.0)) * sketch
            )
            return loss, out, f_fake, adv, l1_in, l1_out, perc, sketch

        self.P.requires_grad_(False)
        loss, out, f_fake, adv, l1_in, l1_out, perc, sketch = self.forward("fusion", g_loss)
        self.step(loss, "fusion")
        self.P.requires_grad_(True)
        d = self.forward(
            "P",
            lambda: projected.hinge_d(self.P(f_real_list), self.P([f.detach() for f in f_fake])),
        )
        self.step(d, "P")
        return {
            "g_adv": adv.item(),
            "l1": l1_in.item(),
            "l1_out": l1_out.item(),
            "perc": float(perc.detach()),
            "sketch": float(sketch.detach()),
            "d": d.item(),
        }

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        gen = torch.Generator().manual_seed(1234)  # the same deformations every time
        n = batch["image"].shape[0]
        ref, valid = self.references(batch, ["self"] * n, gen)
        feat = self.features(batch)
        img, mask, sk = batch["image"], batch["mask"], batch["sketch"]
        out = self.model.fuse(feat, sk, ref, valid, filtered=False)
        bare = self.model.fuse(feat, sk, ref, torch.zeros_like(valid), filtered=False)
        metrics = {
            "val_l1": losses.masked_l1(out, img, mask).item(),
            "val_psnr": psnr(out, img, mask),
            "val_psnr_warped_ref": psnr(ref, img, mask * valid),
            "val_psnr_noref": psnr(bare, img, mask),
        }
        return metrics, [sk, ref * valid, out, bare, img]

    def exports(self) -> list[loop.Export]:
        return [loop.Export("fusion_ref", self.fusion, "fusion_ref", self.fusion.manifest_config())]


def _inside(flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """1 where pixel centre + flow falls inside the frame (N, H, W)."""
    ys = torch.arange(h, dtype=flow.dtype).view(1, h, 1) + 0.5 + flow[..., 1]
    xs = torch.arange(w, dtype=flow.dtype).view(1, 1, w) + 0.5 + flow[..., 0]
    return ((ys >= 0) & (ys <= h) & (xs >= 0) & (xs <= w)).to(flow.dtype)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("fusion_ref", __doc__.split("\n\n")[0])
    args = ap.parse_args(argv)
    loop.run(FusionRefTask, args, loop.config_from_args(args), "fusion_ref")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
