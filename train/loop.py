"""The one training loop shared by every stage (SCN, local 1/2/3, fusion, up, CartoonGAN).

A stage is a small :class:`Task`; this module (with train.config, train.context and
train.sampling) owns everything else: config JSON + ``--set key=value`` overrides,
seeding, data loading (real or synthetic), devices (CPU threads = cores; one GPU with
bf16/fp16 autocast; torchrun), checkpoint + resume, validation grids, ``log.csv``,
tqdm, and export through ``facesketch.engine.weights.save_weights``.

Writing a Task (see train/scn.py for a complete one)::

    class MyTask(Task):
        name = "mystage"
        def __init__(self, cfg: dict, ctx: RunContext):
            super().__init__(cfg, ctx)
            self.nets = {"G": G.to(ctx.device), "D": D.to(ctx.device)}  # all checkpointed
            self.optims = {"G": ctx.adam(G), "D": ctx.adam(D)}
        def datasets(self):            # -> (train Dataset, val Dataset) of dict samples
            return self.ctx.dataset("train", 256), self.ctx.dataset("val", 256)
        def train_step(self, batch, step):    # batch already on ctx.device
            with self.ctx.autocast():
                loss = self.forward("G", self.g_loss, batch)   # DDP under torchrun
            self.step(loss, "G")                # backward (+ scaler) + step
            return {"loss": loss.item()}
        def validate(self, batch):             # -> metrics, [image tensors (N,C,H,W)]
            ...
        def exports(self):                      # -> [Export(stem, module, network, config)]
            ...

``cfg`` is the whole run config dict: ``preset``/``model`` (network sizes),
``train`` (loop settings), ``data`` and ``task`` (stage settings).  Modules in
``nets`` that have no optimizer are frozen helpers (loaded with ``--init``).

Several GPUs or machines (``torchrun --nproc_per_node=K -m train.<stage>``): each
epoch is sharded across ranks and gradients are averaged by DistributedDataParallel.
A Task runs the forward pass of each optimizer's loss through :meth:`Task.forward`
(``loss = self.forward("G", fn, ...)``): under torchrun that calls ``fn`` inside a DDP
module holding exactly that optimizer's networks, so a GAN step may call its networks
several times (D on real and fake, G_syn for the swap and the cycle) and a frozen D
may sit inside G's loss, which wrapping each network in DDP would not allow.  On one
process it is a plain call.  Rank 0 logs and checkpoints.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from train.checkpoint import CsvLog, export, load_init, save_checkpoint, save_grid, set_rng_state
from train.config import (  # noqa: F401  (re-exported: stage scripts use loop.build_parser ...)
    CONFIG_DIR,
    TRAIN_DEFAULTS,
    apply_overrides,
    build_parser,
    config_from_args,
    default_data_root,
    load_config,
    model_config,
    parse_value,
)
from train.context import RunContext
from train.sampling import make_loader, seed_everything, to_device, val_batch


@dataclass
class Export:
    """A trained network to write as ``<stem>.safetensors`` + manifest."""

    stem: str
    module: nn.Module
    network: str  # manifest network name: scn, local/<component>, fusion, up, cartoon
    config: dict
    extra: dict = field(default_factory=dict)  # more manifest keys (e.g. mesh_period)


class Task:
    """Base class of a training stage (see the module docstring for the contract)."""

    name = "task"

    def __init__(self, cfg: dict, ctx: RunContext) -> None:
        #: nets that must come from an earlier stage (``--init``) when not resuming
        self.needs_init: set[str] = set()
        self.cfg, self.ctx = cfg, ctx
        self.tcfg: dict = cfg.get("task", {})
        self.nets: dict[str, nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self._ddp: dict[str, nn.Module] = {}

    def datasets(self) -> tuple[Dataset, Dataset]:
        raise NotImplementedError

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        raise NotImplementedError

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        raise NotImplementedError

    def exports(self) -> list[Export]:
        raise NotImplementedError

    def adapt_init(self, name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """An earlier stage's weights for net ``name`` (``--init``), made to fit it: the
        default is as they are; a task whose net changed shape converts them here."""
        return state

    def forward(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``: the forward pass of optimizer ``name``'s loss.

        Under torchrun it runs inside DistributedDataParallel over that optimizer's
        networks (built on first use, after ``--init`` / resume loaded them), so the
        following :meth:`step` averages their gradients across ranks."""
        if self.ctx.world == 1:
            return fn(*args, **kwargs)
        if name not in self._ddp:
            self._ddp[name] = self.ctx.ddp(self.ctx.owners[id(self.optims[name])])
        return self._ddp[name](fn, *args, **kwargs)

    def step(self, loss: torch.Tensor, name: str) -> None:
        """Backward ``loss`` and step optimizer ``self.optims[name]``."""
        self.ctx.step(loss, name, self.optims[name])

    def train_mode(self, on: bool) -> None:
        """Trainable nets to train/eval mode; frozen helpers always in eval mode."""
        for name, net in self.nets.items():
            net.train(on and name in self.trainable())

    def trainable(self) -> set[str]:
        """Names of nets some optimizer updates (the rest are frozen)."""
        owned = {id(p) for o in self.optims.values() for g in o.param_groups for p in g["params"]}
        return {n for n, m in self.nets.items() if any(id(p) in owned for p in m.parameters())}


