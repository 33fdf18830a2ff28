"""Synthetic data for the ``shapes`` model: one coloured shape per 64x64 image, with its box.

Images are produced directly as uint8 RGB, exactly what a client would upload, so training,
evaluation and the reference outputs all see the same quantised pixels the service sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("circle", "square", "triangle", "cross")
IMAGE_SIZE = 64
MIN_SIZE, MAX_SIZE = 12, 40
#: Minimum RGB distance between the shape and the background, so every shape is visible.
MIN_CONTRAST = 90.0


@dataclass
class ShapesData:
    """``images`` uint8 [N, 64, 64, 3] (HWC), ``labels`` int64 [N], ``boxes`` float32 [N, 4].

    Boxes are the tight pixel extent of the drawn shape as normalised ``x_min, y_min, x_max,
    y_max`` (pixel edges, so a shape covering columns 3..10 has x_min 3/64 and x_max 11/64).
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _shape_mask(kind: int, size: int) -> np.ndarray:
    """Boolean ``size x size`` mask of a shape filling its box, sampled at pixel centres."""
    centres = (np.arange(size) + 0.5) / size  # 0..1 across the box
    v, u = np.meshgrid(centres, centres, indexing="ij")  # v: row, u: column
    if kind == 0:  # circle
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if kind == 1:  # square
        return np.ones((size, size), dtype=bool)
    if kind == 2:  # upright triangle: apex at the top centre, base along the bottom
        return np.abs(u - 0.5) <= v / 2
    bar = 1.0 / 6.0  # cross: two bars a third of the box thick
    return (np.abs(u - 0.5) <= bar) | (np.abs(v - 0.5) <= bar)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - background) >= MIN_CONTRAST:
            return colour


def generate(count: int, seed: int) -> ShapesData:
    """Render ``count`` images with a generator seeded by ``seed`` (same seed, same bytes)."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, len(CLASSES), size=count)
    boxes = np.empty((count, 4), dtype=np.float32)
    for i in range(count):
        background = rng.uniform(0, 255, size=3)
        colour = _contrasting_colour(rng, background)
        size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
        top, left = (int(v) for v in rng.integers(0, IMAGE_SIZE - size + 1, size=2))
        mask = _shape_mask(int(labels[i]), size)
        canvas = np.broadcast_to(background, (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()
        canvas[top:top + size, left:left + size][mask] = colour
        canvas += rng.normal(0.0, rng.uniform(4.0, 20.0), size=canvas.shape)
        images[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[i] = np.array([left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1]) / IMAGE_SIZE
    return ShapesData(images, labels.astype(np.int64), boxes)
