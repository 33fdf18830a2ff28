"""Small helpers shared by every part of the kit: seeding, paths and JSON output."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: ``models/``, the model repository the kit writes into (the kit lives in ``models/training``).
MODELS_DIR = Path(__file__).resolve().parent.parent

#: ``framework`` of reference.json: PyTorch's major.minor version.
FRAMEWORK = "pytorch " + ".".join(torch.__version__.split(".")[:2])

#: Thread count used everywhere. Floating-point reductions are split by thread, so a fixed
#: count is part of what makes reruns bit-for-bit reproducible.
NUM_THREADS = 2


def setup_torch(seed: int) -> None:
    """Seed every random generator and pin the thread count for a reproducible run."""
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def f32_repr(value: float) -> str:
    """Shortest decimal text that parses back to the same float32.

    The C# tests compare against these values within 1e-4; the shortest round-trip form keeps
    the files small without losing a bit of the float32 value.
    """
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"non-finite value {value!r} cannot be written to JSON")
    magnitude = abs(float(v))
    if magnitude != 0.0 and (magnitude < 1e-4 or magnitude >= 1e7):
        return np.format_float_scientific(v, unique=True, trim="0")
    return np.format_float_positional(v, unique=True, trim="0")


class Float32Array:
    """Marks a flat list of numbers to be written with :func:`f32_repr` by :func:`dump_json`."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float32).reshape(-1)


def _encode(obj: Any, indent: int, level: int) -> str:
    pad = " " * (indent * (level + 1))
    end_pad = " " * (indent * level)
    if isinstance(obj, Float32Array):
        return "[" + ", ".join(f32_repr(v) for v in obj.values) + "]"
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {_encode(v, indent, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end_pad + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        if all(not isinstance(v, (dict, list, tuple, Float32Array)) for v in obj):
            return "[" + ", ".join(json.dumps(_plain(v)) for v in obj) + "]"
        items = [f"{pad}{_encode(v, indent, level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + end_pad + "]"
    return json.dumps(_plain(obj))


def _plain(value: Any) -> Any:
    """Convert numpy scalars to the Python types ``json`` understands."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def dump_json(obj: Any, path: Path, indent: int = 2) -> None:
    """Write ``obj`` as indented JSON; flat number lists stay on one line to keep diffs small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_encode(obj, indent, 0) + "\n", encoding="utf-8")


def relative_to_models(path: Path) -> str:
    """Repository-relative spelling of a path, for messages and reports."""
    return path.resolve().relative_to(MODELS_DIR.parent).as_posix()
