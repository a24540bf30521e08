"""Run-directory files of the training loop: checkpoints, init from earlier stages,
the CSV log, validation grids and weight export.

Kept apart from :mod:`train.loop` so the loop itself reads as one page.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from train.loop import Task


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, task: Task, cfg: dict, loop_state: dict) -> None:
    """Everything needed to continue, written atomically (temp file + rename)."""
    data = {
        "version": 1,
        "task": task.name,
        "config": cfg,
        "loop": loop_state,
        "nets": {k: v.state_dict() for k, v in task.nets.items()},
        "optims": {k: v.state_dict() for k, v in task.optims.items()},
        "scalers": {k: v.state_dict() for k, v in task.ctx.scalers.items()},
        "rng": rng_state(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def _ckpt_path(p: Path) -> Path:
    return p / "ckpt.pt" if p.is_dir() else p


def _load_widened(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``load_state_dict``, except that a weight which only gained input channels (dim 1,
    e.g. a new conditioning input) keeps the stored channels first and zeros for the new
    ones, so an earlier stage's net can start a wider one without changing its output."""
    own = net.state_dict()
    fixed = dict(state)
    for k, v in state.items():
        t = own.get(k)
        if t is None or t.shape == v.shape or t.ndim < 2 or v.ndim != t.ndim:
            continue
        if t.shape[0] == v.shape[0] and t.shape[2:] == v.shape[2:] and t.shape[1] > v.shape[1]:
            w = torch.zeros_like(t)
            w[:, : v.shape[1]] = v
            fixed[k] = w
    net.load_state_dict(fixed)


def export_stem(net_name: str) -> str:
    """The weights file stem a task net is exported as (``local.nose`` -> ``local_nose``)."""
    return net_name.replace(".", "_")


def _adapted(task: Task, name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as the task's net ``name`` takes it (:meth:`train.loop.Task.adapt_init`)."""
    adapt = getattr(task, "adapt_init", None)
    return adapt(name, state) if adapt is not None else state


def _load_exported(task: Task, folder: Path) -> list[str]:
    """Nets from a folder of exported fp16 weights (``resources/weights`` or a run's
    ``export``), so a fine-tune can start from what ships; checksums are verified."""
    from facesketch.engine.weights import load_state_dict

    loaded = []
    # a net exported under another stem (the landmark task's ``net`` ships as
    # ``landmarks``) is found by the stem its task declares
    exports = getattr(task, "exports", list)  # a bare holder of nets has none
    declared = {id(e.module): e.stem for e in exports()}
    for name, net in task.nets.items():
        stems = [export_stem(name), declared.get(id(net), export_stem(name))]
        path = next(
            (folder / f"{s}.safetensors" for s in stems if (folder / f"{s}.safetensors").is_file()),
            None,
        )
        if path is None:
            continue
        state, _manifest = load_state_dict(path)
        own = net.state_dict()
        state = _adapted(task, name, state)
        state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
        try:
            _load_widened(net, state)
        except RuntimeError as exc:
            raise RuntimeError(f"--init {path}: network {name!r} does not fit: {exc}") from exc
        loaded.append(f"{name} <- {path}")
    return loaded


def load_init(task: Task, paths: list[Path]) -> list[str]:
    """Load nets of the same name from earlier stages' checkpoints, or from a folder of
    exported weights (no ``ckpt.pt`` in it); returns what was loaded."""
    loaded = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not (p / "ckpt.pt").exists() and any(p.glob("*.safetensors")):
            found = _load_exported(task, p)
            if not found:
                raise FileNotFoundError(f"--init {p}: none of {sorted(task.nets)} exported there")
            loaded += found
            continue
        ck = _ckpt_path(p)
        if not ck.is_file():
            raise FileNotFoundError(
                f"--init {p}: no checkpoint there (train the earlier stage first)"
            )
        states = torch.load(ck, map_location="cpu", weights_only=False)["nets"]
        for name, net in task.nets.items():
            if name in states:
                try:
                    _load_widened(net, _adapted(task, name, states[name]))
                except RuntimeError as exc:
                    raise RuntimeError(
                        f"--init {ck}: network {name!r} does not fit "
                        f"(different model config?): {exc}"
                    ) from exc
                loaded.append(f"{name} <- {ck}")
    return loaded


def export(
    task: Task, out_dir: Path, cfg: dict, loop_state: dict, metrics: dict, data: str
) -> list[Path]:
    """Write each ``task.exports()`` network as fp16 safetensors + manifest (``data``: source)."""
    from facesketch.engine.weights import save_weights

    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = task.ctx
    if ctx.device.type == "cuda":
        hardware = f"{ctx.world} x {torch.cuda.get_device_name(ctx.device)}"
    else:
        hardware = f"cpu, {os.cpu_count()} cores, {torch.get_num_threads()} threads x {ctx.world}"
    written = []
    for e in task.exports():
        manifest = {
            "network": e.network,
            "config": e.config,
            "data": data,
            "steps": loop_state["step"],
            "wall_time_s": round(loop_state["elapsed_s"], 1),
            "hardware": hardware,
            "metrics": metrics,
            "notes": f"train.{task.name}; config {json.dumps(cfg, sort_keys=True)}",
            **e.extra,
        }
        state = {k: v.detach().cpu() for k, v in e.module.state_dict().items()}
        written.append(save_weights(state, out_dir / f"{e.stem}.safetensors", manifest))
    return written


def save_grid(images: list[torch.Tensor], path: Path) -> Path:
    """Tile tensors (N, 1|3, h, w) in [-1, 1] side by side, rows = samples (nearest resize)."""
    import torch.nn.functional as F

    from facesketch.imaging import tensor_to_image, write_image

    h = max(im.shape[-2] for im in images)
    cols = []
    for im in images:
        im = im.detach().float().cpu()
        if im.shape[1] == 1:
            im = im.expand(-1, 3, -1, -1)
        if im.shape[-2] != h:
            im = F.interpolate(im, size=(h, round(im.shape[-1] * h / im.shape[-2])), mode="nearest")
        cols.append(im)
    n = min(c.shape[0] for c in cols)
    grid = torch.cat([torch.cat([c[i] for c in cols], dim=2) for i in range(n)], dim=1)
    return write_image(path, tensor_to_image(grid))


class CsvLog:
    """Append-only CSV of train/val rows; the header grows when new keys appear."""

    def __init__(self, path: Path) -> None:
        import csv

        self.path, self._csv = path, csv
        self.rows: list[dict] = []
        if path.is_file():
            with path.open(newline="") as f:
                self.rows = list(csv.DictReader(f))
        self.fields: list[str] = list(self.rows[0].keys()) if self.rows else []

    def write(self, row: dict) -> None:
        row = {"wall": time.strftime("%Y-%m-%dT%H:%M:%S"), **row}
        row = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if new or not self.path.exists():
            self.fields += new
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            with tmp.open("w", newline="") as f:
                w = self._csv.DictWriter(f, self.fields, restval="")
                w.writeheader()
                w.writerows(self.rows)
            os.replace(tmp, self.path)
        else:
            with self.path.open("a", newline="") as f:
                self._csv.DictWriter(f, self.fields, restval="").writerow(row)
