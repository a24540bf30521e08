"""The reference fusion (real pixels): config versions, no transposed convs, the reference
path through the face model and the engine, and its training script (resumes, exports)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from facesketch.models import preset
from facesketch.models.config import FusionConfig
from facesketch.models.fusion import GlobalFusion

TINY = preset("tiny")
REF = dataclasses.replace(TINY.fusion, decoder="resize", ref_ch=4)
#: the config of a version-1 manifest (the fusion shipped until session 20), kept here
#: because the shipped file has moved on to the resize decoder
V1_CONFIG = {
    "base": 16,
    "d_base": 32,
    "d_layers": 3,
    "d_scales": 2,
    "in_ch": 16,
    "max_ch": 128,
    "n_down": 4,
    "n_res": 3,
    "sketch_ch": 1,
}


def test_version_1_manifests_load_as_the_transposed_conv_fusion():
    conf = dict(V1_CONFIG)
    cfg = FusionConfig.from_dict(conf)
    assert cfg.decoder == "transpose" and cfg.ref_ch == 0
    assert cfg.to_dict() == conf  # a version-1 manifest still equals its config
    assert any(isinstance(m, nn.ConvTranspose2d) for m in GlobalFusion(cfg).modules())
    v2 = FusionConfig.from_dict(REF.to_dict())
    assert v2 == REF and v2.to_dict()["decoder"] == "resize"
    with pytest.raises(ValueError, match="decoder"):
        FusionConfig(decoder="pixelshuffle")


def test_reference_fusion_shapes_and_no_transposed_convs():
    net = GlobalFusion(REF).eval()
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    feat = torch.randn(2, REF.in_ch, 64, 64)
    sk = torch.rand(2, 1, 64, 64) * 2 - 1
    ref = torch.rand(2, 3, 64, 64) * 2 - 1
    valid = torch.ones(2, 1, 64, 64)
    out = net(feat, sk, ref, valid)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="reference"):
        net(feat, sk)
    # untrained it mostly copies the reference where it is valid, and never where it is not
    none = net(feat, sk, ref, torch.zeros_like(valid))
    assert (out - ref).abs().mean() < (none - ref).abs().mean()
    ref2 = torch.rand_like(ref) * 2 - 1
    assert torch.allclose(net(feat, sk, ref2, torch.zeros_like(valid)), none, atol=1e-6)


def test_resize_decoder_makes_no_mesh():
    """A constant input gives a flat output away from the borders: no period-2/4 pattern
    (the transposed-conv decoder's checkerboard needs the notch filter)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(REF, n_res=0)
    net = GlobalFusion(cfg).eval()
    feat = torch.full((1, cfg.in_ch, 64, 64), 0.3)
    sk = torch.ones(1, 1, 64, 64)
    out = net(feat, sk, torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))[..., 16:48, 16:48]
    assert out.std(dim=(-1, -2)).max() < 1e-4


def _skip_faces(cfg: FusionConfig, feat: torch.Tensor, line: torch.Tensor):
    """A fusion whose face is only the head skip's map 0 (+ half the sketch): the face
    with a blank sketch, and what the 1-px sketch ``line`` adds to it."""
    net = GlobalFusion(cfg).eval()
    head = net.head[1]  # the conv (then tanh)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        body_ch = head.weight.shape[1] - cfg.in_ch - 1
        head.weight[:, body_ch, 1, 1] = 1.0
        head.weight[:, body_ch + cfg.in_ch, 1, 1] = 0.5
        face = net(feat, torch.zeros_like(line))
        return face, net(feat, line) - face


def _assert_keeps_shape_and_line(face: torch.Tensor, line: torch.Tensor, smooth: torch.Tensor):
    """The map's smooth content reached the face, and the 1-px sketch line at column 32
    stayed 1 px wide (nothing beside it)."""
    inner = (slice(16, 48), slice(16, 48))
    assert (face[0, 0][inner] - torch.tanh(smooth)[inner]).abs().max() < 0.03
    column = line[0, 0, 20:44]
    assert column[:, 32].min() > 0.3 and column[:, 30].abs().max() < 1e-6


