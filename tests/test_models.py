"""Shapes, value ranges, configs and sizes of the sketch-to-face networks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from facesketch.layout import BACKGROUND, COMPONENTS, LOCAL_COMPONENTS, FaceLayout
from facesketch.models import (
    ComponentModel,
    GlobalFusion,
    ModelConfig,
    StrokeCalibrator,
    Upsampler2x,
    component_input,
    losses,
    preset,
)
from facesketch.models.config import LocalConfig, SCNConfig
from facesketch.models.fusion import build_fusion_discriminator
from facesketch.models.scn import build_scn_discriminator

LITE = preset("lite")
LAYOUT = FaceLayout.default(LITE.canvas)


def _in_range(t: torch.Tensor) -> bool:
    return bool(t.min() >= -1.0 and t.max() <= 1.0)


@pytest.mark.parametrize("name", ["lite", "paper", "tiny"])
def test_config_round_trip(name: str) -> None:
    cfg = preset(name)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.local == LocalConfig.from_dict(cfg.local.to_dict())


def test_config_rejects_unknown_keys_and_mismatched_fusion_input() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        SCNConfig.from_dict({"base": 8, "bsae": 3})
    bad = LITE.to_dict()
    bad["fusion"]["in_ch"] = LITE.local.feat_ch + 1
    with pytest.raises(ValueError, match="feat_ch"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_scn_shapes_and_range() -> None:
    # the residual head (manifests before the gate; the gate has tests/test_scn_gate.py)
    g = StrokeCalibrator(replace(LITE.scn, gate="none")).eval()
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape and _in_range(y)
    with pytest.raises(ValueError, match="multiples"):
        g(torch.zeros(1, 1, 60, 64))
    with pytest.raises(ValueError, match="expects"):
        g(torch.zeros(1, 3, 64, 64))
    feats = build_scn_discriminator(LITE.scn)(x)
    assert len(feats) == LITE.scn.d_layers + 2 and feats[-1].shape[1] == 1
    # residual: untrained it leaves the strokes as drawn; one training step changes that
    assert torch.equal(y, x)
    g.train()
    target = torch.ones_like(x)
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    (g(x) - target).abs().mean().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.equal(g.eval()(x), x)
    tanh_head = StrokeCalibrator(replace(LITE.scn, gate="none", residual=False)).eval()
    with torch.no_grad():
        assert _in_range(tanh_head(x)) and not torch.equal(tanh_head(x), x)


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_model_shapes(component: str) -> None:
    torch.manual_seed(0)
    m = ComponentModel(LITE.local, component).eval()
    s = LAYOUT.window(component).size
    lc = LITE.local
    sketch = torch.rand(2, 1, s, s) * 2 - 1
    photo = torch.rand(2, 3, s, s) * 2 - 1
    with torch.no_grad():
        geom = m.E_sketch(sketch)
        assert geom.shape == (2, lc.latent_ch, s // m.multiple, s // m.multiple)
        assert m.E_image(photo).shape == geom.shape
        rec = m.D_sketch(geom)
        assert rec.shape == sketch.shape and _in_range(rec)
        code = m.E_app(photo)
        assert code.shape == (2, lc.app_dim)
        feat = m.G_syn(geom, code)
        assert feat.shape == (2, lc.feat_ch, s, s)
        rgb = m.G_syn.to_rgb(feat)
        assert rgb.shape == (2, 3, s, s) and _in_range(rgb)
        # the appearance code steers the output (AdaIN), the geometry latent does not see it
        other = m.G_syn(geom, code.flip(0) + 1.0)
        assert not torch.allclose(feat, other)
    assert m.network == f"local/{component}"
    assert m.manifest_config() == {"local": lc.to_dict(), "component": component}


def test_appearance_code_is_global_pooled() -> None:
    """E_app keeps no spatial layout: the code length does not depend on the input size."""
    m = ComponentModel(LITE.local, "nose").E_app.eval()
    with torch.no_grad():
        a = m(torch.rand(1, 3, 64, 64))
        b = m(torch.rand(3, 3, 96, 160))
    assert a.shape == (1, LITE.local.app_dim) and b.shape == (3, LITE.local.app_dim)


def test_unknown_component_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown component"):
        ComponentModel(LITE.local, "ear")


def test_component_input_blanks_local_windows_for_background() -> None:
    x = -torch.ones(1, 1, LAYOUT.canvas, LAYOUT.canvas)
    bg = component_input(x, LAYOUT, BACKGROUND, blank=1.0)
    for name in LOCAL_COMPONENTS:
        w = LAYOUT.window(name)
        cx, cy = (int(v) for v in w.center)
        assert bg[0, 0, cy, cx] == 1.0  # window centre blanked to white
    assert bg[0, 0, 2, 2] == -1.0  # outside every window untouched
    nose = component_input(x, LAYOUT, "nose")
    assert nose.shape[-1] == LAYOUT.window("nose").size and bool((nose == -1).all())


def test_fusion_and_upsampler() -> None:
    f = GlobalFusion(LITE.fusion).eval()
    sk = torch.ones(1, 1, 64, 96)
    with torch.no_grad():
        y = f(torch.randn(1, LITE.local.feat_ch, 64, 96), sk)
    assert y.shape == (1, 3, 64, 96) and _in_range(y)
    with pytest.raises(ValueError, match="expects"):
        f(torch.randn(1, 3, 64, 64), sk)
    with pytest.raises(ValueError, match="needs the sketch"):
        f(torch.randn(1, LITE.local.feat_ch, 64, 96))
    # the sketch skip reaches the output: a line changes the face near it
    with torch.no_grad():
        feat = torch.randn(1, LITE.local.feat_ch, 64, 96)
        lined = sk.clone()
        lined[..., 30:32, :] = -1
        assert not torch.allclose(f(feat, sk), f(feat, lined))
    no_skip = GlobalFusion(replace(LITE.fusion, sketch_ch=0)).eval()
    assert no_skip(torch.randn(1, LITE.local.feat_ch, 32, 32)).shape == (1, 3, 32, 32)
    d_in = LITE.fusion.in_ch + 3 + LITE.fusion.sketch_ch
    d_out = build_fusion_discriminator(LITE.fusion)(torch.randn(1, d_in, 64, 64))
    assert len(d_out) == LITE.fusion.d_scales
    up = Upsampler2x(LITE.up).eval()
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        z = up(x)
    assert z.shape == (1, 3, 64, 96)
    # untrained, the residual head is zero: the head starts as plain bilinear up-sampling
    bilinear = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(z, bilinear, atol=1e-6)


def test_lite_parameter_counts_fit_the_cpu_budget() -> None:
    counts = {c: ComponentModel(LITE.local, c).num_params() for c in COMPONENTS}
    assert all(200_000 < n < 3_000_000 for n in counts.values()), counts
    assert 200_000 < GlobalFusion(LITE.fusion).num_params() < 4_000_000
    assert 100_000 < StrokeCalibrator(LITE.scn).num_params() < 2_000_000
    assert Upsampler2x(LITE.up).num_params() < 50_000
    paper_nose = ComponentModel(preset("paper").local, "nose").num_params()
    assert paper_nose > 10 * counts["nose"]


def test_losses_behave() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert losses.masked_l1(x, x).item() == 0.0
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1
    y = x.clone()
    y[..., 4:] += 5.0  # differences only where the mask is 0
    assert losses.masked_l1(y, x, mask).item() == 0.0
    assert losses.masked_l1(y, x).item() > 1.0
    feats = [torch.randn(1, 4, 4, 4), torch.ones(1, 1, 2, 2)]
    assert losses.feature_matching(feats, feats).item() == 0.0
    assert losses.lsgan_g(feats).item() == 0.0  # logits at the "real" target
    multi = [feats, [torch.randn(1, 4, 2, 2), torch.zeros(1, 1, 1, 1)]]
    assert losses.lsgan_d(multi, [[f, torch.zeros(1, 1, 2, 2)] for f in feats[:1]] * 2).item() > 0


def test_perceptual_loss_keeps_feature_net_out_of_state() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))

    class Taps(nn.Module):
        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [net(x)]

    loss = losses.PerceptualLoss(Taps(), lambda t: t)
    assert loss.state_dict() == {}
    a, b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    assert loss(a, a).item() == 0.0
    assert loss(a, b).item() > 0.0


def test_periodic_pattern_filter_removes_the_mesh_and_keeps_the_image():
    import math

    from facesketch.models.filters import remove_periodic_pattern

    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    image = (0.3 * (torch.sin(xx / 9) + torch.cos(yy / 11)) + 0.5)[None, None].expand(1, 3, 64, 64)
    # a period-2 checkerboard plus a period-4 ripple, as strided transposed convs leave
    mesh = 0.08 * ((-1.0) ** (xx + yy) + 0.5 * torch.cos(math.pi / 2 * xx))
    inner = (..., slice(8, -8), slice(8, -8))
    cleaned = remove_periodic_pattern(image + mesh)
    assert (cleaned - image)[inner].abs().max() < 0.01 < mesh.abs().max()
    assert (remove_periodic_pattern(image) - image)[inner].abs().max() < 0.01  # image kept
    odd = torch.rand(2, 3, 30, 50)
    assert remove_periodic_pattern(odd).shape == odd.shape
    assert torch.equal(remove_periodic_pattern(odd, period=1), odd)  # off


def test_mesh_level_and_loss_measure_and_train_away_the_up_samplers_mesh():
    import math

    from facesketch.models.filters import mesh_level
    from facesketch.models.losses import mesh_loss

    side = 160  # the measure leaves 3 sigma (48 px) along the borders out
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    image = (0.3 * (torch.sin(xx / 9) + torch.cos(yy / 11)))[None, None].expand(1, 3, side, side)
    mesh = 0.04 * ((-1.0) ** (xx + yy) + 0.5 * torch.cos(math.pi / 2 * yy))
    noise = 0.04 * torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    clean, meshed, grainy = mesh_level(image), mesh_level(image + mesh), mesh_level(image + noise)
    assert clean < 0.3 < 3.0 < meshed  # 8-bit grey levels: the mesh is ~4 levels RMS
    assert grainy < 0.25 * meshed  # as strong an incoherent grain is not a mesh
    # as a loss, its gradient removes the mesh and leaves the image
    x = (image + mesh).clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(25):
        opt.zero_grad()
        mesh_loss(x).backward()
        opt.step()
    assert mesh_level(x.detach()) < 0.3 * meshed
    inner = (..., slice(48, -48), slice(48, -48))
    assert (x.detach() - image)[inner].abs().mean() < 0.5 * mesh[48:-48, 48:-48].abs().mean()


def test_the_border_loss_sees_and_trains_away_a_mesh_parked_along_the_top_edge():
    """The mesh loss leaves 3 sigma along the borders out (its estimate sees padding
    there), so a decoder can park a pattern in the top rows unseen (fusion_clean10's
    band, period 8 at 256); the border-detail loss sees it there and trains it away,
    leaves the image's smooth colour, and against the photo keeps the photo's detail."""
    from facesketch.models.filters import mesh_level
    from facesketch.models.losses import border_detail_loss, mesh_loss

    side = 128
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    image = (0.3 * torch.sin(xx / 17) + 0.2 * torch.cos(yy / 13))[None, None].expand(
        1, 3, side, side
    )
    band = torch.zeros(side, side)
    band[:8] = 0.3 * torch.sign(torch.sin(xx[:8] * torch.pi / 4) * torch.sin(yy[:8] * torch.pi / 4))
    banded = image + band
    plain, meshed = mesh_loss(image, 4, 4.0).item(), mesh_loss(banded, 4, 4.0).item()
    assert meshed < 1.5 * plain  # hardly seen: only what its blur carries in
    assert mesh_level(banded) < 1.01 * mesh_level(image)  # the measure: unseen
    assert (
        border_detail_loss(banded, None, 16).item() > 8 * border_detail_loss(image, None, 16).item()
    )
    assert border_detail_loss(image, image, 16).item() == 0.0
    x = banded.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(40):
        opt.zero_grad()
        border_detail_loss(x, image, 16).backward()
        opt.step()
    top = (..., slice(0, 8), slice(None))
    assert (x.detach() - image)[top].abs().mean() < 0.3 * band[:8].abs().mean()
    assert torch.equal(x.detach()[..., 32:96, 32:96], banded[..., 32:96, 32:96])  # inner: untouched


def test_the_detail_loss_sees_softness_but_not_a_change_of_shading():
    """``losses.detail_l1`` (``task.w_teach_detail``): a blurred copy of a face costs, the
    same face a shade lighter does not, and training on it sharpens a soft student."""
    from facesketch.models import losses
    from facesketch.models.filters import _blur

    torch.manual_seed(0)
    sharp = torch.rand(1, 3, 48, 48) * 2 - 1
    mask = torch.ones(1, 1, 48, 48)
    assert losses.detail_l1(sharp, sharp, mask) == 0
    assert losses.detail_l1(sharp + 0.3, sharp, mask) < 1e-6
    soft = _blur(sharp, 1.5)
    assert losses.detail_l1(soft, sharp, mask) > 0.2
    student = soft.clone().requires_grad_(True)
    opt = torch.optim.Adam([student], lr=0.02)
    for _ in range(40):
        opt.zero_grad()
        losses.detail_l1(student, sharp, mask).backward()
        opt.step()
    assert losses.detail_l1(student, sharp, mask) < 0.5 * losses.detail_l1(soft, sharp, mask)


def test_mesh_loss_against_the_photo_keeps_its_lines_and_still_removes_a_mesh():
    """A sharp line is coherent on the grid along its length: against zero the mesh
    loss erases it; against the photo's own component (``target``) it keeps it."""
    import math

    from facesketch.models.filters import mesh_level
    from facesketch.models.losses import mesh_loss

    side = 160
    photo = torch.full((1, 3, side, side), 0.6)
    photo[..., 80, 30:130] = -0.8  # a 1-px dark line
    assert mesh_level(photo) > 2.0  # the measure takes it for a mesh
    assert mesh_loss(photo, target=photo).item() == 0.0
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    mesh = 0.04 * ((-1.0) ** (xx + yy) + 0.5 * torch.cos(math.pi / 2 * yy))
    mesh = mesh[None, None].expand(1, 3, side, side)

    def train(target: torch.Tensor | None) -> torch.Tensor:
        x = (photo + mesh).clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.01)
        for _ in range(25):
            opt.zero_grad()
            mesh_loss(x, target=target).backward()
            opt.step()
        return x.detach()

    line = (..., 80, slice(50, 110))
    matched, zeroed = train(photo), train(None)
    assert mesh_level(matched - photo) < 0.3 * mesh_level(mesh)  # the mesh is gone
    kept, faded = ((x - photo)[line].abs().mean() for x in (matched, zeroed))
    assert kept < 0.25 * faded  # against zero the line fades; against the photo it stays


