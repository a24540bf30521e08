"""The network set the engine runs, and how it is loaded from the weights registry.

The pipeline talks to a :class:`NetworkBundle` of plain modules (E_sketch, E_image,
E_app, G_syn per component; fusion; SCN; 2x up head) rather than to the training
classes, so tests can build a bundle from tiny modules and the pipeline never
depends on how training groups its networks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from facesketch.layout import BACKGROUND, COMPONENTS, FaceLayout

if TYPE_CHECKING:
    from facesketch.models.config import ModelConfig

#: The internal canvas every shipped network runs on (a 2x head gives 512).
INTERNAL_CANVAS = 256
#: File (in the weights folder) holding the mean appearance code of each component.
MEAN_CODES_FILE = "appearance_mean.safetensors"


@dataclass
class ComponentNets:
    """One component's networks: E_sketch, E_app, G_syn and (optional) E_image."""

    geometry: nn.Module  # (N, 1, s, s) sketch crop -> geometry latent
    appearance: nn.Module  # (N, 3, s, s) photo crop -> (N, A) code
    generator: nn.Module  # forward(geom, code) -> (N, C, s, s) feature map
    image: nn.Module | None = None  # (N, 3, s, s) photo crop -> geometry latent

    def modules(self) -> Iterable[nn.Module]:
        """Every module held (for device moves)."""
        return [m for m in (self.geometry, self.appearance, self.generator, self.image) if m]


@dataclass
class NetworkBundle:
    """Everything a render needs, on :data:`INTERNAL_CANVAS`.

    ``default_codes`` are the appearance codes used when a document names no
    reference: the mean code shipped with the weights (never random).
    """

    components: dict[str, ComponentNets]
    fusion: nn.Module  # (N, C, S, S) pasted feature map -> (N, 3, S, S)
    upsampler: nn.Module | None = None  # (N, 3, S, S) -> (N, 3, 2S, 2S)
    scn: nn.Module | None = None  # (N, 1, h, w) -> (N, 1, h, w)
    default_codes: dict[str, torch.Tensor] = field(default_factory=dict)
    canvas: int = INTERNAL_CANVAS
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in COMPONENTS if c not in self.components]
        if missing:
            raise ValueError(f"network bundle lacks components: {', '.join(missing)}")

    @property
    def layout(self) -> FaceLayout:
        """The canonical layout at the networks' canvas (references are cropped with it)."""
        return FaceLayout.default(self.canvas)

    def all_modules(self) -> list[nn.Module]:
        """Every module in the bundle."""
        mods: list[nn.Module] = [self.fusion]
        mods += [m for m in (self.upsampler, self.scn) if m is not None]
        for nets in self.components.values():
            mods += list(nets.modules())
        return mods

    def to(self, move: Callable[[nn.Module], nn.Module]) -> NetworkBundle:
        """This bundle with every module passed through ``move`` (in place) and codes kept."""
        for m in self.all_modules():
            move(m)
        return self


def mean_codes_from_images(
    bundle: NetworkBundle, aligned: Iterable[np.ndarray], batch: int = 8
) -> dict[str, torch.Tensor]:
    """Mean E_app code per component over aligned RGB uint8 faces at the bundle canvas.

    This is how the shipped default appearance is made (from training photos, or
    from the sample references in resources/samples): a real average face look.
    """
    from facesketch.imaging import image_to_tensor

    layout = bundle.layout
    sums: dict[str, torch.Tensor] = {}
    n = 0
    imgs = list(aligned)
    if not imgs:
        raise ValueError("mean appearance codes need at least one aligned face")
    with torch.inference_mode():
        for i in range(0, len(imgs), batch):
            x = image_to_tensor(__import__("numpy").stack(imgs[i : i + batch]))
            for name, nets in bundle.components.items():
                crop = x if name == BACKGROUND else layout.crop(x, name)
                p = next(nets.appearance.parameters(), None)
                dev, dt = (p.device, p.dtype) if p is not None else ("cpu", torch.float32)
                code = nets.appearance(crop.to(dev, dt)).float().sum(0, keepdim=True)
                sums[name] = sums[name] + code.cpu() if name in sums else code.cpu()
            n += x.shape[0]
    return {k: v / n for k, v in sums.items()}


#: Registry name of the default appearance codes (checksummed like every weights file).
MEAN_CODES_NETWORK = "appearance_mean"