# -- the loop ------------------------------------------------------------------------
class _Stop:
    """SIGTERM sets ``requested``; the loop checkpoints and leaves after the current step."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


@dataclass
class _Run:
    """One invocation of :func:`run`: what its phases (init, resume, iterate, finish) share."""

    task: Task
    ctx: RunContext
    cfg: dict
    run_dir: Path
    train_ds: Dataset
    val_ds: Dataset
    #: step, epoch, in_epoch, elapsed_s: the checkpoint's "loop" entry
    state: dict = field(default_factory=lambda: dict(step=0, epoch=0, in_epoch=0, elapsed_s=0.0))
    log: CsvLog | None = None
    val: dict = field(default_factory=dict)  # the fixed validation batch, on the device
    start_step: int = 0
    step_time: float = 0.0  # seconds inside train_step (the steps/s figure)

    @property
    def ckpt(self) -> Path:
        return self.run_dir / "ckpt.pt"


def run(task_cls: type[Task], args: argparse.Namespace, cfg: dict, default_run: str) -> Path:
    """Train ``task_cls`` until max_steps / max_minutes / SIGTERM; checkpoint, export.

    Resumes automatically from ``<run-dir>/ckpt.pt`` unless ``--restart``.
    Returns the run directory.
    """
    run_dir = Path(args.run_dir or Path("runs") / default_run)
    ckpt = run_dir / "ckpt.pt"
    stored = None
    if ckpt.is_file() and not args.restart:
        stored = torch.load(ckpt, map_location="cpu", weights_only=False)
        cfg = _resumed_config(stored["config"], cfg, ckpt)
    r = _init(task_cls, cfg, args, run_dir)
    if stored is not None:
        msg = _resume(r, stored)
        del stored
    else:
        msg = _init_from_stages(r.task, args)
    if r.ctx.is_main:
        r.log = CsvLog(run_dir / "log.csv")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(r.cfg, indent=2))
        print(f"[{r.task.name}] {msg}; run dir {run_dir}; device {r.ctx.device}", flush=True)
    r.val = to_device(val_batch(r.val_ds, int(r.cfg["train"]["val_images"])), r.ctx.device)
    _iterate(r, args)
    if r.ctx.is_main:
        _finish(r, args)
    _close_process_group()
    return run_dir


def _close_process_group() -> None:
    """Under torchrun: wait for rank 0's export, destroy the process group, and have
    the rank leave without finalizing the interpreter.  Why: gloo's worker threads
    abort a rank now and then at finalization even after ``destroy_process_group``
    (SIGABRT, "terminate called without an active exception"; pytorch/pytorch#179291),
    which failed a finished, saved run's exit status."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _leave_without_finalizing()


def _leave_without_finalizing() -> None:
    """At exit, flush and end the process at once with its status (1 after an uncaught
    exception, else 0: the stage scripts' ``main`` returns 0 after :func:`run`)."""
    failed = []
    hook = sys.excepthook

    def seen(*exc: Any) -> None:
        failed.append(True)
        hook(*exc)

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if failed else 0)

    sys.excepthook = seen
    atexit.register(leave)


def _resumed_config(old_cfg: dict, cfg: dict, ckpt: Path) -> dict:
    """The stored config wins for everything but the stopping rules and the data."""
    if model_config(old_cfg) != model_config(cfg) or old_cfg.get("task") != cfg.get("task"):
        raise ValueError(
            f"{ckpt}: the checkpoint was made with another model or task config; "
            "use --restart to start over or another --run-dir"
        )
    old_cfg["train"].update({k: cfg["train"][k] for k in ("max_steps", "max_minutes")})
    old_cfg["data"] = cfg["data"]
    return old_cfg