def test_input_notch_keeps_the_grid_of_the_pasted_maps_out_of_the_face():
    """The component generators' transposed convs leave a period-4 grid in the pasted maps;
    a resize decoder makes none, but the head's full-resolution skip copied it straight
    to the face (session 18).  With ``input_notch`` the fusion sees the maps without it,
    and their smooth content still gets through; the sketch channel is untouched."""
    from facesketch.models.filters import mesh_level

    torch.manual_seed(0)
    base = dataclasses.replace(TINY.fusion, decoder="resize", sketch_ch=1)
    side = 64
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    smooth = 0.4 * torch.sin(xx / 9.0) * torch.cos(yy / 13.0)
    grid = 0.3 * ((xx % 4 < 2).float() - 0.5) * ((yy % 4 < 2).float() * 2 - 1)
    feat = torch.zeros(1, base.in_ch, side, side)
    feat[0, 0] = smooth + grid
    line = torch.zeros(1, 1, side, side)
    line[0, 0, :, 32] = 1.0  # a 1-px sketch line the skip must keep sharp
    faces, lines = {}, {}
    for notch in (False, True):
        cfg = dataclasses.replace(base, input_notch=notch)
        faces[notch], lines[notch] = _skip_faces(cfg, feat, line)
    assert mesh_level(faces[False], sigma=4.0) > 10 * mesh_level(faces[True], sigma=4.0)
    assert mesh_level(faces[True], sigma=4.0) < 1.0  # grey levels: invisible
    _assert_keeps_shape_and_line(faces[True], lines[True], smooth)
    cfg = dataclasses.replace(base, input_notch=True)
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg
    assert "input_notch" not in base.to_dict()  # manifests written before it still match


def test_blurred_head_maps_keep_the_notch_residue_off_the_face_but_not_the_maps():
    """``head_maps_blur``: the maps on the head's skip pass a [1, 2, 1] blur, so the
    2-px residue the notch leaves (a dotted nose at 200 %, session 18) does not reach
    the face, while a map's smooth content and the sketch's 1-px line still do."""
    from facesketch.models.filters import mesh_level

    base = dataclasses.replace(TINY.fusion, decoder="resize", sketch_ch=1)
    side = 64
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    smooth = 0.4 * torch.sin(xx / 9.0) * torch.cos(yy / 13.0)
    dots = 0.2 * ((xx + yy) % 2 * 2 - 1).float()  # period 2, as the notch's residue
    feat = torch.zeros(1, base.in_ch, side, side)
    feat[0, 0] = smooth + dots
    line = torch.zeros(1, 1, side, side)
    line[0, 0, :, 32] = 1.0
    faces, lines = {}, {}
    for blur in (False, True):
        cfg = dataclasses.replace(base, head_maps_blur=blur)
        faces[blur], lines[blur] = _skip_faces(cfg, feat, line)
    assert mesh_level(faces[False], 2, 4.0) > 10 * mesh_level(faces[True], 2, 4.0)
    _assert_keeps_shape_and_line(faces[True], lines[True], smooth)
    cfg = dataclasses.replace(base, head_maps_blur=True)
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg
    assert "head_maps_blur" not in base.to_dict()  # manifests written before it still match
    with pytest.raises(ValueError, match="head_maps_blur"):
        dataclasses.replace(cfg, head_maps=False)


def test_a_head_without_the_maps_starts_from_one_with_them_and_passes_no_grid():
    """``head_maps`` False: the head's skip repeats only the sketch, so what grid the
    notch leaves in the pasted maps cannot reach the face but through the encoder's
    down-sampling.  :func:`drop_head_maps` starts it from a fusion whose head read the
    maps: with no maps drawn the two faces are the same."""
    from facesketch.models.filters import mesh_level
    from facesketch.models.fusion import drop_head_maps

    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY.fusion, decoder="resize", sketch_ch=1)
    old = GlobalFusion(cfg).eval()
    new = GlobalFusion(dataclasses.replace(cfg, head_maps=False)).eval()
    assert new.head[1].weight.shape[1] == old.head[1].weight.shape[1] - cfg.in_ch
    state = old.state_dict()
    new.load_state_dict(drop_head_maps(new, state))
    assert drop_head_maps(old, state) is state  # a head that already fits is left alone
    sketch = (torch.rand(1, 1, 64, 64) > 0.97).float()
    none = torch.zeros(1, cfg.in_ch, 64, 64)
    with torch.no_grad():
        assert torch.allclose(old(none, sketch), new(none, sketch), atol=1e-6)
        yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        grid = ((xx % 4 < 2).float() - 0.5) * ((yy % 4 < 2).float() * 2 - 1)
        maps = grid.expand(1, cfg.in_ch, 64, 64).clone()
        flat = torch.zeros(1, 1, 64, 64)
        assert mesh_level(old(maps, flat), sigma=4.0) > 4 * mesh_level(new(maps, flat), sigma=4.0)


