"""The experiment grid behind the reports: every configuration trained over several seeds.

``Budget`` says how much data, how many epochs and how many seeds each experiment gets;
``FULL`` is what the committed reports use, ``SMOKE`` a seconds-long pass over the same code
paths for CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import conversion, ranking, ranking_mtl, shapes, shapes_data
from .ranking import HEAD_NAMES, RankingData
from .stats import Trial, run_trial, run_trials
from .strategies import EpochRecord, StrategyConfig


@dataclass(frozen=True)
class Budget:
    seeds: int
    shapes_sizes: tuple[int, int, int]
    shapes_epochs: int
    hard_sizes: tuple[int, int, int]
    hard_epochs: int
    ranking_epochs: int
    conversion_seeds: int
    conversion_sizes: tuple[int, int, int]
    conversion_epochs: int
    ranking_rows: int | None = None  # keep only this many rows of each ranking split (smoke)


#: The served recipes (shapes: 24,000 images x 5 epochs, 1.5-3 min per run on two shared cores;
#: ranking: 20 epochs) are cut so that every configuration can be repeated over the seeds within
#: the 45-minute budget of the whole run: shapes 4,000 images x 3 epochs, ranking 10 epochs.
FULL = Budget(seeds=5, shapes_sizes=(4000, 1000, 2000), shapes_epochs=3, hard_sizes=(4000, 1000, 2000),
              hard_epochs=4, ranking_epochs=10, conversion_seeds=8,
              conversion_sizes=conversion.SIZES, conversion_epochs=conversion.EPOCHS)
SMOKE = Budget(seeds=2, shapes_sizes=(256, 128, 128), shapes_epochs=1, hard_sizes=(256, 128, 128), hard_epochs=2,
               ranking_epochs=1, conversion_seeds=2, conversion_sizes=(1500, 800, 800), conversion_epochs=2,
               ranking_rows=3000)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- shapes

#: Per-head rates of the served shapes model's disjoint run: the box head learns faster.
SHAPES_HEAD_LR = {"class": 1e-3, "bbox": 2e-3}
LR = shapes.LEARNING_RATE

SHAPES_STANDARD = (
    ("S1", StrategyConfig("sum", LR)),
    ("S2", StrategyConfig("weighted", LR, weights={"class": 0.02, "bbox": 0.98})),
    ("S3", StrategyConfig("uncertainty", LR)),
    ("S4", StrategyConfig("gradnorm", LR)),
    ("S5", StrategyConfig("disjoint", LR, head_lr=SHAPES_HEAD_LR)),
)
SHAPES_HARD = (
    ("H1", StrategyConfig("sum", LR)),
    ("H2", StrategyConfig("uncertainty", LR)),
    ("H3", StrategyConfig("gradnorm", LR)),
    ("H4", StrategyConfig("sum", LR, head_lr=SHAPES_HEAD_LR,
                          label="sum + per-head lr (class=0.001, bbox=0.002), one optimizer")),
    ("H5", StrategyConfig("disjoint", LR, head_lr={"class": LR, "bbox": LR}, label="disjoint, one lr for all")),
    ("H6", StrategyConfig("disjoint", LR, head_lr=SHAPES_HEAD_LR)),
)
#: alpha is the class loss's weight, 1 - alpha the box loss's. 0.5 is left out: it is the plain
#: sum halved, which Adam (invariant to a constant loss scale) trains like row H1.
SHAPES_SWEEP = (0.01, 0.03, 0.1, 0.3, 0.8)


@dataclass
class ShapesResults:
    standard: dict[str, Trial]
    hard: dict[str, Trial]
    sweep: dict[float, Trial]
    budget: Budget


def _shapes_trials(configs, splits: shapes.Splits, epochs: int, seeds: int, log: Log) -> dict[str, Trial]:
    def runner(config: StrategyConfig):
        def one(seed: int):
            run = shapes.run_strategy(config, splits, epochs, seed, _quiet)
            extras = run.result.log_variances or run.result.task_weights or {}
            return run.test_metrics, run.result.history, run.result.seconds, extras
        return config.describe(), one
    return run_trials({row: runner(config) for row, config in configs}, [shapes.SEED + 1000 * k for k in range(seeds)], log)


def run_shapes(budget: Budget, log: Log = print) -> ShapesResults:
    log("shapes, served setting (reduced budget)")
    standard = _shapes_trials(SHAPES_STANDARD, shapes.make_splits(sizes=budget.shapes_sizes), budget.shapes_epochs,
                              budget.seeds, log)
    log("shapes, hard setting and loss weight sweep")
    hard_splits = shapes.make_splits(setting=shapes_data.HARD, sizes=budget.hard_sizes)
    sweep_configs = tuple((f"W{i + 1}", StrategyConfig("weighted", LR, weights={"class": a, "bbox": round(1 - a, 4)}))
                          for i, a in enumerate(SHAPES_SWEEP))
    both = _shapes_trials(SHAPES_HARD + sweep_configs, hard_splits, budget.hard_epochs, budget.seeds, log)
    hard = {row: both[row] for row, _ in SHAPES_HARD}
    return ShapesResults(standard, hard, {a: both[row] for a, (row, _) in zip(SHAPES_SWEEP, sweep_configs)}, budget)


# --------------------------------------------------------------------------- ranking

RLR = ranking.LEARNING_RATE
RANKING_HEAD_LR = {"click": 2e-3, "dwell": 2e-3, "revenue": 1e-3}
EQUAL_LR = {h: RLR for h in HEAD_NAMES}
RANKING_STRATEGIES = (
    ("R2", StrategyConfig("sum", RLR)),
    ("R3", StrategyConfig("weighted", RLR, weights={"click": 0.5, "dwell": 0.25, "revenue": 0.25})),
    ("R4", StrategyConfig("uncertainty", RLR)),
    ("R5", StrategyConfig("gradnorm", RLR)),
    ("R6", StrategyConfig("disjoint", RLR, head_lr=RANKING_HEAD_LR)),
    ("R7", StrategyConfig("sum", RLR, head_lr=RANKING_HEAD_LR,
                          label="sum + per-head lr (click=0.002, dwell=0.002, revenue=0.001), one optimizer")),
    ("R8", StrategyConfig("disjoint", RLR, head_lr=EQUAL_LR, label="disjoint, one lr for all")),
    ("R9", StrategyConfig("disjoint", RLR, head_lr=EQUAL_LR, balance_trunk=False,
                          label="separate optimizers only (one lr, plain gradient sum)")),
)
#: Dwell's weight raised tenfold: the case where letting its gradient into the click head costs most.
DWELL_HEAVY = {"click": 1.0, "dwell": 10.0, "revenue": 1.0}
STOP_GRADIENT = (
    ("G1", StrategyConfig("sum", RLR, label="sum, stop-gradient on"), True),
    ("G2", StrategyConfig("sum", RLR, label="sum, stop-gradient off"), False),
    ("G3", StrategyConfig("weighted", RLR, weights=DWELL_HEAVY, label="dwell weight 10, stop-gradient on"), True),
    ("G4", StrategyConfig("weighted", RLR, weights=DWELL_HEAVY, label="dwell weight 10, stop-gradient off"), False),
)
RAW_REVENUE = (
    ("L2", StrategyConfig("sum", RLR)),
    ("L3", StrategyConfig("uncertainty", RLR)),
    ("L4", StrategyConfig("gradnorm", RLR)),
    ("L5", StrategyConfig("disjoint", RLR, head_lr=RANKING_HEAD_LR)),
)


@dataclass
class RankingResults:
    data: RankingData
    independent: Trial
    strategies: dict[str, Trial]
    stop_gradient: dict[str, Trial]
    raw: dict[str, Trial]
    budget: Budget


def _mtl_metrics(run: ranking_mtl.MTLRun, data: RankingData) -> dict[str, float]:
    """Test metrics plus the click head's calibration: mean predicted probability minus the click rate."""
    raw = ranking.predict(run.model, data.test)["click"].ravel().astype(np.float64)
    return {**run.test_metrics, "click_calibration": float((1 / (1 + np.exp(-raw))).mean() - data.test.click.mean())}


