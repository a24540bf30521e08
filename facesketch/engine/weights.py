"""Weights registry: safetensors files with a JSON manifest beside them.

``<name>.safetensors`` holds the tensors (float ones as fp16), ``<name>.json`` says
which network they belong to, the config it was built with, the data, steps and
metrics of the run, and the file's sha256.  Loading verifies the checksum, the
network name, the config and every key and shape before touching a module, and
fails with a :class:`WeightsError` that names the file and says what to do.
Only safetensors are read: no pickle, so a downloaded file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facesketch.fileio import MAX_WEIGHTS_BYTES, FileCheckError, atomic_write_bytes, read_file_bytes
from facesketch.resources import shipped_weights_dir

#: Environment variable naming a folder of weights to use instead of the shipped ones.
WEIGHTS_ENV = "FACESKETCH_WEIGHTS"
#: Version of the manifest format written by :func:`save_weights`.
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
MANIFEST_SUFFIX = ".json"
#: Manifest keys every weights file must have.
REQUIRED_KEYS = ("network", "config")
#: Largest manifest read (they are a few KiB).
MAX_MANIFEST_BYTES = 1024 * 1024
#: Training script that makes each network (for "what to do" in messages).
_TRAIN_SCRIPT = {"scn": "scn", "fusion": "fusion", "up": "fusion", "cartoon": "cartoongan"}


class WeightsError(RuntimeError):
    """A weights file is missing or unusable; the message names it and what to do."""


def weights_dir() -> Path:
    """Folder the registry reads: ``$FACESKETCH_WEIGHTS`` if set, else the shipped weights."""
    env = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(env).expanduser() if env else shipped_weights_dir()


def _remedy(network: Any, path: str | os.PathLike[str] | None = None) -> str:
    """What to do about a bad weights file: reinstall for a shipped one, else replace it."""
    if path is not None and _is_shipped(Path(path)):
        return (
            "the installed copy is damaged: reinstall facesketch "
            "(pip install --force-reinstall facesketch), or in a source checkout restore "
            f"{Path(path).name} with git"
        )
    net = str(network) if network else ""
    script = _TRAIN_SCRIPT.get(net, "local" if net.startswith("local/") else None)
    unset = f"delete it (or unset {WEIGHTS_ENV}) to use the shipped weights"
    if script is None:
        return f"replace it with a working copy or {unset}"
    return (
        f"{unset}, or re-export it with `python -m train.{script}` from a facesketch "
        "source checkout (it writes <run>/export/)"
    )


def _is_shipped(path: Path) -> bool:
    try:
        return path.resolve().parent == shipped_weights_dir().resolve()
    except (OSError, RuntimeError):
        return False


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """The ``.safetensors`` path for a registry name (file stem in :func:`weights_dir`) or path."""
    text = os.fspath(name_or_path)
    p = Path(text).expanduser()
    looks_like_path = p.suffix in (WEIGHTS_SUFFIX, MANIFEST_SUFFIX, ".pt", ".pth") or (
        os.sep in text or (os.altsep or os.sep) in text or p.exists()
    )
    if not looks_like_path:
        p = weights_dir() / f"{text}{WEIGHTS_SUFFIX}"
    if p.suffix == MANIFEST_SUFFIX:
        p = p.with_suffix(WEIGHTS_SUFFIX)
    if p.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        raise WeightsError(
            f"{p}: only .safetensors weights are loaded (pickle files can run code); "
            "export the network with its training script, which writes safetensors"
        )
    return p


def manifest_path(weights_path: str | os.PathLike[str]) -> Path:
    """Where the manifest of a weights file lives."""
    return Path(weights_path).with_suffix(MANIFEST_SUFFIX)


def read_manifest(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a weights file (checked for the required keys and format version)."""
    path = resolve(name_or_path)
    mpath = manifest_path(path)
    if not os.path.lexists(mpath):
        raise WeightsError(
            f"{mpath}: manifest missing for {path.name}; keep the .json that was written "
            "beside it or re-export the weights"
        )
    try:
        text = read_file_bytes(mpath, MAX_MANIFEST_BYTES, "weights manifest").decode("utf-8")
    except FileCheckError as exc:
        raise WeightsError(f"{exc}; re-export the weights") from None
    except UnicodeDecodeError:
        raise WeightsError(f"{mpath}: the manifest is not UTF-8 text; re-export it") from None
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise WeightsError(
            f"{mpath}: the manifest is not valid JSON ({exc}); re-export it"
        ) from None
    if not isinstance(manifest, dict) or any(k not in manifest for k in REQUIRED_KEYS):
        raise WeightsError(
            f"{mpath}: not a weights manifest (needs {', '.join(REQUIRED_KEYS)}); re-export it"
        )
    version = manifest.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(
            f"{mpath}: written by a newer facesketch (manifest format {version}); "
            f"this one reads up to {FORMAT_VERSION}: update facesketch"
        )
    return manifest


