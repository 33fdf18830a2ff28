"""Rerun everything: both models, every strategy, exports, reference outputs and reports.

From ``models/``::

    /usr/bin/python3 -m training.run_all

Every run is seeded and uses two threads, so the files written are the committed ones.
"""

from __future__ import annotations

import time

from . import ranking, ranking_mtl, shapes
from .common import relative_to_models
from .reports import write_ranking_report, write_shapes_report
from .strategies import StrategyConfig

#: The strategies compared for ``shapes``. The weighted run gives the class loss 0.02 and the
#: box loss 0.98: at initialisation the cross-entropy (~1.4) is ~70x the smooth-L1 of the
#: normalised box (~0.02), so this weighting roughly equalises the two heads' contributions.
SHAPES_STRATEGIES = (
    StrategyConfig("sum", shapes.LEARNING_RATE),
    StrategyConfig("weighted", shapes.LEARNING_RATE, weights={"class": 0.02, "bbox": 0.98}),
    StrategyConfig("uncertainty", shapes.LEARNING_RATE),
    StrategyConfig("disjoint", shapes.LEARNING_RATE, head_lr={"class": 1e-3, "bbox": 2e-3}),
)

#: The strategies compared for the multi-head ranking trunk; ``--alpha 0.5`` generalised to
#: three heads gives click 0.5 and 0.25 to each regression head.
RANKING_STRATEGIES = (
    StrategyConfig("sum", ranking.LEARNING_RATE),
    StrategyConfig("weighted", ranking.LEARNING_RATE, weights={"click": 0.5, "dwell": 0.25, "revenue": 0.25}),
    StrategyConfig("uncertainty", ranking.LEARNING_RATE),
    StrategyConfig("disjoint", ranking.LEARNING_RATE, head_lr={"click": 2e-3, "dwell": 2e-3, "revenue": 1e-3}),
)

#: The loss-scale experiment: revenue in currency units (MSE in the thousands).
RAW_REVENUE_STRATEGIES = (
    StrategyConfig("sum", ranking.LEARNING_RATE),
    StrategyConfig("uncertainty", ranking.LEARNING_RATE),
    StrategyConfig("disjoint", ranking.LEARNING_RATE, head_lr={"click": 2e-3, "dwell": 2e-3, "revenue": 1e-3}),
)


def run_shapes() -> None:
    """Train every strategy, export the best by validation, write the report."""
    splits = shapes.make_splits()
    runs = []
    for config in SHAPES_STRATEGIES:
        print(f"shapes: {config.describe()}", flush=True)
        runs.append(shapes.run_strategy(config, splits))
    best = shapes.select_best(runs)
    shapes.export(best, splits)
    write_shapes_report(runs, best)


def run_ranking() -> None:
    """Seed tables, independent members, every multi-head strategy, the loss-scale runs."""
    data = ranking.load_data(write_features=True)
    print("ranking: independent members", flush=True)
    independent = ranking.run_independent(data)
    ranking.export_independent(independent, data)
    mtl_runs = []
    for config in RANKING_STRATEGIES:
        print(f"ranking-mtl: {config.describe()}", flush=True)
        mtl_runs.append(ranking_mtl.run_mtl(config, data))
    raw_runs = []
    for config in RAW_REVENUE_STRATEGIES:
        print(f"ranking-mtl: {config.describe()}, raw revenue", flush=True)
        raw_runs.append(ranking_mtl.run_mtl(config, data, raw_revenue=True))
    committed = next(r for r in mtl_runs if r.result.strategy.name == "uncertainty")
    ranking_mtl.export(committed, data)
    write_ranking_report(data, independent, mtl_runs, raw_runs, committed)


def main() -> None:
    start = time.perf_counter()
    run_shapes()
    run_ranking()
    for path in (shapes.MODEL_DIR, ranking.MODEL_DIR, ranking_mtl.MODEL_DIR):
        print(f"wrote {relative_to_models(path)}")
    print(f"total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
