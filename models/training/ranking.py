"""The ``ranking`` model: three independently trained single-task networks over one input row.

Each member reads its own subset of the 12 feature columns (a Gather inside the graph),
standardises it with constants baked into the graph and runs a small MLP. The three ONNX files
share the input ``features`` and are fused by the service at load time.

Run from ``models/``::

    /usr/bin/python3 -m training.ranking            # train and print held-out metrics
    /usr/bin/python3 -m training.ranking --export   # also write models/ranking

This module also holds what ``ranking_mtl`` shares with it: the data splits, target
standardisation, metrics and the manifest/reference writers.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import onnx_tools
from .common import FRAMEWORK, MODELS_DIR, Float32Array, dump_json, setup_torch
from .ranking_data import COLUMNS, ITEM_COLUMNS, USER_COLUMNS, Interactions, generate_interactions, write_tables
from .strategies import Head, MultiHeadModel, StrategyConfig, TrainResult, train

SEED = 11
TABLE_SEED, INTERACTION_SEED = 1101, 1102
FEATURES_DIR = MODELS_DIR / "ranking" / "features"
MODEL_DIR = MODELS_DIR / "ranking"
EPOCHS = 20
BATCH_SIZE = 256
LEARNING_RATE = 2e-3
HEAD_NAMES = ("click", "dwell", "revenue")
OUTPUTS = {"click": "click_logit", "dwell": "dwell", "revenue": "revenue"}
HEADS = {
    "click": Head("click", "binary", F.binary_cross_entropy_with_logits),
    "dwell": Head("dwell", "regression", F.mse_loss),
    "revenue": Head("revenue", "regression", F.mse_loss),
}
#: The columns each independent member reads. Click depends on taste/topic match, quality,
#: popularity and activity; dwell on length and age plus everything click depends on;
#: revenue on price, basket size and loyalty plus the item's quality signals.
_CLICK_COLUMNS = ("user_sessions_per_week", "user_taste_x", "user_taste_y",
                  "item_rating", "item_ctr_7d", "item_topic_x", "item_topic_y")
MEMBER_COLUMNS = {
    "click": _CLICK_COLUMNS,
    "dwell": ("user_age", "item_length_min", *_CLICK_COLUMNS),
    "revenue": ("user_tenure_days", "user_avg_basket", "item_price", "item_rating", "item_ctr_7d"),
}


@dataclass
class TargetScale:
    """Standardisation of one regression target: the graph predicts (y - offset) / scale."""

    offset: float
    scale: float

    def encode(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.offset) / self.scale).astype(np.float32)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return raw * self.scale + self.offset


RAW = TargetScale(0.0, 1.0)


@dataclass
class RankingData:
    """Train / validation / held-out test interactions and the training-set statistics.

    ``scales`` standardises the dwell and revenue targets; the manifests' ``scale``/``offset``
    undo it.
    """

    train: Interactions
    val: Interactions
    test: Interactions
    feature_mean: np.ndarray = field(init=False)
    feature_std: np.ndarray = field(init=False)
    scales: dict[str, TargetScale] = field(init=False)

    def __post_init__(self) -> None:
        self.feature_mean = self.train.features.mean(axis=0, dtype=np.float64)
        self.feature_std = self.train.features.std(axis=0, dtype=np.float64)
        self.scales = {name: TargetScale(float(getattr(self.train, name).mean(dtype=np.float64)),
                                          float(getattr(self.train, name).std(dtype=np.float64)))
                        for name in ("dwell", "revenue")}


def load_data(write_features: bool = True) -> RankingData:
    """Write the seed CSVs (unless asked not to), generate interactions, split 70/15/15."""
    if write_features or not (FEATURES_DIR / "users.csv").exists():
        write_tables(FEATURES_DIR, TABLE_SEED)
    data = generate_interactions(FEATURES_DIR, INTERACTION_SEED)
    order = np.random.default_rng(INTERACTION_SEED).permutation(len(data))
    cut1, cut2 = int(0.7 * len(data)), int(0.85 * len(data))
    return RankingData(data.subset(order[:cut1]), data.subset(order[cut1:cut2]), data.subset(order[cut2:]))


def target_tensors(data: Interactions, scales: dict[str, TargetScale]) -> dict[str, Tensor]:
    """Per-head [N, 1] targets: click as 0/1, regressions encoded with ``scales``."""
    return {"click": torch.from_numpy(data.click).unsqueeze(1),
            "dwell": torch.from_numpy(scales["dwell"].encode(data.dwell)).unsqueeze(1),
            "revenue": torch.from_numpy(scales["revenue"].encode(data.revenue)).unsqueeze(1)}


def batches(data: Interactions, scales: dict[str, TargetScale], epoch: int, seed: int,
            heads: Sequence[str]) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    """Shuffled mini-batches of (features, targets of ``heads``).

    Rows are taken with ``index_select``, several times faster on CPU than advanced indexing
    (``t[idx]``) with the same result.
    """
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed * 100 + epoch))
    features = torch.from_numpy(data.features)
    targets = target_tensors(data, scales)
    for start in range(0, len(data), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        yield features.index_select(0, idx), {name: targets[name].index_select(0, idx) for name in heads}


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties averaged."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    positives = labels > 0.5
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metrics(raw: dict[str, np.ndarray], data: Interactions, train_data: Interactions,
            scales: dict[str, TargetScale]) -> dict[str, float]:
    """Held-out metrics from raw graph outputs, plus each head's loss in training units."""
    out: dict[str, float] = {"click_auc": auc(raw["click"].ravel(), data.click)}
    targets = target_tensors(data, scales)
    for name in ("dwell", "revenue"):
        truth = getattr(data, name).astype(np.float64)
        pred = scales[name].decode(raw[name].ravel().astype(np.float64))
        out[f"{name}_rmse"] = float(np.sqrt(np.mean((pred - truth) ** 2)))
        # The baseline predicts the training mean for every row.
        out[f"{name}_rmse_mean"] = float(np.sqrt(np.mean((getattr(train_data, name).mean(dtype=np.float64) - truth) ** 2)))
    for name in HEAD_NAMES:
        out[f"loss_{name}"] = float(HEADS[name].loss(torch.from_numpy(raw[name]), targets[name]))
    return out


