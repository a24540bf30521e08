"""Shared test set-up: offscreen Qt, a private user-data folder, seeds, the data path."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

# Before anything imports Qt: tests never need (or may have) a display.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The shared data folder sits beside the repository (never copied into it).
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Autosaves and imported styles go to a temp folder, not the user's home."""
    home = tmp_path_factory.mktemp("facesketch_home")
    os.environ["FACESKETCH_HOME"] = str(home)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Same random numbers in every test run (torch too, when a test module uses it)."""
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")  # not imported here: tests without torch stay fast
    if torch is not None:
        torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository, or skip the test when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"../shared/data not present: {SHARED_DATA} has the training data")
    return SHARED_DATA
