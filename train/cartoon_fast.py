"""CartoonGAN that converges in CPU-hours: projected + white-box discriminators.

Keeps CartoonGAN's generator, its initialization phase (content loss only) and its
edge-smoothed anime as extra negatives for the patch discriminator
(:mod:`train.cartoongan`), and adds what makes recent methods fast:

* a projected discriminator (:mod:`train.projected`) on frozen ImageNet
  EfficientNet-Lite0 features of DiffAugment-ed images, hinge loss;
* White-box Cartoonization's representations (:mod:`train.whitebox`): a surface
  discriminator on guided-filtered images, a texture discriminator on randomly
  colour-shifted greyscale images, and a structure loss pulling the output towards
  its own SLIC superpixel-flattened copy; total variation;
* content and structure losses on the same frozen EfficientNet features (stages at
  1/8 and 1/16; one forward pass of the output serves content and structure), about
  ten times cheaper on a CPU than VGG.

Domains: content = the aligned face photos of the prepared data (``<data>/256/img``),
minus the held-out selfies (:func:`heldout_selfies`, used by ``train.cartoon_eval``);
style = the prepared anime faces (``<data>/anime/img``) and their edge-smoothed
copies (``<data>/anime/smooth``), both precomputed so loading is a few PNG reads.

    python -m train.cartoon_fast --set train.threads=1 --max-minutes 90   # resumable
    python -m train.cartoon_fast --synthetic --max-steps 4 --run-dir /tmp/cf   # smoke run
"""

from __future__ import annotations

import copy
import functools
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.imaging import image_to_tensor, read_image
from facesketch.models.cartoon import (
    CartoonConfig,
    CartoonDiscriminator,
    CartoonGenerator,
    cartoon_preset,
)
from facesketch.models.filters import DEFAULT_PERIOD
from train import loop, projected, whitebox
from train.cartoongan import CartoonTask, SyntheticAnime, list_images, load_square
from train.edge_smooth import edge_smooth
from train.kid_monitor import KidMonitor, color_loss, ema_update

#: One selfie in HELD_OUT_EVERY (by name hash) is never trained on: the evaluation set.
HELD_OUT_EVERY = 10


def is_heldout(stem: str) -> bool:
    """Whether a selfie (file stem without the ``selfies_`` prefix) is held out."""
    return zlib.crc32(stem.encode()) % HELD_OUT_EVERY == 0


def heldout_selfies(folder: str | Path) -> list[Path]:
    """The held-out selfies of the raw selfie folder (sorted)."""
    return [f for f in list_images([folder]) if is_heldout(f.stem)]


def _heldout_file(p: Path) -> bool:
    """A held-out selfie, prepared (``selfies_<stem>``) or raw (in a ``selfies`` folder)."""
    if p.stem.startswith("selfies_"):
        return is_heldout(p.stem[8:])
    return p.parent.name == "selfies" and is_heldout(p.stem)