def save_mean_codes(codes: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write mean appearance codes (safetensors, one tensor per component) + manifest.

    Through the weights registry, so the file carries a sha256 and a damaged copy is
    refused instead of silently changing every render.  Kept in float32.
    """
    from facesketch.engine.weights import save_weights

    tensors = {k: v.detach().float().cpu().contiguous() for k, v in codes.items()}
    dims = sorted({int(v.shape[-1]) for v in tensors.values()})
    manifest = {
        "network": MEAN_CODES_NETWORK,
        "config": {"components": sorted(tensors), "dims": dims},
        "data": "mean E_app code of aligned face photos (python -m facesketch.engine.bundle)",
    }
    return save_weights(tensors, Path(path), manifest, half=False)


def load_mean_codes(path: str | Path) -> dict[str, torch.Tensor]:
    """Read codes written by :func:`save_mean_codes` (checksum verified).

    Raises ValueError naming the file and what to do when it is missing, damaged or
    incomplete.
    """
    from facesketch.engine.weights import WeightsError, load_state_dict

    p = Path(path)
    try:
        codes, _ = load_state_dict(p, MEAN_CODES_NETWORK)
    except WeightsError as exc:
        raise ValueError(str(exc)) from None
    missing = [c for c in COMPONENTS if c not in codes]
    if missing:
        raise ValueError(f"{p}: mean appearance codes lack {', '.join(missing)}")
    bad = [k for k, v in codes.items() if not torch.isfinite(v.float()).all()]
    if bad:
        raise ValueError(f"{p}: mean appearance codes hold NaN or infinite values ({bad[0]})")
    return {k: v.float() for k, v in codes.items()}


def bundle_from_networks(
    canvas: int,
    locals_: Mapping[str, nn.Module],
    fusion: nn.Module,
    upsampler: nn.Module | None,
    scn: nn.Module | None,
    default_codes: Mapping[str, torch.Tensor] | None = None,
    info: Mapping[str, Any] | None = None,
) -> NetworkBundle:
    """Group trained networks (``ComponentModel`` per component, ...) into a bundle."""
    comps = {
        name: ComponentNets(m.E_sketch, m.E_app, m.G_syn, getattr(m, "E_image", None))
        for name, m in locals_.items()
    }
    return NetworkBundle(
        components=comps,
        fusion=fusion,
        upsampler=upsampler,
        scn=scn,
        default_codes=dict(default_codes or {}),
        canvas=int(canvas),
        info=dict(info or {}),
    )


def random_bundle(cfg: ModelConfig, seed: int = 0) -> NetworkBundle:
    """Untrained networks of config ``cfg`` (for tests and benchmarks, never the app).

    Default appearance codes are the codes of a flat mid-gray face, so that even an
    untrained bundle renders deterministically; ``info["weights"]`` says it is random.
    """
    import numpy as np

    from facesketch.models import ComponentModel, GlobalFusion, StrokeCalibrator, Upsampler2x

    torch.manual_seed(seed)
    locals_ = {name: ComponentModel(cfg.local, name) for name in COMPONENTS}
    bundle = bundle_from_networks(
        cfg.canvas,
        locals_,
        GlobalFusion(cfg.fusion),
        Upsampler2x(cfg.up),
        StrokeCalibrator(cfg.scn),
        info={"weights": f"random init (seed {seed}), untrained"},
    )
    gray = np.full((cfg.canvas, cfg.canvas, 3), 128, np.uint8)
    bundle.default_codes = mean_codes_from_images(bundle, [gray])
    return bundle


def _find_entries(directory: Path | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(manifest network name -> registry entry, unreadable-manifest errors) of a folder."""
    from facesketch.engine.weights import list_weights

    found: dict[str, dict[str, Any]] = {}
    errors = []
    for e in list_weights(directory):
        if "error" in e:
            errors.append(str(e["error"]))
        elif isinstance(e.get("network"), str):
            found.setdefault(e["network"], e)
    return found, errors


def _missing_fix(where: Path) -> str:
    """How a user gets a complete weights folder back (shipped one or an override)."""
    from facesketch.engine.weights import WEIGHTS_ENV
    from facesketch.resources import shipped_weights_dir

    try:
        shipped = Path(where).resolve() == shipped_weights_dir().resolve()
    except (OSError, RuntimeError):
        shipped = False
    if shipped:
        return (
            "this facesketch install lacks its shipped weights: reinstall it "
            "(pip install --force-reinstall facesketch), or in a source checkout restore "
            "resources/weights with git"
        )
    return (
        f"unset {WEIGHTS_ENV} to use the shipped weights, or point it at a folder that has "
        "them (a training run's export/ folder)"
    )


def load_bundle(
    weights_dir: str | Path | None = None,
    default_appearance: bool = True,
    canvas: int = INTERNAL_CANVAS,
) -> NetworkBundle:
    """Build the shipped network set from the weights registry (``resources/weights``).

    Each network is built from the config in its own manifest, then loaded with
    checksum and shape checks by :func:`facesketch.engine.weights.load_into`.
    ``canvas`` is the internal canvas the networks were trained on (the manifests do
    not record it; the shipped set uses 256).
    The default appearance codes (:data:`MEAN_CODES_FILE`) are required unless
    ``default_appearance`` is false.  Raises ``WeightsError`` naming what is missing
    and what to do.
    """
    from facesketch.engine.weights import WeightsError, load_into
    from facesketch.engine.weights import weights_dir as default_dir
    from facesketch.models import ComponentModel, GlobalFusion, StrokeCalibrator, Upsampler2x
    from facesketch.models.config import FusionConfig, LocalConfig, SCNConfig, UpConfig

    directory = Path(weights_dir) if weights_dir is not None else None
    entries, errors = _find_entries(directory)
    where = directory or default_dir()
    needed = ["fusion", "up"] + [f"local/{c}" for c in COMPONENTS]
    missing = [n for n in needed if n not in entries]
    if missing:
        raise WeightsError(
            f"{where}: no weights for {', '.join(missing)}; {_missing_fix(where)}"
            + "".join(f"\n  {e}" for e in errors)
        )

    def load(module: nn.Module, network: str, config: dict) -> nn.Module:
        load_into(module, entries[network]["path"], network, config)
        return module

    info: dict[str, Any] = {"weights": str(where), "networks": {}}
    locals_ = {}
    for c in COMPONENTS:
        conf = entries[f"local/{c}"]["config"]
        locals_[c] = load(
            ComponentModel(LocalConfig.from_dict(conf["local"]), c), f"local/{c}", conf
        )
    fusion_conf = entries["fusion"]["config"]
    fusion = load(GlobalFusion(FusionConfig.from_dict(fusion_conf)), "fusion", fusion_conf)
    up_conf = entries["up"]["config"]
    up = load(Upsampler2x(UpConfig.from_dict(up_conf)), "up", up_conf)
    scn = None
    if "scn" in entries:
        scn_conf = entries["scn"]["config"]
        scn = load(StrokeCalibrator(SCNConfig.from_dict(scn_conf)), "scn", scn_conf)
    for net, e in entries.items():
        info["networks"][net] = {k: e.get(k) for k in ("steps", "metrics", "data") if k in e}
    bundle = bundle_from_networks(canvas, locals_, fusion, up, scn, info=info)
    mean_file = where / MEAN_CODES_FILE
    if not default_appearance:
        return bundle
    if not mean_file.is_file():
        raise WeightsError(
            f"{mean_file}: the default appearance (mean E_app codes) is missing; "
            "make it with `python -m facesketch.engine.bundle FACE_PHOTO_FOLDER`, or "
            + _missing_fix(where)
        )
    try:
        bundle.default_codes = load_mean_codes(mean_file)
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc
    return bundle


def main(argv: list[str] | None = None) -> int:
    """``python -m facesketch.engine.bundle PHOTOS``: write the default appearance codes.

    Aligns the face photos in PHOTOS (dlib), averages each component's E_app code with
    the shipped local networks and writes :data:`MEAN_CODES_FILE` beside the weights.
    """
    import argparse

    from facesketch.engine.appearance import AppearanceError, align_reference
    from facesketch.engine.weights import WeightsError
    from facesketch.engine.weights import weights_dir as default_dir

    ap = argparse.ArgumentParser(
        prog="python -m facesketch.engine.bundle", description=main.__doc__
    )
    ap.add_argument("photos", type=Path, help="folder of face photos (jpg/png)")
    ap.add_argument("--weights", type=Path, default=None, help="weights folder (default: shipped)")
    ap.add_argument("--limit", type=int, default=200, help="at most this many photos")
    args = ap.parse_args(argv)
    where = args.weights or default_dir()
    files = sorted(
        p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    aligned = []
    for f in files[: args.limit]:
        try:
            aligned.append(align_reference(f, INTERNAL_CANVAS).image)
        except AppearanceError as exc:
            print(f"skipped: {exc}")
    try:
        bundle = load_bundle(where, default_appearance=False)
    except WeightsError as exc:
        print(f"error: {exc}")
        return 1
    if not aligned:
        print(f"error: no usable face photo in {args.photos}")
        return 1
    out = save_mean_codes(mean_codes_from_images(bundle, aligned), where / MEAN_CODES_FILE)
    print(f"wrote {out} (mean of {len(aligned)} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
