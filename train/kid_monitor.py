"""Keep the best generator of a style run: a quick KID every N steps, best + last exported.

A GAN run's last step is rarely its best (``runs/cartoon_fast`` looked like a cartoon
near step 500 and had collapsed to two tones by 1,533, with only the last weights
kept).  :class:`KidMonitor` stylizes a fixed, small subset of the held-out selfies
with the generator being trained, measures KID x1000 (:mod:`train.kid`) against the
cached anime features (the same features ``train.cartoon_eval`` uses, so the quick
figure tracks the full evaluation), and writes the generator as fp16 safetensors +
manifest (``save_weights``) to ``<run>/best/`` when it beats the best so far and to
``<run>/last/`` every time.  The best score and the time spent survive a resume
(``<run>/best/kid.json``).

Torch, numpy and OpenCV only; no Qt, no dlib.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from train.kid import kid, pooled_features

DEFAULT_SELFIES = "/work/shared/data/faces/selfies"
DEFAULT_ANIME = "/work/shared/data/anime"
DEFAULT_CACHE = "/work/cache/cartoon/anime_feats.pt"


class KidMonitor:
    """Quick KID of a generator on ``n`` held-out selfies; exports best and last."""

    def __init__(
        self,
        run_dir: str | Path,
        n: int = 48,
        selfies: str | Path = DEFAULT_SELFIES,
        anime: str | Path = DEFAULT_ANIME,
        cache: str | Path | None = DEFAULT_CACHE,
        size: int = 256,
        min_faces: float = 0.0,
    ) -> None:
        from train.cartoon_eval import anime_features
        from train.cartoon_fast import heldout_selfies
        from train.cartoongan import load_square

        files = heldout_selfies(selfies)
        if len(files) < 2:
            raise ValueError(f"{selfies}: fewer than 2 held-out selfies for the KID monitor")
        n = min(n, len(files))
        picks = [files[round(i * (len(files) - 1) / max(1, n - 1))] for i in range(n)]
        self.photos = [load_square(f, size) for f in picks]
        self.ref = anime_features(anime, Path(cache) if cache else None)
        self.run_dir = Path(run_dir)
        # a style that erases faces is no portrait style: with min_faces > 0 a
        # generator is "best" only if dlib still finds a face in that fraction of
        # its cartoons (dlib imported lazily; without dlib the gate is off)
        self.min_faces = float(min_faces)
        self.last_faces: float | None = None
        self.state_file = self.run_dir / "best" / "kid.json"
        self.state: dict = {"best_kid": float("inf"), "best_step": -1, "elapsed_s": 0.0}
        if self.state_file.is_file():
            self.state.update(json.loads(self.state_file.read_text()))
        self._t0 = time.monotonic()
        self._elapsed0 = float(self.state["elapsed_s"])

    def elapsed_s(self) -> float:
        """Wall seconds of this run so far, across resumes."""
        return self._elapsed0 + time.monotonic() - self._t0

    @torch.no_grad()
    def score(self, generator: nn.Module, feat: nn.Module, mesh_period: int) -> float:
        """KID x1000 of ``generator``'s cartoons of the subset (as ``stylize`` makes them)."""
        from facesketch.engine.cartoon import Style, stylize
        from facesketch.engine.devices import select_device

        was_training, threads = generator.training, torch.get_num_threads()
        generator.eval()
        try:
            spec = select_device("cpu")  # sets threads to the physical cores: undone below
            torch.set_num_threads(threads)
            st = Style("monitor", generator, "rgb", spec, {"mesh_period": mesh_period})
            cartoons = [stylize(p, st) for p in self.photos]
        finally:
            generator.train(was_training)
            torch.set_num_threads(threads)
        self.last_faces = _faces_found(cartoons) if self.min_faces > 0 else None
        return kid(pooled_features(cartoons, net=feat), self.ref, subsets=50)[0]

    def update(
        self, step: int, generator: nn.Module, feat: nn.Module, manifest: dict
    ) -> tuple[float, bool]:
        """Score ``generator`` at ``step``; export it as last (and best if so): (kid, best)."""
        t0 = time.monotonic()
        value = self.score(generator, feat, int(manifest.get("mesh_period", 0)))
        faces_ok = self.last_faces is None or self.last_faces >= self.min_faces
        best = faces_ok and value < float(self.state["best_kid"])
        stem = str(manifest.pop("stem", "cartoon-anime"))
        meta = {
            **manifest,
            "steps": step,
            "wall_time_s": round(self.elapsed_s(), 1),
            "metrics": {"quick_kid_x1000": round(value, 2), "quick_kid_n": len(self.photos)},
        }
        if self.last_faces is not None:
            meta["metrics"]["quick_faces_found"] = round(self.last_faces, 3)
        self._save(generator, self.run_dir / "last" / f"{stem}.safetensors", meta)
        if best:
            self._save(generator, self.run_dir / "best" / f"{stem}.safetensors", meta)
            self.state.update(best_kid=value, best_step=step)
        self.state["elapsed_s"] = round(self.elapsed_s(), 1)
        entry = {"step": step, "kid_x1000": round(value, 2), "s": round(time.monotonic() - t0, 1)}
        if self.last_faces is not None:
            entry["faces_found"] = round(self.last_faces, 3)
        self.state.setdefault("history", []).append(entry)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(".kid.json.tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, self.state_file)
        return value, best

    @staticmethod
    def _save(module: nn.Module, path: Path, manifest: dict) -> None:
        from facesketch.engine.weights import save_weights

        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        save_weights(state, path, dict(manifest))


def _faces_found(images: list) -> float | None:
    """Fraction of ``images`` in which dlib finds a face; None without dlib."""
    try:
        from train.cartoon_eval import face_found_fraction

        return face_found_fraction(images)
    except ImportError:
        return None


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` over parameters; buffers copied."""
    with torch.no_grad():
        for e, m in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(m.detach(), 1.0 - decay)
        for e, m in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(m)


def color_loss(fake: torch.Tensor, photo: torch.Tensor, pool: int = 8) -> torch.Tensor:
    """L1 between the low-passed YUV of output and photo (AnimeGAN's colour loss, blurred).

    Averaging ``pool`` x ``pool`` blocks first leaves lines and flat shading free and
    pins only the broad colours, which keeps the generator from collapsing every face
    onto one palette (the sepia / teal drift of runs/cartoon_fast)."""
    w = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.14714119, -0.28886916, 0.43601035],
         [0.61497538, -0.51496512, -0.10001026]],
        dtype=fake.dtype, device=fake.device,
    )  # fmt: skip
    f = torch.nn.functional.avg_pool2d(fake, pool)
    p = torch.nn.functional.avg_pool2d(photo, pool)
    yuv_f, yuv_p = torch.einsum("ij,njhw->nihw", w, f), torch.einsum("ij,njhw->nihw", w, p)
    return (yuv_f - yuv_p).abs().mean(dim=(0, 2, 3)).mul(yuv_f.new_tensor([0.5, 1.0, 1.0])).sum()