def test_chroma_detail_loss_removes_coloured_speckle_and_keeps_grey_texture():
    """The fusion's top-edge band is fine *coloured* speckle; hair and skin texture is
    mostly lightness.  The loss (against a smooth target, like the aligner's fill) takes
    the speckle away and leaves grey-level texture of the same size alone."""
    from facesketch.models.losses import chroma_detail, chroma_detail_loss

    gen = torch.Generator().manual_seed(0)
    side = 64
    smooth = torch.zeros(1, 3, side, side)
    grey = 0.3 * torch.randn(1, 1, side, side, generator=gen).expand(1, 3, side, side)
    speckle = 0.3 * torch.randn(1, 3, side, side, generator=gen)
    assert chroma_detail(grey).abs().max().item() < 1e-5  # lightness only: no colour
    assert chroma_detail_loss(speckle, smooth).item() > 0.1
    assert chroma_detail_loss(grey + smooth, smooth).item() < 1e-5

    x = (grey + speckle).clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(60):
        opt.zero_grad()
        chroma_detail_loss(x, smooth).backward()
        opt.step()
    x = x.detach()
    before = chroma_detail_loss(grey + speckle, smooth).item()
    assert chroma_detail_loss(x, smooth).item() < 0.3 * before
    # the lightness (grey texture and the speckle's own lightness) is left as it was
    was = (grey + speckle).mean(1).flatten()
    assert torch.corrcoef(torch.stack([x.mean(1).flatten(), was]))[0, 1] > 0.97
