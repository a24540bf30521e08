"""The sketch landmark network: shapes, soft-argmax geometry, training on the shared loop
(smoke: synthetic template faces, resume, export that the engine loads), the data
augmentation's geometry, and the shipped weights on a shifted and scaled drawing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from facesketch.models.config import LandmarkConfig
from facesketch.models.landmarks import LandmarkNet, inter_ocular, nme, soft_argmax
from train import landmarks as tl

TINY_NET = [
    "--set",
    'task.net={"input_size": 64, "base": 4, "max_ch": 8, "n_context": 1, "head_ch": 8}',
]
COMMON = [
    "--synthetic",
    "--no-progress",
    "--set",
    "train.batch=2",
    "--set",
    "data.synthetic_count=4",
    "--set",
    "train.val_images=3",
    *TINY_NET,
]


def test_output_is_68_points_in_input_pixels() -> None:
    net = LandmarkNet(LandmarkConfig(input_size=64, base=4, max_ch=8, head_ch=8)).eval()
    out = net(torch.rand(2, 1, 64, 64) * 2 - 1)
    assert out.shape == (2, 68, 2)
    assert out.min() >= 0 and out.max() <= 63
    with pytest.raises(ValueError, match="multiple of 16"):
        net(torch.rand(1, 1, 60, 60))


def test_soft_argmax_finds_a_peak_at_its_pixel_centre() -> None:
    logits = torch.full((1, 1, 8, 8), -50.0)
    logits[0, 0, 5, 2] = 50.0  # cell (x=2, y=5) at stride 4 covers pixels 8..11, 20..23
    x, y = soft_argmax(logits, 4)[0, 0].tolist()
    assert (x, y) == pytest.approx((9.5, 21.5))


def test_nme_is_relative_to_the_eye_distance() -> None:
    pts = torch.from_numpy(tl.template_landmarks(256))[None]
    iod = float(inter_ocular(pts))
    assert float(nme(pts + torch.tensor([3.0, 4.0]), pts)) == pytest.approx(5.0 / iod)


def test_augmentation_moves_targets_with_the_drawing() -> None:
    pts = tl.template_landmarks(256)
    sketch = tl.draw_landmark_sketch(pts, 256)
    m = tl.similarity_matrix(256, 128, 0.6, 12.0, (20.0, -15.0))
    img = tl.warp_sketch(sketch, m, 128)
    moved = tl.apply_matrix(m, pts)
    # every moved point sits on (or within a pixel of) ink of the moved drawing
    ink = img < 200
    ys, xs = np.nonzero(ink)
    ink_pts = np.stack([xs, ys], 1)
    dist = np.linalg.norm(moved[:, None, :] - ink_pts[None], axis=-1).min(1)
    assert np.median(dist) < 1.0 and dist.max() < 2.0
    assert img[0, 0] == 255  # outside the drawing: paper


def test_training_runs_resumes_and_exports_loadable_weights(tmp_path: Path) -> None:
    from facesketch.engine.landmarks import LandmarkPredictor

    run = tmp_path / "lm"
    args = [*COMMON, "--run-dir", str(run)]
    assert tl.main([*args, "--max-steps", "2"]) == 0
    assert torch.load(run / "ckpt.pt", weights_only=False)["loop"]["step"] == 2
    assert tl.main([*args, "--max-steps", "4"]) == 0
    ckpt = torch.load(run / "ckpt.pt", weights_only=False)
    assert ckpt["loop"]["step"] == 4  # resumed, not restarted
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["kind"] == "train"][0] == 1
    assert any(r["kind"] == "val" and float(r["val_nme"]) > 0 for r in rows)
    pred = LandmarkPredictor("cpu", weights=str(run / "export" / "landmarks.safetensors"))
    pts = pred.predict(np.full((300, 200), 255, np.uint8))
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    assert pts[:, 0].max() < 200 + 50  # in the (non-square) input's own pixels


def test_a_fine_tune_starts_from_the_exported_landmarks(tmp_path: Path) -> None:
    """``--init`` on a weights folder finds the net under the stem it ships as
    (``landmarks.safetensors``, not the task's own name ``net``)."""
    run = tmp_path / "lm"
    assert tl.main([*COMMON, "--run-dir", str(run), "--max-steps", "2"]) == 0
    export = run / "export"
    ft = tmp_path / "ft"
    assert tl.main([*COMMON, "--run-dir", str(ft), "--init", str(export), "--max-steps", "2"]) == 0
    log = (ft / "log.csv").read_text()
    assert "step" in log
    first = torch.load(run / "ckpt.pt", weights_only=False)["nets"]["net"]
    tuned = torch.load(ft / "ckpt.pt", weights_only=False)["nets"]["net"]
    # two steps from the export stay near it; a fresh start would be far away
    key = next(k for k, v in first.items() if v.is_floating_point() and v.ndim == 4)
    assert (tuned[key].float() - first[key].float()).abs().mean() < 0.02


def test_a_few_steps_on_template_faces_reduce_the_error(tmp_path: Path) -> None:
    run = tmp_path / "learn"
    args = [
        *COMMON,
        "--run-dir",
        str(run),
        "--set",
        "task.similarity_share=0.0",
        "--set",
        "task.rough_share=0.0",
        "--set",
        "train.lr=0.003",
        "--set",
        "train.val_every=30",
        "--max-steps",
        "60",
    ]
    assert tl.main(args) == 0
    with (run / "log.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f) if r["kind"] == "train"]
    assert losses[-1] < 0.6 * losses[0]


SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "weights" / "landmarks.safetensors"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped landmark weights")
def test_shipped_network_follows_a_shifted_smaller_drawing() -> None:
    """The demo project's drawing, and the same drawing at 0.7x moved up-left: the
    predicted eyes move with it (what 'Fit windows' and 'Follow my drawing' rely on)."""
    from facesketch.engine.landmarks import LandmarkPredictor, fit_drawing
    from facesketch.resources import samples_dir
    from facesketch.sketch.project import load_project

    demo = samples_dir() / "demo.json"
    if not demo.is_file():
        pytest.skip("no demo project in resources/samples")
    doc = load_project(demo)
    pred = LandmarkPredictor("cpu")
    sketch = doc.rasterize(256)
    m = tl.similarity_matrix(256, 256, 0.7, 0.0, (-30.0, -20.0))
    small = tl.warp_sketch(sketch, m, 256)
    a, b = pred.predict(sketch), pred.predict(small)
    eyes = lambda p: np.stack([p[36:42].mean(0), p[42:48].mean(0)])  # noqa: E731
    want = tl.apply_matrix(m, eyes(a))
    iod = np.linalg.norm(eyes(a)[0] - eyes(a)[1])
    assert np.linalg.norm(eyes(b) - want, axis=1).max() < 0.15 * iod
    fa, fb = fit_drawing(a, doc.layout.scaled(256)), fit_drawing(b, doc.layout.scaled(256))
    assert fa is not None and fb is not None
    assert fb.scale == pytest.approx(fa.scale / 0.7, rel=0.12)