@pytest.mark.parametrize("side", [(12, 12), (9, 14)])
def test_phase_split_resize_up_equals_nearest_then_conv(side):
    """The sub-pixel form computes exactly nearest 2x + reflection-padded 3x3 conv,
    forward and backward, borders included (same parameters, so old weights load)."""
    from facesketch.models.blocks import ResizeUp, resize_up_block

    torch.manual_seed(0)
    block = resize_up_block(6, 5)
    assert isinstance(block, ResizeUp) and "1.1.weight" in block.state_dict()
    with torch.no_grad():
        block[1][2].weight.uniform_(0.5, 1.5)
        block[1][1].bias.normal_()
    x = torch.randn(2, 6, *side, requires_grad=True)
    fast, plain = block(x), nn.Sequential.forward(block, x)
    assert fast.shape == (2, 5, 2 * side[0], 2 * side[1])
    assert torch.allclose(fast, plain, atol=1e-5)
    w = block[1][1].weight
    g_fast = torch.autograd.grad((fast * plain.detach()).sum(), (x, w))
    g_plain = torch.autograd.grad((plain * plain.detach()).sum(), (x, w))
    for a, b in zip(g_fast, g_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_engine_uses_the_reference_fusion_only_with_a_reference():
    from facesketch.engine.bundle import random_bundle
    from facesketch.engine.pipeline import FacePipeline

    cfg = dataclasses.replace(TINY, canvas=128)
    pipe = FacePipeline(random_bundle(cfg, 0), "cpu", reference_fusion=GlobalFusion(REF))
    pipe.appearance.gallery_problem = "tiny test networks"  # the mean look, no gallery
    sk = np.full((128, 128), 255, np.uint8)
    sk[40:90, 60] = 0
    plain = pipe.render_sketch(sk, size=128)
    assert plain.fusion == "fusion"
    ref = (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)
    valid = np.full((128, 128), 255, np.uint8)
    with_ref = pipe.render_sketch(sk, size=128, reference=(ref, valid))
    assert with_ref.fusion == "fusion_ref" and with_ref.recomputed == []  # branches cached
    assert np.abs(with_ref.face.astype(int) - plain.face).mean() > 5
    with pytest.raises(ValueError, match="reference"):
        pipe.render_sketch(sk, size=128, reference=(ref[:64], valid))
    # no reference fusion installed: a reference changes nothing
    bare = FacePipeline(random_bundle(cfg, 0), "cpu", reference_fusion=None)
    bare.appearance.gallery_problem = "tiny test networks"
    assert np.array_equal(bare.render_sketch(sk, size=128, reference=(ref, valid)).face, plain.face)


def test_random_smooth_flow_is_smooth_and_bounded():
    from facesketch.models.warp import apply_flow, random_smooth_flow

    flow = random_smooth_flow(2, 64, 64, 5.0, torch.Generator().manual_seed(1))
    assert flow.shape == (2, 64, 64, 2) and flow.abs().max() <= 5.0 * 1.3
    assert (flow[:, 1:] - flow[:, :-1]).abs().max() < 1.0  # no tears between neighbours
    img = torch.rand(1, 3, 32, 32)
    assert torch.allclose(apply_flow(img, torch.zeros(1, 32, 32, 2)), img, atol=1e-5)


def test_fusion_ref_trains_resumes_and_exports(tmp_path):
    from facesketch.engine.weights import load_into, read_manifest
    from train import fusion_ref

    run = tmp_path / "fr"
    args = [
        "--synthetic",
        "--no-progress",
        "--run-dir",
        str(run),
        "--set",
        "preset=tiny",
        "--set",
        "task.locals_from=random",
        "--set",
        "task.init_fusion=none",  # the shipped fusion is of the lite sizes
        "--set",
        "task.crop=32",
        "--set",
        "task.hed_side=32",
        "--set",
        "task.p_other=1.0",  # the TPS path of other people's photos
        "--set",
        "train.batch=2",
        "--set",
        "data.synthetic_count=4",
        "--set",
        "train.val_images=2",
        "--set",
        "train.val_every=2",
        "--set",
        "train.ckpt_every=2",
    ]
    assert fusion_ref.main([*args, "--max-steps", "2"]) == 0
    first = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    assert first["loop"]["step"] == 2
    assert fusion_ref.main([*args, "--max-steps", "3"]) == 0
    ckpt = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    assert ckpt["loop"]["step"] == 3  # resumed, did not start over
    assert set(ckpt["nets"]) == {"fusion", "P"}  # frozen nets are not checkpointed
    path = run / "export" / "fusion_ref.safetensors"
    manifest = read_manifest(path)
    assert manifest["network"] == "fusion_ref" and manifest["config"]["ref_ch"] == 4
    net = GlobalFusion(FusionConfig.from_dict(manifest["config"]))
    load_into(net, path, "fusion_ref", manifest["config"])
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())


def test_warm_start_from_a_version_1_fusion():
    from facesketch.models.fusion import init_from_transposed

    old = GlobalFusion(TINY.fusion)
    new = init_from_transposed(GlobalFusion(REF), old.state_dict())
    o, n = old.state_dict(), new.state_dict()
    assert torch.equal(n["body.1.1.weight"], o["body.1.1.weight"])  # encoder copied
    first = n["body.0.1.weight"]
    assert torch.equal(first[:, : o["body.0.1.weight"].shape[1]], o["body.0.1.weight"])
    assert first[:, o["body.0.1.weight"].shape[1] :].abs().sum() == 0  # new inputs start at 0
    assert torch.equal(n["head.1.weight"][:3, : o["head.1.weight"].shape[1]], o["head.1.weight"])
    assert n["head.1.bias"][3] > 0 and n["head.1.weight"][4:6].abs().sum() == 0
