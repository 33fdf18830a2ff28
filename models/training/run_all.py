"""Rerun every experiment and write the reports; optionally retrain and export the served models.

From ``models/``::

    /usr/bin/python3 -m training.run_all                        # every table and plot (REPORT.md, *.png)
    /usr/bin/python3 -m training.run_all --smoke --out "$(mktemp -d)"   # the same code paths in seconds, for CI
    /usr/bin/python3 -m training.run_all --export               # also retrain and export the served models

The experiments write only ``REPORT.md`` and ``*.png`` under ``--out`` (default: this model
repository); the served models' files are rewritten only with ``--export``. ``--smoke`` uses
tiny data, few epochs and two seeds, exports the ``conversion`` model into ``--out`` and checks
it, and refuses to write into the model repository. Any failure exits non-zero.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

from . import experiments, ranking, ranking_mtl, reports, shapes
from .common import MODELS_DIR
from .strategies import StrategyConfig

#: The strategies the served shapes model is chosen from (the full recipe), and how.
SERVED_SHAPES_STRATEGIES = (
    StrategyConfig("sum", shapes.LEARNING_RATE),
    StrategyConfig("weighted", shapes.LEARNING_RATE, weights={"class": 0.02, "bbox": 0.98}),
    StrategyConfig("uncertainty", shapes.LEARNING_RATE),
    StrategyConfig("disjoint", shapes.LEARNING_RATE, head_lr={"class": 1e-3, "bbox": 2e-3}),
)


def export_served() -> None:
    """Retrain the served demo models with their recipes and rewrite their files (seeded: identical bytes)."""
    splits = shapes.make_splits()
    runs = [shapes.run_strategy(config, splits) for config in SERVED_SHAPES_STRATEGIES]
    shapes.export(shapes.select_best(runs), splits)
    data = ranking.load_data(write_features=True)
    ranking.export_independent(ranking.run_independent(data), data)
    ranking_mtl.export(ranking_mtl.run_mtl(StrategyConfig("uncertainty", ranking.LEARNING_RATE), data), data)
    experiments.export_conversion(experiments.FULL, MODELS_DIR / "conversion")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny budget, two seeds: checks the pipeline end to end")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where the reports go (default: models/)")
    parser.add_argument("--export", action="store_true", help="also retrain and export the served models")
    parser.add_argument("--only", choices=("shapes", "ranking", "conversion"), action="append",
                        help="run only these experiments (repeatable)")
    parser.add_argument("--results", type=Path, default=None,
                        help="keep the experiments' results in this file and reuse them if it exists, so the "
                             "reports can be rewritten without retraining")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.smoke and (out == MODELS_DIR or MODELS_DIR in out.parents):
        parser.error("--smoke writes a throw-away report: give --out a folder outside models/")
    if args.smoke and args.export:
        parser.error("--smoke never rewrites the served models")
    budget = experiments.SMOKE if args.smoke else experiments.FULL
    only = set(args.only or ("shapes", "ranking", "conversion"))
    start = time.perf_counter()
    timings = {}
    cached = pickle.loads(args.results.read_bytes()) if args.results and args.results.exists() else {}

    def results(name: str, run):
        if name not in cached:
            t = time.perf_counter()
            cached[name] = run(budget)
            timings[name] = time.perf_counter() - t
            if args.results:
                args.results.write_bytes(pickle.dumps(cached))
        return cached[name]

    if "shapes" in only:
        reports.write_shapes_report(results("shapes", experiments.run_shapes), out / "shapes")
    if "ranking" in only:
        reports.write_ranking_report(results("ranking", experiments.run_ranking), out / "ranking")
    if "conversion" in only:
        reports.write_conversion_report(results("conversion", experiments.run_conversion), budget, out / "conversion")
        if args.smoke:
            experiments.export_conversion(budget, out / "conversion")
    if args.export:
        t = time.perf_counter()
        export_served()
        timings["export"] = time.perf_counter() - t
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s")
    print(f"wrote reports under {out}; total time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
