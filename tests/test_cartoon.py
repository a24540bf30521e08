"""CartoonGAN: networks, official-weights import, stylization, training steps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from facesketch.engine import cartoon as C
from facesketch.engine.devices import select_device
from facesketch.models.cartoon import (
    CartoonConfig,
    CartoonDiscriminator,
    CartoonGenerator,
    ScaleShiftInstanceNorm,
    cartoon_preset,
)

TINY = CartoonConfig(base=4, n_res=2, d_base=4)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights" / "cartoongan"


def _official_state(cfg: CartoonConfig = TINY, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random generator saved under the authors' key names."""
    torch.manual_seed(seed)
    ours = CartoonGenerator(cfg).state_dict()
    back = {v: k for k, v in C._official_key_map(cfg.n_res).items()}
    out = {}
    for key, t in ours.items():
        prefix, _, leaf = key.rpartition(".")
        out[f"{back[prefix]}.{leaf}"] = torch.randn_like(t) * 0.2 + (1.0 if leaf == "scale" else 0)
    return out


def _style(module: nn.Module, order: str = "rgb") -> C.Style:
    spec = select_device("cpu")
    return C.Style("test", spec.module(module), order, spec)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _KillFirstChannel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[:, 0] = 0.0
        return y


# -- networks ------------------------------------------------------------------------------
def test_generator_shapes_and_range() -> None:
    g = CartoonGenerator(TINY).eval()
    with torch.no_grad():
        y = g(torch.randn(2, 3, 20, 24) * 3)
        odd = g(torch.randn(1, 3, 18, 22))
    assert y.shape == (2, 3, 20, 24)
    assert y.abs().max() <= 1.0
    assert odd.shape == (1, 3, 20, 24)  # the authors' model rounds odd sizes up
    with pytest.raises(ValueError, match="N, 3, H, W"):
        g(torch.zeros(1, 1, 16, 16))


def test_official_and_lite_sizes_differ() -> None:
    n_official = sum(p.numel() for p in CartoonGenerator(cartoon_preset("official")).parameters())
    n_lite = sum(p.numel() for p in CartoonGenerator(cartoon_preset("lite")).parameters())
    assert n_official == 11_129_667  # the authors' generator (Hayao_net_G_float.pth)
    assert n_lite < n_official / 6
    with pytest.raises(ValueError, match="known"):
        cartoon_preset("huge")


def test_instance_norm_matches_authors_formula() -> None:
    x = torch.randn(2, 5, 7, 9) * 4 + 2
    norm = ScaleShiftInstanceNorm(5)
    with torch.no_grad():
        norm.scale.copy_(torch.rand(5) + 0.5)
        norm.shift.copy_(torch.randn(5))
        # their layer: torch.var (unbiased) rescaled to biased, eps 1e-9
        t = x.view(2, 5, -1)
        n = t.shape[-1]
        mean = t.mean(2)[..., None, None]
        var = (t.var(2) * ((n - 1) / n))[..., None, None]
        ref = (x - mean) / torch.sqrt(var + 1e-9) * norm.scale.view(1, -1, 1, 1)
        ref = ref + norm.shift.view(1, -1, 1, 1)
        assert torch.allclose(norm(x), ref, atol=1e-5)


def test_discriminator_patch_output() -> None:
    d = CartoonDiscriminator(TINY)
    assert d(torch.randn(2, 3, 32, 48)).shape == (2, 1, 8, 12)


# -- official import -----------------------------------------------------------------------
def test_convert_official_state_dict_round_trip() -> None:
    official = _official_state()
    state, cfg = C.convert_official_state_dict(official)
    assert cfg == CartoonConfig(base=4, n_res=2)
    g = CartoonGenerator(cfg)
    g.load_state_dict(state)  # strict: every key mapped, none left over
    assert torch.equal(g.stem[1].weight, official["conv01_1.weight"])
    assert torch.equal(g.up[1].norm.shift, official["in07_1.shift"])  # 4 + n_res + 1


def test_convert_rejects_other_state_dicts() -> None:
    with pytest.raises(C.StyleError, match="not an official CartoonGAN"):
        C.convert_official_state_dict({"fc.weight": torch.zeros(2)}, "x.pth")
    bad = _official_state()
    bad["extra_layer.weight"] = torch.zeros(1)
    with pytest.raises(C.StyleError, match="unexpected parameter"):
        C.convert_official_state_dict(bad)
    del bad["extra_layer.weight"], bad["deconv03_1.bias"]
    with pytest.raises(C.StyleError, match="missing"):
        C.convert_official_state_dict(bad)


def test_corrupt_pth_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "Bad_net_G_float.pth"
    bad.write_bytes(b"garbage")
    with pytest.raises(C.StyleError, match="Bad_net_G_float.pth"):
        C.load_style(bad, "cpu")
    with pytest.raises(C.StyleError, match="no such"):
        C.load_style(tmp_path / "missing.pth", "cpu")


