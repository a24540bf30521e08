"""Train Cali-Sketch's Stroke Calibration Network (G1 + PatchGAN D1).

Inputs are clean training sketches redrawn roughly by ``facesketch.sketch.rough``
(strength ~ U(strength_min, strength_max); a share ``clean_share`` is fed unchanged so
good strokes learn to pass through); targets are the clean sketches (HED contours +
Canny details of the photo, from train.prepare).  The crops are what the app feeds the
SCN (``component_input``): a share ``local_share`` centred on a local window (eyes,
nose, mouth; cut to the window's side with ``window_crop_p``), the rest from the
background input (the canvas with the local windows blanked to paper).  Losses:

- with a gate head (``SCNConfig.gate``, the default): the per-pixel calibration target
  that matches the line F1: *keep* = rough ink within 2 px (the F1's elliptical window)
  of clean ink, a BCE weighted by the rough ink and partly class-balanced
  (``keep_balance``: 0 plain, 1 both classes weigh the same); with ``keep_add`` also
  *add* = clean ink with no rough ink within 2 px, a plain BCE on paper pixels;
- reconstruction: L1 to the target plus tolerant line terms, because the true position
  of a wobbled line is uncertain and a plain per-pixel L1 would rather erase it:
  *recall* (target ink with no output ink within 2 px) and *false ink* (output ink with
  no target ink within 2 px);
- Cali-Sketch's calibration loss, feature matching on D1's intermediate features, as a
  global-contour term (D1 on 2x-downsampled sketches) and a local-detail term (D1 at
  full resolution);
- LSGAN adversarial loss on both scales (secondary).

Trains on random crops of the 256 canvas (fully convolutional); validates on whole
sketches with the line F1 of train.eval (the rough input's F1 is the bar).  Training
seeds are < 2**30; evaluation seeds (train.scn_eval) are >= 2**30, never seen here.

    python -m train.scn                       # real data, defaults for a 2-core CPU
    python -m train.scn --synthetic --max-steps 20
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.imaging import sketch_to_tensor, tensor_to_image
from facesketch.layout import LOCAL_COMPONENTS, FaceLayout
from facesketch.models import losses
from facesketch.models.local import SKETCH_BLANK, blank_local_windows
from facesketch.models.scn import StrokeCalibrator, build_scn_discriminator, compose_gate, ink
from train import loop

#: Tolerance (px) of the recall / false-ink terms; train.eval's line F1 uses the same.
TOLERANCE_PX = 2


def random_crop(
    tensors: list[torch.Tensor], crop: int, rng: np.random.Generator
) -> list[torch.Tensor]:
    """The same random ``crop`` x ``crop`` window of every (C, H, W) tensor (0 = no crop)."""
    h, w = tensors[0].shape[-2:]
    if not crop or crop >= min(h, w):
        return tensors
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    return [t[..., y : y + crop, x : x + crop] for t in tensors]


#: Roughening seeds used in training are below this; evaluation seeds start here.
EVAL_SEED_BASE = 2**30

#: The line F1's tolerance window (train.eval.edge_f1), as a conv kernel.
_NEAR = torch.from_numpy(
    cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOLERANCE_PX + 1,) * 2).astype(np.float32)
)[None, None]


def near(mask: torch.Tensor) -> torch.Tensor:
    """1 where a (N, 1, H, W) 0/1 mask has a pixel within the F1's tolerance window."""
    k = _NEAR.to(mask)
    return (F.conv2d(mask, k, padding=TOLERANCE_PX) > 0.5).to(mask)


def gate_targets(rough: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, add) labels: rough ink near clean ink; clean ink with no rough ink near.

    Ink is what the F1 counts (darker than mid grey), so the labels are the metric's."""
    r, c = (ink(rough) > 0.5).float(), (ink(clean) > 0.5).float()
    return near(c), c * (1 - near(r))