def _mtl_runner(config: StrategyConfig, data: RankingData, budget: Budget, raw_revenue: bool = False,
                stop_gradient: bool = True):
    def one(seed: int):
        run = ranking_mtl.run_mtl(config, data, raw_revenue, budget.ranking_epochs, seed, stop_gradient, _quiet)
        extras = run.result.log_variances or run.result.task_weights or {}
        return _mtl_metrics(run, data), run.result.history, run.result.seconds, extras
    return config.describe() + (", raw revenue" if raw_revenue else ""), one


def run_ranking(budget: Budget, log: Log = print) -> RankingResults:
    data = ranking.load_data(write_features=False)
    if budget.ranking_rows:
        keep = np.arange(budget.ranking_rows)
        data.train, data.val, data.test = (split.subset(keep) for split in (data.train, data.val, data.test))
    log("ranking, independent members")

    def independent(seed: int):
        run = ranking.run_independent(data, budget.ranking_epochs, seed, _quiet)
        # One record per epoch with every member's losses, so the members plot as one "model".
        history = [EpochRecord(epoch[0].epoch, {k: v for r in epoch for k, v in r.train.items()},
                               {k: v for r in epoch for k, v in r.val.items()})
                   for epoch in zip(*(r.history for r in run.results.values()))]
        return run.test_metrics, history, sum(r.seconds for r in run.results.values()), {}

    ind = run_trial("independent members", [ranking.SEED + 1000 * k for k in range(budget.seeds)], independent, log)
    log("ranking-mtl: strategies, stop-gradient, raw revenue")
    configs = {row: _mtl_runner(c, data, budget) for row, c in RANKING_STRATEGIES}
    configs.update({row: _mtl_runner(c, data, budget, stop_gradient=on) for row, c, on in STOP_GRADIENT})
    configs.update({row: _mtl_runner(c, data, budget, raw_revenue=True) for row, c in RAW_REVENUE})
    trials = run_trials(configs, [ranking_mtl.MTL_SEED + 1000 * k for k in range(budget.seeds)], log)
    pick = lambda rows: {row: trials[row] for row, *_ in rows}  # noqa: E731
    return RankingResults(data, ind, pick(RANKING_STRATEGIES), pick(STOP_GRADIENT), pick(RAW_REVENUE), budget)


# --------------------------------------------------------------------------- conversion

def run_conversion(budget: Budget, log: Log = print) -> conversion.Results:
    log("conversion")
    data = conversion.load_data(budget.conversion_sizes)
    return conversion.run_experiment(budget.conversion_seeds, data, budget.conversion_epochs, log=log)


def export_conversion(budget: Budget, model_dir, log: Log = print) -> conversion.Run:
    """Train the served configuration (multi-head, click weight 1, seed 0) and write the model folder."""
    data = conversion.load_data(budget.conversion_sizes)
    run = conversion.train_model("multi-head", conversion.SERVED_WEIGHT, data, conversion.SEED,
                                 budget.conversion_epochs, _quiet)
    conversion.export(run, data, model_dir, epochs=budget.conversion_epochs)
    log(f"conversion: exported, test {run.test_metrics}")
    return run
