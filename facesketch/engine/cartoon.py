"""Cartoon styles: the shipped CartoonGAN style, imported official weights, stylization.

A *style* is a CartoonGAN generator saved in the project's weights format
(safetensors + manifest, network ``cartoon``).  Shipped styles live in the
weights folder as ``cartoon-<name>.safetensors``; styles a user imports (the
authors' ``<Style>_net_G_float.pth``) are converted once and stored in the user's
styles folder, never in the repository.  The manifest's ``input_order`` says
whether a generator expects RGB (ours) or BGR (the authors'), so callers always
pass RGB and never think about it.

Why one ~450-line module: a style's import, checks, loading and stylization share the
manifest format and the BGR/RGB rule; splitting them would spread that one contract.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facesketch.engine.devices import DeviceSpec, select_device
from facesketch.fileio import user_data_dir
from facesketch.imaging import as_rgb, image_to_tensor, tensor_to_image
from facesketch.models.cartoon import CartoonConfig, CartoonGenerator
from facesketch.models.filters import remove_periodic_pattern

#: Manifest ``network`` value of every style.
NETWORK = "cartoon"
#: File-name prefix of shipped styles in the weights folder.
SHIPPED_PREFIX = "cartoon-"
#: The project's own style, trained by ``train/cartoongan.py``.
DEFAULT_STYLE = "anime"
#: Generators need sizes divisible by their two stride-2 stages.
SIZE_MULTIPLE = 4
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StyleError(ValueError):
    """A style cannot be found, imported or loaded; the message says why and what to do."""


@dataclass
class Style:
    """A loaded style: its generator (on a device) and the channel order it expects."""

    name: str
    generator: CartoonGenerator
    input_order: str  # "rgb" or "bgr"
    spec: DeviceSpec
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- where styles are ---------------------------------------------------------------
def styles_dir() -> Path:
    """The user's styles folder (not created here), beside the autosaves."""
    return user_data_dir() / "styles"


def _shipped_dir() -> Path:
    from facesketch.engine.weights import weights_dir

    return weights_dir()


def _entry(path: Path, name: str, source: str) -> dict[str, Any] | None:
    from facesketch.engine.weights import WeightsError, read_manifest

    try:
        manifest = read_manifest(path)
    except (WeightsError, OSError, ValueError):
        return None
    if manifest.get("network") != NETWORK:
        return None
    return {
        "name": name,
        "path": path,
        "source": source,
        "input_order": manifest.get("input_order", "rgb"),
        "config": manifest.get("config"),
        "notes": manifest.get("notes", ""),
    }


def list_styles() -> list[dict[str, Any]]:
    """Shipped styles, then imported ones: dicts with name, path, source, input_order, config."""
    found: dict[str, dict[str, Any]] = {}
    folders = [(_shipped_dir(), "shipped", SHIPPED_PREFIX), (styles_dir(), "imported", "")]
    for folder, source, prefix in folders:
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob(f"{prefix}*.safetensors")):
            name = file.stem[len(prefix) :]
            if name in found:
                continue  # a shipped name wins; import_style refuses such names anyway
            entry = _entry(file, name, source)
            if entry is not None:
                found[name] = entry
    return list(found.values())


def style_names() -> list[str]:
    """Names accepted by :func:`load_style`."""
    return [s["name"] for s in list_styles()]


# -- the authors' weights -------------------------------------------------------------
def _official_key_map(n_res: int) -> dict[str, str]:
    """Authors' parameter prefixes -> this project's module prefixes."""
    m = {"conv01_1": "stem.1", "in01_1": "stem.2", "deconv03_1": "head.1"}
    for i, n in enumerate((2, 3)):
        m |= {f"conv0{n}_1": f"down.{i}.conv1", f"conv0{n}_2": f"down.{i}.conv2"}
        m[f"in0{n}_1"] = f"down.{i}.norm"
    for i in range(n_res):
        n = 4 + i
        for j in (1, 2):
            m[f"conv{n:02d}_{j}"] = f"res.{i}.conv{j}"
            m[f"in{n:02d}_{j}"] = f"res.{i}.norm{j}"
    for i in range(2):
        m |= {f"deconv0{i + 1}_1": f"up.{i}.deconv", f"deconv0{i + 1}_2": f"up.{i}.conv"}
        m[f"in{4 + n_res + i:02d}_1"] = f"up.{i}.norm"
    return m


