"""Repeated runs over seeds: what a table row and a curve band summarise.

A :class:`Trial` is one configuration trained once per seed. Every seed changes the initial
weights and the batch order (and the flips for ``shapes``) but not the data, and seed ``k`` of
one configuration starts from the same weights as seed ``k`` of every other configuration of
the same model, so two configurations can be compared seed by seed (a paired comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .strategies import EpochRecord

#: Two-sided 95% quantiles of Student's t by degrees of freedom (n - 1 for n paired seeds).
_T95 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclass
class Trial:
    """One configuration over several seeds: per-seed metrics, curves, extras and wall times."""

    label: str
    metrics: list[dict[str, float]] = field(default_factory=list)
    histories: list[list[EpochRecord]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    extras: list[dict[str, float]] = field(default_factory=list)  # learned s_i, task weights, ...

    def values(self, key: str) -> np.ndarray:
        return np.array([m[key] for m in self.metrics], dtype=np.float64)

    def mean(self, key: str) -> float:
        return float(self.values(key).mean())

    def sd(self, key: str) -> float:
        v = self.values(key)
        return float(v.std(ddof=1)) if len(v) > 1 else 0.0

    def cell(self, key: str, fmt: str = ".4f", scale: float = 1.0) -> str:
        """'0.9123 ± 0.0040': mean and sample standard deviation over the seeds."""
        return f"{scale * self.mean(key):{fmt}} ± {scale * self.sd(key):{fmt.lstrip('+')}}"

    def time_cell(self) -> str:
        t = np.array(self.seconds)
        return f"{t.mean():.1f} ± {t.std(ddof=1) if len(t) > 1 else 0.0:.1f}"

    def extra_cell(self, fmt: str = ".2f") -> str:
        """Mean learned values over the seeds, 'class -1.20, bbox -3.40', or an em dash."""
        if not self.extras or not self.extras[0]:
            return "—"
        return ", ".join(f"{k} {np.mean([e[k] for e in self.extras]):{fmt}}" for k in self.extras[0])

    def curve(self, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(epochs, mean, sd) of the validation loss of ``head`` over the seeds."""
        values = np.array([[r.val[head] for r in h] for h in self.histories], dtype=np.float64)
        epochs = np.array([r.epoch for r in self.histories[0]])
        sd = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        return epochs, values.mean(axis=0), sd


Run = Callable[[int], tuple[dict[str, float], list[EpochRecord], float, dict]]


def run_trials(configs: dict[str, tuple[str, Run]], seeds: Sequence[int], log: Callable[[str], None] = print) -> dict[str, Trial]:
    """Run every configuration (row -> (label, run)) for every seed; ``run(seed)`` returns (test
    metrics, history, seconds, extras).

    Seeds are the outer loop: every configuration's k-th run happens in the same stretch of time,
    so a change in the machine's load spreads over all rows instead of landing on one.
    """
    trials = {row: Trial(label) for row, (label, _) in configs.items()}
    for seed in seeds:
        for row, (label, run) in configs.items():
            metrics, history, seconds, extras = run(seed)
            for key, value in metrics.items():
                if not math.isfinite(value):
                    raise ValueError(f"{label}, seed {seed}: {key} is {value}")
            trial = trials[row]
            trial.metrics.append(metrics)
            trial.histories.append(history)
            trial.seconds.append(seconds)
            trial.extras.append(extras or {})
        log(f"  seed {seed} done")
    for trial in trials.values():
        log(f"  {trial.label}: " + ", ".join(f"{k} {trial.cell(k, '.4g')}" for k in list(trial.metrics[0])[:4])
            + f", {trial.time_cell()} s per run")
    return trials


def run_trial(label: str, seeds: Sequence[int], run: Run, log: Callable[[str], None] = print) -> Trial:
    """One configuration over every seed."""
    return run_trials({"": (label, run)}, seeds, log)[""]


@dataclass(frozen=True)
class Difference:
    """Paired difference of a metric between two trials over the same seeds."""

    mean: float
    sd: float
    n: int

    @property
    def significant(self) -> bool:
        """True when the 95% confidence interval of the mean paired difference excludes zero."""
        if self.n < 2:
            return False
        if self.sd == 0.0:
            return self.mean != 0.0
        return abs(self.mean) > _T95.get(self.n - 1, 1.96) * self.sd / math.sqrt(self.n)

    def text(self, fmt: str = "+.4f", scale: float = 1.0) -> str:
        """'+0.0123 ± 0.0040' with ' (within noise)' when the interval includes zero."""
        core = f"{scale * self.mean:{fmt}} ± {scale * self.sd:{fmt[1:] if fmt.startswith('+') else fmt}}"
        return core if self.significant else core + " (within noise)"


def difference(a: Trial, b: Trial, key: str, paired: bool = True) -> Difference:
    """``a - b`` seed by seed, or (``paired=False``, for trials that do not share initial
    weights) the difference of the means with the standard deviation of a paired difference of
    independent runs, sqrt(sd_a^2 + sd_b^2)."""
    if paired:
        d = a.values(key) - b.values(key)
        return Difference(float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0, len(d))
    n = min(len(a.metrics), len(b.metrics))
    return Difference(a.mean(key) - b.mean(key), math.sqrt(a.sd(key) ** 2 + b.sd(key) ** 2), n)
