"""Sketch image to editable pen strokes, so a photo's sketch can be edited in the app.

The drawing is thinned to a 1-px skeleton, the skeleton's pixel chains are traced
into polylines (between line ends and junctions; closed loops separately),
simplified with Douglas-Peucker and turned into :class:`Stroke` values in the
document's canvas pixels.  Re-rasterizing the strokes gives back the drawing.
"""

from __future__ import annotations

import cv2
import numpy as np

from facesketch.sketch.document import Stroke
from facesketch.sketch.edges import neighbour_code, thin
from facesketch.sketch.raster import default_pen_width

#: Pixels darker than this count as ink.
INK_THRESHOLD = 128
#: Douglas-Peucker tolerance in sketch pixels: below what the pen width shows.
SIMPLIFY_PX = 0.75
#: Chains shorter than this (sketch pixels) are dropped as specks.
MIN_LENGTH_PX = 3.0

# 4-neighbours first: stepping diagonally past one would skip a pixel of the chain
_STEPS: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (0, 1),
    (1, 0),
    (0, -1),
    (-1, 1),
    (1, 1),
    (1, -1),
    (-1, -1),
)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """Pixel chains of a 1-px skeleton as (K, 2) int arrays of (x, y), K >= 2.

    Chains run between nodes (line ends and junctions, which may be shared by
    several chains); what is left after that are closed loops, traced once round.
    """
    sk = np.pad(np.asarray(skeleton, bool), 1)
    degree = _POPCOUNT[neighbour_code(sk)] * sk
    node = sk & (degree != 2)
    visited = np.zeros_like(sk)

    def walk(y: int, x: int, chain: list[tuple[int, int]]) -> None:
        while True:
            for dy, dx in _STEPS:
                ny, nx = y + dy, x + dx
                if sk[ny, nx] and not visited[ny, nx] and (ny, nx) not in chain[-2:]:
                    chain.append((ny, nx))
                    if node[ny, nx]:
                        return
                    visited[ny, nx] = True
                    y, x = ny, nx
                    break
            else:
                return

    chains: list[list[tuple[int, int]]] = []
    for y, x in zip(*np.nonzero(node), strict=True):
        for dy, dx in _STEPS:
            ny, nx = y + dy, x + dx
            if not sk[ny, nx] or visited[ny, nx] or node[ny, nx]:
                continue
            chain = [(int(y), int(x)), (int(ny), int(nx))]
            visited[ny, nx] = True
            walk(int(ny), int(nx), chain)
            chains.append(chain)
        if degree[y, x] == 0:
            chains.append([(int(y), int(x))])  # an isolated dot
    # nodes touching each other (junction clusters, one-pixel arms): link them, once each
    for y, x in zip(*np.nonzero(node), strict=True):
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if node[y + dy, x + dx]:
                chains.append([(int(y), int(x)), (int(y + dy), int(x + dx))])
    # loops: no node anywhere on them
    for y, x in zip(*np.nonzero(sk & ~visited & ~node), strict=True):
        if visited[y, x]:
            continue
        visited[y, x] = True
        chain = [(int(y), int(x))]
        walk(int(y), int(x), chain)
        chain.append(chain[0])
        chains.append(chain)
    return [np.array([(x - 1, y - 1) for y, x in c], np.int32) for c in chains]


def _length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    return float(np.hypot(*np.diff(points.astype(np.float64), axis=0).T).sum())


def sketch_to_strokes(
    sketch: np.ndarray,
    canvas: int | None = None,
    width: float | None = None,
    simplify_px: float = SIMPLIFY_PX,
    min_length_px: float = MIN_LENGTH_PX,
) -> list[Stroke]:
    """Pen strokes that redraw ``sketch`` (uint8 (H, W), white paper, dark lines).

    Points are in pixels of a ``canvas``-sized document (default: the sketch's
    side); ``width`` defaults to the project's pen width for that canvas.
    """
    arr = np.asarray(sketch)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"sketch must be uint8 grayscale (H, W), got {arr.dtype} {arr.shape}")
    h, w = arr.shape
    if h != w:
        raise ValueError(f"sketch must be square like the canvas, got {w}x{h}")
    canvas = int(canvas or w)
    if canvas <= 0:
        raise ValueError(f"canvas must be positive, got {canvas}")
    pen = float(width) if width is not None else default_pen_width(canvas)
    scale = canvas / w
    strokes: list[Stroke] = []
    for chain in trace_skeleton(thin(arr < INK_THRESHOLD)):
        closed = len(chain) > 3 and np.array_equal(chain[0], chain[-1])
        if len(chain) > 1 and _length(chain) < min_length_px:
            continue
        pts = chain
        if len(chain) > 2 and simplify_px > 0:
            body = chain[:-1] if closed else chain
            pts = cv2.approxPolyDP(body.reshape(-1, 1, 2), simplify_px, closed)[:, 0]
            if closed:
                pts = np.vstack([pts, pts[:1]])
        # a pixel index is a square; its centre is at +0.5 in continuous canvas units
        strokes.append(Stroke((pts.astype(np.float32) + 0.5) * scale, pen))
    return strokes