def _json_normal(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists, keys strings)."""
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"the network config is not plain JSON data: {exc}") from None


def _state_dict(module_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> dict:
    if isinstance(module_or_state_dict, nn.Module):
        return module_or_state_dict.state_dict()
    return dict(module_or_state_dict)


def save_weights(
    module_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    half: bool = True,
) -> Path:
    """Write float tensors as fp16 safetensors at ``path`` + the manifest beside it.

    Adds ``sha256`` and ``format_version`` to the manifest.  Both files are written
    atomically, weights first.  Returns the weights path.
    """
    from safetensors.torch import save

    p = Path(path)
    if p.suffix != WEIGHTS_SUFFIX:
        raise WeightsError(f"{p}: weights files must end in {WEIGHTS_SUFFIX}")
    meta = dict(manifest)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise WeightsError(f"{p}: the manifest lacks {', '.join(missing)}")
    meta["config"] = _json_normal(meta["config"])
    tensors = {}
    for key, t in _state_dict(module_or_state_dict).items():
        if not isinstance(t, torch.Tensor):
            raise WeightsError(f"{p}: state dict entry {key!r} is not a tensor")
        t = t.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        tensors[key] = t.contiguous().clone()  # clone: tied weights must not share storage
    data = save(tensors, metadata={"network": str(meta["network"])})
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    meta["format_version"] = FORMAT_VERSION
    text = json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(p, data)
    atomic_write_bytes(manifest_path(p), text.encode("utf-8"))
    return p


def load_state_dict(
    name_or_path: str | os.PathLike[str], network: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a weights file; returns (state dict as stored, manifest).

    Checks the sha256 of the bytes it then parses and, when given, that the manifest's
    network is ``network``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = resolve(name_or_path)
    manifest = read_manifest(path)
    if network is not None and manifest["network"] != network:
        raise WeightsError(
            f"{path}: holds a {manifest['network']!r} network, not {network!r}; "
            "point to the right file or delete this one to use the shipped weights"
        )
    if not os.path.lexists(path):
        raise WeightsError(
            f"{path}: weights file missing (its manifest is there); "
            f"{_remedy(manifest['network'], path)}"
        )
    try:
        data = read_file_bytes(path, MAX_WEIGHTS_BYTES, "weights file")
    except FileCheckError as exc:
        raise WeightsError(f"{exc}; {_remedy(manifest['network'], path)}") from None
    digest = hashlib.sha256(data).hexdigest()
    expected = manifest.get("sha256")
    if digest != expected:
        raise WeightsError(
            f"{path}: checksum mismatch (file sha256 {digest[:12]}…, manifest says "
            f"{str(expected)[:12]}…): the file is damaged or was replaced without its "
            f"manifest; {_remedy(manifest['network'], path)}"
        )
    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: not a valid safetensors file ({exc})") from None
    return state, manifest


def _config_diff(found: Any, expected: Any) -> str:
    if isinstance(found, dict) and isinstance(expected, dict):
        keys = sorted(set(found) | set(expected))
        diffs = [k for k in keys if found.get(k, "<absent>") != expected.get(k, "<absent>")]
        return ", ".join(
            f"{k}: file {found.get(k, '<absent>')!r} vs {expected.get(k, '<absent>')!r}"
            for k in diffs[:4]
        )
    return f"file {found!r} vs {expected!r}"


def load_into(
    module: nn.Module,
    name_or_path: str | os.PathLike[str],
    network: str,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load verified weights into ``module``; returns the manifest.

    Besides :func:`load_state_dict`'s checks: the manifest config equals ``config``
    (when given) and the file has exactly the module's keys with the same shapes.
    The module is untouched when any check fails.
    """
    state, manifest = load_state_dict(name_or_path, network)
    path = resolve(name_or_path)
    fix = _remedy(network, path)
    if config is not None:
        want, have = _json_normal(dict(config)), _json_normal(manifest["config"])
        if want != have:
            diff = _config_diff(have, want)
            raise WeightsError(f"{path}: made for another {network} configuration ({diff}); {fix}")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}")
        raise WeightsError(
            f"{path}: does not fit the {network} network ({'; '.join(parts)}); {fix}"
        )
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise WeightsError(
            f"{path}: does not fit the {network} network ({k} has shape "
            f"{tuple(state[k].shape)}, the network needs {tuple(own[k].shape)}); {fix}"
        )
    with torch.no_grad():
        module.load_state_dict(state, strict=True)
    return manifest


def list_weights(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Manifests of the weights in ``directory`` (default :func:`weights_dir`), by name.

    Each entry adds ``name`` (file stem) and ``path`` (the .safetensors); an unreadable
    manifest gives an entry with ``error`` instead of hiding the file.  Files with no
    manifest at all (e.g. the default appearance codes) are not registry entries.
    """
    folder = Path(directory) if directory is not None else weights_dir()
    if not folder.is_dir():
        return []
    out = []
    for wpath in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
        if not manifest_path(wpath).exists():
            continue
        entry: dict[str, Any]
        try:
            entry = dict(read_manifest(wpath))
        except WeightsError as exc:
            entry = {"error": str(exc)}
        entry["name"] = wpath.stem
        entry["path"] = str(wpath)
        out.append(entry)
    return out
