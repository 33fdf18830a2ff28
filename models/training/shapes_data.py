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
#: Every class the renderer knows; the served model uses the first four.
ALL_CLASSES = CLASSES + ("diamond", "ring")


@dataclass(frozen=True)
class Setting:
    """What a data set looks like: image size, classes, shape sizes, contrast and noise.

    The default is the served ``shapes`` model's data; :data:`HARD` is the experiment variant
    where the class head cannot saturate.
    """

    image_size: int = IMAGE_SIZE
    classes: tuple[str, ...] = CLASSES
    min_size: int = MIN_SIZE
    max_size: int = MAX_SIZE
    min_contrast: float = MIN_CONTRAST
    noise: tuple[float, float] = (4.0, 20.0)


#: Small, low-contrast shapes of six classes (a ring against a disc, a diamond against a
#: square) in heavy noise on 32x32 images: the class head stays well below 100%, so the loss
#: strategies can separate on both heads, and a run costs a tenth of the served setting's.
HARD = Setting(image_size=32, classes=ALL_CLASSES, min_size=7, max_size=16, min_contrast=45.0, noise=(15.0, 40.0))


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
    if kind == 3:
        bar = 1.0 / 6.0  # cross: two bars a third of the box thick
        return (np.abs(u - 0.5) <= bar) | (np.abs(v - 0.5) <= bar)
    if kind == 4:  # diamond: a square turned 45 degrees
        return np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5
    r2 = (u - 0.5) ** 2 + (v - 0.5) ** 2  # ring: a disc with a hole half its diameter
    return (r2 <= 0.25) & (r2 >= 0.0625)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray, min_contrast: float) -> np.ndarray:
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - background) >= min_contrast:
            return colour


def generate(count: int, seed: int, setting: Setting = Setting()) -> ShapesData:
    """Render ``count`` images with a generator seeded by ``seed`` (same seed, same bytes)."""
    rng = np.random.default_rng(seed)
    side = setting.image_size
    images = np.empty((count, side, side, 3), dtype=np.uint8)
    labels = rng.integers(0, len(setting.classes), size=count)
    boxes = np.empty((count, 4), dtype=np.float32)
    for i in range(count):
        background = rng.uniform(0, 255, size=3)
        colour = _contrasting_colour(rng, background, setting.min_contrast)
        size = int(rng.integers(setting.min_size, setting.max_size + 1))
        top, left = (int(v) for v in rng.integers(0, side - size + 1, size=2))
        mask = _shape_mask(ALL_CLASSES.index(setting.classes[labels[i]]), size)
        canvas = np.broadcast_to(background, (side, side, 3)).copy()
        canvas[top:top + size, left:left + size][mask] = colour
        canvas += rng.normal(0.0, rng.uniform(*setting.noise), size=canvas.shape)
        images[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[i] = np.array([left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1]) / side
    return ShapesData(images, labels.astype(np.int64), boxes)
