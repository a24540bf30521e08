"""train.prepare end to end on a tiny data folder, and the dataset that reads it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from train.data import FaceDataset, load_index
from train.prepare import prepare

skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides a photo")


def _fake_sketcher(images, masks=None):
    # cheap stand-in for the HED extractor: white paper with a dark frame line
    out = []
    for img in images:
        s = np.full(img.shape[:2], 255, np.uint8)
        cv2.rectangle(s, (20, 20), (img.shape[1] - 20, img.shape[0] - 20), 0, 1)
        out.append(s)
    return out


@pytest.fixture()
def tiny_data(tmp_path):
    face = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    hq = tmp_path / "data" / "faces" / "hq"
    hq.mkdir(parents=True)
    cv2.imwrite(str(hq / "hq_a.jpg"), face)
    cv2.imwrite(str(hq / "hq_b.jpg"), face[:, ::-1])
    cv2.imwrite(str(hq / "hq_noface.jpg"), np.full((200, 200, 3), 90, np.uint8))
    (hq / "hq_corrupt.jpg").write_bytes(b"not an image")
    return tmp_path / "data"


def test_prepare_lists_failures_and_resumes(tiny_data, tmp_path):
    out = tmp_path / "prepared"
    kw = dict(sources=("hq",), workers=0, sketcher=_fake_sketcher, progress=False)
    summary = prepare(tiny_data, out, **kw)
    assert summary["items"] == 2
    assert summary["failures"] == 2
    index = load_index(out)
    ids = list(index["items_by_id"])
    for item_id in ids:
        assert (out / "256" / "img" / f"{item_id}.png").is_file()
        assert (out / "256" / "sketch" / f"{item_id}.png").is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "256" / "img").iterdir()}
    again = prepare(tiny_data, out, **kw)  # resumable: nothing is redone
    assert again["items"] == 2
    assert {p: p.stat().st_mtime_ns for p in (out / "256" / "img").iterdir()} == mtimes

    ds = FaceDataset(out, split="all", size=256, augment=False, use_pack=False)
    sample = ds[0]
    assert sample["image"].shape == (3, 256, 256)
    assert -1.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert set(np.unique(sample["mask"].numpy())) <= {0.0, 1.0}
    assert sample["sketch"].shape == (1, 256, 256)


def test_prepare_with_worker_processes_matches_in_process(tiny_data, tmp_path):
    import torch

    torch.ones(64, 64) @ torch.ones(64, 64)  # torch's threads are up, as in a real session
    kw = dict(sources=("hq",), sketcher=_fake_sketcher, progress=False)
    solo = prepare(tiny_data, tmp_path / "solo", workers=0, **kw)
    pooled = prepare(tiny_data, tmp_path / "pooled", workers=2, **kw)
    assert (pooled["items"], pooled["failures"]) == (solo["items"], solo["failures"]) == (2, 2)
    for name in sorted((tmp_path / "solo" / "256" / "img").iterdir()):
        twin = tmp_path / "pooled" / "256" / "img" / name.name
        assert np.array_equal(cv2.imread(str(name)), cv2.imread(str(twin)))


def test_full_canvas_faces_are_oversampled(tiny_data, tmp_path):
    from train.data import oversample_full_canvas

    out = tmp_path / "prep"
    prepare(tiny_data, out, sources=("hq",), workers=0, sketcher=_fake_sketcher, progress=False)
    ds = FaceDataset(out, "all", size=64, augment=False, use_pack=False)
    cover = sorted(e["coverage"] for e in load_index(out)["items_by_id"].values())
    assert len(ds) == 2 and 0.0 < cover[0] <= 1.0
    assert len(oversample_full_canvas(ds, 3, 0.0)) == 6  # every face covers >= 0
    assert len(oversample_full_canvas(ds, 3, 1.01)) == 2  # none covers more than all
    rep = oversample_full_canvas(ds, 3, cover[-1])
    assert len(rep) == 2 + 2 * sum(c >= cover[-1] for c in cover)
    assert rep[0]["image"].shape == ds[0]["image"].shape
    assert oversample_full_canvas(ds, 1) is ds
