"""Train the global fusion network (local networks frozen) and the 2x up-sampling head.

``--stage fusion``: every component's frozen E_sketch / E_app / G_syn turn a training
face (its sketch, its own appearance) into feature maps, pasted and fused by
:class:`facesketch.models.face_model.FaceModel` (the code the engine runs).  Losses (pix2pixHD):
conditional multi-scale LSGAN + feature matching + perceptual + masked L1.  Trained
on random crops of the 256 canvas (fully convolutional), validated on whole faces.

``--stage joint``: the same, but the local E_sketch / E_app / G_syn train together
with the fusion (end to end, one optimizer).  On small compute this is what makes the
lite chain follow the sketch: the staged local losses only see 128 px crops, the
joint loss sees the whole face.  E_app still pools globally, so geometry cannot leak
into the appearance code.

``--stage up``: :class:`Upsampler2x` learns 256 -> 512 on the 512 aligned faces
(input: the area-downsampled real photo), masked L1 + perceptual, on crops.

    python -m train.fusion                    # init from runs/local3-all
    python -m train.fusion --stage joint --init runs/fusion
    python -m train.fusion --stage up
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.engine.weights import WeightsError, load_into, read_manifest
from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.models import losses
from facesketch.models.config import FusionConfig
from facesketch.models.face_model import FaceModel
from facesketch.models.filters import mesh_level
from facesketch.models.fusion import (
    GlobalFusion,
    Upsampler2x,
    build_fusion_discriminator,
    drop_head_maps,
    init_from_transposed,
    is_transposed,
)
from facesketch.models.local import ComponentModel
from train import loop
from train.data import FaceDataset, oversample_full_canvas
from train.local import build_perceptual, perceptual


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Masked PSNR in dB for images in [-1, 1]."""
    mse = ((pred.clamp(-1, 1) - target) ** 2 * mask).sum() / (mask.sum() * pred.shape[1]).clamp_min(
        1
    )
    return float(10 * torch.log10(4.0 / mse.clamp_min(1e-10)))


