"""Figures for the reports: one panel per head, mean over seeds with a shaded ±1 sd band.

Every figure is at least 1000 px wide, keeps its legend outside the panels (to the right), and
uses a logarithmic axis where the plotted values span more than a decade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot)
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .stats import Trial  # noqa: E402

DPI = 100
#: Distinguishable at a glance: colour and line style both change from one run to the next.
_STYLES = ("-", "--", "-.", ":")


def _style(i: int) -> dict:
    return {"color": plt.get_cmap("tab10")(i % 10), "linestyle": _STYLES[(i // 10 + i) % len(_STYLES)]}


def _figure(panels: int) -> tuple[plt.Figure, Sequence[plt.Axes]]:
    # 4.6 in per panel plus 3.6 in for the legend: 1280 px for two panels at 100 dpi.
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels + 3.6, 4.4), dpi=DPI, squeeze=False)
    return fig, list(axes[0])


def _save(fig: plt.Figure, path: Path, handles: list, labels: list[str], legend_title: str) -> None:
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9,
               title=legend_title, title_fontsize=9, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15, metadata={"Software": None})
    plt.close(fig)
    width = plt.imread(str(path)).shape[1]
    if width < 1000:
        raise AssertionError(f"{path.name} is {width} px wide, the reports need >= 1000")


def _log_if_wide(ax: plt.Axes, values: np.ndarray) -> None:
    positive = values[values > 0]
    if len(positive) and positive.max() / positive.min() > 10:
        ax.set_yscale("log")


def loss_curves(rows: dict[str, Trial], heads: Sequence[str], titles: dict[str, str], path: Path,
                suptitle: str) -> None:
    """Validation loss per epoch, one panel per head, one line per trial with its ±1 sd band; the
    legend names each line by its table row."""
    trials = list(rows.values())
    names = [f"{row}: {t.label}" for row, t in rows.items()]
    fig, axes = _figure(len(heads))
    handles: dict[int, object] = {}
    for ax, head in zip(axes, heads):
        seen = []
        for i, trial in enumerate(trials):
            if head not in trial.histories[0][0].val:
                continue  # a model without this head (the primary-only conversion model)
            epochs, mean, sd = trial.curve(head)
            line, = ax.plot(epochs, mean, linewidth=1.8, marker="o", markersize=3, **_style(i))
            # A band reaching zero or below cannot be drawn on a log axis: floor it at a tenth of the mean.
            ax.fill_between(epochs, np.maximum(mean - sd, mean * 0.1), mean + sd, color=line.get_color(),
                            alpha=0.18, linewidth=0)
            seen.append(mean)
            handles.setdefault(i, line)
        _log_if_wide(ax, np.concatenate(seen))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss")
        ax.set_title(titles.get(head, head), fontsize=10)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(suptitle, fontsize=11)
    order = sorted(handles)
    _save(fig, path, [handles[i] for i in order], [names[i] for i in order],
          f"mean of {len(trials[0].histories)} seeds, band ±1 sd")


def sweep(x: Sequence[float], series: dict[str, Sequence[Trial]], panels: Sequence[tuple[str, str]],
          path: Path, xlabel: str, suptitle: str, log_x: bool = True) -> None:
    """A metric against a swept hyper-parameter: one panel per (metric key, axis label), one
    line per series, mean with a ±1 sd band over the seeds."""
    fig, axes = _figure(len(panels))
    handles = []
    for ax, (key, ylabel) in zip(axes, panels):
        for i, (name, trials) in enumerate(series.items()):
            mean = np.array([t.mean(key) for t in trials])
            sd = np.array([t.sd(key) for t in trials])
            line, = ax.plot(x, mean, marker="o", linewidth=1.8, **_style(i))
            ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.18, linewidth=0)
            if ax is axes[0]:
                handles.append(line)
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(suptitle, fontsize=11)
    seeds = len(next(iter(series.values()))[0].metrics)
    _save(fig, path, handles, list(series), f"mean of {seeds} seeds, band ±1 sd")