def test_pth_loads_directly_as_bgr_style(tmp_path: Path) -> None:
    path = tmp_path / "Tiny_net_G_float.pth"
    torch.save(_official_state(), path)
    style = C.load_style(path, "cpu")
    assert style.input_order == "bgr" and style.generator.cfg == CartoonConfig(base=4, n_res=2)
    out = C.stylize(np.zeros((10, 12, 3), np.uint8), style)
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8


@pytest.fixture
def style_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("facesketch.engine.weights", reason="weights registry not built yet")
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACESKETCH_WEIGHTS", str(tmp_path / "shipped"))
    (tmp_path / "shipped").mkdir()
    return tmp_path


def test_import_list_load(style_home: Path) -> None:
    src = style_home / "Tiny_net_G_float.pth"
    torch.save(_official_state(), src)
    path = C.import_style(src, "tiny")
    assert path.parent == style_home / "home" / "styles"
    names = {s["name"]: s for s in C.list_styles()}
    assert names["tiny"]["source"] == "imported" and names["tiny"]["input_order"] == "bgr"
    style = C.load_style("tiny", "cpu")
    ref = CartoonGenerator(CartoonConfig(base=4, n_res=2)).eval()
    ref.load_state_dict(C.convert_official_state_dict(_official_state())[0])
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():  # stored as fp16: close, not equal
        assert (style.generator(x) - ref(x)).abs().max() < 0.05
    with pytest.raises(C.StyleError, match="exists"):
        C.import_style(src, "tiny")
    with pytest.raises(C.StyleError, match="style name"):
        C.import_style(src, "../evil")


def test_unknown_style_lists_available(style_home: Path) -> None:
    src = style_home / "Tiny_net_G_float.pth"
    torch.save(_official_state(), src)
    C.import_style(src, "mystyle")
    with pytest.raises(C.StyleError, match="available: mystyle"):
        C.load_style("nope", "cpu")


# -- stylization ---------------------------------------------------------------------------
def test_keep_hue_brings_back_broad_colour_but_keeps_the_cartoons_lightness() -> None:
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[..., 1] = 200  # a green object
    cartoon = np.full((64, 64, 3), 180, np.uint8)  # the style made it flat grey
    cartoon[30:34] = 10  # and drew an outline
    assert C.keep_hue(cartoon, photo, 0.0) is cartoon
    half, full = C.keep_hue(cartoon, photo, 0.5), C.keep_hue(cartoon, photo, 1.0)
    green = lambda im: float(im[..., 1].astype(int).mean() - im[..., 0].astype(int).mean())  # noqa: E731
    assert 0 < green(half) < green(full)
    lightness = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2LAB)[..., 0].astype(int)  # noqa: E731
    assert np.abs(lightness(half) - lightness(cartoon)).max() <= 12  # shading kept
    assert lightness(half)[32].mean() < 40  # the outline stays dark
    assert C.load_style(C.DEFAULT_STYLE, device="cpu").manifest.get("keep_hue") == 0.5


def test_input_smoothing_flattens_noise_but_keeps_an_edge_and_is_opt_in() -> None:
    """The shipped style asks for it (its manifest); styles without the key are untouched."""
    rng = np.random.default_rng(0)
    img = np.full((128, 128, 3), 60, np.uint8)
    img[:, 64:] = 200  # one strong edge
    noisy = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    assert C.smooth_input(noisy, None) is noisy
    assert C.smooth_input(noisy, {"sigma_s": 0, "sigma_r": 0.1}) is noisy
    out = C.smooth_input(noisy, {"sigma_s": 10, "sigma_r": 0.08})
    flat = (slice(8, 120), slice(8, 56))
    assert out[flat].std() < 0.7 * noisy[flat].std()
    assert out[:, 70:].mean() - out[:, :58].mean() > 120  # the edge stays sharp
    shipped = C.load_style(C.DEFAULT_STYLE, device="cpu")
    assert shipped.manifest.get("input_smoothing")  # what the card's KID was measured with


def test_stylize_keeps_size_and_resizes() -> None:
    style = _style(CartoonGenerator(TINY))
    rgb = np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    assert C.stylize(rgb, style).shape == (37, 50, 3)
    assert C.stylize(rgb, style, size=64).shape == (47, 64, 3)
    assert C.stylize(rgb[:, :, 0], style).shape == (37, 50, 3)  # gray photos work too
    assert C.stylize(rgb[:5, :3], style).shape == (5, 3, 3)  # tiny: padded, cropped back
    with pytest.raises(ValueError, match="uint8 image"):
        C.stylize(np.zeros((0, 4, 3), np.uint8), style)


def test_stylize_channel_order() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    for order in ("rgb", "bgr"):
        same = C.stylize(rgb, _style(_Identity(), order))
        assert np.abs(same.astype(int) - rgb).max() <= 1
    # a generator that blanks its first input channel blanks blue for a BGR style
    out = C.stylize(rgb, _style(_KillFirstChannel(), "bgr"))
    assert np.all(np.abs(out[..., 2].astype(int) - 128) <= 1)
    assert np.abs(out[..., 0].astype(int) - rgb[..., 0]).max() <= 1