def random_crop_batch(crop: int, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """One random ``crop`` window (same for all; each tensor (N, C, H, W) at the same H, W)."""
    h, w = tensors[0].shape[-2:]
    if not crop or crop >= min(h, w):
        return list(tensors)
    y = int(torch.randint(0, h - crop + 1, ()))
    x = int(torch.randint(0, w - crop + 1, ()))
    return [t[..., y : y + crop, x : x + crop] for t in tensors]


def pasted_features(
    model: FaceModel, layout: FaceLayout, sketch: torch.Tensor, photo: torch.Tensor
) -> torch.Tensor:
    """The fusion input: each component's map (geometry from ``sketch``, appearance from
    ``photo``) pasted onto the background map, by the engine's own stages."""
    return model.features(sketch, model.codes(photo, layout), layout)[0]


def fill_loss(out: torch.Tensor, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 where the photo did not reach (``mask`` 0) against the aligner's fill there
    (the border replicated and heavily blurred): a weak pull towards a plausible soft
    background.  Without any loss there the fusion draws whatever its D and the other
    pixels leave free: the band of coloured noise along the top edge."""
    return losses.masked_l1(out, img, 1.0 - mask)


def load_teacher(path: str | Path | None, device: torch.device) -> GlobalFusion | None:
    """The fusion to distil from (``task.teacher``: an exported ``fusion.safetensors`` or
    the folder holding one), frozen; ``None`` when there is none.  Why: a resize-conv
    fusion started from a transposed one loses the sketch detail the transposed one
    learnt over many more steps; its shown (notched) output is a dense target that
    carries that detail and no mesh."""
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "fusion.safetensors"
    manifest = read_manifest(p)
    if manifest["network"] != "fusion":
        raise WeightsError(
            f"task.teacher {p}: holds a {manifest['network']!r} network, not 'fusion'"
        )
    net = GlobalFusion(FusionConfig.from_dict(manifest["config"]))
    load_into(net, p, "fusion")
    return net.to(device).eval().requires_grad_(False)


class FusionTask(loop.Task):
    """GlobalFusion + conditional multi-scale D on frozen local networks."""

    name = "fusion"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        mc = ctx.model_cfg
        self.layout = FaceLayout.default(mc.canvas)
        t = self.tcfg
        self.joint = bool(t.get("joint", False))
        self.models = {
            c: ComponentModel(mc.local, c).to(ctx.device).requires_grad_(False) for c in COMPONENTS
        }
        self.fusion = GlobalFusion(mc.fusion).to(ctx.device)
        self.model = FaceModel.from_components(self.models, self.fusion)
        self.D = build_fusion_discriminator(mc.fusion).to(ctx.device)
        self.nets = {f"local.{c}": m for c, m in self.models.items()}
        self.needs_init = set(self.nets)
        self.nets.update(fusion=self.fusion, D=self.D)
        trained: list[torch.nn.Module] = [self.fusion]
        if self.joint:
            for m in self.models.values():
                for part in (m.E_sketch, m.E_app, m.G_syn):
                    part.requires_grad_(True)
                    trained.append(part)
        self.optims = {"fusion": ctx.adam(*trained), "D": ctx.adam(self.D)}
        layers = t.get("perceptual_layers", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
        self.perc = build_perceptual(t.get("perceptual", "hed"), layers, ctx.device)
        if t.get("teach_skip_rows") and t.get("crop", 128):
            raise ValueError("task.teach_skip_rows counts canvas rows: it needs task.crop 0")
        if t.get("w_teach_perc") and not t.get("teacher"):
            raise ValueError("task.w_teach_perc needs task.teacher")
        if t.get("w_teach_detail") and not t.get("teacher"):
            raise ValueError("task.w_teach_detail needs task.teacher")
        if t.get("w_teach_swap") and (t.get("crop", 128) or not t.get("teacher")):
            raise ValueError("task.w_teach_swap needs task.teacher and task.crop 0")
        teacher = load_teacher(t.get("teacher"), ctx.device)
        self.teacher = None if teacher is None else FaceModel.from_components(self.models, teacher)

    def teach(self, feat: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor | None:
        """The teacher's face as the app shows it (its notch applied), or ``None``."""
        if self.teacher is None:
            return None
        with torch.no_grad():
            return self.teacher.fuse(feat.detach(), sketch).float()

    def teach_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Where the teacher is followed: valid photo pixels below its top
        ``task.teach_skip_rows`` rows (of the 256 canvas).  Why: the shipped fusion's band
        of coloured noise lies there, and on full-canvas faces (mask 1 at the top) the
        teacher term would hold it in place against the mesh and photo losses."""
        rows = round(float(self.tcfg.get("teach_skip_rows", 0)) * mask.shape[-2] / 256)
        if rows <= 0:
            return mask
        keep = mask.clone()
        keep[..., :rows, :] = 0
        return keep

    def swapped_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fusion input of each sketch with other faces' looks: per component a
        random convex blend of the appearance codes of the next two photos of the
        batch.  Why: the app's default look blends gallery faces' codes, a pairing the
        photo losses never show the fusion; only the teacher can say what it should
        give there (``task.w_teach_swap``)."""
        with torch.no_grad(), self.ctx.autocast():
            codes = self.model.codes(batch["image"], self.layout)
            n = batch["image"].shape[0]
            mixed = {}
            for c, code in codes.items():
                w = torch.rand((n,) + (1,) * (code.dim() - 1), device=code.device)
                mixed[c] = w * code.roll(1, 0) + (1 - w) * code.roll(2, 0)
            return self.model.features(batch["sketch"], mixed, self.layout)[0].float()

    def swap_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(teacher term, mesh term against the teacher's notched face, border detail
        term, teacher perceptual term) on :meth:`swapped_features`.  The border asks for
        no detail: the teacher's band lies there and no photo of this pairing exists."""
        t = self.tcfg
        feat, sk = self.swapped_features(batch), batch["sketch"]
        out = self.model.fuse(feat, sk, filtered=False)
        shown = self.teach(feat, sk)
        assert shown is not None  # __init__ refuses w_teach_swap without a teacher
        mesh = losses.mesh_loss(out, int(t.get("mesh_period", 4)), t.get("mesh_sigma"), shown)
        border = (
            losses.border_detail_loss(out, None, self.border_px(out))
            if t.get("w_border")
            else out.new_zeros(())
        )
        perc = self.teach_perc(out, shown, batch["mask"])
        return self.teach_loss(out, shown, batch["mask"]), mesh, border, perc

    def teach_perc(
        self, out: torch.Tensor, shown: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """With ``task.w_teach_perc``: the perceptual loss (HED-VGG) to the teacher's shown
        face where :meth:`teach_mask` keeps it.  Why: the low-passed L1 brought the
        cleaned fusion's identity most of the way back and then stalled 0.01 short; who
        the face is lies in the shapes of eyes, brows and lips, which edge features
        weigh more than colour differences do."""
        if not self.tcfg.get("w_teach_perc"):
            return out.new_zeros(())
        side = int(self.tcfg.get("perceptual_max_side", 128))
        return perceptual(self.perc, out, shown, self.teach_mask(mask), side)

    def border_px(self, out: torch.Tensor) -> int:
        """``task.border_rows`` (of the 256 canvas; default 16) at ``out``'s size."""
        return max(1, round(float(self.tcfg.get("border_rows", 16)) * out.shape[-2] / 256))

    def teach_loss(
        self, out: torch.Tensor, shown: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """L1 to the teacher's shown face where :meth:`teach_mask` keeps it (with
        ``task.teach_sigma`` > 0, of the two below a Gaussian of that many px: who the
        face is lies in its low and middle frequencies, and a plain L1 whose sign is set
        by fine texture the student cannot match carries little of them); in the rows
        it skips, with ``task.teach_band_sigma`` > 0, L1 of the two below a Gaussian of
        that many px: the band is fine speckle, and a student trained without photo
        losses would otherwise have nothing holding those rows' colour.  With
        ``task.teach_band_full`` that band term covers the whole band, not only where the
        photo reached: the teacher's face exists everywhere, and UTKFace crops leave the
        top rows valid in only 5-14 % of faces (session 19's student drifted blue there)."""
        keep = self.teach_mask(mask)
        low = float(self.tcfg.get("teach_sigma", 0.0))
        if low > 0:
            loss = losses.low_pass_l1(out, shown, keep, low)
        else:
            loss = losses.masked_l1(out, shown, keep)
        sigma = float(self.tcfg.get("teach_band_sigma", 0.0))
        if sigma > 0 and keep is not mask:
            band = mask - keep
            if self.tcfg.get("teach_band_full", False):
                whole = torch.ones_like(mask)
                band = whole - self.teach_mask(whole)
            loss = loss + losses.low_pass_l1(out, shown, band, sigma)
        return loss

    def datasets(self) -> tuple[Dataset, Dataset]:
        size = self.ctx.model_cfg.canvas
        train = self.ctx.dataset("train", size)
        times = int(self.tcfg.get("full_canvas_repeat", 1))
        if times > 1 and isinstance(train, FaceDataset):
            train = oversample_full_canvas(train, times, self.tcfg.get("full_canvas_min", 0.8))
        return train, self.ctx.dataset("val", size)

    def features(self, batch: dict[str, torch.Tensor], grad: bool = False) -> torch.Tensor:
        with torch.set_grad_enabled(grad), self.ctx.autocast():
            return pasted_features(self.model, self.layout, batch["sketch"], batch["image"]).float()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        t = self.tcfg

        # w_adv 0 and w_fm 0 (pure distillation): D is neither run nor trained
        adversarial = bool(t.get("w_adv", 1.0) or t.get("w_fm", 10.0))

        def g_loss() -> tuple[torch.Tensor, ...]:
            feat, img, mask, sk = random_crop_batch(
                int(t.get("crop", 128)),
                self.features(batch, grad=self.joint),
                batch["image"],
                batch["mask"],
                batch["sketch"],
            )
            out = self.model.fuse(feat, sk, filtered=False)
            cond = feat.detach()  # D's condition; G's gradient reaches feat through out
            zero = out.new_zeros(())
            adv = fm = perc = zero
            if adversarial:
                fake_out = self.D(torch.cat([cond, out * mask, sk], 1))
                with torch.no_grad():
                    real_out = self.D(torch.cat([cond, img * mask, sk], 1))
                adv = losses.lsgan_g(fake_out)
                fm = losses.feature_matching(real_out, fake_out)
            l1 = losses.masked_l1(out, img, mask)
            if t.get("w_perc", 10.0):
                side = int(t.get("perceptual_max_side", 128))
                perc = perceptual(self.perc, out, img, mask, side)
            fill = fill_loss(out, img, mask)
            mesh = losses.mesh_loss(
                out,
                int(t.get("mesh_period", 4)),
                t.get("mesh_sigma"),
                img if t.get("mesh_match_photo", False) else None,
            )
            chroma = (
                losses.chroma_detail_loss(out, img, float(t.get("chroma_sigma", 2.0)))
                if t.get("w_chroma")
                else out.new_zeros(())
            )
            border = (
                losses.border_detail_loss(out, img, self.border_px(out))
                if t.get("w_border")
                else zero
            )
            shown = self.teach(feat, sk)
            teach = tperc = tdetail = zero
            if shown is not None:
                teach, tperc = self.teach_loss(out, shown, mask), self.teach_perc(out, shown, mask)
                if t.get("w_teach_detail"):
                    tdetail = losses.detail_l1(out, shown, self.teach_mask(mask))
            swap, swap_mesh, swap_border, swap_perc = (
                self.swap_loss(batch) if t.get("w_teach_swap") else (zero, zero, zero, zero)
            )
            loss = (
                t.get("w_adv", 1.0) * adv
                + t.get("w_teach_swap", 0.0) * swap
                + t.get("w_fm", 10.0) * fm
                + t.get("w_perc", 10.0) * perc
                + t.get("w_l1", 10.0) * l1
                + t.get("w_fill", 0.0) * fill
                + t.get("w_mesh", 0.0) * (mesh + swap_mesh)
                + t.get("w_teach", 0.0) * teach
                + t.get("w_chroma", 0.0) * chroma
                + t.get("w_border", 0.0) * (border + swap_border)
                + t.get("w_teach_perc", 0.0) * (tperc + swap_perc)
                + t.get("w_teach_detail", 0.0) * tdetail
            )
            parts = {
                "g_adv": adv,
                "fm": fm,
                "perc": perc,
                "l1": l1,
                "fill": fill,
                "mesh": mesh,
                "teach": teach,
                "chroma": chroma,
                "teach_swap": swap,
                "border": border,
                "teach_perc": tperc + swap_perc,
                "teach_detail": tdetail,
            }
            return loss, out, cond, img, mask, sk, parts

        self.D.requires_grad_(False)
        with self.ctx.autocast():
            loss, out, cond, img, mask, sk, parts = self.forward("fusion", g_loss)
        self.step(loss, "fusion")
        self.D.requires_grad_(True)
        if not adversarial:
            return {**{k: v.item() for k, v in parts.items()}, "d": 0.0}
        with self.ctx.autocast():
            d_loss = self.forward(
                "D",
                lambda: losses.lsgan_d(
                    self.D(torch.cat([cond, img * mask, sk], 1)),
                    self.D(torch.cat([cond, out.detach() * mask, sk], 1)),
                ),
            )
        self.step(d_loss, "D")
        return {**{k: v.item() for k, v in parts.items()}, "d": d_loss.item()}

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        feat = self.features(batch)
        out = self.model.fuse(feat, batch["sketch"], filtered=False)
        img, mask = batch["image"], batch["mask"]
        metrics = {
            "val_l1": losses.masked_l1(out, img, mask).item(),
            "val_psnr": psnr(out, img, mask),
            "val_mesh": mesh_level(out),
            "val_border": losses.border_detail(out, self.border_px(out)).abs().mean().item()
            * 127.5,
            "val_chroma": losses.chroma_detail_loss(
                out, img, float(self.tcfg.get("chroma_sigma", 2.0))
            ).item(),
        }
        shown = self.teach(feat, batch["sketch"])
        if shown is not None:
            metrics["val_teach"] = losses.masked_l1(out, shown, self.teach_mask(mask)).item()
        return metrics, [batch["sketch"], out, img]

    def adapt_init(self, name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A transposed-conv fusion starts a resize-conv one (no mesh) of the same sizes
        (:func:`facesketch.models.fusion.init_from_transposed`), and one whose head read
        the pasted maps starts one whose head does not (:func:`drop_head_maps`)."""
        if name != "fusion":
            return state
        if self.fusion.cfg.decoder == "resize" and is_transposed(state):
            old = {k: v.float() for k, v in state.items()}
            with_maps = dataclasses.replace(self.fusion.cfg, head_maps=True)
            state = init_from_transposed(GlobalFusion(with_maps), old).state_dict()
        return drop_head_maps(self.fusion, state)

    def exports(self) -> list[loop.Export]:
        out = [loop.Export("fusion", self.fusion, "fusion", self.fusion.manifest_config())]
        if self.joint:
            out += [
                loop.Export(f"local_{c}", m, m.network, m.manifest_config())
                for c, m in self.models.items()
            ]
        return out


class UpTask(loop.Task):
    """Upsampler2x on (area-downsampled photo -> photo) pairs of 512 faces."""

    name = "up"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        self.up = Upsampler2x(ctx.model_cfg.up).to(ctx.device)
        self.nets = {"up": self.up}
        self.optims = {"up": ctx.adam(self.up)}
        t = self.tcfg
        self.perc = build_perceptual(t.get("perceptual", "hed"), ["relu1_2", "relu2_2"], ctx.device)

    def datasets(self) -> tuple[Dataset, Dataset]:
        size = 2 * self.ctx.model_cfg.canvas
        return self.ctx.dataset("train", size), self.ctx.dataset("val", size)

    @staticmethod
    def low(img: torch.Tensor) -> torch.Tensor:
        """The 2x area-downsampled photo: what the head sees at inference (a 256 render)."""
        return F.avg_pool2d(img, 2)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        t = self.tcfg
        crop = int(t.get("crop", 192))
        img, mask = random_crop_batch(crop - crop % 2, batch["image"], batch["mask"])

        def up_loss() -> tuple[torch.Tensor, ...]:
            out = self.up(self.low(img))
            l1 = losses.masked_l1(out, img, mask)
            perc = perceptual(self.perc, out, img, mask, 0)
            mesh = losses.mesh_loss(out, int(t.get("mesh_period", 4)), t.get("mesh_sigma"))
            loss = t.get("w_l1", 10.0) * l1 + t.get("w_perc", 1.0) * perc
            return loss + t.get("w_mesh", 0.0) * mesh, l1, perc, mesh

        with self.ctx.autocast():
            loss, l1, perc, mesh = self.forward("up", up_loss)
        self.step(loss, "up")
        return {"l1": l1.item(), "perc": perc.item(), "mesh": mesh.item()}

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        img, mask = batch["image"], batch["mask"]
        low = self.low(img)
        out = self.up(low)
        bilinear = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        metrics = {
            "val_psnr": psnr(out, img, mask),
            "val_psnr_bilinear": psnr(bilinear, img, mask),
            "val_mesh": mesh_level(out),
            "val_chroma": losses.chroma_detail_loss(
                out, img, float(self.tcfg.get("chroma_sigma", 2.0))
            ).item(),
        }
        return metrics, [bilinear, out, img]

    def exports(self) -> list[loop.Export]:
        return [loop.Export("up", self.up, "up", self.up.manifest_config())]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("fusion", __doc__.split("\n\n")[0])
    ap.add_argument("--stage", default="fusion", choices=("fusion", "joint", "up"))
    args = ap.parse_args(argv)
    if args.stage != "fusion" and args.config == loop.CONFIG_DIR / "fusion.json":
        args.config = loop.CONFIG_DIR / f"{args.stage}.json"
    if args.stage == "up":
        loop.run(UpTask, args, loop.config_from_args(args), "up")
        return 0
    if args.init is None:
        args.init = [Path("runs") / ("fusion" if args.stage == "joint" else "local3-all")]
    extra = {"task": {"joint": args.stage == "joint"}}
    loop.run(FusionTask, args, loop.config_from_args(args, extra), args.stage)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