class PairedFolders(Dataset):
    """Photo i with a random anime face and its precomputed edge-smoothed copy."""

    def __init__(
        self, photos: list[Path], anime: list[Path], smooth_dir: Path | None, crop: int, train: bool
    ) -> None:
        self.photos, self.anime, self.smooth_dir = photos, anime, smooth_dir
        self.crop, self.train = crop, train

    def __len__(self) -> int:
        return len(self.photos)

    def _smooth(self, a: Path, img: np.ndarray) -> np.ndarray:
        p = self.smooth_dir / f"{a.stem}.png" if self.smooth_dir else None
        return read_image(p) if p is not None and p.is_file() else edge_smooth(img)

    def _aug(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if rng.random() < 0.5:
            x = x.flip(-1)
        h, w = x.shape[-2:]
        if self.crop and self.crop < min(h, w):
            y0, x0 = (
                int(rng.integers(0, h - self.crop + 1)),
                int(rng.integers(0, w - self.crop + 1)),
            )
            x = x[..., y0 : y0 + self.crop, x0 : x0 + self.crop]
        return x

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(np.random.randint(2**31) if self.train else i)
        a = self.anime[int(rng.integers(len(self.anime))) if self.train else i % len(self.anime)]
        cartoon = read_image(a)
        imgs = [load_square(self.photos[i], 256), cartoon, self._smooth(a, cartoon)]
        photo = image_to_tensor(imgs[0])[0]
        pair = torch.cat([image_to_tensor(imgs[1])[0], image_to_tensor(imgs[2])[0]])
        if self.train:  # the smoothed copy shares the anime's flip and crop
            photo, pair = self._aug(photo, rng), self._aug(pair, rng)
        t = [photo, pair[:3], pair[3:]]
        return {"photo": t[0], "anime": t[1], "smooth": t[2]}


class _Synthetic(Dataset):
    """Smoke-run stand-in: synthetic faces as photos and flat drawn faces as anime."""

    def __init__(self, photos: Dataset, anime: Dataset, crop: int) -> None:
        self.photos, self.anime, self.crop = photos, anime, crop

    def __len__(self) -> int:
        return len(self.photos)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.photos[i]
        photo = item["image"] if isinstance(item, dict) else image_to_tensor(item)[0]
        cartoon = self.anime[i % len(self.anime)]  # type: ignore[arg-type]
        a, s = image_to_tensor(cartoon)[0], image_to_tensor(edge_smooth(cartoon))[0]
        c = self.crop or photo.shape[-1]
        return {"photo": photo[..., :c, :c], "anime": a[..., :c, :c], "smooth": s[..., :c, :c]}


def _lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))


