"""Synthetic scenes for the ``objects`` model: one coloured object per 224x224 RGB image.

Each scene has a textured background (a colour gradient, soft blobs and sensor noise, all in
muted tones) and one object of a class, a named colour and a size drawn independently, at a
random position. Images are produced directly as uint8 RGB, exactly what a client uploads, so
training, evaluation and the reference outputs see the same quantised pixels as the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("circle", "square", "triangle", "cross", "diamond", "ring")
#: Named colours and their nominal RGB; each drawn object jitters its colour around the nominal one.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 215, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
}
COLOUR_NAMES = tuple(COLOURS)
IMAGE_SIZE = 224
#: Side of the object's square box in pixels (the drawn extent may be a little smaller).
MIN_SIZE, MAX_SIZE = 48, 160
COLOUR_JITTER = 20.0


@dataclass
class ObjectsData:
    """``images`` uint8 [N, 224, 224, 3] (HWC); ``labels``, ``colours`` int64 [N]; ``boxes`` float32 [N, 4].

    Boxes are the tight pixel extent of the drawn object as normalised ``x_min, y_min, x_max,
    y_max`` (pixel edges, as in ``shapes``).
    """

    images: np.ndarray
    labels: np.ndarray
    colours: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _mask(kind: int, size: int) -> np.ndarray:
    """Boolean ``size x size`` mask of a shape filling its box, sampled at pixel centres."""
    centres = (np.arange(size) + 0.5) / size
    v, u = np.meshgrid(centres, centres, indexing="ij")  # v: row, u: column
    radius2 = (u - 0.5) ** 2 + (v - 0.5) ** 2
    if kind == 0:  # circle
        return radius2 <= 0.25
    if kind == 1:  # square
        return np.ones((size, size), dtype=bool)
    if kind == 2:  # upright triangle
        return np.abs(u - 0.5) <= v / 2
    if kind == 3:  # cross: two bars a third of the box thick
        return (np.abs(u - 0.5) <= 1 / 6) | (np.abs(v - 0.5) <= 1 / 6)
    if kind == 4:  # diamond
        return np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5
    return (radius2 <= 0.25) & (radius2 >= 0.09)  # ring: outer radius 0.5, inner 0.3


def _background(rng: np.random.Generator) -> np.ndarray:
    """A muted gradient with a few soft blobs, float [224, 224, 3]."""
    grid = np.linspace(0.0, 1.0, IMAGE_SIZE)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    base = rng.uniform(60, 200)
    start = base + rng.uniform(-25, 25, size=3)
    end = base + rng.uniform(-40, 40) + rng.uniform(-25, 25, size=3)
    canvas = start + (end - start) * ramp[..., None]
    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    for _ in range(int(rng.integers(0, 4))):
        cy, cx = rng.uniform(0, IMAGE_SIZE, size=2)
        sigma = rng.uniform(15, 60)
        weight = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * sigma ** 2))
        canvas += weight[..., None] * rng.uniform(-40, 40)
    return canvas


def generate(count: int, seed: int) -> ObjectsData:
    """Render ``count`` scenes with a generator seeded by ``seed`` (same seed, same bytes)."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, len(CLASSES), size=count)
    colours = rng.integers(0, len(COLOURS), size=count)
    boxes = np.empty((count, 4), dtype=np.float32)
    nominal = np.array(list(COLOURS.values()), dtype=np.float64)
    for i in range(count):
        canvas = _background(rng)
        colour = np.clip(nominal[colours[i]] + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, size=3), 0, 255)
        size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
        top, left = (int(v) for v in rng.integers(0, IMAGE_SIZE - size + 1, size=2))
        mask = _mask(int(labels[i]), size)
        # Soft top-down shading, so a colour is a range of pixel values rather than one.
        shade = 1.0 - 0.25 * rng.uniform(0, 1) * np.linspace(0, 1, size)
        paint = np.broadcast_to(colour * shade[:, None, None], (size, size, 3))
        canvas[top:top + size, left:left + size][mask] = paint[mask]
        canvas += rng.normal(0.0, rng.uniform(2.0, 12.0), size=canvas.shape)
        images[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[i] = np.array([left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1]) / IMAGE_SIZE
    return ObjectsData(images, labels.astype(np.int64), colours.astype(np.int64), boxes)