def _init(task_cls: type[Task], cfg: dict, args: argparse.Namespace, run_dir: Path) -> _Run:
    """Devices, the task (the same initial weights on every rank) and its datasets."""
    t = cfg["train"]
    ctx = RunContext(cfg, args.device)
    seed_everything(int(t["seed"]))  # the same initial weights on every rank
    task = task_cls(cfg, ctx)
    seed_everything(int(t["seed"]) + ctx.rank)  # different crops / noise per rank
    train_ds, val_ds = task.datasets()
    if len(train_ds) < int(t["batch"]) * ctx.world:
        raise ValueError(f"training set has {len(train_ds)} samples, fewer than one batch")
    return _Run(task, ctx, cfg, run_dir, train_ds, val_ds)


def _resume(r: _Run, stored: dict) -> str:
    """Nets, optimizers, AMP scalers, loop counters and RNG from a checkpoint."""
    for k, v in stored["nets"].items():
        r.task.nets[k].load_state_dict(v)
    for k, v in stored["optims"].items():
        r.task.optims[k].load_state_dict(v)
    for k, v in stored.get("scalers", {}).items():
        r.ctx.scalers[k] = torch.amp.GradScaler("cuda")
        r.ctx.scalers[k].load_state_dict(v)
    r.state.update(stored["loop"])
    set_rng_state(stored["rng"])
    return f"resumed {r.ckpt} at step {r.state['step']}"


def _init_from_stages(task: Task, args: argparse.Namespace) -> str:
    """A fresh start: nets from earlier stages (``--init``); the ones it needs must be there."""
    msg = "started fresh"
    loaded = load_init(task, args.init) if args.init else []
    missing = task.needs_init - {s.split(" <- ")[0] for s in loaded}
    if missing:
        raise ValueError(
            f"train.{task.name} needs trained {sorted(missing)} from an earlier stage: "
            f"pass --init RUN_DIR (looked in: {[str(p) for p in args.init or []]})"
        )
    if loaded:
        msg += "; init " + "; ".join(loaded)
    return msg


def warm_up(optims: Iterable[torch.optim.Optimizer], step: int, steps: int) -> None:
    """Scale every optimizer's lr by ``(step + 1) / steps`` for the run's first ``steps``
    steps (its own lr, kept as ``initial_lr`` in the param group, after them).  Why: Adam
    from a fresh state moves every weight by about lr per step whatever its gradient;
    a fine-tune from trained weights (``--init``) got kicked far from them in its first
    20 steps (the fusion's gap to its own teacher 0.022 -> 0.12) before any loss could
    hold it.  ``step`` counts the run's steps, so a resumed run goes on where it was."""
    if steps <= 0:
        return
    scale = min(1.0, (step + 1) / steps)
    for opt in optims:
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * scale