class FastCartoonTask(CartoonTask):
    """CartoonGAN generator trained against patch, surface, texture and projected Ds."""

    name = "cartoonfast"

    def __init__(self, cfg: dict, ctx: loop.RunContext, run_dir: Path | None = None) -> None:
        loop.Task.__init__(self, cfg, ctx)
        t, dev = self.tcfg, ctx.device
        base = cartoon_preset(t.get("preset", "lite")).to_dict()
        self.model_cfg = CartoonConfig.from_dict({**base, **t.get("model", {})})
        d_cfg = CartoonConfig(self.model_cfg.base, self.model_cfg.n_res, int(t.get("d_base", 16)))
        self.G = CartoonGenerator(self.model_cfg).to(dev)
        if t.get("init_style"):  # start from an exported style (resume overrides it)
            from facesketch.engine.weights import load_into

            load_into(self.G, t["init_style"], "cartoon")
        self.D = CartoonDiscriminator(d_cfg).to(dev)
        self.D_surface = CartoonDiscriminator(d_cfg).to(dev)
        self.D_texture = CartoonDiscriminator(d_cfg).to(dev)
        self.P = projected.ProjectedDiscriminator(int(t.get("proj_width", 64))).to(dev)
        self.feat = projected.EffNetFeatures().to(dev)  # frozen; not checkpointed
        # EMA of G's weights: what the monitor scores and what is exported
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.ema_decay = float(t.get("ema", 0.0))
        self.nets = {
            "G": self.G,
            "G_ema": self.G_ema,
            "D": self.D,
            "D_surface": self.D_surface,
            "D_texture": self.D_texture,
            "P": self.P,
        }
        ds = (self.D, self.D_surface, self.D_texture, self.P)
        lr_g, lr_d = t.get("lr_g"), t.get("lr_d")  # None: train.lr
        self.optims = {"G": ctx.adam(self.G, lr=lr_g), "D": ctx.adam(*ds, lr=lr_d)}
        self.init_steps = int(t.get("init_steps", 0))
        self.w = {k: float(t.get(f"w_{k}", v)) for k, v in DEFAULT_WEIGHTS.items()}
        self.content_stages = tuple(t.get("content_stages", (1, 2)))
        self.segments = int(t.get("segments", 120))
        self.gan = "lsgan"
        self.kid_every = int(t.get("kid_every", 0))
        self.monitor: KidMonitor | None = None
        if self.kid_every and run_dir is not None and not cfg["data"].get("synthetic"):
            self.monitor = KidMonitor(
                run_dir, int(t.get("kid_images", 48)), min_faces=float(t.get("min_faces", 0.0))
            )
        self.run_data = str(cfg["data"].get("root") or "")

    def datasets(self) -> tuple[Dataset, Dataset]:
        t, d = self.tcfg, self.cfg["data"]
        crop = int(t.get("crop", 128))
        if d.get("synthetic"):
            n = int(d.get("synthetic_count", 16))
            return (
                _Synthetic(self.ctx.dataset("train", 64), SyntheticAnime(n, 64), min(crop, 64)),
                _Synthetic(self.ctx.dataset("val", 64), SyntheticAnime(max(2, n // 4), 64), 0),
            )
        root = Path(d.get("root") or loop.default_data_root())
        # task.photo_dirs: raw photo folders (centre-squared at 256) instead of the
        # prepared aligned faces; the held-out selfies stay out either way
        dirs = t.get("photo_dirs") or [root / "256" / "img"]
        photos = [p for p in list_images(dirs) if not _heldout_file(p)]
        anime = list_images([root / "anime" / "img"])
        val_p = [p for p in photos if zlib.crc32(p.name.encode()) % 40 == 0]
        train_p = [p for p in photos if p not in set(val_p)]
        val_a = [a for a in anime if zlib.crc32(a.name.encode()) % 40 == 0]
        train_a = [a for a in anime if a not in set(val_a)]
        smooth = root / "anime" / "smooth"
        return (
            PairedFolders(train_p, train_a, smooth, crop, True),
            PairedFolders(val_p, val_a, smooth, 0, False),
        )

    def _content(self, f_out: list[torch.Tensor], f_ref: list[torch.Tensor]) -> torch.Tensor:
        """L1 between feature stages, each scaled by the reference's mean magnitude."""
        total = sum(
            F.l1_loss(f_out[s], f_ref[s]) / f_ref[s].abs().mean().clamp_min(1e-6)
            for s in self.content_stages
        )
        return total / len(self.content_stages)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        if step == 0 and self.monitor is not None and self.tcfg.get("kid_at_start", True):
            self._check(0)
        out = self._train_step(batch, step)
        ema_update(self.G_ema, self.G, self.ema_decay if step >= self.init_steps else 0.0)
        if self.monitor is not None and (step + 1) % self.kid_every == 0:
            out |= self._check(step + 1)
        return out

    def _check(self, step: int) -> dict[str, float]:
        """Quick KID of the EMA generator; exports it to <run>/last (and <run>/best)."""
        manifest = {
            "stem": f"cartoon-{self.tcfg.get('style_name', 'anime')}",
            "network": "cartoon",
            "config": self.model_cfg.to_dict(),
            "data": self.run_data or str(loop.default_data_root()),
            "hardware": f"cpu, {torch.get_num_threads()} threads",
            "notes": "train.cartoon_fast (EMA generator, best quick KID so far)",
            "mesh_period": DEFAULT_PERIOD,
        }
        value, best = self.monitor.update(step, self.G_ema, self.feat, manifest)
        faces = self.monitor.last_faces
        print(
            f"[cartoonfast] step {step}: quick KID x1000 {value:.1f}"
            + ("" if faces is None else f", faces {faces:.0%}")
            + (" (best)" if best else "")
        )
        out = {"kid_x1000": value, "kid_best": float(self.monitor.state["best_kid"])}
        return out | ({} if faces is None else {"faces_found": faces})

    def _train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        photo, w = batch["photo"], self.w
        with torch.no_grad():
            f_photo = self.feat(photo)
        if step < self.init_steps:  # initialization phase: content loss only
            content = self.forward("G", lambda: self._content(self.feat(self.G(photo)), f_photo))
            self.step(content, "G")
            return {"content": content.item()}
        anime, smooth = batch["anime"], batch["smooth"]
        nets_d = (self.D, self.D_surface, self.D_texture, self.P)

        def g_loss() -> tuple:
            fake = self.G(photo)
            f_fake = self.feat(fake)
            with torch.no_grad():
                f_struct = self.feat(whitebox.structure(fake, "slic", self.segments))
            content = self._content(f_fake, f_photo)
            struct = self._content(f_fake, f_struct)
            f_aug = self.feat(projected.diff_augment(fake))
            proj = projected.hinge_g(self.P(f_aug))
            patch = _lsgan(self.D(fake), True)
            surf = _lsgan(self.D_surface(whitebox.surface(fake)), True)
            g_fake, g_anime = whitebox.texture(fake, anime)
            tex = _lsgan(self.D_texture(g_fake), True)
            tv = whitebox.tv_loss(fake)
            color = color_loss(fake, photo) if w["color"] else fake.new_zeros(())
            hog = whitebox.hog_loss(fake, photo) if w["hog"] else fake.new_zeros(())
            total = (
                w["color"] * color
                + w["hog"] * hog
                + w["proj"] * proj
                + w["patch"] * patch
                + w["surface"] * surf
                + w["texture"] * tex
                + w["content"] * content
                + w["structure"] * struct
                + w["tv"] * tv
            )
            parts = {
                "content": content,
                "structure": struct,
                "g_proj": proj,
                "g_patch": patch,
                "g_surface": surf,
                "g_texture": tex,
                "tv": tv,
                "color": color,
                "hog": hog,
            }
            return total, fake, f_aug, g_fake, g_anime, parts

        for n in nets_d:
            n.requires_grad_(False)
        loss, fake, f_aug, g_fake, g_anime, parts = self.forward("G", g_loss)
        self.step(loss, "G")
        for n in nets_d:
            n.requires_grad_(True)
        fake = fake.detach()

        def d_loss() -> tuple:
            with torch.no_grad():
                f_real = self.feat(projected.diff_augment(anime))
            proj = projected.hinge_d(self.P(f_real), self.P([f.detach() for f in f_aug]))
            patch = (
                _lsgan(self.D(anime), True)
                + _lsgan(self.D(fake), False)
                + _lsgan(self.D(smooth), False)
            )
            surf = _lsgan(self.D_surface(whitebox.surface(anime)), True) + _lsgan(
                self.D_surface(whitebox.surface(fake)), False
            )
            tex = _lsgan(self.D_texture(g_anime), True) + _lsgan(
                self.D_texture(g_fake.detach()), False
            )
            return proj + patch + surf + tex, proj, patch, surf, tex

        loss_d, d_proj, d_patch, d_surf, d_tex = self.forward("D", d_loss)
        self.step(loss_d, "D")
        out = {k: v.item() for k, v in parts.items()}
        out |= {
            "d_proj": d_proj.item(),
            "d_patch": d_patch.item(),
            "d_surface": d_surf.item(),
            "d_texture": d_tex.item(),
        }
        return out

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        photo, anime = batch["photo"], batch["anime"]
        fake = self.G(photo)
        f_fake, f_photo = self.feat(fake), self.feat(photo)
        p_fake = torch.stack([x.mean() for x in self.P(self.feat(fake))]).mean()
        p_real = torch.stack([x.mean() for x in self.P(self.feat(anime))]).mean()
        metrics = {
            "val_content": self._content(f_fake, f_photo).item(),
            "val_change": (fake - photo).abs().mean().item(),
            "val_proj_fake": p_fake.item(),
            "val_proj_real": p_real.item(),
        }
        metrics["val_color"] = color_loss(fake, photo).item()
        ema = self.G_ema(photo)
        return metrics, [photo, fake, ema, anime]

    def exports(self) -> list[loop.Export]:
        """The EMA generator (when EMA is on) as the style."""
        stem = f"cartoon-{self.tcfg.get('style_name', 'anime')}"
        g = self.G_ema if self.ema_decay else self.G
        return [
            loop.Export(
                stem, g, "cartoon", self.model_cfg.to_dict(), {"mesh_period": DEFAULT_PERIOD}
            )
        ]


#: Loss weights (``task.w_<name>``): adversarial terms ~1, content/structure normalised.
DEFAULT_WEIGHTS = {
    "proj": 1.0,
    "patch": 1.0,
    "surface": 0.5,
    "texture": 1.0,
    "content": 1.0,
    "structure": 1.0,
    "tv": 1.0,
    "color": 0.0,
    "hog": 0.0,
}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("cartoon_fast", __doc__.split("\n\n")[0])
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir or Path("runs") / "cartoon_fast")
    task = functools.partial(FastCartoonTask, run_dir=run_dir)
    loop.run(task, args, loop.config_from_args(args), "cartoon_fast")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
