"""Train DeepFaceEditing's local networks, per component, in three stages.

Stage 1: E_sketch / D_sketch sketch auto-encoder (L1).
Stage 2: E_image into E_sketch's latent space (E_sketch, D_sketch frozen): L1 on the
         latent + L1 on D_sketch's layer features.
Stage 3: E_app + G_syn (E_sketch, E_image frozen): masked self-reconstruction (L1 +
         perceptual on the RGB head), cyclic swapping (geometry term: E_image of the
         swapped output keeps its geometry source's latent; cycle term: re-encoding the
         swapped output's appearance and swapping back recovers the original) and a
         multi-scale LSGAN.  Losses are weighted by the photo validity mask.

    python -m train.local --stage 1                      # all five components
    python -m train.local --stage 2 --component nose     # init from runs/local1-all
    python -m train.local --stage 3 --synthetic --max-steps 4
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.layout import BACKGROUND, COMPONENTS, FaceLayout
from facesketch.models import losses
from facesketch.models.discriminators import MultiScaleDiscriminator
from facesketch.models.local import (
    PHOTO_BLANK,
    SKETCH_BLANK,
    ComponentModel,
    blank_local_windows,
    component_input,
)
from train import loop


def build_perceptual(
    kind: str, layers: list[str], device: torch.device
) -> losses.PerceptualLoss | None:
    """The perceptual loss network: ``hed`` (HED's VGG16), ``vgg19`` (torchvision) or ``none``."""
    if kind == "none":
        return None
    if kind == "hed":
        from facesketch.engine.hed_weights import load_vgg16_features
        from facesketch.models.hed import hed_preprocess

        return losses.PerceptualLoss(load_vgg16_features(layers), hed_preprocess).to(device)
    if kind == "vgg19":
        try:
            import torchvision
        except ImportError as exc:
            raise ValueError(
                "perceptual=vgg19 needs torchvision (pip install torchvision)"
            ) from exc
        vgg = torchvision.models.vgg19(weights="IMAGENET1K_V1").features[:27]
        taps = {3, 8, 17, 26}  # relu1_2, relu2_2, relu3_4, relu4_4

        class _Taps(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.vgg = vgg

            def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
                out = []
                for i, layer in enumerate(self.vgg):
                    x = layer(x)
                    if i in taps:
                        out.append(x)
                return out

        mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        return losses.PerceptualLoss(_Taps(), lambda x: ((x + 1) / 2 - mean) / std).to(device)
    raise ValueError(f"unknown perceptual network {kind!r}; use hed, vgg19 or none")


def perceptual(
    loss: losses.PerceptualLoss | None, pred, target, mask, max_side: int
) -> torch.Tensor:
    """Perceptual loss, computed at most at ``max_side`` pixels (CPU budget); 0 without a net."""
    if loss is None:
        return pred.new_zeros(())
    if max_side and pred.shape[-1] > max_side:
        size = (max_side, max_side)
        pred, target = (
            F.interpolate(t, size=size, mode="bilinear", antialias=True) for t in (pred, target)
        )
        mask = F.interpolate(mask, size=size, mode="area")
    return loss(pred, target, mask)


class LocalTask(loop.Task):
    """One of the three local stages for a set of components."""

    name = "local"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        t = self.tcfg
        self.stage = int(t.get("stage", 1))
        if self.stage not in (1, 2, 3):
            raise ValueError(f"--stage must be 1, 2 or 3, not {self.stage}")
        comp = t.get("component", "all")
        self.components = list(COMPONENTS) if comp == "all" else [comp]
        if any(c not in COMPONENTS for c in self.components):
            raise ValueError(f"--component must be 'all' or one of {COMPONENTS}, not {comp!r}")
        mc = ctx.model_cfg
        self.layout = FaceLayout.default(mc.canvas)
        zeros = torch.zeros(1, 1, mc.canvas, mc.canvas, device=ctx.device)
        self.blank = blank_local_windows(zeros, self.layout, 1.0)  # 1 where windows are blanked
        self.models = {c: ComponentModel(mc.local, c).to(ctx.device) for c in self.components}
        self.nets = {f"local.{c}": m for c, m in self.models.items()}
        if self.stage > 1:
            self.needs_init = set(self.nets)
        for c, m in self.models.items():
            m.requires_grad_(False)
            train = {1: (m.E_sketch, m.D_sketch), 2: (m.E_image,), 3: (m.E_app, m.G_syn)}[
                self.stage
            ]
            for part in train:
                part.requires_grad_(True)
            self.optims[f"local.{c}"] = ctx.adam(*train)
        self.D: dict[str, MultiScaleDiscriminator] = {}
        self.perc = None
        if self.stage == 3:
            lc = mc.local
            for c in self.components:
                self.D[c] = MultiScaleDiscriminator(3, lc.d_base, lc.d_layers, lc.d_scales).to(
                    ctx.device
                )
                self.nets[f"D.{c}"] = self.D[c]
                self.optims[f"D.{c}"] = ctx.adam(self.D[c])
            layers = t.get("perceptual_layers", ["relu1_2", "relu2_2", "relu3_3"])
            self.perc = build_perceptual(t.get("perceptual", "hed"), layers, ctx.device)

    def train_mode(self, on: bool) -> None:
        """Only the parts this stage trains go to train mode (frozen parts stay in eval)."""
        for m in self.models.values():
            m.eval()
            parts = {1: (m.E_sketch, m.D_sketch), 2: (m.E_image,), 3: (m.E_app, m.G_syn)}[
                self.stage
            ]
            for p in parts:
                p.train(on)
        for d in self.D.values():
            d.train(on)

    def datasets(self) -> tuple[Dataset, Dataset]:
        size = self.ctx.model_cfg.canvas
        return self.ctx.dataset("train", size), self.ctx.dataset("val", size)

    def step_components(self, step: int) -> list[str]:
        """Components trained this step: all, or one in turn (``cycle``, cheaper steps)."""
        if self.tcfg.get("cycle", self.stage == 3):
            return [self.components[step % len(self.components)]]
        return self.components

    def crops(self, batch: dict[str, torch.Tensor], c: str, train: bool) -> dict[str, torch.Tensor]:
        """Inputs of component ``c``: ``sketch``, ``geo`` (E_image input), ``app`` (E_app
        input), ``target`` (RGB the outputs match), ``mask``, ``blank`` (1 on blanked windows).

        In training the background (whole canvas) is cut to a random ``bg_crop`` window
        (its geometry networks are fully convolutional) while E_app still sees the whole
        photo, as at inference: the 256 background is most of a step's cost.
        """
        lay, img = self.layout, batch["image"]
        out = {
            "sketch": component_input(batch["sketch"], lay, c, SKETCH_BLANK),
            "geo": component_input(img, lay, c, PHOTO_BLANK),
            "app": img if c == BACKGROUND else lay.crop(img, c),
            "mask": lay.crop(batch["mask"], c),
        }
        # only the background's input has blanked windows
        full = self.blank if c == BACKGROUND else torch.zeros_like(self.blank)
        out["blank"] = lay.crop(full.expand_as(batch["mask"]), c)
        out["target"] = out["app"]
        crop = int(self.tcfg.get("bg_crop", 128))
        if c == BACKGROUND and train and crop and crop < lay.canvas:
            crop -= crop % (2 ** (self.ctx.model_cfg.local.n_down + 1))
            y, x = (int(v) for v in torch.randint(0, lay.canvas - crop + 1, (2,)))
            for k in ("sketch", "geo", "target", "mask", "blank"):
                out[k] = out[k][..., y : y + crop, x : x + crop]
        return out

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        logs: dict[str, float] = {}
        for c in self.step_components(step):
            fn = {1: self._stage1, 2: self._stage2, 3: self._stage3}[self.stage]
            for k, v in fn(c, self.crops(batch, c, train=True)).items():
                logs[f"{k}/{c}" if len(self.components) > 1 else k] = v
        return logs

    def _stage1(self, c: str, x: dict[str, torch.Tensor]) -> dict[str, float]:
        m, t, sk = self.models[c], self.tcfg, x["sketch"]

        def ae_loss() -> torch.Tensor:
            rec = m.D_sketch(m.E_sketch(sk))
            # lines are a small fraction of the pixels: weight them up so they are not lost
            w = 1.0 + t.get("line_weight", 2.0) * (sk < 0).float()
            return (w * (rec - sk).abs()).mean()

        with self.ctx.autocast():
            loss = self.forward(f"local.{c}", ae_loss)
        self.step(loss, f"local.{c}")
        return {"l1": loss.item()}

    def _stage2(self, c: str, x: dict[str, torch.Tensor]) -> dict[str, float]:
        m, t = self.models[c], self.tcfg

        def image_loss() -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                target = m.E_sketch(x["sketch"])
                target_feats = m.D_sketch.features(target)
            lat = m.E_image(x["geo"])
            l_lat = F.l1_loss(lat, target)
            feats = m.D_sketch.features(lat)
            pairs = zip(feats, target_feats, strict=True)
            l_feat = sum(F.l1_loss(a, b) for a, b in pairs) / len(feats)
            return l_lat + t.get("w_feat", 1.0) * l_feat, l_lat, l_feat

        with self.ctx.autocast():
            loss, l_lat, l_feat = self.forward(f"local.{c}", image_loss)
        self.step(loss, f"local.{c}")
        return {"latent": l_lat.item(), "feat": l_feat.item()}

    def _stage3(self, c: str, x: dict[str, torch.Tensor]) -> dict[str, float]:
        m, t, D = self.models[c], self.tcfg, self.D[c]
        target, mask, blank = x["target"], x["mask"], x["blank"]
        ps = int(t.get("perceptual_max_side", 64))

        def g_loss() -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                geom = m.E_sketch(x["sketch"])
            code = m.E_app(x["app"])
            rgb = m.G_syn.to_rgb(m.G_syn(geom, code))
            rec = losses.masked_l1(rgb, target, mask)
            perc = perceptual(self.perc, rgb, target, mask, ps)
            # swap: geometry of sample i-1, appearance of sample i
            geom_b, mask_b = geom.roll(1, 0), mask.roll(1, 0)
            swapped = m.G_syn.to_rgb(m.G_syn(geom_b, code))
            # geometry term: E_image (frozen) finds geometry i-1 in the swapped face again
            seen = swapped * (1 - blank) + PHOTO_BLANK * blank
            l_geo = F.l1_loss(m.E_image(seen), geom_b)
            # cycle term: the swapped face's appearance, put back on geometry i, gives face i
            code_back = m.E_app(swapped)
            recovered = m.G_syn.to_rgb(m.G_syn(geom, code_back))
            cyc = losses.masked_l1(recovered, target, mask)
            l_code = F.l1_loss(code_back, code.detach())
            adv = 0.5 * (losses.lsgan_g(D(rgb * mask)) + losses.lsgan_g(D(swapped * mask_b)))
            loss = (
                t.get("w_rec", 10.0) * rec
                + t.get("w_perc", 1.0) * perc
                + t.get("w_geo", 1.0) * l_geo
                + t.get("w_cyc", 10.0) * cyc
                + t.get("w_code", 1.0) * l_code
                + t.get("w_gan", 1.0) * adv
            )
            return loss, rgb, swapped, mask_b, rec, perc, l_geo, cyc, l_code, adv

        D.requires_grad_(False)
        with self.ctx.autocast():
            g, rgb, swapped, mask_b, rec, perc, l_geo, cyc, l_code, adv = self.forward(
                f"local.{c}", g_loss
            )
        self.step(g, f"local.{c}")
        D.requires_grad_(True)
        with self.ctx.autocast():
            fake = torch.cat([(rgb * mask).detach(), (swapped * mask_b).detach()])
            real = torch.cat([target * mask, target.roll(1, 0) * mask_b])
            d_loss = self.forward(f"D.{c}", lambda: losses.lsgan_d(D(real), D(fake)))
        self.step(d_loss, f"D.{c}")
        return {
            "rec": rec.item(),
            "perc": perc.item(),
            "geo": l_geo.item(),
            "cyc": cyc.item(),
            "code": l_code.item(),
            "g_adv": adv.item(),
            "d": d_loss.item(),
        }

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        metrics: dict[str, float] = {}
        cols: list[torch.Tensor] = []
        for c in self.components:
            m, x = self.models[c], self.crops(batch, c, train=False)
            sk = x["sketch"]
            geom = m.E_sketch(sk)
            if self.stage == 1:
                rec = m.D_sketch(geom)
                metrics[f"val_l1/{c}"] = F.l1_loss(rec, sk).item()
                cols += [sk, rec]
            elif self.stage == 2:
                lat = m.E_image(x["geo"])
                metrics[f"val_latent/{c}"] = F.l1_loss(lat, geom).item()
                cols += [x["geo"], sk, m.D_sketch(lat)]
            else:
                code = m.E_app(x["app"])
                rgb = m.G_syn.to_rgb(m.G_syn(geom, code))
                swapped = m.G_syn.to_rgb(m.G_syn(geom, code.roll(1, 0)))
                metrics[f"val_rec/{c}"] = losses.masked_l1(rgb, x["target"], x["mask"]).item()
                cols += [sk, x["target"], rgb, swapped]
        return metrics, cols

    def exports(self) -> list[loop.Export]:
        return [
            loop.Export(f"local_{c}", m, m.network, m.manifest_config())
            for c, m in self.models.items()
        ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("local", __doc__.split("\n\n")[0])
    ap.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    ap.add_argument("--component", default="all", choices=("all", *COMPONENTS))
    args = ap.parse_args(argv)
    if args.config == loop.CONFIG_DIR / "local.json":  # the default: one file per stage
        args.config = loop.CONFIG_DIR / f"local{args.stage}.json"
    run_name = f"local{args.stage}-{args.component}"
    if args.init is None and args.stage > 1:
        args.init = [Path("runs") / f"local{args.stage - 1}-{args.component}"]
    extra = {"task": {"stage": args.stage, "component": args.component}}
    loop.run(LocalTask, args, loop.config_from_args(args, extra), run_name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
