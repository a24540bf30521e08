"""The one sketch -> face model: component inputs, branches, paste, fusion, forward.

Training (train/fusion.py, train/fusion_ref.py), evaluation (train/eval.py) and the
engine (facesketch/engine/pipeline.py) all run these stages, so what is trained,
measured and shown is the same code.  The engine calls the stages one by one to
keep its per-component cache (a nose stroke re-runs the nose branch, the paste and
the fusion only); training and evaluation call :meth:`FaceModel.forward`.

Stages, per component ``c`` of :data:`facesketch.layout.COMPONENTS`:

1. :meth:`FaceModel.component_input` — the window crop (local parts) or the whole
   canvas with the local windows blanked (background);
2. :meth:`FaceModel.calibrate` — optional stroke calibration (SCN), blended by strength;
3. :meth:`FaceModel.geometry` (E_sketch; or :meth:`FaceModel.photo_geometry`, E_image)
   and :meth:`FaceModel.generate` (G_syn with the appearance code) — the branch map;
4. :meth:`FaceModel.paste` — local maps over the background map (feathered); the engine
   may first shift a local map by a constant per channel so that its step to the
   background map at the window's border is the step the default look gives
   (:meth:`FaceModel.seam_offsets`): a dropped photo's codes otherwise leave the
   windows as visible rectangles;
5. :meth:`FaceModel.fuse` — the global fusion, given the pasted maps, the sketch the
   encoders saw (:func:`assemble_sketch`) and, for a reference fusion, the warped
   reference image and its validity mask; the mesh notch filter only for a fusion with
   transposed convolutions;
6. :meth:`FaceModel.upsample` — the optional 2x head.

Pure torch (no file I/O, Qt or dlib).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from facesketch.layout import (
    BACKGROUND,
    COMPONENTS,
    DEFAULT_FEATHER,
    NOSE,
    PASTE_ORDER,
    REFERENCE_CANVAS,
    FaceLayout,
)
from facesketch.models.filters import DEFAULT_PERIOD, remove_periodic_pattern
from facesketch.models.local import PHOTO_BLANK, SKETCH_BLANK, component_input

__all__ = [
    "Branch",
    "FaceModel",
    "appearance_input",
    "assemble_sketch",
    "mesh_period",
    "warp_reference",
    "window_ring",
]

#: Width (px at the reference canvas, 512) of the band just inside a local window over
#: which its map is compared with the background map beneath it
#: (:meth:`FaceModel.seam_offsets`): the paste's feather, where the two maps blend.
SEAM_RING = DEFAULT_FEATHER


def window_ring(layout: FaceLayout, name: str) -> torch.Tensor:
    """Boolean (size, size) band just inside local window ``name``: where its map is
    blended into the background's.  The nose's band runs along its cut bottom rows."""
    size = layout.window(name).size
    r = max(1, round(SEAM_RING * layout.canvas / REFERENCE_CANVAS))
    ring = torch.zeros(size, size, dtype=torch.bool)
    ring[:r], ring[-r:], ring[:, :r], ring[:, -r:] = True, True, True, True
    if name == NOSE:
        cut = layout.nose_bottom_cut
        ring[size - cut :] = False
        ring[size - cut - r : size - cut] = True
    return ring


def appearance_input(photo: Any, layout: FaceLayout, name: str) -> Any:
    """What E_app of component ``name`` sees of an aligned photo: the whole face for the
    background, the window crop otherwise (numpy (H, W, C) or torch (..., H, W))."""
    return photo if name == BACKGROUND else layout.crop(photo, name)


def assemble_sketch(parts: Mapping[str, Any], layout: FaceLayout) -> Any:
    """The canvas sketch the encoders saw: the background input with every local
    component's input copied into its window (eyes last, as the maps are pasted).

    ``parts`` maps every component to its (possibly calibrated) input: numpy (h, w)
    arrays or torch tensors (..., h, w).
    """
    base = parts[BACKGROUND]
    out = base.clone() if isinstance(base, torch.Tensor) else base.copy()
    for name in PASTE_ORDER:
        rows, cols = layout.window(name).slices
        out[..., rows, cols] = parts[name]
    return out


def mesh_period(fusion: nn.Module) -> int:
    """Period of the notch filter the fusion's output needs: transposed-conv decoders
    leave a mesh (:data:`DEFAULT_PERIOD`), resize-conv decoders none (0)."""
    cfg = getattr(fusion, "cfg", None)
    return 0 if getattr(cfg, "decoder", "transpose") == "resize" else DEFAULT_PERIOD


def warp_reference(
    photo: torch.Tensor,
    photo_landmarks: torch.Tensor,
    sketch_landmarks: torch.Tensor,
    photo_valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference photo (N, 3, S, S) moved onto a sketch's geometry: landmark TPS from
    the photo's 68 dlib points to the sketch's (N, 68, 2; dlib convention, pixel centre
    at the integer).  Returns (warped RGB, validity (N, 1, S, S) in {0, 1})."""
    from facesketch.models.warp import tps_warp

    warped, valid = tps_warp(
        photo, photo_landmarks + 0.5, sketch_landmarks + 0.5, reg=1.0, src_valid=photo_valid
    )
    return warped, (valid > 0.5).to(warped.dtype)


