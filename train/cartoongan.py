"""Train CartoonGAN (Chen, Lai & Liu, CVPR 2018): the project's own cartoon style.

Photo domain: face photos (folders given by ``task.photo_dirs``, by default the
shared selfies + HQ faces, which cover whole heads like the app's renders; an
empty list uses the prepared face dataset).  Cartoon domain: the anime faces,
plus edge-smoothed copies made on the fly by :func:`train.edge_smooth.edge_smooth`.

Schedule (paper, Sec. 3.3): an initialization phase of ``task.init_steps`` where G
learns only the content loss (reconstruct the photo's VGG features), then the
adversarial phase: D sees anime as real and both G(photo) and edge-smoothed anime
as fake; G minimises the adversarial loss + ``w_content`` (10) x content loss
(Eq. 2-4; L1 on deep VGG features).  ``task.gan`` is ``bce`` (the paper's loss) or
``lsgan``.  Content features: HED's VGG16 relu4_3 (``content_net: hed``) or
torchvision's ImageNet VGG19 conv4_4, as in the paper (``vgg19``, needs torchvision
and its cached weights).

    python -m train.cartoongan --max-minutes 60          # resumable; exports cartoon-anime
    python -m train.cartoongan --synthetic --max-steps 4 --run-dir /tmp/cg   # smoke run
    python -m train.cartoongan --sheet runs/cartoongan/export/cartoon-anime.safetensors sheet.png
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from facesketch.imaging import image_to_tensor, read_image
from facesketch.models import losses
from facesketch.models.cartoon import (
    CartoonConfig,
    CartoonDiscriminator,
    CartoonGenerator,
    cartoon_preset,
)
from facesketch.models.filters import DEFAULT_PERIOD
from train import loop
from train.edge_smooth import IMAGE_SUFFIXES, edge_smooth

#: One file in VAL_EVERY (by name hash) is held out for validation and contact sheets.
VAL_EVERY = 40


def list_images(dirs: list[str | Path]) -> list[Path]:
    """Image files under ``dirs`` (recursive, sorted); FileNotFoundError names a bad folder."""
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            raise FileNotFoundError(
                f"image folder {p} does not exist (see task.photo_dirs/anime_dir)"
            )
        files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images found in {[str(d) for d in dirs]}")
    return files


def split_files(files: list[Path], split: str) -> list[Path]:
    """Deterministic train/val split by file-name hash (stable when folders grow)."""
    held = [zlib.crc32(f.name.encode()) % VAL_EVERY == 0 for f in files]
    return [f for f, h in zip(files, held, strict=True) if h == (split == "val")]


def load_square(path: Path, size: int) -> np.ndarray:
    """uint8 RGB, centre-cropped to a square and resized to ``size``."""
    img = read_image(path)
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp) if s != size else img


class ImageFolder(Dataset):
    """Images of some folders as uint8 RGB squares (one split)."""

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        return load_square(self.files[i], self.size)


class SyntheticAnime(Dataset):
    """Flat-shaded drawn faces standing in for anime (smoke runs, no files)."""

    def __init__(self, count: int, size: int) -> None:
        from train.synthetic import SyntheticFaces

        self.base = SyntheticFaces(count, size, seed=7)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.base.draw(i)[0]


class UnpairedDomains(Dataset):
    """Photo i with a cartoon (random in training, fixed in validation) and its smoothed copy.

    Training samples are flipped at random and cropped to ``crop`` (0 = whole image);
    the generator is fully convolutional, so it runs on whole images later.
    """

    def __init__(self, photos: Dataset, anime: Dataset, crop: int, train: bool) -> None:
        self.photos, self.anime, self.crop, self.train = photos, anime, crop, train

    def __len__(self) -> int:
        return len(self.photos)  # type: ignore[arg-type]

    def _photo(self, i: int) -> torch.Tensor:
        item = self.photos[i]
        return item["image"] if isinstance(item, dict) else image_to_tensor(item)[0]

    def _aug(self, t: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if rng.random() < 0.5:
            t = t.flip(-1)
        h, w = t.shape[-2:]
        if self.crop and self.crop < min(h, w):
            y, x = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
            t = t[..., y : y + self.crop, x : x + self.crop]
        return t

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(i if not self.train else np.random.randint(2**31))
        n = len(self.anime)  # type: ignore[arg-type]
        cartoon = self.anime[int(rng.integers(n)) if self.train else i % n]
        pair = torch.cat([image_to_tensor(cartoon)[0], image_to_tensor(edge_smooth(cartoon))[0]])
        photo = self._photo(i)
        if self.train:
            photo, pair = self._aug(photo, rng), self._aug(pair, rng)
        return {"photo": photo, "anime": pair[:3], "smooth": pair[3:]}


def build_content_net(
    kind: str, device: torch.device, layer: str = "relu4_3"
) -> losses.PerceptualLoss:
    """Content loss on one deep VGG layer: ``hed`` (HED VGG16 ``layer``) or ``vgg19`` (conv4_4).

    A shallower HED layer (``relu3_3``) is cheaper on a CPU but ties the output closer
    to the photo's textures; the paper uses conv4_4.
    """
    if kind == "hed":
        from facesketch.engine.hed_weights import load_vgg16_features
        from facesketch.models.hed import hed_preprocess

        return losses.PerceptualLoss(load_vgg16_features([layer]), hed_preprocess).to(device)
    if kind == "vgg19":
        try:
            import torchvision
        except ImportError as exc:
            raise ValueError(
                "content_net=vgg19 needs torchvision (pip install torchvision)"
            ) from exc
        trunk = torchvision.models.vgg19(weights="IMAGENET1K_V1").features[:26]  # to conv4_4

        class _One(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.trunk = trunk

            def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
                return [self.trunk(x)]

        mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        return losses.PerceptualLoss(_One(), lambda x: ((x + 1) / 2 - mean) / std).to(device)
    raise ValueError(f"unknown content_net {kind!r}; use hed or vgg19")


def gan_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """``bce`` (the paper's log loss, Eq. 2) or ``lsgan`` on patch logits."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    raise ValueError(f"unknown task.gan {kind!r}; use bce or lsgan")


class CartoonTask(loop.Task):
    """CartoonGAN generator + discriminator with the initialization phase."""

    name = "cartoongan"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        t = self.tcfg
        base = cartoon_preset(t.get("preset", "lite")).to_dict()
        self.model_cfg = CartoonConfig.from_dict({**base, **t.get("model", {})})
        self.G = CartoonGenerator(self.model_cfg).to(ctx.device)
        self.D = CartoonDiscriminator(self.model_cfg).to(ctx.device)
        self.nets = {"G": self.G, "D": self.D}
        self.optims = {"G": ctx.adam(self.G), "D": ctx.adam(self.D)}
        self.content = build_content_net(
            t.get("content_net", "hed"), ctx.device, t.get("content_layer", "relu4_3")
        )
        self.init_steps = int(t.get("init_steps", 1000))
        self.w_content = float(t.get("w_content", 10.0))
        self.gan = str(t.get("gan", "lsgan"))
        gan_loss(torch.zeros(1), True, self.gan)  # fail early on a typo

    def datasets(self) -> tuple[Dataset, Dataset]:
        t, d = self.tcfg, self.cfg["data"]
        size, crop = int(t.get("size", 256)), int(t.get("crop", 128))
        if d.get("synthetic"):
            n = int(d.get("synthetic_count", 16))
            photos = {s: self.ctx.dataset(s, size) for s in ("train", "val")}
            anime = {"train": SyntheticAnime(n, size), "val": SyntheticAnime(max(2, n // 4), size)}
        else:
            dirs = t.get("photo_dirs", [])
            if dirs:
                files = list_images(dirs)
                photos = {s: ImageFolder(split_files(files, s), size) for s in ("train", "val")}
            else:
                photos = {s: self.ctx.dataset(s, size) for s in ("train", "val")}
            files = list_images([t.get("anime_dir", "../shared/data/anime")])
            anime = {s: ImageFolder(split_files(files, s), size) for s in ("train", "val")}
        return (
            UnpairedDomains(photos["train"], anime["train"], crop, True),
            UnpairedDomains(photos["val"], anime["val"], 0, False),
        )

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        photo = batch["photo"]
        if step < self.init_steps:  # initialization phase: content loss only (Sec. 3.3)
            with self.ctx.autocast():
                content = self.forward("G", lambda: self.content(self.G(photo), photo))
            self.step(content, "G")
            return {"content": content.item()}
        anime, smooth = batch["anime"], batch["smooth"]

        def g_loss() -> tuple[torch.Tensor, ...]:
            fake = self.G(photo)
            adv = gan_loss(self.D(fake), True, self.gan)
            content = self.content(fake, photo)
            return adv + self.w_content * content, fake, adv, content

        def d_loss() -> tuple[torch.Tensor, ...]:
            d_real = gan_loss(self.D(anime), True, self.gan)
            d_fake = gan_loss(self.D(fake.detach()), False, self.gan)
            d_smooth = gan_loss(self.D(smooth), False, self.gan)
            return d_real + d_fake + d_smooth, d_real, d_fake, d_smooth

        self.D.requires_grad_(False)
        with self.ctx.autocast():
            loss, fake, adv, content = self.forward("G", g_loss)
        self.step(loss, "G")
        self.D.requires_grad_(True)
        with self.ctx.autocast():
            loss_d, d_real, d_fake, d_smooth = self.forward("D", d_loss)
        self.step(loss_d, "D")
        return {
            "content": content.item(),
            "g_adv": adv.item(),
            "d_real": d_real.item(),
            "d_fake": d_fake.item(),
            "d_smooth": d_smooth.item(),
        }

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        photo, anime = batch["photo"], batch["anime"]
        fake = self.G(photo)
        # How cartoon-like D finds the outputs vs real anime (probabilities, higher = real).
        p_fake = torch.sigmoid(self.D(fake)).mean() if self.gan == "bce" else self.D(fake).mean()
        p_real = torch.sigmoid(self.D(anime)).mean() if self.gan == "bce" else self.D(anime).mean()
        metrics = {
            "val_content": self.content(fake, photo).item(),
            "val_change": (fake - photo).abs().mean().item(),
            "val_d_fake": p_fake.item(),
            "val_d_real": p_real.item(),
        }
        return metrics, [photo, fake, anime]

    def exports(self) -> list[loop.Export]:
        stem = f"cartoon-{self.tcfg.get('style_name', 'anime')}"
        # the two strided up-convolutions leave a 4-px mesh that stylize() filters out
        extra = {"mesh_period": DEFAULT_PERIOD}
        return [loop.Export(stem, self.G, "cartoon", self.model_cfg.to_dict(), extra)]


def contact_sheet(
    style: str | Path, out: str | Path, photo_dirs: list[str], n: int = 8, size: int = 256
) -> Path:
    """Before/after grid of ``n`` held-out photos (the val split) stylized by ``style``.

    Rows hold two (photo, cartoon) pairs; look at it before shipping a style.
    """
    from facesketch.engine.cartoon import load_style, stylize
    from facesketch.imaging import write_image

    files = split_files(list_images(photo_dirs), "val")
    picks = [files[round(i * (len(files) - 1) / max(1, n - 1))] for i in range(n)]
    st = load_style(style)
    tiles = [np.hstack([p, stylize(p, st)]) for p in (load_square(f, size) for f in picks)]
    if len(tiles) % 2:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack([tiles[i], tiles[i + 1]]) for i in range(0, len(tiles), 2)]
    return write_image(out, np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("cartoongan", __doc__.split("\n\n")[0])
    ap.add_argument(
        "--sheet",
        nargs=2,
        metavar=("STYLE", "OUT"),
        help="only write a before/after contact sheet of STYLE on held-out photos",
    )
    args = ap.parse_args(argv)
    if args.sheet:
        cfg = loop.config_from_args(args)
        dirs = cfg["task"].get("photo_dirs") or ["../shared/data/faces/hq"]
        print(contact_sheet(args.sheet[0], args.sheet[1], dirs))
        return 0
    loop.run(CartoonTask, args, loop.config_from_args(args), "cartoongan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