def convert_official_state_dict(
    sd: dict[str, torch.Tensor], where: str = "state dict"
) -> tuple[dict[str, torch.Tensor], CartoonConfig]:
    """The authors' generator state dict -> (our state dict in float32, its config).

    Raises :class:`StyleError` naming ``where`` when keys or shapes are not theirs.
    """
    sd = {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if "conv01_1.weight" not in sd:
        raise StyleError(
            f"{where}: not an official CartoonGAN generator (no 'conv01_1.weight'; "
            "expected the authors' <Style>_net_G_float.pth)"
        )
    base = int(sd["conv01_1.weight"].shape[0])
    n_res = 0
    while f"conv{4 + n_res:02d}_1.weight" in sd:
        n_res += 1
    cfg = CartoonConfig(base=base, n_res=n_res)
    names = _official_key_map(n_res)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in sd.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in names:
            raise StyleError(f"{where}: unexpected parameter {key!r} for a CartoonGAN generator")
        out[f"{names[prefix]}.{leaf}"] = tensor.float()
    expected = CartoonGenerator(cfg).state_dict()
    missing = sorted(set(expected) - set(out))
    wrong = [k for k in expected if k in out and out[k].shape != expected[k].shape]
    if missing or wrong:
        raise StyleError(
            f"{where}: incomplete or mismatched CartoonGAN generator "
            f"(missing {missing[:4]}, wrong shapes {wrong[:4]})"
        )
    return out, cfg


def _load_error_reason(exc: BaseException) -> str:
    """Why torch could not load a file, without PyTorch's advice to load it unsafely.

    torch's messages suggest ``weights_only=False`` or allow-listing globals; either
    would let a downloaded file run code, so that advice is never passed on.
    """
    text = str(exc).replace("\x1b[1m", "").replace("\x1b[0m", "")
    found = re.search(r"Unsupported (?:global|operand)[^.\n]*", text)
    if found:
        return f"it holds Python objects, not only tensors ({found.group(0).strip()})"
    keep = [
        sentence.strip()
        for sentence in re.split(r"(?<=[.!?])\s+|\n", text)
        if sentence.strip()
        and not re.search(r"weights_only|safe_globals|trust|arbitrary code", sentence, re.I)
    ]
    reason = " ".join(keep)[:200].strip()
    return reason if len(reason) > 3 else "not a PyTorch file"


def _check_tensors(sd: dict, where: str) -> None:
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            continue
        if value.is_complex():
            raise StyleError(f"{where}: parameter {key!r} holds complex numbers; not a generator")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise StyleError(
                f"{where}: parameter {key!r} holds NaN or infinite values (a diverged or "
                "damaged training run); it would render black"
            )


def _read_official(path: Path) -> tuple[dict[str, torch.Tensor], CartoonConfig]:
    import io
    import warnings

    from facesketch.fileio import MAX_WEIGHTS_BYTES, FileCheckError, read_file_bytes

    try:
        data = read_file_bytes(path, MAX_WEIGHTS_BYTES, "CartoonGAN generator file")
    except FileCheckError as exc:
        raise StyleError(str(exc)) from None
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load

            sd = load(data)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns about pickle protocols
                sd = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle, zip and torch errors all mean "not usable"
        raise StyleError(
            f"{path}: cannot be read as a PyTorch state dict with safe loading "
            f"({_load_error_reason(exc)}); facesketch never runs code from a weights file: "
            "use the authors' <Style>_net_G_float.pth"
        ) from None
    for wrapper in ("state_dict", "model", "net_G"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict):
        raise StyleError(f"{path}: holds a {type(sd).__name__}, not a state dict")
    _check_tensors(sd, str(path))
    return convert_official_state_dict(sd, str(path))


def import_style(path: str | os.PathLike[str], name: str, overwrite: bool = False) -> Path:
    """Convert the authors' ``<Style>_net_G_float.pth`` into a style called ``name``.

    Stores fp16 safetensors + manifest in :func:`styles_dir` and returns the weights
    path.  Refuses names of shipped styles, unsafe names and (unless ``overwrite``)
    existing styles.
    """
    from facesketch.engine.weights import save_weights

    if not _NAME_RE.match(name):
        raise StyleError(f"style name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
    if (_shipped_dir() / f"{SHIPPED_PREFIX}{name}.safetensors").exists():
        raise StyleError(f"style name {name!r} is taken by a shipped style; choose another")
    src = Path(path)
    state, cfg = _read_official(src)
    target = styles_dir() / f"{name}.safetensors"
    if target.exists() and not overwrite:
        raise StyleError(f"{target}: a style named {name!r} exists; remove it or choose another")
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "network": NETWORK,
        "config": cfg.to_dict(),
        "input_order": "bgr",
        "data": "CartoonGAN authors' release (Chen, Lai & Liu, CVPR 2018)",
        "steps": None,
        "wall_time_s": None,
        "hardware": None,
        "metrics": {},
        "notes": f"official CartoonGAN generator imported from {src.name}",
    }
    return Path(save_weights(state, target, manifest))


# -- loading ------------------------------------------------------------------------
_cache: OrderedDict[tuple[Any, ...], Style] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 4


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[str, Path]:
    text = str(name_or_path)
    p = Path(text).expanduser()
    if p.suffix.lower() in (".safetensors", ".pth", ".pt", ".json") or os.sep in text:
        if p.suffix.lower() == ".json":
            p = p.with_suffix(".safetensors")
        from facesketch.fileio import MAX_WEIGHTS_BYTES, FileCheckError, check_regular_file

        try:  # a FIFO or a device is refused here, not read
            check_regular_file(p, MAX_WEIGHTS_BYTES, "style file")
        except FileCheckError as exc:
            raise StyleError(str(exc).replace("no such file", "no such style file")) from None
        return p.stem.removeprefix(SHIPPED_PREFIX), p
    styles = list_styles()
    for s in styles:
        if s["name"] == text:
            return text, Path(s["path"])
    known = ", ".join(s["name"] for s in styles) or "none"
    if text == DEFAULT_STYLE:
        raise StyleError(
            f"the project's style {text!r} is not installed (no {SHIPPED_PREFIX}{text}.safetensors "
            f"in the weights folder; train it: python -m train.cartoongan); available: {known}"
        )
    raise StyleError(
        f"unknown style {text!r}; available: {known}. Import the authors' weights with "
        "`facesketch cartoonize --import X_net_G_float.pth --name X`"
    )


def _build(name: str, path: Path) -> tuple[CartoonGenerator, str, dict[str, Any]]:
    if path.suffix.lower() in (".pth", ".pt"):
        state, cfg = _read_official(path)
        gen = CartoonGenerator(cfg)
        gen.load_state_dict(state)
        return gen, "bgr", {"network": NETWORK, "config": cfg.to_dict(), "input_order": "bgr"}
    from facesketch.engine.weights import WeightsError, load_into, read_manifest

    try:
        manifest = read_manifest(path)
        if manifest.get("network") != NETWORK:
            raise StyleError(f"{path}: holds a {manifest.get('network')!r} network, not a style")
        cfg = CartoonConfig.from_dict(manifest["config"])
        gen = CartoonGenerator(cfg)
        load_into(gen, path, NETWORK, cfg.to_dict())
    except (WeightsError, KeyError, TypeError) as exc:
        raise StyleError(f"{path}: cannot load style {name!r}: {exc}") from exc
    _check_tensors(gen.state_dict(), f"{path}: style {name!r}")
    order = manifest.get("input_order", "rgb")
    if order not in ("rgb", "bgr"):
        raise StyleError(f"{path}: manifest input_order {order!r} is neither 'rgb' nor 'bgr'")
    _check_colour_keys(manifest, path)
    return gen, order, manifest


def _finite_number(value: Any, lo: float, hi: float) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and lo <= float(value) <= hi  # NaN fails both comparisons


def _check_colour_keys(manifest: dict[str, Any], path: Path) -> None:
    """A style's input_smoothing / keep_hue must be numbers in range: a clear StyleError
    at load time, not a crash at the first stylization."""
    if "keep_hue" in manifest and not _finite_number(manifest["keep_hue"], 0.0, 1.0):
        raise StyleError(f"{path}: manifest keep_hue {manifest['keep_hue']!r} is not in 0..1")
    smooth = manifest.get("input_smoothing")
    if smooth is None:
        return
    if not isinstance(smooth, dict) or not all(
        _finite_number(smooth.get(k, 0.0), 0.0, 200.0) for k in ("sigma_s", "sigma_r")
    ):
        raise StyleError(
            f"{path}: manifest input_smoothing {smooth!r} is not "
            "{'sigma_s': 0..200, 'sigma_r': 0..200}"
        )


def load_style(
    name_or_path: str | os.PathLike[str] = DEFAULT_STYLE, device: str | DeviceSpec = "auto"
) -> Style:
    """A style by name (see :func:`list_styles`) or file (.safetensors, or the authors' .pth).

    Loaded generators are cached (a few, keyed by file and device).  Raises
    :class:`StyleError` listing the available styles for an unknown name.
    """
    name, path = _resolve(name_or_path)
    spec = device if isinstance(device, DeviceSpec) else select_device(device)
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(spec.device), spec.dtype)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    gen, order, manifest = _build(name, path)
    style = Style(name, spec.module(gen.requires_grad_(False)), order, spec, manifest, path)
    with _cache_lock:
        _cache[key] = style
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return style