class Standardize(nn.Module):
    """(x - mean) / std with the training-set statistics stored in the graph."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class SingleTaskNet(nn.Module):
    """Gather this task's columns, standardise, MLP to one output.

    It exposes the multi-head interface with a single head so the shared training loop (and
    its loss curves) serves the independent models too.
    """

    def __init__(self, task: str, data: RankingData) -> None:
        super().__init__()
        self.task = task
        index = [COLUMNS.index(c) for c in MEMBER_COLUMNS[task]]
        self.register_buffer("columns", torch.tensor(index, dtype=torch.int64))
        self.body = nn.Sequential(Standardize(data.feature_mean[index], data.feature_std[index]),
                                  nn.Linear(len(index), 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.out = nn.Linear(32, 1)

    def trunk(self, features: Tensor) -> Tensor:
        return self.body(features.index_select(1, self.columns))

    def heads(self, z: Tensor) -> dict[str, Tensor]:
        return {self.task: self.out(z)}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.body.parameters())

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        return list(self.out.parameters())

    def forward(self, features: Tensor) -> Tensor:
        return self.out(self.trunk(features))


def predict(model: MultiHeadModel, data: Interactions) -> dict[str, np.ndarray]:
    """Eval-mode raw outputs per head of a multi-head-interface model."""
    model.train(False)
    with torch.no_grad():
        return {k: v.numpy() for k, v in model.heads(model.trunk(torch.from_numpy(data.features))).items()}


@dataclass
class IndependentRun:
    """The three trained members with their curves and held-out metrics."""

    members: dict[str, SingleTaskNet]
    results: dict[str, TrainResult]
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]


def run_independent(data: RankingData, epochs: int = EPOCHS, base_seed: int = SEED,
                    log: Callable[[str], None] = print) -> IndependentRun:
    """Train the click, dwell and revenue members one after the other, each from its own seed."""
    members: dict[str, SingleTaskNet] = {}
    results: dict[str, TrainResult] = {}
    for offset, task in enumerate(HEAD_NAMES):
        seed = base_seed + offset
        setup_torch(seed)
        model = SingleTaskNet(task, data)

        def validate(model: SingleTaskNet = model, task: str = task) -> dict[str, float]:
            raw = predict(model, data.val)[task]
            return {task: float(HEADS[task].loss(torch.from_numpy(raw), target_tensors(data.val, data.scales)[task]))}

        steps = -(-len(data.train) // BATCH_SIZE)
        results[task] = train(model, [HEADS[task]], StrategyConfig("sum", LEARNING_RATE), epochs,
                              lambda e, s=seed, t=task: batches(data.train, data.scales, e, s, [t]), steps, validate, log)
        members[task] = model.eval()
    combined = lambda split: {t: predict(m, split)[t] for t, m in members.items()}  # noqa: E731
    return IndependentRun(members, results, metrics(combined(data.val), data.val, data.train, data.scales),
                          metrics(combined(data.test), data.test, data.train, data.scales))


# --------------------------------------------------------------------------- export helpers

def features_spec() -> dict:
    """model.json ``features`` for the 12-column store input."""
    return {
        "source": "store",
        "input": "features",
        "columns": list(COLUMNS),
        "entities": [
            {"key": "user_id", "table": "users", "columns": [c for c, _ in USER_COLUMNS]},
            {"key": "item_id", "table": "items", "columns": [c for c, _ in ITEM_COLUMNS]},
        ],
    }


def heads_spec(scales: dict[str, TargetScale]) -> list[dict]:
    """model.json ``heads``; regression outputs are standardised, so scale/offset undo that."""
    regression = lambda name: {"name": name, "output": OUTPUTS[name], "kind": "regression",  # noqa: E731
                               "activation": "none", "scale": scales[name].scale,
                               "offset": scales[name].offset, "loss": "mse", "served": True}
    return [{"name": "click", "output": "click_logit", "kind": "binary", "activation": "sigmoid",
             "threshold": 0.5, "loss": "bce", "served": True}, regression("dwell"), regression("revenue")]


# A small model under concurrent requests: parallelism comes from the requests, not from threads inside one run.
INTRA_OP_THREADS = 1
# No queue delay: a batch of 64 rows runs in 0.03 ms, so waiting for one only adds latency; batches still form
# from the requests that queue while the two instances are busy.
BATCHING = {"enabled": True, "maxBatchSize": 64, "maxQueueDelayMicroseconds": 0,
            "preferredBatchSizes": [16, 32, 64], "maxQueueSize": 2048, "instances": 2}


def reference(model_name: str, data: Interactions, outputs: dict[str, np.ndarray]) -> dict:
    """reference.json body for the first 32 held-out rows (inputs are the CSV values)."""
    n = onnx_tools.REFERENCE_COUNT
    return {
        "model": model_name, "version": 1, "framework": FRAMEWORK,
        "inputs": {"features": {"shape": [n, len(COLUMNS)], "data": Float32Array(data.features[:n])}},
        "entities": [{"user_id": u, "item_id": i} for u, i in zip(data.user_keys[:n], data.item_keys[:n])],
        "outputs": {OUTPUTS[name]: {"shape": list(value.shape), "data": Float32Array(value)}
                    for name, value in outputs.items()},
    }


def export_independent(run: IndependentRun, data: RankingData) -> None:
    """Write models/ranking: model.json, 1/{click,dwell,revenue}.onnx and 1/reference.json."""
    version_dir = MODEL_DIR / "1"
    n = onnx_tools.REFERENCE_COUNT
    x = torch.from_numpy(data.test.features[:n])
    outputs: dict[str, np.ndarray] = {}
    for task, model in run.members.items():
        path = version_dir / f"{task}.onnx"
        onnx_tools.export(model, x[:2], path, "features", [OUTPUTS[task]], prefix=task)
        with torch.no_grad():
            outputs[task] = model(x).numpy()
        onnx_tools.verify(path, {"features": x.numpy()}, {OUTPUTS[task]: outputs[task]})
    names = [onnx_tools.graph_names(version_dir / f"{t}.onnx") for t in HEAD_NAMES]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2]), "member names clash"
    manifest = {
        "name": "ranking",
        "description": "Three single-task networks (click, dwell, revenue) over one user+item feature row, "
                       "fused into one graph at load time.",
        "intraOpThreads": INTRA_OP_THREADS,
        "inputs": [{"name": "features", "dataType": "float32", "shape": [-1, len(COLUMNS)]}],
        "members": [f"{t}.onnx" for t in HEAD_NAMES],
        "features": features_spec(),
        "heads": heads_spec(data.scales),
        "batching": BATCHING,
        "loss": {"combination": "sum", "weights": {name: 1.0 for name in HEAD_NAMES}},
        "training": {"strategy": "independent", "seed": SEED, "epochs": EPOCHS, "learningRate": LEARNING_RATE,
                     "kit": "models/training",
                     "memberColumns": {t: list(c) for t, c in MEMBER_COLUMNS.items()}},
    }
    dump_json(manifest, MODEL_DIR / "model.json")
    dump_json(reference("ranking", data.test, outputs), version_dir / "reference.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--export", action="store_true", help="write the trained members into models/ranking")
    args = parser.parse_args()
    data = load_data(write_features=args.export)
    run = run_independent(data, args.epochs)
    print(json.dumps({"validation": run.val_metrics, "test": run.test_metrics}, indent=2))
    if args.export:
        export_independent(run, data)


if __name__ == "__main__":
    main()