class _AddMesh(nn.Module):
    """An identity that leaves a 4-px mesh, as strided up-convolutions do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return x + 0.1 * (((yy // 2 + xx // 2) % 2) * 2 - 1).float()


def test_a_style_that_names_its_mesh_gets_it_removed() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = (128 + 60 * np.sin(xx / 10.0) * np.cos(yy / 13.0)).astype(np.uint8)
    rgb = np.stack([smooth] * 3, -1)
    inner = (slice(8, -8), slice(8, -8))
    raw = C.stylize(rgb, _style(_AddMesh()))
    style = _style(_AddMesh())
    style.manifest = {"mesh_period": 4}
    cleaned = C.stylize(rgb, style)
    assert np.abs(raw.astype(int) - rgb)[inner].mean() > 8  # the mesh is there
    assert np.abs(cleaned.astype(int) - rgb)[inner].max() <= 3  # and gone


@pytest.mark.data
@pytest.mark.slow
def test_hayao_matches_authors_output(style_home: Path) -> None:
    pth = SHARED / "Hayao_net_G_fp16.pth"
    if not pth.is_file():
        pytest.skip(f"{pth} is absent (the official weights live in ../shared, not the repo)")
    from facesketch.imaging import read_image

    style = C.load_style(C.import_style(pth, "Hayao"), "cpu")
    photo = read_image(SHARED / "reference_input_in1.png")
    ref = read_image(SHARED / "reference_output_in1_Hayao.png")
    out = C.stylize(photo, style, size=450)  # the authors' load size
    assert out.shape == (450, 448, 3)
    # their output is 452 high (450 rounded up to a multiple of 4 by the network)
    err = np.abs(out.astype(float) - ref[:450].astype(float)).mean()
    assert err <= 5.0, f"mean abs error {err:.2f} grey levels vs the authors' output"


# -- command line ------------------------------------------------------------------------
def test_cartoonize_command(style_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facesketch.cli import main
    from facesketch.imaging import read_image, write_image

    src = style_home / "Tiny_net_G_float.pth"
    torch.save(_official_state(), src)
    photo = style_home / "photo.png"
    write_image(photo, np.random.default_rng(2).integers(0, 256, (30, 41, 3), dtype=np.uint8))
    out = style_home / "out.png"
    assert main(["cartoonize", "--import", str(src), "--name", "tiny"]) == 0
    assert main(["cartoonize", str(photo), "-o", str(out), "--style", "tiny", "--size", "20"]) == 0
    assert read_image(out).shape == (15, 20, 3)
    assert main(["cartoonize", str(photo), "-o", str(out), "--style", str(src)]) == 0
    assert read_image(out).shape == (30, 41, 3)
    capsys.readouterr()
    assert main(["cartoonize", str(photo), "-o", str(out), "--style", "nope"]) == 1
    assert "available: tiny" in capsys.readouterr().err
    assert main(["cartoonize", str(src), "-o", str(out), "--style", "tiny"]) == 1
    assert "not an image" in capsys.readouterr().err
    assert main(["cartoonize", str(photo)]) == 2  # no -o


# -- training ------------------------------------------------------------------------------
def _task(tmp_path: Path, init_steps: int):  # -> (CartoonTask, batch)
    from torch.utils.data import default_collate

    from train import loop
    from train.cartoongan import CartoonTask

    overrides = [
        'task.model={"base": 4, "n_res": 1, "d_base": 4}',
        "task.size=32",
        "task.crop=24",
        f"task.init_steps={init_steps}",
        "data.synthetic=true",
        "data.synthetic_count=4",
    ]
    cfg = loop.load_config(loop.CONFIG_DIR / "cartoongan.json", overrides)
    task = CartoonTask(cfg, loop.RunContext(cfg, "cpu"))
    train, val = task.datasets()
    item = train[0]
    assert item["photo"].shape == item["anime"].shape == item["smooth"].shape == (3, 24, 24)
    assert val[0]["photo"].shape == (3, 32, 32)  # validation sees whole images
    return task, default_collate([train[i] for i in range(2)])


@pytest.mark.slow
def test_training_phases(tmp_path: Path) -> None:
    task, batch = _task(tmp_path, init_steps=1)
    g0 = [p.detach().clone() for p in task.G.parameters()]
    d0 = [p.detach().clone() for p in task.D.parameters()]
    init = task.train_step(batch, 0)  # initialization phase: content only, D untouched
    assert set(init) == {"content"}
    assert any(not torch.equal(a, b) for a, b in zip(g0, task.G.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(d0, task.D.parameters(), strict=True))
    adv = task.train_step(batch, 1)  # adversarial phase: smoothed anime are negatives
    assert {"g_adv", "d_real", "d_fake", "d_smooth", "content"} <= set(adv)
    assert any(not torch.equal(a, b) for a, b in zip(d0, task.D.parameters(), strict=True))
    metrics, images = task.validate(batch)
    assert "val_content" in metrics and len(images) == 3
    (export,) = task.exports()
    assert export.stem == "cartoon-anime" and export.network == "cartoon"
    assert CartoonConfig.from_dict(export.config) == task.G.cfg