class Branch(nn.Module):
    """One component's networks, under the names the stages use (shared, not copied)."""

    def __init__(
        self,
        geometry: nn.Module,
        appearance: nn.Module,
        generator: nn.Module,
        image: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.geometry, self.appearance, self.generator = geometry, appearance, generator
        self.image = image

    @classmethod
    def of(cls, model: nn.Module) -> Branch:
        """The branch of a training :class:`facesketch.models.local.ComponentModel`
        (or anything with ``E_sketch``/``E_app``/``G_syn``[/``E_image``])."""
        return cls(model.E_sketch, model.E_app, model.G_syn, getattr(model, "E_image", None))


class FaceModel(nn.Module):
    """Sketch (+ appearance codes, + warped reference) -> face, stage by stage.

    ``pattern_period`` None: the fusion's own (:func:`mesh_period`); 0 turns the notch off.
    """

    def __init__(
        self,
        branches: Mapping[str, Branch],
        fusion: nn.Module,
        scn: nn.Module | None = None,
        upsampler: nn.Module | None = None,
        feather: int | None = DEFAULT_FEATHER,
        pattern_period: int | None = None,
    ) -> None:
        super().__init__()
        missing = [c for c in COMPONENTS if c not in branches]
        if missing:
            raise ValueError(f"face model lacks component networks: {', '.join(missing)}")
        self.branches = nn.ModuleDict({c: branches[c] for c in COMPONENTS})
        self.fusion, self.scn, self.upsampler = fusion, scn, upsampler
        self.feather = feather
        self.pattern_period = mesh_period(fusion) if pattern_period is None else pattern_period
        # the 2x head draws no mesh of its own (on real photos' halves its output has
        # less on the grid than real 512 photos: 0.17 vs 0.36 grey levels, 4-px reach) but
        # doubles a fusion's: the same notch again at the output size, only then
        self.up_period = self.pattern_period

    @classmethod
    def from_components(
        cls, models: Mapping[str, nn.Module], fusion: nn.Module, **kwargs: Any
    ) -> FaceModel:
        """From training ``ComponentModel`` s (their parameters are shared)."""
        return cls({c: Branch.of(m) for c, m in models.items()}, fusion, **kwargs)

    @property
    def uses_reference(self) -> bool:
        """Whether the fusion takes a warped reference image + validity mask."""
        return bool(getattr(getattr(self.fusion, "cfg", None), "ref_ch", 0))

    # -- stages ------------------------------------------------------------------------
    @staticmethod
    def component_input(
        canvas: torch.Tensor, layout: FaceLayout, name: str, photo: bool = False
    ) -> torch.Tensor:
        """What component ``name``'s geometry encoder sees of a sketch (or photo) canvas."""
        return component_input(canvas, layout, name, PHOTO_BLANK if photo else SKETCH_BLANK)

    def calibrate(self, x: torch.Tensor, strength: float) -> torch.Tensor:
        """The SCN-calibrated sketch blended with the strokes as drawn (1: fully calibrated)."""
        if strength <= 0 or self.scn is None:
            return x
        return torch.lerp(x, self.scn(x).to(x.dtype), float(strength))

    def geometry(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """E_sketch: sketch input -> geometry latent."""
        return self.branches[name].geometry(x)

    def photo_geometry(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """E_image: photo input -> the same geometry latent space."""
        image = self.branches[name].image
        if image is None:
            raise ValueError(f"the {name} networks have no photo geometry encoder (E_image)")
        return image(x)

    def appearance(self, name: str, photo: torch.Tensor, layout: FaceLayout) -> torch.Tensor:
        """E_app code of component ``name`` of aligned photos (N, 3, S, S)."""
        return self.branches[name].appearance(appearance_input(photo, layout, name))

    def codes(self, photo: torch.Tensor, layout: FaceLayout) -> dict[str, torch.Tensor]:
        """Every component's appearance code of aligned photos."""
        return {c: self.appearance(c, photo, layout) for c in COMPONENTS}

    def generate(self, name: str, geom: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """G_syn: geometry latent + appearance code -> the component's feature map."""
        return self.branches[name].generator(geom, code)

    def paste(
        self,
        maps: Mapping[str, torch.Tensor],
        layout: FaceLayout,
        expected: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The fusion's feature input: local maps over the background map.

        ``expected`` (local component -> (C,) or (N, C)): shift those maps by a constant
        per channel so that :meth:`seam_offsets` gives these values; the engine passes
        the offsets of the default look for parts drawn with a photo's look, which the
        fusion otherwise shows as the windows' rectangles.  Training passes none."""
        patches = {n: m for n, m in maps.items() if n != BACKGROUND}
        if expected:
            now = self.seam_offsets(maps, layout, names=tuple(expected))
            for name, want in expected.items():
                shift = now[name] - want.to(now[name])
                patches[name] = patches[name] + shift[..., None, None]
        return layout.paste_all(maps[BACKGROUND], patches, self.feather)

    @staticmethod
    def seam_offsets(
        maps: Mapping[str, torch.Tensor],
        layout: FaceLayout,
        names: tuple[str, ...] = tuple(PASTE_ORDER),
    ) -> dict[str, torch.Tensor]:
        """Per local component, the mean over :func:`window_ring` of the background map
        minus the component's map: (N, C).  Why: the fusion was trained with the step at
        the window border that its own codes give, and near-equal for every drawing with
        the default look; a photo's codes change it and the window shows."""
        out = {}
        for name in names:
            rows, cols = layout.window(name).slices
            ring = window_ring(layout, name).to(maps[name].device)
            diff = maps[BACKGROUND][..., rows, cols] - maps[name]
            out[name] = diff[..., ring].mean(-1)
        return out

    def component_maps(
        self,
        sketch: torch.Tensor,
        codes: Mapping[str, torch.Tensor],
        layout: FaceLayout,
        strength: float = 0.0,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(every component's branch map, what each geometry encoder saw) of sketches."""
        maps, seen = {}, {}
        for c in COMPONENTS:
            x = self.calibrate(self.component_input(sketch, layout, c), strength)
            seen[c] = x
            maps[c] = self.generate(c, self.geometry(c, x), codes[c])
        return maps, seen

    def fuse(
        self,
        pasted: torch.Tensor,
        sketch: torch.Tensor | None,
        reference: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        filtered: bool = True,
    ) -> torch.Tensor:
        """RGB face (N, 3, S, S) in [-1, 1] from the pasted maps, the sketch the encoders
        saw and (reference fusion) the warped reference RGB + its validity mask.

        ``filtered``: as shown (the mesh notch where the decoder needs it); training
        losses use the raw output."""
        if self.uses_reference:
            out = self.fusion(pasted, sketch, reference, valid)
        else:
            out = self.fusion(pasted, sketch if self.fusion.cfg.sketch_ch else None)
        return remove_periodic_pattern(out, self.pattern_period) if filtered else out

    def upsample(self, rgb: torch.Tensor, filtered: bool = True) -> torch.Tensor:
        """The 2x head (a transposed fusion's mesh, doubled: the notch again at 2x)."""
        if self.upsampler is None:
            raise ValueError("this face model has no 2x head")
        out = self.upsampler(rgb)
        return remove_periodic_pattern(out, self.up_period) if filtered else out

    # -- the whole chain ---------------------------------------------------------------
    def features(
        self,
        sketch: torch.Tensor,
        codes: Mapping[str, torch.Tensor],
        layout: FaceLayout,
        strength: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pasted feature maps, the sketch the encoders saw) of sketches (N, 1, S, S)."""
        maps, seen = self.component_maps(sketch, codes, layout, strength)
        return self.paste(maps, layout), assemble_sketch(seen, layout)

    def forward(
        self,
        sketch: torch.Tensor,
        codes: Mapping[str, torch.Tensor],
        layout: FaceLayout | None = None,
        strength: float = 0.0,
        reference: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        filtered: bool = True,
    ) -> torch.Tensor:
        """Faces (N, 3, S, S) for sketches (N, 1, S, S) in [-1, 1] (white paper = +1)."""
        lay = layout or FaceLayout.default(sketch.shape[-1])
        pasted, seen = self.features(sketch, codes, lay, strength)
        return self.fuse(pasted, seen, reference, valid, filtered)