# -- stylization -----------------------------------------------------------------------
def _resize_longer(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    f = size / max(h, w)
    if f == 1.0:
        return rgb
    new = (max(1, round(w * f)), max(1, round(h * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, new, interpolation=interp)


def _pad(rgb: np.ndarray) -> np.ndarray:
    """Pad bottom/right to a multiple of 4 (at least 8 px) so output aligns with input."""
    h, w = rgb.shape[:2]
    ph = max(8, -(-h // SIZE_MULTIPLE) * SIZE_MULTIPLE) - h
    pw = max(8, -(-w // SIZE_MULTIPLE) * SIZE_MULTIPLE) - w
    if not ph and not pw:
        return rgb
    mode = cv2.BORDER_REFLECT_101 if min(h, w) > max(ph, pw) else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(rgb, 0, ph, 0, pw, mode)


def smooth_input(img: np.ndarray, params: Any) -> np.ndarray:
    """Edge-preserving smoothing of the input, as a style's manifest asks
    (``input_smoothing``: ``sigma_s`` in pixels of a 256 image, ``sigma_r``).

    The project's style turns sensor noise and JPEG blocks of dark or flat photos
    (and the fusion's faint mesh) into scratchy ink and a cracked skin texture;
    flattening them first removes that and keeps the edges the style outlines.
    Styles without the key (imported ones) get the input unchanged."""
    if not params:
        return img
    sigma_s = float(params.get("sigma_s", 0.0)) * max(img.shape[:2]) / 256
    sigma_r = float(params.get("sigma_r", 0.0))
    if sigma_s <= 0 or sigma_r <= 0:
        return img
    return cv2.edgePreservingFilter(
        np.ascontiguousarray(img),
        flags=cv2.RECURS_FILTER,
        sigma_s=min(sigma_s, 200.0),
        sigma_r=min(sigma_r, 1.0),
    )


def stylize(
    rgb: np.ndarray, style: Style | str = DEFAULT_STYLE, size: int | None = None
) -> np.ndarray:
    """Any photo (uint8 RGB) as a cartoon (uint8 RGB) in ``style``.

    ``size`` resizes so the longer side is ``size`` first (the output has that size);
    otherwise the output has the input's size.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim not in (2, 3) or rgb.size == 0:
        raise ValueError("stylize expects a non-empty uint8 image array (H, W, 3)")
    if size is not None and size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    st = style if isinstance(style, Style) else load_style(style)
    img = as_rgb(rgb)
    if size is not None:
        img = _resize_longer(img, int(size))
    h, w = img.shape[:2]
    source = img
    img = smooth_input(img, st.manifest.get("input_smoothing"))
    x = image_to_tensor(_pad(img))
    if st.input_order == "bgr":
        x = x.flip(1)
    with torch.inference_mode():
        y = st.generator(st.spec.tensor(x))
        # styles trained here say which transposed-conv mesh to remove; imported ones none
        y = remove_periodic_pattern(y.float(), int(st.manifest.get("mesh_period", 0)))
    y = y[:, :, :h, :w]
    if st.input_order == "bgr":
        y = y.flip(1)
    return keep_hue(tensor_to_image(y)[0], source, float(st.manifest.get("keep_hue", 0.0)))


def keep_hue(cartoon: np.ndarray, photo: np.ndarray, amount: float) -> np.ndarray:
    """Mix ``amount`` (0..1) of the photo's blurred chroma (Lab a, b) into the cartoon.

    The project's style simplifies every palette towards pale cream and black: a green
    phone case or a blue sweater loses its hue.  Lightness (the flat shading and the
    outlines) stays the cartoon's; only the broad colours come back.  Styles without
    the manifest key ``keep_hue`` (imported ones) are unchanged."""
    if amount <= 0:
        return cartoon
    amount = min(amount, 1.0)
    sigma = 4.0 * max(photo.shape[:2]) / 256
    lab_c = cv2.cvtColor(cartoon, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_p = cv2.cvtColor(cv2.GaussianBlur(photo, (0, 0), sigma), cv2.COLOR_RGB2LAB)
    lab_c[..., 1:] += amount * (lab_p[..., 1:].astype(np.float32) - lab_c[..., 1:])
    return cv2.cvtColor(np.clip(lab_c + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


# -- portraits: proportions, stylization, the user's ink ------------------------------
def _detected_parts(rgb: np.ndarray) -> Any:
    """Face parts from dlib's landmarks of the largest face, or None when none is found."""
    from facesketch.face import detect_faces
    from facesketch.face.proportions import parts_from_landmarks

    faces = detect_faces(rgb)
    return parts_from_landmarks(faces[0].landmarks) if faces else None


def cartoon_portrait(
    face: np.ndarray,
    style: Style | str = DEFAULT_STYLE,
    settings: Any = None,
    sketch: np.ndarray | None = None,
    layout: Any = None,
) -> np.ndarray:
    """A portrait as a cartoon with a document's cartoon settings (same size as ``face``).

    ``settings`` (:class:`facesketch.sketch.cartoon_settings.CartoonSettings`, None =
    defaults): ``proportions`` warps the face before stylization, with the parts taken
    from ``layout`` (a rendered face's component windows) or found by dlib;
    ``ink`` draws ``sketch`` (the calibrated strokes, any size, warped the same way)
    over the cartoon.  Without a sketch the ink setting has nothing to draw.
    """
    from facesketch.engine.ink import apply_ink
    from facesketch.face.proportions import apply_maps, parts_from_layout, warp_maps
    from facesketch.sketch.cartoon_settings import CartoonSettings

    s = settings if settings is not None else CartoonSettings()
    img = as_rgb(face)
    maps = None
    if s.proportions > 0:
        h, w = img.shape[:2]
        parts = parts_from_layout(layout, max(h, w)) if layout is not None else _detected_parts(img)
        if parts is not None:
            maps = warp_maps((h, w), parts, s.proportions)
            img = apply_maps(img, maps)
    out = stylize(img, style)
    if s.ink and sketch is not None:
        sk = np.asarray(sketch)
        if sk.ndim == 3:
            sk = cv2.cvtColor(sk, cv2.COLOR_RGB2GRAY)
        if sk.shape[:2] != out.shape[:2]:
            sk = cv2.resize(sk, out.shape[1::-1], interpolation=cv2.INTER_AREA)
        if maps is not None:
            sk = cv2.remap(sk, maps[0], maps[1], cv2.INTER_LINEAR, borderValue=255)
        out = apply_ink(out, sk, s.ink_width, s.ink_darkness)
    return out