def window_crop(
    tensors: list[torch.Tensor], crop: int, name: str, layout: FaceLayout, rng: np.random.Generator
) -> list[torch.Tensor]:
    """A ``crop`` window of every (C, H, W) tensor centred on local window ``name`` (+-8 px)."""
    h, w = tensors[0].shape[-2:]
    win = layout.window(name)
    cy, cx = win.y + win.size // 2, win.x + win.size // 2
    cy, cx = cy + int(rng.integers(-8, 9)), cx + int(rng.integers(-8, 9))
    y = int(np.clip(cy - crop // 2, 0, h - crop))
    x = int(np.clip(cx - crop // 2, 0, w - crop))
    return [t[..., y : y + crop, x : x + crop] for t in tensors]


class RoughPairs(Dataset):
    """(rough, clean) sketch pairs from a face dataset's clean sketches.

    ``deterministic`` (validation) fixes each sample's roughening seed (>= EVAL_SEED_BASE)
    and strength (``val_strength``, default 0.7) so numbers are comparable across steps.
    """

    def __init__(
        self,
        base: Dataset,
        crop: int,
        smin: float,
        smax: float,
        deterministic: bool,
        clean_share: float = 0.0,
        val_strength: float | None = None,
        local_share: float = 0.0,
    ) -> None:
        from facesketch.sketch.rough import roughen_sketch  # fails here, clearly, if missing

        self.base, self.crop, self.smin, self.smax = base, crop, smin, smax
        self.deterministic, self.roughen = deterministic, roughen_sketch
        self.clean_share, self.local_share = clean_share, local_share
        self.val_strength = 0.5 * (smin + smax) if val_strength is None else val_strength

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        clean = tensor_to_image(self.base[i]["sketch"])
        if self.deterministic:
            strength, seed = self.val_strength, EVAL_SEED_BASE + i
            rng = np.random.default_rng(seed)
        else:
            rng = np.random.default_rng(np.random.randint(2**31))
            strength = float(rng.uniform(self.smin, self.smax))
            seed = int(rng.integers(EVAL_SEED_BASE))
            if rng.random() < self.clean_share:
                strength = 0.0
        rough = self.roughen(clean, strength, seed)
        pair = [sketch_to_tensor(rough)[0], sketch_to_tensor(clean)[0]]
        if not self.deterministic:
            lay = FaceLayout.default(pair[0].shape[-1])
            if rng.random() < self.local_share:
                name = LOCAL_COMPONENTS[int(rng.integers(len(LOCAL_COMPONENTS)))]
                pair = window_crop(pair, self.crop, name, lay, rng)
            else:  # the background branch's input: local windows blanked to paper
                pair = [blank_local_windows(t, lay, SKETCH_BLANK) for t in pair]
                pair = random_crop(pair, self.crop, rng)
        return {"rough": pair[0], "clean": pair[1]}


class SCNTask(loop.Task):
    """G1 / D1 with LSGAN + calibration (feature matching) + L1."""

    name = "scn"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        mc = ctx.model_cfg.scn
        self.G = StrokeCalibrator(mc).to(ctx.device)
        self.D = build_scn_discriminator(mc).to(ctx.device)
        self.nets = {"G": self.G, "D": self.D}
        self.optims = {"G": ctx.adam(self.G), "D": ctx.adam(self.D)}

    def datasets(self) -> tuple[Dataset, Dataset]:
        t = self.tcfg
        size = self.ctx.model_cfg.canvas
        smin, smax = t.get("strength_min", 0.2), t.get("strength_max", 1.0)
        clean = t.get("clean_share", 0.0)
        train = RoughPairs(
            self.ctx.dataset("train", size),
            t.get("crop", 128),
            smin,
            smax,
            False,
            clean,
            local_share=t.get("local_share", 0.0),
        )
        val_ds = self.ctx.dataset("val", size)
        val = RoughPairs(val_ds, 0, smin, smax, True, val_strength=t.get("val_strength", 0.7))
        return train, val

    def gate_losses(
        self, logits: torch.Tensor, rough: torch.Tensor, clean: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """BCE of the keep (and add) logits against :func:`gate_targets`."""
        keep, add = gate_targets(rough, clean)
        w = ink(rough)
        b = float(self.tcfg.get("keep_balance", 0.5))
        pos = (w * keep).sum().clamp_min(1.0)
        neg = (w * (1 - keep)).sum().clamp_min(1.0)
        total = pos + neg
        # class weight (share)^-b: b = 1 gives both classes the same total weight
        cw = keep * (pos / total) ** -b + (1 - keep) * (neg / total) ** -b
        bce = F.binary_cross_entropy_with_logits(logits[:, :1].float(), keep, reduction="none")
        terms = {"keep": (w * cw * bce).sum() / (w * cw).sum().clamp_min(1e-6)}
        if logits.shape[1] > 1:
            paper = 1 - w
            bce = F.binary_cross_entropy_with_logits(logits[:, 1:2].float(), add, reduction="none")
            terms["add"] = (paper * bce).sum() / paper.sum().clamp_min(1.0)
        return terms

    def g_losses(self, fake: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator loss terms on the output sketch (see the module docstring)."""
        out_ink, tgt_ink = (1 - fake) / 2, (1 - clean) / 2  # 1 = black line
        tol = 2 * TOLERANCE_PX + 1
        near_out = F.max_pool2d(out_ink, tol, 1, TOLERANCE_PX)
        near_tgt = F.max_pool2d(tgt_ink, tol, 1, TOLERANCE_PX)
        norm = tgt_ink.sum().clamp_min(1.0)
        terms = {
            "l1": F.l1_loss(fake, clean),
            "recall": (tgt_ink * (1 - near_out)).sum() / norm,
            "false_ink": (out_ink * (1 - near_tgt)).sum() / norm,
        }
        real_small, fake_small = F.avg_pool2d(clean, 2), F.avg_pool2d(fake, 2)
        with torch.no_grad():  # feature-matching targets: no graph needed
            real_local, real_global = self.D(clean), self.D(real_small)
        fake_local, fake_global = self.D(fake), self.D(fake_small)
        terms["cal_local"] = losses.feature_matching(real_local, fake_local)
        terms["cal_global"] = losses.feature_matching(real_global, fake_global)
        terms["adv"] = 0.5 * (losses.lsgan_g(fake_local) + losses.lsgan_g(fake_global))
        return terms

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        t = self.tcfg
        rough, clean = batch["rough"], batch["clean"]
        side = rough.shape[-1]
        win = int(t.get("window_crop", 64))
        if win < side and np.random.random() < t.get("window_crop_p", 0.0):
            # the eyes' windows are this small: context as little as the app gives
            o = (side - win) // 2
            rough, clean = (
                rough[..., o : o + win, o : o + win],
                clean[..., o : o + win, o : o + win],
            )
        weights = {
            "keep": t.get("w_keep", 10.0),
            "add": t.get("w_add", 2.0),
            "l1": t.get("w_l1", 10.0),
            "recall": t.get("w_recall", 5.0),
            "false_ink": t.get("w_false_ink", 5.0),
            "cal_local": t.get("w_cal", 10.0) * 0.5,
            "cal_global": t.get("w_cal", 10.0) * 0.5,
            "adv": t.get("w_adv", 1.0),
        }

        def g_loss() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
            if self.G.cfg.gate == "none":
                fake, terms = self.G(rough), {}
            else:
                logits = self.G.raw(rough)
                fake = compose_gate(rough, logits)
                terms = self.gate_losses(logits, rough, clean)
            terms.update(self.g_losses(fake, clean))
            return fake, sum(weights[k] * v for k, v in terms.items()), terms

        self.D.requires_grad_(False)
        with self.ctx.autocast():
            fake, loss, terms = self.forward("G", g_loss)
        self.step(loss, "G")
        self.D.requires_grad_(True)

        def d_loss() -> torch.Tensor:
            f = fake.detach()
            local = losses.lsgan_d(self.D(clean), self.D(f))
            glob = losses.lsgan_d(self.D(F.avg_pool2d(clean, 2)), self.D(F.avg_pool2d(f, 2)))
            return 0.5 * (local + glob)

        with self.ctx.autocast():
            dl = self.forward("D", d_loss)
        self.step(dl, "D")
        return {**{f"g_{k}": v.item() for k, v in terms.items()}, "d": dl.item()}

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        from train.eval import edge_f1

        rough, clean = batch["rough"], batch["clean"]
        out = self.G(rough)
        kept = self.G(clean)  # clean strokes must come through unharmed

        def f1(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(
                np.mean(
                    [
                        edge_f1(tensor_to_image(x), tensor_to_image(y))
                        for x, y in zip(a, b, strict=True)
                    ]
                )
            )

        s = float(self.tcfg.get("val_scn_strength", 0.7))  # the app's blend
        metrics = {
            f"val_f1_s{round(s * 100)}": f1(torch.lerp(rough, out, s), clean),
            "val_l1": F.l1_loss(out, clean).item(),
            "val_l1_input": F.l1_loss(rough, clean).item(),  # the bar: doing nothing
            "val_f1": f1(out, clean),
            "val_f1_input": f1(rough, clean),
            "val_f1_clean": f1(kept, clean),
        }
        return metrics, [rough, out, clean]

    def exports(self) -> list[loop.Export]:
        return [loop.Export("scn", self.G, "scn", self.G.manifest_config())]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("scn", __doc__.split("\n\n")[0])
    args = ap.parse_args(argv)
    loop.run(SCNTask, args, loop.config_from_args(args), "scn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
