"""Train Cali-Sketch's Stroke Calibration Network (G1 + PatchGAN D1).

Inputs are clean training sketches roughened by ``facesketch.sketch.rough``
(strength ~ U(0.2, 1)); targets are the clean sketches.  Losses: LSGAN +
calibration loss (L1 between D1's intermediate features of target and output,
Cali-Sketch's feature matching) + L1 to the target.  Trains on random crops of the
256 canvas (fully convolutional), validates on whole sketches.

    python -m train.scn                       # real data, defaults for a 2-core CPU
    python -m train.scn --synthetic --max-steps 20
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.imaging import sketch_to_tensor, tensor_to_image
from facesketch.models import losses
from facesketch.models.scn import StrokeCalibrator, build_scn_discriminator
from train import loop


def random_crop(
    tensors: list[torch.Tensor], crop: int, rng: np.random.Generator
) -> list[torch.Tensor]:
    """The same random ``crop`` x ``crop`` window of every (C, H, W) tensor (0 = no crop)."""
    h, w = tensors[0].shape[-2:]
    if not crop or crop >= min(h, w):
        return tensors
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    return [t[..., y : y + crop, x : x + crop] for t in tensors]


class RoughPairs(Dataset):
    """(rough, clean) sketch pairs from a face dataset's clean sketches.

    ``deterministic`` (validation) fixes each sample's roughening seed and strength so
    that validation numbers are comparable across steps.
    """

    def __init__(
        self, base: Dataset, crop: int, smin: float, smax: float, deterministic: bool
    ) -> None:
        from facesketch.sketch.rough import roughen_sketch  # fails here, clearly, if missing

        self.base, self.crop, self.smin, self.smax = base, crop, smin, smax
        self.deterministic, self.roughen = deterministic, roughen_sketch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = (
            np.random.default_rng(i)
            if self.deterministic
            else np.random.default_rng(np.random.randint(2**31))
        )
        clean = tensor_to_image(self.base[i]["sketch"])
        strength = float(rng.uniform(self.smin, self.smax))
        rough = self.roughen(clean, strength, int(rng.integers(2**31)))
        pair = [sketch_to_tensor(rough)[0], sketch_to_tensor(clean)[0]]
        if not self.deterministic:
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
        train = RoughPairs(self.ctx.dataset("train", size), t.get("crop", 128), smin, smax, False)
        val = RoughPairs(self.ctx.dataset("val", size), 0, smin, smax, True)
        return train, val

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        t = self.tcfg
        rough, clean = batch["rough"], batch["clean"]

        def g_loss() -> tuple[torch.Tensor, ...]:
            fake = self.G(rough)
            real_out = [f.detach() for f in self.D(clean)]
            fake_out = self.D(fake)
            adv = losses.lsgan_g(fake_out)
            cal = losses.feature_matching(real_out, fake_out)
            l1 = F.l1_loss(fake, clean)
            return fake, adv + t.get("w_cal", 10.0) * cal + t.get("w_l1", 10.0) * l1, adv, cal, l1

        self.D.requires_grad_(False)
        with self.ctx.autocast():
            fake, loss, adv, cal, l1 = self.forward("G", g_loss)
        self.step(loss, "G")
        self.D.requires_grad_(True)
        with self.ctx.autocast():
            d_loss = self.forward("D", lambda: losses.lsgan_d(self.D(clean), self.D(fake.detach())))
        self.step(d_loss, "D")
        return {"g_adv": adv.item(), "g_cal": cal.item(), "g_l1": l1.item(), "d": d_loss.item()}

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        rough, clean = batch["rough"], batch["clean"]
        out = self.G(rough)
        metrics = {
            "val_l1": F.l1_loss(out, clean).item(),
            "val_l1_input": F.l1_loss(rough, clean).item(),  # the bar: doing nothing
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
