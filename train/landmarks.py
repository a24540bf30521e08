"""Train the sketch landmark network (facesketch.models.landmarks.LandmarkNet).

Targets are the dlib landmarks of the prepared photos (``train.landmarks_data``);
inputs are their clean sketches, a share ``rough_share`` redrawn by the rough-sketch
synthesis (strength ~ U(strength_min, strength_max)) and a share ``similarity_share``
moved by a random similarity (scale log-uniform in [scale_min, scale_max], rotation
+-``rotate_deg``, a shift that lets the face sit off-centre; the targets move the
same way), all resized to the network's input side.  Loss: L1 of the points over the
inter-ocular distance (NME).  Rough drawings are costly on one core, so each photo
keeps up to ``rough_cache`` roughened copies, re-drawn with chance ``rough_refresh``.

Known limit: the rough synthesis also misplaces features by up to 4 px (x strength)
at 256 and its displacement is not returned, so rough inputs carry that label noise.

    python -m train.landmarks --data /work/cache/prepared      # defaults: 1-core CPU
    python -m train.landmarks --synthetic --max-steps 20         # drawn template faces
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facesketch.imaging import sketch_to_tensor, tensor_to_image
from facesketch.layout import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE, FaceLayout
from facesketch.models.config import LandmarkConfig
from facesketch.models.landmarks import LandmarkNet, inter_ocular, nme
from train import loop

#: Roughening seeds of training are below this; evaluation seeds start here (as train.scn).
EVAL_SEED_BASE = 2**30
#: Side the prepared sketches and their landmarks live at.
SOURCE_SIZE = 256
#: Strokes of the 68 points drawn for synthetic faces: (first, last, closed).
STROKES = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False))
STROKES += ((36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


# -- geometry ---------------------------------------------------------------------------
def similarity_matrix(
    size_in: int, size_out: int, scale: float, angle_deg: float, shift: tuple[float, float]
) -> np.ndarray:
    """2x3 matrix (integer pixel centres): resize ``size_in`` -> ``size_out``, then scale
    and rotate about the output centre and shift by ``shift`` output pixels."""
    f = size_out / size_in
    base = np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])
    c = (size_out - 1) / 2.0
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    sim = np.eye(3)
    sim[:2, :2] = r
    sim[:2, 2] = np.array([c, c]) - r @ np.array([c, c]) + np.asarray(shift, np.float64)
    return (sim @ base)[:2]


def warp_sketch(sketch: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp a uint8 sketch by ``matrix`` onto a ``size`` square of white paper, shrinking
    with an area filter first when the scale is small (thin lines would alias away)."""
    m = np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]])
    scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
    src = sketch
    if scale < 0.8:
        h, w = sketch.shape[:2]
        f = min(1.0, scale / 0.8)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        src = cv2.resize(sketch, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        m = m @ np.linalg.inv(pre)
    return cv2.warpAffine(src, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderValue=255)


def apply_matrix(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(K, 2) points through a 2x3 matrix, float32."""
    pts = np.asarray(pts, np.float64)
    return (pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]).astype(np.float32)


def random_similarity(rng: np.random.Generator, t: dict, size_in: int, size_out: int) -> np.ndarray:
    """A random similarity of the task config ``t`` (see the module docstring)."""
    lo, hi = float(t.get("scale_min", 0.55)), float(t.get("scale_max", 1.25))
    scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    angle = float(rng.uniform(-1, 1)) * float(t.get("rotate_deg", 15.0))
    # room around a face of this scale: ~0.2 of the side at scale 1, more when small
    room = size_out * max(0.05, 0.5 - 0.3 * scale)
    shift = (float(rng.uniform(-room, room)), float(rng.uniform(-room, room)))
    return similarity_matrix(size_in, size_out, scale, angle, shift)


# -- synthetic faces ------------------------------------------------------------------
def template_landmarks(size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """68 points of a schematic face on the layout of a ``size`` canvas (randomised
    proportions with ``rng``): the synthetic data of smoke runs and tests."""
    lay = FaceLayout.default(size)
    j = (lambda s: 1.0 + s * rng.uniform(-1, 1)) if rng is not None else (lambda s: 1.0)
    (lx, ly), (rx, ry) = lay.window(LEFT_EYE).center, lay.window(RIGHT_EYE).center
    iod = rx - lx
    pts = np.zeros((68, 2))
    for k, (cx, cy) in enumerate(((lx, ly), (rx, ry))):
        a, b = 0.2 * iod * j(0.15), 0.07 * iod * j(0.3)
        ang = np.radians([180, 120, 60, 0, -60, -120])
        pts[36 + 6 * k : 42 + 6 * k] = np.stack([cx + a * np.cos(ang), cy - b * np.sin(ang)], 1)
        t = np.linspace(-1, 1, 5)
        lift = 0.3 * iod * j(0.2)
        pts[17 + 5 * k : 22 + 5 * k] = np.stack(
            [cx + 0.3 * iod * t, cy - lift - 0.06 * iod * (1 - t * t)], 1
        )
    mx = (lx + rx) / 2
    nx, ny = lay.window(NOSE).center
    ny *= j(0.03)
    pts[27:31] = np.stack([np.full(4, mx), np.linspace(ly, ny + 0.1 * iod, 4)], 1)
    t = np.linspace(-1, 1, 5)
    pts[31:36] = np.stack([mx + 0.2 * iod * t * j(0.2), ny + 0.18 * iod - 0.04 * iod * t * t], 1)
    _, my = lay.window(MOUTH).center
    my *= j(0.03)
    w, h = 0.42 * iod * j(0.2), 0.12 * iod * j(0.4)
    ang = np.radians(np.linspace(180, -150, 12))
    pts[48:60] = np.stack([mx + w * np.cos(ang), my - h * np.sin(ang)], 1)
    ang = np.radians([180, 135, 90, 45, 0, -45, -90, -135])
    pts[60:68] = np.stack([mx + 0.8 * w * np.cos(ang), my - 0.3 * h * np.sin(ang)], 1)
    ang = np.radians(np.linspace(180, 360, 17))
    jw, jh = 1.05 * iod * j(0.1), 2.1 * iod * j(0.1)
    pts[0:17] = np.stack([mx + jw * np.cos(ang), ly - jh * np.sin(ang) * 0.85 - 0.1 * iod], 1)
    return pts.astype(np.float32)


def draw_landmark_sketch(pts: np.ndarray, size: int, thickness: int = 1) -> np.ndarray:
    """A line drawing (uint8, white paper) through the 68 points' strokes."""
    img = np.full((size, size), 255, np.uint8)
    shift = 4  # sub-pixel precision of cv2 drawing
    for a, b, closed in STROKES:
        line = np.round(pts[a : b + 1] * (1 << shift)).astype(np.int32)
        cv2.polylines(img, [line], closed, 0, thickness, cv2.LINE_AA, shift)
    return img


class SyntheticLandmarkFaces:
    """Schematic drawn faces with exact landmarks (a stand-in for the prepared data)."""

    def __init__(self, count: int, size: int = SOURCE_SIZE, seed: int = 0) -> None:
        self.items = []
        for i in range(count):
            pts = template_landmarks(size, np.random.default_rng([seed, i]))
            self.items.append((draw_landmark_sketch(pts, size), pts))

    def __len__(self) -> int:
        return len(self.items)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.items[i]


class PreparedLandmarkFaces:
    """Clean 256 sketches of one split of the prepared data with their dlib landmarks."""

    def __init__(self, root: str, split: str) -> None:
        from facesketch.imaging import read_sketch
        from train.data import item_paths, load_index
        from train.landmarks_data import load_landmarks

        index = load_index(root)
        marks = load_landmarks(root)
        ids = sorted(
            i
            for i, it in index["items_by_id"].items()
            if it.get("split") == split and i in marks and not it.get("degraded")
        )
        if not ids:
            raise ValueError(f"{root}: no {split} items with landmarks")
        self.ids, self.marks, self.root = ids, marks, root
        self._read, self._paths = read_sketch, item_paths

    def __len__(self) -> int:
        return len(self.ids)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        item_id = self.ids[i]
        return self._read(self._paths(self.root, item_id)["sketch256"]), self.marks[item_id]


class LandmarkSamples(Dataset):
    """Network inputs and targets from (sketch, landmarks) pairs (``base.pair(i)``).

    ``mode`` None: random augmentation (training); ``"clean"``, ``"rough"`` (strength
    ``val_strength``, seed EVAL_SEED_BASE + i) or ``"similarity"`` (seeded): fixed
    evaluation inputs; ``"mixed"`` cycles through the three (the in-loop validation).
    """

    def __init__(self, base, t: dict, size: int, mode: str | None = None) -> None:
        from facesketch.sketch.rough import roughen_chains, sketch_chains

        self.base, self.t, self.size, self.mode = base, t, size, mode
        self._roughen, self._chains = roughen_chains, sketch_chains
        self._pool: dict[int, list[np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def _rough(self, i: int, sketch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pool = self._pool.setdefault(i, [])
        if pool and rng.random() > float(self.t.get("rough_refresh", 0.25)):
            return pool[int(rng.integers(len(pool)))]
        lo, hi = float(self.t.get("strength_min", 0.2)), float(self.t.get("strength_max", 1.0))
        seed = int(rng.integers(EVAL_SEED_BASE))
        rough = self._roughen(self._chains(sketch), sketch.shape, float(rng.uniform(lo, hi)), seed)
        if len(pool) < int(self.t.get("rough_cache", 2)):
            pool.append(rough)
        else:
            pool[int(rng.integers(len(pool)))] = rough
        return rough

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sketch, pts = self.base.pair(i)
        src = sketch.shape[0]
        mode = self.mode
        if mode == "mixed":
            mode = ("clean", "rough", "similarity")[i % 3]
        if mode is None:
            rng = np.random.default_rng(np.random.randint(2**31))
            if rng.random() < float(self.t.get("rough_share", 0.7)):
                sketch = self._rough(i, sketch, rng)
            if rng.random() < float(self.t.get("similarity_share", 0.75)):
                m = random_similarity(rng, self.t, src, self.size)
            else:
                m = similarity_matrix(src, self.size, 1.0, 0.0, (0.0, 0.0))
        else:
            rng = np.random.default_rng(EVAL_SEED_BASE + i)
            if mode == "rough":
                s = float(self.t.get("val_strength", 0.7))
                sketch = self._roughen(self._chains(sketch), sketch.shape, s, EVAL_SEED_BASE + i)
            if mode == "similarity":
                m = random_similarity(rng, self.t, src, self.size)
            else:
                m = similarity_matrix(src, self.size, 1.0, 0.0, (0.0, 0.0))
        img = warp_sketch(sketch, m, self.size)
        return {
            "sketch": sketch_to_tensor(img)[0],
            "landmarks": torch.from_numpy(apply_matrix(m, pts)),
        }


def draw_points(sketch: torch.Tensor, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, S, S) in [-1, 1]: the sketch with targets (green) and predictions (red)."""
    out = []
    for s, p, q in zip(sketch, pred, target, strict=True):
        img = cv2.cvtColor(tensor_to_image(s), cv2.COLOR_GRAY2RGB)
        for (x, y), colour in [(v, (0, 160, 0)) for v in q.tolist()] + [
            (v, (220, 0, 0)) for v in p.tolist()
        ]:
            cv2.circle(img, (round(x), round(y)), 1, colour, -1)
        out.append(torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


class LandmarkTask(loop.Task):
    """LandmarkNet regressed on NME (L1 of the points / inter-ocular distance)."""

    name = "landmarks"

    def __init__(self, cfg: dict, ctx: loop.RunContext) -> None:
        super().__init__(cfg, ctx)
        self.net_cfg = LandmarkConfig.from_dict(self.tcfg.get("net", {}))
        self.net = LandmarkNet(self.net_cfg).to(ctx.device)
        self.nets = {"net": self.net}
        self.optims = {"net": ctx.adam(self.net)}

    def datasets(self) -> tuple[Dataset, Dataset]:
        d, size = self.cfg["data"], self.net_cfg.input_size
        if d.get("synthetic"):
            n = int(d.get("synthetic_count", 16))
            train_base, val_base = SyntheticLandmarkFaces(n), SyntheticLandmarkFaces(n, seed=1)
        else:
            root = d.get("root") or str(loop.default_data_root())
            train_base = PreparedLandmarkFaces(root, "train")
            val_base = PreparedLandmarkFaces(root, "val")
        return (
            LandmarkSamples(train_base, self.tcfg, size),
            LandmarkSamples(val_base, self.tcfg, size, mode="mixed"),
        )

    def loss(self, sketch: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = self.net(sketch)
        iod = inter_ocular(target).clamp_min(1.0)[:, None, None]
        return (F.l1_loss(pred, target, reduction="none") / iod).sum(-1).mean()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        # cosine decay over lr_steps to lr_floor x lr (then flat): the run is time-boxed
        horizon, floor = (
            int(self.tcfg.get("lr_steps", 3000)),
            float(self.tcfg.get("lr_floor", 0.05)),
        )
        c = 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, horizon))))
        for g in self.optims["net"].param_groups:
            g["lr"] = float(self.cfg["train"]["lr"]) * (floor + (1 - floor) * c)
        with self.ctx.autocast():
            loss = self.forward("net", self.loss, batch["sketch"], batch["landmarks"])
        self.step(loss, "net")
        return {"loss": loss.item(), "lr": self.optims["net"].param_groups[0]["lr"]}

    def validate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], list[torch.Tensor]]:
        sketch, target = batch["sketch"], batch["landmarks"]
        pred = self.net(sketch)
        err = nme(pred, target)
        metrics = {"val_nme": err.mean().item()}
        for k, name in enumerate(("clean", "rough", "similarity")):
            if len(err) > k:
                metrics[f"val_nme_{name}"] = err[k::3].mean().item()
        return metrics, [draw_points(sketch.cpu(), pred.cpu(), target.cpu())]

    def exports(self) -> list[loop.Export]:
        return [loop.Export("landmarks", self.net, "landmarks", self.net_cfg.to_dict())]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = loop.build_parser("landmarks", __doc__.split("\n\n")[0])
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    loop.run(LandmarkTask, args, loop.config_from_args(args), "landmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
