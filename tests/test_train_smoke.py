"""Every training stage runs, checkpoints, resumes and exports loadable weights.

Tiny configs on tiny synthetic data: two steps, then a second invocation that must
resume from the checkpoint (the step count continues) and export weights that a
fresh module accepts through the weights registry.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from facesketch.layout import COMPONENTS
from facesketch.models import ComponentModel, GlobalFusion, StrokeCalibrator, Upsampler2x, preset
from train import fusion, local, loop, scn

TINY = preset("tiny")
COMMON = [
    "--synthetic",
    "--no-progress",
    "--set",
    "preset=tiny",
    "--set",
    "train.batch=2",
    "--set",
    "train.workers=0",
    "--set",
    "data.synthetic_count=4",
    "--set",
    "train.val_images=2",
    "--set",
    "task.perceptual=none",
]


def _run_twice(main: Callable[[list[str]], int], run_dir: Path, extra: list[str]) -> dict:
    """Two steps, then resume to four; returns the final checkpoint."""
    args = [*COMMON, "--run-dir", str(run_dir), *extra]
    assert main([*args, "--max-steps", "2"]) == 0
    first = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    assert first["loop"]["step"] == 2
    assert main([*args, "--max-steps", "4"]) == 0
    ckpt = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    assert ckpt["loop"]["step"] == 4  # resumed: continued from 2, did not start over
    with (run_dir / "log.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["kind"] == "train"]
    assert steps[0] == 1 and 3 in steps and steps == sorted(steps)
    assert list((run_dir / "val").glob("*.png"))
    # the trained weights changed from the first invocation
    name = next(iter(ckpt["optims"]))
    assert name in ckpt["nets"]
    return ckpt


def _logged(run_dir: Path, *columns: str) -> list[float]:
    """Every value logged in ``columns`` of a run's log.csv (empty cells left out)."""
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    return [float(r[c]) for r in rows for c in columns if r.get(c)]


def _check_export(path: Path, module: nn.Module, network: str, trained: dict) -> None:
    from facesketch.engine.weights import load_into, read_manifest

    manifest = read_manifest(path)
    assert manifest["network"] == network and manifest["steps"] == 4
    load_into(module, path, network, module.manifest_config())
    for k, v in module.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v.float(), trained[k].float(), atol=1e-2, rtol=1e-2), k


def _check_local_exports(run: Path, ckpt: dict) -> None:
    for c in COMPONENTS:
        _check_export(
            run / "export" / f"local_{c}.safetensors",
            ComponentModel(TINY.local, c),
            f"local/{c}",
            ckpt["nets"][f"local.{c}"],
        )


def test_scn_stage(tmp_path: Path) -> None:
    ckpt = _run_twice(scn.main, tmp_path / "scn", [])
    _check_export(
        tmp_path / "scn" / "export" / "scn.safetensors",
        StrokeCalibrator(TINY.scn),
        "scn",
        ckpt["nets"]["G"],
    )


def test_local_stages_and_fusion(tmp_path: Path) -> None:
    prev = None
    for stage in (1, 2, 3):
        run = tmp_path / f"local{stage}"
        extra = ["--stage", str(stage)] + (["--init", str(prev)] if prev else [])
        ckpt = _run_twice(local.main, run, extra)
        prev = run
    _check_local_exports(prev, ckpt)
    ckpt = _run_twice(fusion.main, tmp_path / "fusion", ["--init", str(prev)])
    _check_export(
        tmp_path / "fusion" / "export" / "fusion.safetensors",
        GlobalFusion(TINY.fusion),
        "fusion",
        ckpt["nets"]["fusion"],
    )
    before = ckpt["nets"]["local.nose"]
    joint = tmp_path / "joint"
    ckpt = _run_twice(fusion.main, joint, ["--stage", "joint", "--init", str(tmp_path / "fusion")])
    # end to end: the local networks trained too, and are exported with the fusion
    after = ckpt["nets"]["local.nose"]
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("G_syn"))
    _check_local_exports(joint, ckpt)


def test_later_stage_needs_earlier_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--init"):
        local.main([*COMMON, "--run-dir", str(tmp_path / "l2"), "--stage", "2", "--init"])


def test_up_stage(tmp_path: Path) -> None:
    ckpt = _run_twice(fusion.main, tmp_path / "up", ["--stage", "up", "--set", "task.crop=32"])
    _check_export(
        tmp_path / "up" / "export" / "up.safetensors",
        Upsampler2x(TINY.up),
        "up",
        ckpt["nets"]["up"],
    )


