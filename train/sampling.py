"""Data order of the training loop: seeded, rank-sharded, resumable epochs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate


class EpochSampler(Sampler[int]):
    """Seeded permutation per epoch, sharded by rank, resumable at any position."""

    def __init__(self, n: int, seed: int, epoch: int, start: int, rank: int, world: int) -> None:
        self.n, self.seed, self.epoch, self.start, self.rank, self.world = (
            n,
            seed,
            epoch,
            start,
            rank,
            world,
        )

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        return perm[self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return max(0, len(self.indices()) - self.start)


def worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loader(
    ds: Dataset, train: dict, rank: int, world: int, pin: bool, epoch: int, start: int
) -> DataLoader:
    """This rank's loader for ``epoch``, from sample ``start`` (resume mid-epoch)."""
    sampler = EpochSampler(len(ds), int(train["seed"]), epoch, start, rank, world)
    return DataLoader(
        ds,
        batch_size=int(train["batch"]),
        sampler=sampler,
        num_workers=int(train["workers"]),
        drop_last=True,
        pin_memory=pin,
        worker_init_fn=worker_init,
        persistent_workers=False,
    )


def val_batch(ds: Dataset, n: int) -> dict:
    """The first ``n`` samples as one batch: the same validation images every time."""
    return default_collate([ds[i] for i in range(min(n, len(ds)))])
