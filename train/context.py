"""The devices, precision, optimizers, data and distributed state a training Task runs with.

Split from :mod:`train.loop` (which re-exports :class:`RunContext`) so the loop reads as
one page; a Task receives its context as ``ctx``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from train.config import default_data_root, model_config


class RunContext:
    """Devices, precision and distributed state, handed to a Task."""

    def __init__(self, cfg: dict, device: str | None = None) -> None:
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        else:
            # train.threads: fewer when other work shares the CPU (oversubscribed torch
            # threads spin against each other and run several times slower)
            threads = cfg["train"].get("threads") or (os.cpu_count() or 1) // self.world
            torch.set_num_threads(max(1, int(threads)))
        amp = cfg["train"]["amp"]
        self.amp_dtype: torch.dtype | None = None
        if amp not in ("auto", "off", "bf16", "fp16"):
            raise ValueError(f"train.amp must be auto, off, bf16 or fp16, not {amp!r}")
        if self.device.type == "cuda" and amp != "off":
            bf16 = amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported())
            self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.owners: dict[int, tuple[nn.Module, ...]] = {}  # id(optimizer) -> its modules
        self.model_cfg = model_config(cfg)
        self.is_main = self.rank == 0

    # -- precision and optimisation ------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context on CUDA (no-op on CPU)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def adam(self, *modules: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """Adam over the modules' parameters with the run's lr and betas."""
        t = self.cfg["train"]
        params = [p for m in modules for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=lr or t["lr"], betas=tuple(t["betas"]))
        self.owners[id(opt)] = modules  # what Task.forward wraps in DDP for this optimizer
        return opt

    def ddp(self, modules: tuple[nn.Module, ...]) -> nn.Module:
        """A DistributedDataParallel module over ``modules`` that runs a loss function.

        ``find_unused_parameters``: a step may train only some components (``cycle``)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            _StepModule(modules), device_ids=ids, find_unused_parameters=True
        )

    def step(self, loss: torch.Tensor, name: str, opt: torch.optim.Optimizer) -> None:
        """Backward ``loss`` and step ``opt`` (called ``name``; AMP- and rank-aware)."""
        scaler = self.scalers.get(name)
        if scaler is None and self.amp_dtype == torch.float16:
            scaler = self.scalers[name] = torch.amp.GradScaler("cuda")
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()  # DDP averages here (torchrun)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    # -- data ---------------------------------------------------------------------------
    def dataset(self, split: str, size: int = 256) -> Dataset:
        """The face dataset of ``split`` at ``size`` (synthetic with ``data.synthetic``)."""
        d = self.cfg["data"]
        if d.get("synthetic"):
            from train.synthetic import SyntheticFaces

            n = int(d.get("synthetic_count", 16))
            count = n if split == "train" else max(2, n // 4)
            return SyntheticFaces(count, size, seed=1 if split == "train" else 2)
        from train.data import FaceDataset

        root = Path(d.get("root") or default_data_root())
        if not root.exists():
            raise FileNotFoundError(
                f"training data folder {root} does not exist: run `python -m train.prepare` "
                "first, pass --data ROOT (or set FACESKETCH_DATA), or --synthetic for a smoke run"
            )
        return FaceDataset(root, split, size=size, augment=split == "train")


class _StepModule(nn.Module):
    """Holds an optimizer's networks so DDP can track them; runs the loss function."""

    def __init__(self, modules: tuple[nn.Module, ...]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)