def test_config_overrides() -> None:
    cfg = loop.apply_overrides(
        {"train": {"batch": 4}}, ["train.batch=8", "task.name=x", "a.b=[1,2]"]
    )
    assert cfg == {"train": {"batch": 8}, "task": {"name": "x"}, "a": {"b": [1, 2]}}
    with pytest.raises(ValueError, match="key=value"):
        loop.apply_overrides({}, ["oops"])
    with pytest.raises(ValueError, match="unknown keys"):
        loop.load_config(None, ["model.local.latnet_ch=3"])
    assert json.loads(json.dumps(loop.load_config(None, [])))["train"]["batch"] > 0


def test_init_widens_new_input_channels() -> None:
    from train.checkpoint import _load_widened

    old = GlobalFusion(replace(TINY.fusion, sketch_ch=0)).eval()
    new = GlobalFusion(TINY.fusion).eval()
    _load_widened(new, old.state_dict())
    feat = torch.randn(1, TINY.fusion.in_ch, 32, 32)
    with torch.no_grad():  # zero weights on the new sketch channel: the same output
        assert torch.allclose(old(feat), new(feat, torch.randn(1, 1, 32, 32)), atol=1e-6)
    with pytest.raises(RuntimeError):
        _load_widened(old, new.state_dict())  # narrowing is never silent


