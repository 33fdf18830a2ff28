"""The ``ranking-mtl`` model: one shared trunk, three heads (click, dwell, revenue).

The dwell head also sees the click head's probability through a stop-gradient: dwell depends
on whether the user clicks, so the estimate is a useful feature, but the dwell loss must not
pull the click head away from predicting clicks. The committed model is trained with
uncertainty weighting; every other strategy can be run for comparison.

Run from ``models/``::

    /usr/bin/python3 -m training.ranking_mtl --strategy uncertainty --export
    /usr/bin/python3 -m training.ranking_mtl --strategy sum --raw-revenue

``--raw-revenue`` trains the revenue head on currency units instead of a standardised target,
the loss-scale experiment in the ranking report.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from . import onnx_tools
from .common import MODELS_DIR, dump_json, setup_torch
from .ranking import (BATCHING, EPOCHS, HEAD_NAMES, HEADS, INTRA_OP_THREADS, LEARNING_RATE, OUTPUTS, RAW, SEED, BATCH_SIZE,
                      RankingData, Standardize, TargetScale, batches, features_spec, heads_spec, load_data, metrics,
                      predict, reference)
from .ranking_data import COLUMNS
from .strategies import StrategyConfig, TrainResult, add_strategy_arguments, strategy_from_args, train

MODEL_DIR = MODELS_DIR / "ranking-mtl"
MTL_SEED = SEED + 10


class RankingMTL(nn.Module):
    """Standardise all 12 columns, shared MLP trunk to 32 features, one small MLP per head."""

    def __init__(self, data: RankingData, stop_gradient: bool = True) -> None:
        super().__init__()
        self.stop_gradient = stop_gradient
        self.body = nn.Sequential(Standardize(data.feature_mean, data.feature_std),
                                  nn.Linear(len(COLUMNS), 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.click_head = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
        self.dwell_head = nn.Sequential(nn.Linear(33, 16), nn.ReLU(), nn.Linear(16, 1))
        self.revenue_head = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def trunk(self, features: Tensor) -> Tensor:
        return self.body(features)

    def heads(self, z: Tensor) -> dict[str, Tensor]:
        click = self.click_head(z)
        click_probability = torch.sigmoid(click)
        if self.stop_gradient:
            click_probability = click_probability.detach()  # dwell's loss cannot move the click head
        return {"click": click,
                "dwell": self.dwell_head(torch.cat([z, click_probability], dim=1)),
                "revenue": self.revenue_head(z)}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.body.parameters())

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        return list(getattr(self, f"{name}_head").parameters())

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """ONNX signature: ``features`` -> (``click_logit``, ``dwell``, ``revenue``)."""
        out = self.heads(self.trunk(features))
        return out["click"], out["dwell"], out["revenue"]


@dataclass
class MTLRun:
    """A trained multi-head ranking model, its curves and held-out metrics."""

    model: RankingMTL
    result: TrainResult
    scales: dict[str, TargetScale]
    raw_revenue: bool
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]

    @property
    def label(self) -> str:
        return self.result.strategy.describe() + (", raw revenue" if self.raw_revenue else "")


def run_mtl(config: StrategyConfig, data: RankingData, raw_revenue: bool = False, epochs: int = EPOCHS,
            seed: int = MTL_SEED, stop_gradient: bool = True, log: Callable[[str], None] = print) -> MTLRun:
    """Train a fresh multi-head model with one strategy; the seed sets initial weights and batch order."""
    setup_torch(seed)
    model = RankingMTL(data, stop_gradient)
    scales = dict(data.scales, revenue=RAW) if raw_revenue else data.scales

    def validate() -> dict[str, float]:
        m = metrics(predict(model, data.val), data.val, data.train, scales)
        return {name: m[f"loss_{name}"] for name in HEAD_NAMES}

    steps = -(-len(data.train) // BATCH_SIZE)
    result = train(model, [HEADS[n] for n in HEAD_NAMES], config, epochs,
                   lambda e: batches(data.train, scales, e, seed, HEAD_NAMES), steps, validate, log)
    model.eval()
    return MTLRun(model, result, scales, raw_revenue,
                  metrics(predict(model, data.val), data.val, data.train, scales),
                  metrics(predict(model, data.test), data.test, data.train, scales))


def export(run: MTLRun, data: RankingData) -> None:
    """Write models/ranking-mtl: model.json, 1/model.onnx and 1/reference.json."""
    config = run.result.strategy
    version_dir = MODEL_DIR / "1"
    n = onnx_tools.REFERENCE_COUNT
    x = torch.from_numpy(data.test.features[:n])
    path = version_dir / "model.onnx"
    onnx_tools.export(run.model, x[:2], path, "features", [OUTPUTS[h] for h in HEAD_NAMES])
    with torch.no_grad():
        outputs = dict(zip(HEAD_NAMES, (t.numpy() for t in run.model(x))))
    onnx_tools.verify(path, {"features": x.numpy()}, {OUTPUTS[h]: outputs[h] for h in HEAD_NAMES})
    loss: dict = {"combination": config.name if config.name in ("sum", "weighted", "uncertainty") else "sum",
                  "weights": dict(config.weights) if config.weights else {h: 1.0 for h in HEAD_NAMES}}
    training: dict = {"strategy": config.name, "seed": MTL_SEED, "epochs": len(run.result.history),
                      "learningRate": config.lr, "kit": "models/training"}
    if run.result.log_variances:
        # The learned s_i as trained: the service computes each head's loss in the head's raw output
        # space (standardised targets for regression heads), the quantity training minimised.
        loss["logVariances"] = {k: round(v, 4) for k, v in run.result.log_variances.items()}
    if config.head_lr:
        training["headLearningRates"] = config.head_lr
    manifest = {
        "name": "ranking-mtl",
        "description": "One shared trunk, three heads (click, dwell, revenue); the dwell head reads the "
                       "click estimate through a stop-gradient.",
        "intraOpThreads": INTRA_OP_THREADS,
        "inputs": [{"name": "features", "dataType": "float32", "shape": [-1, len(COLUMNS)]}],
        "members": None,
        "features": {**features_spec(), "seedFrom": "ranking"},
        "heads": heads_spec(run.scales),
        "batching": BATCHING,
        "loss": loss,
        "training": training,
    }
    dump_json(manifest, MODEL_DIR / "model.json")
    dump_json(reference("ranking-mtl", data.test, outputs), version_dir / "reference.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_strategy_arguments(parser, HEAD_NAMES, default_lr=LEARNING_RATE)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--raw-revenue", action="store_true", help="train revenue in currency units")
    parser.add_argument("--export", action="store_true", help="write the trained model into models/ranking-mtl")
    args = parser.parse_args()
    if args.export and args.raw_revenue:
        parser.error("--export needs standardised targets (drop --raw-revenue)")
    data = load_data(write_features=False)
    run = run_mtl(strategy_from_args(args, HEAD_NAMES), data, args.raw_revenue, args.epochs)
    print(json.dumps({"strategy": run.label, "validation": run.val_metrics, "test": run.test_metrics,
                      "logVariances": run.result.log_variances}, indent=2))
    if args.export:
        export(run, data)


if __name__ == "__main__":
    main()