def _iterate(r: _Run, args: argparse.Namespace) -> None:
    """Train steps until a stopping rule; log, validate and checkpoint on schedule.

    Always leaves a checkpoint (also on SIGTERM, Ctrl-C or an error in a step)."""
    task, ctx, state, t = r.task, r.ctx, r.state, r.cfg["train"]
    stop = _Stop()
    old_handler = signal.signal(signal.SIGTERM, stop) if ctx.is_main else None
    t0, start_elapsed, r.start_step = time.monotonic(), state["elapsed_s"], state["step"]
    deadline = t0 + 60 * float(t["max_minutes"]) if float(t["max_minutes"]) > 0 else None
    max_steps = int(t["max_steps"])
    bar = _progress(ctx, args, state["step"], max_steps)
    task.train_mode(True)

    def checkpoint() -> None:
        state["elapsed_s"] = start_elapsed + time.monotonic() - t0
        if ctx.world > 1:
            _check_in_sync(task)
        if ctx.is_main:
            save_checkpoint(r.ckpt, task, r.cfg, dict(state))

    try:
        while state["step"] < max_steps and not stop.requested:
            loader = make_loader(
                r.train_ds,
                t,
                ctx.rank,
                ctx.world,
                ctx.device.type == "cuda",
                state["epoch"],
                state["in_epoch"] * int(t["batch"]),
            )
            for batch in loader:
                warm_up(task.optims.values(), state["step"], int(t.get("warmup_steps", 0)))
                t_step = time.monotonic()
                losses = task.train_step(to_device(batch, ctx.device), state["step"])
                r.step_time += time.monotonic() - t_step
                state["step"] += 1
                state["in_epoch"] += 1
                step = state["step"]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]})
                if r.log and (step % int(t["log_every"]) == 0 or step == r.start_step + 1):
                    rate = (step - r.start_step) / max(r.step_time, 1e-9)
                    row = {"step": step, "kind": "train", "epoch": state["epoch"], "steps_s": rate}
                    r.log.write({**row, **losses})
                if step % int(t["val_every"]) == 0:
                    _validate(task, r.val, r.run_dir, step, r.log)
                if step % int(t["ckpt_every"]) == 0:
                    checkpoint()
                out_of_time = deadline is not None and time.monotonic() > deadline
                # every rank stops at the same step (a signal or the clock may reach one only)
                stop.requested = _any_rank(stop.requested or out_of_time, ctx)
                if step >= max_steps or stop.requested:
                    break
            else:
                state["epoch"] += 1
                state["in_epoch"] = 0
    except KeyboardInterrupt:
        print(f"\n[{task.name}] interrupted: saving a checkpoint", flush=True)
        stop.requested = True
    except RuntimeError as exc:
        if not worker_died(exc):
            raise
        # a signal meant for the whole run (``kill`` of its process group, ``pkill -f``
        # on its command line) reaches the data worker too: stop as on SIGTERM, export
        print(f"\n[{task.name}] {exc}: stopping as on SIGTERM", flush=True)
        stop.requested = True
    finally:
        if bar is not None:
            bar.close()
        checkpoint()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)


def worker_died(exc: BaseException) -> bool:
    """Whether ``exc`` is PyTorch's report of a DataLoader worker that a signal killed
    or that exited unexpectedly (the run itself is fine: it can checkpoint and export)."""
    text = str(exc)
    return "DataLoader worker" in text and (
        "killed by signal" in text or "exited unexpectedly" in text
    )


def _finish(r: _Run, args: argparse.Namespace) -> None:
    """Rank 0: the speed, a last validation, and the export of the trained networks."""
    task, state = r.task, r.state
    done = state["step"] - r.start_step
    if done:
        print(f"[{task.name}] {done} steps, {done / r.step_time:.3f} steps/s (training only)")
    metrics = _validate(task, r.val, r.run_dir, state["step"], r.log)
    d = r.cfg["data"]
    data = "synthetic" if d.get("synthetic") else str(d.get("root") or default_data_root())
    out = export(task, Path(args.export or r.run_dir / "export"), r.cfg, state, metrics, data)
    names = ", ".join(str(p) for p in out)
    print(f"[{task.name}] step {state['step']}; exported {names}", flush=True)


def _any_rank(flag: bool, ctx: RunContext) -> bool:
    """True on every rank when it is true on any (one scalar all_reduce under torchrun)."""
    if ctx.world <= 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _check_in_sync(task: Task) -> None:
    """Under torchrun every rank must hold the same trained weights (DDP averaged the
    gradients); a loss run outside :meth:`Task.forward` would let them drift apart."""
    dist = torch.distributed
    sums = [
        p.detach().double().sum()
        for n in sorted(task.trainable())
        for p in task.nets[n].parameters()
    ]
    if not sums:
        return
    lo = torch.stack(sums)
    hi = lo.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.allclose(lo, hi, rtol=1e-6, atol=1e-8):
        raise RuntimeError(
            f"train.{task.name}: the ranks' weights differ; every training loss must run "
            "through Task.forward so DDP averages its gradients"
        )


def _progress(ctx: RunContext, args: argparse.Namespace, step: int, total: int) -> Any:
    if not ctx.is_main or args.no_progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, dynamic_ncols=True, smoothing=0.05)


@torch.no_grad()
def _validate(task: Task, batch: dict, run_dir: Path, step: int, log: CsvLog | None) -> dict:
    """Validation metrics + image grid ``val/<step>.png`` (rows: samples, columns: images)."""
    task.train_mode(False)
    try:
        metrics, images = task.validate(batch)
    finally:
        task.train_mode(True)
    if log:
        log.write({"step": step, "kind": "val", **metrics})
        save_grid(images, run_dir / "val" / f"{step:07d}.png")
    return {k: round(float(v), 5) for k, v in metrics.items()}