def _torchrun(module: str, run_dir: Path, extra: list[str]) -> None:
    """Two CPU processes (gloo) under torchrun, checkpointing (and so checking that the
    ranks' weights agree) after every step."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", module, *COMMON, "--run-dir", str(run_dir), "--max-steps", "2"]
    cmd += ["--set", "train.threads=1", "--set", "train.ckpt_every=1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ckpt = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    assert ckpt["loop"]["step"] == 2


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_torchrun_trains_with_ddp(tmp_path: Path) -> None:
    # the hardest cases for DDP: stage 3 (G_syn run three times, E_app twice, a frozen D
    # in G's loss) and the joint stage (fifteen local parts and the fusion in one loss)
    assert (
        local.main([*COMMON, "--run-dir", str(tmp_path / "l1"), "--stage", "1", "--max-steps", "1"])
        == 0
    )
    _torchrun("train.local", tmp_path / "l3", ["--stage", "3", "--init", str(tmp_path / "l1")])
    assert (
        fusion.main(
            [
                *COMMON,
                "--run-dir",
                str(tmp_path / "f"),
                "--init",
                str(tmp_path / "l3"),
                "--max-steps",
                "1",
            ]
        )
        == 0
    )
    _torchrun("train.fusion", tmp_path / "j", ["--stage", "joint", "--init", str(tmp_path / "f")])


def test_a_finished_torchrun_rank_leaves_with_its_status_without_finalizing(
    tmp_path: Path,
) -> None:
    """Gloo's threads abort a rank now and then while the interpreter finalizes, after
    the run is saved (the flake of test_torchrun_trains_with_ddp): a rank leaves at
    exit without finalizing, flushed, 0 after a normal end and 1 after an exception."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    late = tmp_path / "finalized.txt"
    body = (
        "import atexit, pathlib\n"
        f"atexit.register(pathlib.Path({str(late)!r}).write_text, 'x')\n"
        "from train.loop import _leave_without_finalizing\n"
        "_leave_without_finalizing()\n"
        "print('saved', end='')\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", body], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert (ok.returncode, ok.stdout) == (0, "saved") and not late.exists()
    bad = subprocess.run(
        [sys.executable, "-c", body + "raise RuntimeError('lost')\n"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert bad.returncode == 1 and "RuntimeError: lost" in bad.stderr and not late.exists()
    plain = subprocess.run(
        [sys.executable, "-c", body.replace("_leave_without_finalizing()", "pass")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert plain.returncode == 0 and late.exists()  # the check itself can fail


def _stop_vote(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from train.loop import RunContext, _any_rank

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    ctx = RunContext({"train": {"threads": 1, "amp": "off"}}, "cpu")
    votes = [_any_rank(rank == 1, ctx), _any_rank(False, ctx)]
    Path(out, f"{rank}.txt").write_text(json.dumps(votes))
    dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_a_stop_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    # SIGTERM or the time box may reach one rank a step before the others: they vote
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_stop_vote, args=(2, port, str(tmp_path)), nprocs=2, start_method="spawn")
    assert [json.loads((tmp_path / f"{r}.txt").read_text()) for r in (0, 1)] == [[True, False]] * 2


def _locals_and_fusion(tmp_path: Path) -> Path:
    """One step of each local stage and of the fusion (exports in ``local3/export`` and
    ``f/export``); returns the local stage 3 run."""
    prev = None
    for stage in (1, 2, 3):
        run = tmp_path / f"local{stage}"
        local.main(
            [*COMMON, "--run-dir", str(run), "--stage", str(stage), "--max-steps", "1"]
            + (["--init", str(prev)] if prev else [])
        )
        prev = run
    fusion.main(
        [*COMMON, "--run-dir", str(tmp_path / "f"), "--init", str(prev), "--max-steps", "1"]
    )
    return prev


def test_a_fine_tune_starts_from_exported_weights(tmp_path: Path) -> None:
    """``--init`` on a folder of exported weights (what ships in resources/weights):
    the nets start as exported, the fill loss and full-canvas repeat run, and it resumes."""
    from facesketch.engine.weights import load_into

    prev = _locals_and_fusion(tmp_path)
    shipped = tmp_path / "f" / "export"  # the fusion; the local nets in local3's export
    band = [
        "--init",
        str(prev / "export"),
        str(shipped),
        "--set",
        "task.w_fill=2",
        "--set",
        "task.full_canvas_repeat=3",
        "--set",
        "train.warmup_steps=8",
    ]
    ckpt = _run_twice(fusion.main, tmp_path / "band", band)
    assert "fill" in (tmp_path / "band" / "log.csv").read_text().splitlines()[0]
    first = torch.load(tmp_path / "band" / "ckpt.pt", map_location="cpu", weights_only=False)
    assert first["loop"]["step"] == 4
    # the lr ramp went on across the resume: the 4th step ran at 4/8 of the run's lr
    group = first["optims"]["fusion"]["param_groups"][0]
    assert group["initial_lr"] == pytest.approx(2e-4)
    assert group["lr"] == pytest.approx(2e-4 * 4 / 8)
    # step 0 of the fine-tune is the exported fusion: retrace it with no steps
    net = GlobalFusion(TINY.fusion)
    load_into(net, shipped / "fusion.safetensors", "fusion", net.manifest_config())
    from train.checkpoint import load_init

    class _T:
        nets = {
            "fusion": GlobalFusion(TINY.fusion),
            "local.nose": ComponentModel(TINY.local, "nose"),
        }

    loaded = load_init(_T(), [prev / "export", shipped])  # type: ignore[arg-type]
    assert sorted(s.split(" <- ")[0] for s in loaded) == ["fusion", "local.nose"]
    for k, v in _T.nets["fusion"].state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k
    with pytest.raises(FileNotFoundError, match="none of"):

        class _U:
            nets = {"other": nn.Linear(1, 1)}

        load_init(_U(), [shipped])  # type: ignore[arg-type]
    assert ckpt["loop"]["step"] == 4


def test_the_lr_warm_up_keeps_a_fresh_adam_from_kicking_trained_weights() -> None:
    """A fresh Adam moves every weight by about lr on its first step, however small its
    gradient; ``loop.warm_up`` makes that first move ``1/steps`` of it and reaches the
    full lr at ``steps``."""
    torch.manual_seed(0)

    def first_move(steps: int) -> float:
        w = nn.Parameter(torch.randn(64))
        start = w.detach().clone()
        opt = torch.optim.Adam([w], lr=1e-3, betas=(0.5, 0.999))
        loop.warm_up([opt], 0, steps)
        (1e-6 * w.sum()).backward()  # a tiny gradient: the weights are already right
        opt.step()
        return float((w.detach() - start).abs().mean())

    assert first_move(0) == pytest.approx(1e-3, rel=0.01)
    assert first_move(100) == pytest.approx(1e-5, rel=0.01)
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    for step, want in ((0, 1e-4), (4, 5e-4), (9, 1e-3), (50, 1e-3)):
        loop.warm_up([opt], step, 10)
        assert opt.param_groups[0]["lr"] == pytest.approx(want)


def test_a_resize_fusion_starts_from_an_exported_transposed_one(tmp_path: Path) -> None:
    """``--set model.fusion.decoder=resize --init <weights>``: the transposed fusion
    that ships warm-starts the mesh-free one (facesketch.models.fusion.init_from_transposed)."""
    from facesketch.engine.weights import load_into
    from facesketch.models.fusion import init_from_transposed

    prev = _locals_and_fusion(tmp_path)
    old = GlobalFusion(TINY.fusion)
    load_into(
        old, tmp_path / "f" / "export" / "fusion.safetensors", "fusion", old.manifest_config()
    )
    args = ["--set", "model.fusion.decoder=resize", "--init", str(prev / "export")]
    args += [str(tmp_path / "f" / "export"), "--set", "train.lr=0"]  # lr 0: stays the init
    ckpt = _run_twice(fusion.main, tmp_path / "resize", args)
    cfg = replace(TINY.fusion, decoder="resize")
    want = init_from_transposed(
        GlobalFusion(cfg), {k: v.float() for k, v in old.state_dict().items()}
    )
    got = ckpt["nets"]["fusion"]
    assert any(".1.1.weight" in k for k in got)  # resize blocks: nearest + conv
    for k, v in want.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(got[k].float(), v, atol=1e-3), k
    manifest = json.loads((tmp_path / "resize" / "export" / "fusion.json").read_text())
    assert manifest["config"]["decoder"] == "resize"


def test_the_mesh_loss_trains_a_resize_fusion_and_is_logged(tmp_path: Path) -> None:
    """``task.w_mesh`` (train/configs/fusion_resize_mesh.json): the loss on the output's
    up-sampling-grid component runs, and train and validation log the mesh."""
    prev = _locals_and_fusion(tmp_path)
    args = ["--set", "model.fusion.decoder=resize", "--init", str(prev / "export")]
    args += [str(tmp_path / "f" / "export"), "--set", "task.w_mesh=50"]
    args += ["--set", "task.mesh_match_photo=true"]  # against the photo's own component
    _run_twice(fusion.main, tmp_path / "mesh", args)
    train, val = _logged(tmp_path / "mesh", "mesh"), _logged(tmp_path / "mesh", "val_mesh")
    assert train and val and all(math.isfinite(v) and v > 0 for v in train + val)


def test_a_resize_fusion_distils_from_its_teachers_shown_face(tmp_path: Path) -> None:
    """``task.teacher`` / ``w_teach`` (train/configs/fusion_resize_teach.json): the
    transposed fusion is loaded frozen, as exported, and the student is pulled towards
    what the app shows of it (its notch applied); train and validation log the gap."""
    from facesketch.engine.weights import WeightsError, load_into

    prev = _locals_and_fusion(tmp_path)
    shipped = tmp_path / "f" / "export"
    teacher = fusion.load_teacher(shipped, torch.device("cpu"))
    assert teacher is not None and not any(p.requires_grad for p in teacher.parameters())
    exported = GlobalFusion(TINY.fusion)
    load_into(exported, shipped / "fusion.safetensors", "fusion")
    for k, v in exported.state_dict().items():
        assert torch.equal(v, teacher.state_dict()[k]), k
    with pytest.raises(WeightsError, match="not 'fusion'"):
        fusion.load_teacher(prev / "export" / "local_mouth.safetensors", torch.device("cpu"))
    assert fusion.load_teacher(None, torch.device("cpu")) is None

    args = ["--set", "model.fusion.decoder=resize", "--init", str(prev / "export")]
    args += [str(shipped), "--set", f"task.teacher={shipped}", "--set", "task.w_teach=20"]
    # as train/configs/fusion_resize_input.json: maps notched, not on the head's skip,
    # the teacher's detail weighed on its own
    args += ["--set", "model.fusion.input_notch=true", "--set", "model.fusion.head_maps=false"]
    args += ["--set", "task.w_teach_detail=100"]
    _run_twice(fusion.main, tmp_path / "teach", args)
    train, val = _logged(tmp_path / "teach", "teach"), _logged(tmp_path / "teach", "val_teach")
    assert train and val and all(math.isfinite(v) and v > 0 for v in train + val)
    detail = _logged(tmp_path / "teach", "teach_detail")
    assert detail and all(math.isfinite(v) and v > 0 for v in detail)
    manifest = json.loads((tmp_path / "teach" / "export" / "fusion.json").read_text())
    conf = manifest["config"]
    assert conf["input_notch"] is True and conf["head_maps"] is False
    assert conf["decoder"] == "resize"


def test_the_teacher_is_not_followed_in_its_band_rows(tmp_path: Path) -> None:
    """``task.teach_skip_rows``: the shipped fusion's band of coloured noise lies in its
    top rows, so there the student is not pulled towards it; the rows are counted on the
    256 canvas, and a random crop (whose top is not the canvas's) is refused with a
    reason.  Then a run as train/configs/fusion_clean.json's continuations (mesh loss
    against the photo at a 4-px reach, colour-speckle loss) trains, resumes and logs."""
    from types import SimpleNamespace

    mask = torch.ones(1, 1, 128, 128)
    task = SimpleNamespace(tcfg={"teach_skip_rows": 32})
    kept = fusion.FusionTask.teach_mask(task, mask)  # type: ignore[arg-type]
    assert kept[..., :16, :].sum() == 0 and bool((kept[..., 16:, :] == 1).all())
    assert mask.sum() == 128 * 128  # the photo's mask itself is left alone
    none = SimpleNamespace(tcfg={})
    assert fusion.FusionTask.teach_mask(none, mask) is mask  # type: ignore[arg-type]

    prev = _locals_and_fusion(tmp_path)
    shipped = tmp_path / "f" / "export"
    args = ["--init", str(prev / "export"), str(shipped), "--set", f"task.teacher={shipped}"]
    args += ["--set", "task.w_teach=30", "--set", "task.teach_skip_rows=32"]
    args += ["--set", "task.w_mesh=1000", "--set", "task.mesh_match_photo=true"]
    args += ["--set", "task.mesh_sigma=4", "--set", "task.w_chroma=300"]
    with pytest.raises(ValueError, match="teach_skip_rows.*crop 0"):
        fusion.main([*COMMON, "--run-dir", str(tmp_path / "crop"), *args, "--max-steps", "1"])
    # the transposed fusion cleaned against its own shown face (fusion_clean.json), also
    # on other faces' looks (w_teach_swap)
    args += ["--set", "task.crop=0", "--set", "task.w_teach_swap=100"]
    _run_twice(fusion.main, tmp_path / "clean", args)
    val, chroma = _logged(tmp_path / "clean", "val_teach"), _logged(tmp_path / "clean", "chroma")
    swap = _logged(tmp_path / "clean", "teach_swap")
    assert val and chroma and swap and all(math.isfinite(v) and v > 0 for v in val + chroma + swap)
    # pure distillation (no D, no photo losses but the mesh and colour-speckle terms)
    pure = ["--set", "task.w_adv=0", "--set", "task.w_fm=0", "--set", "task.w_perc=0"]
    pure += ["--set", "task.w_l1=0", "--set", "task.teach_band_sigma=3"]
    pure += ["--set", "task.w_border=100", "--set", "task.border_rows=24"]
    pure += ["--set", "task.w_teach_perc=2", "--set", "task.perceptual=hed"]
    pure += ["--set", 'task.perceptual_layers=["relu1_2"]']
    _run_twice(fusion.main, tmp_path / "pure", [*args, *pure])
    d, band = _logged(tmp_path / "pure", "d"), _logged(tmp_path / "pure", "teach")
    assert d and set(d) == {0.0} and band and all(math.isfinite(v) and v > 0 for v in band)
    border, val_border, tperc = (
        _logged(tmp_path / "pure", k) for k in ("border", "val_border", "teach_perc")
    )
    logged = border + val_border + tperc
    assert border and val_border and tperc and all(math.isfinite(v) and v > 0 for v in logged)
    at = args.index(f"task.teacher={shipped}")
    no_teacher = args[: at - 1] + args[at + 1 :]
    with pytest.raises(ValueError, match="w_teach_swap needs task.teacher"):
        fusion.main([*COMMON, "--run-dir", str(tmp_path / "x"), *no_teacher, "--max-steps", "1"])


def test_in_the_band_rows_only_the_teachers_colour_is_followed_not_its_speckle() -> None:
    """``task.teach_band_sigma``: a student trained without photo losses still gets the
    teacher's colour in the skipped top rows, but not its fine speckle (the band);
    ``task.teach_sigma``: elsewhere, too, only what lies below the fine texture."""
    from types import SimpleNamespace

    def task(**tcfg: float) -> SimpleNamespace:
        t = SimpleNamespace(tcfg=tcfg)
        t.teach_mask = lambda m: fusion.FusionTask.teach_mask(t, m)  # type: ignore[arg-type]
        return t

    torch.manual_seed(0)
    shown = torch.rand(1, 3, 128, 128) * 0.2
    mask = torch.ones(1, 1, 128, 128)
    speckle, tint = shown.clone(), shown.clone()
    speckle[..., :16, :] += torch.randn(1, 3, 16, 128) * 0.3  # the band: fine noise
    tint[..., :16, :] += 0.3  # a wrong colour in the same rows
    band = task(teach_skip_rows=32, teach_band_sigma=3)

    def loss(t: SimpleNamespace, out: torch.Tensor) -> float:
        return float(fusion.FusionTask.teach_loss(t, out, shown, mask))  # type: ignore[arg-type]

    assert loss(band, tint) > 0.25 and loss(band, speckle) < 0.05
    assert loss(task(teach_skip_rows=32), tint) == 0.0  # off: those rows are not followed
    assert loss(task(teach_band_sigma=3), tint) == pytest.approx(0.3 * 16 / 128, rel=1e-3)
    # teach_sigma: below the band rows too, only the teacher's low frequencies count
    fine = shown + torch.randn_like(shown) * 0.3
    assert loss(task(), fine) > 0.2 and loss(task(teach_sigma=1.5), fine) < 0.08
    assert loss(task(teach_sigma=1.5), shown + 0.3) == pytest.approx(0.3, rel=1e-3)
    # teach_band_full: where the photo did not reach the top rows, the band term still
    # holds their colour to the teacher's (without it nothing there is followed)
    mask[..., :24, :] = 0
    assert loss(band, tint) == 0.0
    full = task(teach_skip_rows=32, teach_band_sigma=3, teach_band_full=True)
    assert loss(full, tint) > 0.25 and loss(full, speckle) < 0.05


def test_the_swapped_look_of_a_sketch_blends_two_other_faces_of_the_batch() -> None:
    """``FusionTask.swapped_features``: each sketch gets a convex blend of the next two
    photos' appearance codes (the app's default look blends gallery faces), never its own."""
    import contextlib
    from types import SimpleNamespace

    class Model:
        def codes(self, photo: torch.Tensor, layout: object) -> dict[str, torch.Tensor]:
            return {"eyes": photo.flatten(1)[:, :2], "mouth": photo.flatten(1)[:, :1]}

        def features(self, sketch, codes, layout):  # type: ignore[no-untyped-def]
            return torch.cat([codes["eyes"], codes["mouth"]], 1)[:, :, None, None], None

    photos = torch.arange(5.0)[:, None, None, None].expand(5, 3, 4, 4).contiguous()
    task = SimpleNamespace(
        model=Model(), layout=None, ctx=SimpleNamespace(autocast=contextlib.nullcontext)
    )
    batch = {"image": photos, "sketch": torch.zeros(5, 1, 4, 4)}
    torch.manual_seed(0)
    out = fusion.FusionTask.swapped_features(task, batch)[:, :, 0, 0]  # type: ignore[arg-type]
    for i in range(5):
        lo, hi = sorted(((i - 1) % 5, (i - 2) % 5))
        assert bool(((out[i] >= lo) & (out[i] <= hi)).all()), (i, out[i])
        assert bool((out[i] != i).all())
    assert len({round(float(v), 4) for v in out.flatten()}) > 5  # blends differ per part


def test_fill_loss_only_counts_pixels_the_photo_did_not_reach() -> None:
    img = torch.zeros(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., :2, :] = 0
    out = img.clone()
    out[..., 2:, :] = 5.0  # wrong where the photo is valid: not the fill loss's business
    assert fusion.fill_loss(out, img, mask).item() == 0.0
    out[..., :2, :] = 1.0
    assert fusion.fill_loss(out, img, mask).item() == pytest.approx(1.0)


class _DiesInWorker(torch.utils.data.Dataset):
    """Its data worker is killed (as by a ``pkill -f`` meant for the run) at item 3."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        if i == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        return torch.zeros(1)


def test_a_data_worker_killed_by_a_signal_is_told_from_other_errors() -> None:
    from train.loop import worker_died

    loader = torch.utils.data.DataLoader(_DiesInWorker(), batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError) as caught:
        for _ in loader:
            pass
    assert worker_died(caught.value)  # the loop stops, checkpoints and exports
    assert not worker_died(RuntimeError("CUDA out of memory"))
