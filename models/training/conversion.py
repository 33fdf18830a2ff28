"""The ``conversion`` experiment and model: a sparse, noisy primary task and a dense auxiliary one.

Synthetic visits with eight standardised behaviour signals. A visit converts only after a
click, ``P(conversion) = P(click) * P(purchase | click)``, so the two tasks share part of their
structure (the click factor) and differ in the rest (the purchase factor). Clicks are dense
(about a third of the visits) and observed exactly. Conversions are sparse (a few percent)
and noisy: 30% of the true conversions are never attributed, and 0.4% of all visits report
one that did not happen. Held-out AUC is measured against the true conversions.

Three ways to train the conversion score are compared:

``multi-head``  shared trunk, a conversion head and a click head, ``L = L_conv + w L_click``;
                only the conversion head is served, the click head is trained but not served.
``unified``     shared trunk and ONE head trained on both labels, ``L = L_conv(s) + w L_click(s)``.
``primary``     the conversion head alone.

plus two networks trained jointly on conversions with a consistency loss between their
predictions (deep mutual learning), its weight swept.

Run from ``models/``::

    /usr/bin/python3 -m training.conversion              # train the served configuration, print metrics
    /usr/bin/python3 -m training.conversion --export     # and write models/conversion
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import onnx_tools
from .common import FRAMEWORK, MODELS_DIR, Float32Array, dump_json, setup_torch
from .ranking import BATCHING, INTRA_OP_THREADS, auc
from .stats import Trial, run_trials
from .strategies import EpochRecord, Head, StrategyConfig, train

NAME = "conversion"
MODEL_DIR = MODELS_DIR / NAME
DATA_SEED, SEED = 3101, 31
COLUMNS = ("sessions_7d", "pages_per_session", "cart_adds_30d", "days_since_visit",
           "price_level", "discount_level", "email_opens_30d", "mobile_share")
SIZES = (5000, 4000, 20000)  # train, validation, test
EPOCHS = 30
BATCH_SIZE = 256
LEARNING_RATE = 2e-3
MISSED_CONVERSIONS, FALSE_CONVERSIONS = 0.3, 0.004
#: Auxiliary (click) loss weights compared, and the one the served model uses.
AUX_WEIGHTS = (0.1, 0.3, 1.0, 3.0)
SERVED_WEIGHT = 1.0
CONSISTENCY_WEIGHTS = (0.0, 0.3, 1.0, 3.0)
#: Decision thresholds: a conversion is rare, so 0.5 would almost never fire; clicks are common.
THRESHOLDS = {"conversion": 0.1, "click": 0.5}


@dataclass
class Split:
    """``features`` float32 [N, 8]; observed labels; the true conversion (evaluation only)."""

    features: np.ndarray
    click: np.ndarray
    conversion: np.ndarray
    true_conversion: np.ndarray

    def __len__(self) -> int:
        return len(self.click)


@dataclass
class ConversionData:
    train: Split
    val: Split
    test: Split


def generate(count: int, rng: np.random.Generator) -> Split:
    """Visits and their outcomes; features rounded to 3 decimals as a client would send them."""
    x = np.round(rng.normal(size=(count, len(COLUMNS))), 3).astype(np.float32).astype(np.float64)
    engagement = np.tanh(x[:, 0] + 0.6 * x[:, 1])  # shared by both tasks
    click_logit = -1.0 + 1.6 * engagement + 0.9 * x[:, 2] * x[:, 3] + 0.5 * x[:, 6]
    purchase_logit = -3.2 + 1.0 * engagement - 0.9 * x[:, 4] + 0.7 * x[:, 5] * (x[:, 7] > 0)
    click = rng.uniform(size=count) < 1 / (1 + np.exp(-click_logit))
    true_conversion = click & (rng.uniform(size=count) < 1 / (1 + np.exp(-purchase_logit)))
    observed = (true_conversion & (rng.uniform(size=count) >= MISSED_CONVERSIONS)) | (rng.uniform(size=count) < FALSE_CONVERSIONS)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return Split(f32(x), f32(click), f32(observed), f32(true_conversion))


def load_data(sizes: Sequence[int] = SIZES) -> ConversionData:
    rng = np.random.default_rng(DATA_SEED)
    return ConversionData(*(generate(n, rng) for n in sizes))


class ConversionNet(nn.Module):
    """Shared 8 -> 64 -> 32 trunk; a 32 -> 16 -> 1 conversion head and, unless ``unified``, a
    click head of the same shape. ``unified`` answers both names from the one head."""

    def __init__(self, unified: bool = False) -> None:
        super().__init__()
        self.unified = unified
        self.body = nn.Sequential(nn.Linear(len(COLUMNS), 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.conversion_head = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
        self.click_head = None if unified else nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def trunk(self, x: Tensor) -> Tensor:
        return self.body(x)

    def heads(self, z: Tensor) -> dict[str, Tensor]:
        conversion = self.conversion_head(z)
        return {"conversion": conversion, "click": conversion if self.click_head is None else self.click_head(z)}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.body.parameters())

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        head = self.conversion_head if name == "conversion" or self.click_head is None else self.click_head
        return list(head.parameters())

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """ONNX signature: ``features`` -> (``conversion_logit``, ``click_logit``)."""
        out = self.heads(self.trunk(features))
        return out["conversion"], out["click"]


class MutualPair(nn.Module):
    """Two conversion networks trained side by side; ``heads`` returns both scores and, stacked,
    the pair the consistency loss compares."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = ConversionNet(), ConversionNet()

    def trunk(self, x: Tensor) -> Tensor:
        return x  # each network has its own trunk, so nothing is shared

    def heads(self, x: Tensor) -> dict[str, Tensor]:
        a, b = self.a.heads(self.a.trunk(x))["conversion"], self.b.heads(self.b.trunk(x))["conversion"]
        return {"a": a, "b": b, "consistency": torch.cat([a, b], dim=1)}

    def trunk_parameters(self) -> list[nn.Parameter]:
        return []

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        return list(self.parameters())


def _bce(logit: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logit, target)


def _consistency(pair: Tensor, _: Tensor) -> Tensor:
    """Each network's cross-entropy against the other's (fixed) probability: KL up to a constant."""
    a, b = pair[:, :1], pair[:, 1:]
    return _bce(a, torch.sigmoid(b).detach()) + _bce(b, torch.sigmoid(a).detach())


def _targets(split: Split) -> dict[str, Tensor]:
    conversion = torch.from_numpy(split.conversion).unsqueeze(1)
    return {"conversion": conversion, "click": torch.from_numpy(split.click).unsqueeze(1),
            "a": conversion, "b": conversion, "consistency": conversion}


def _batches(split: Split, epoch: int, seed: int, names: Sequence[str]) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed * 100 + epoch))
    x, targets = torch.from_numpy(split.features), _targets(split)
    for start in range(0, len(split), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        yield x.index_select(0, idx), {n: targets[n].index_select(0, idx) for n in names}


def _outputs(model: nn.Module, split: Split) -> dict[str, Tensor]:
    """Eval-mode raw outputs, [N, 1] per head ([N, 2] for the consistency pair)."""
    model.train(False)
    with torch.no_grad():
        return model.heads(model.trunk(torch.from_numpy(split.features)))


def _scores(model: nn.Module, split: Split) -> dict[str, np.ndarray]:
    return {k: v.numpy()[:, 0] for k, v in _outputs(model, split).items() if v.shape[1] == 1}


def metrics(conversion_logit: np.ndarray, split: Split) -> dict[str, float]:
    """AUC against the true and the observed conversions; log loss and mean probability
    against the observed ones (what a served conversion probability is judged on)."""
    p = 1 / (1 + np.exp(-conversion_logit.astype(np.float64)))
    y = split.conversion.astype(np.float64)
    eps = 1e-7
    return {"auc_true": auc(conversion_logit, split.true_conversion), "auc_observed": auc(conversion_logit, split.conversion),
            "log_loss": float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))),
            "mean_probability": float(p.mean())}


@dataclass
class Run:
    model: nn.Module
    history: list[EpochRecord]
    seconds: float
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]


def train_model(kind: str, weight: float, data: ConversionData, seed: int, epochs: int = EPOCHS,
                log: Callable[[str], None] = print) -> Run:
    """Train ``kind`` (multi-head | unified | primary | mutual) with auxiliary weight ``weight``.

    The model kept is the epoch with the best validation AUC on the observed conversions (the
    only labels a practitioner has), so no configuration is judged after it has overfitted
    the few positives.
    """
    setup_torch(seed)
    if kind == "mutual":
        model: nn.Module = MutualPair()
        heads = [Head("a", "binary", _bce), Head("b", "binary", _bce), Head("consistency", "binary", _consistency)]
        weights = {"a": 1.0, "b": 1.0, "consistency": weight}
        score = lambda s: (s["a"] + s["b"]) / 2  # noqa: E731  (the pair's mean logit decides the epoch)
    else:
        model = ConversionNet(unified=kind == "unified")
        heads = [Head("conversion", "binary", _bce)] + ([Head("click", "binary", _bce)] if kind != "primary" else [])
        weights = {"conversion": 1.0, "click": weight}
        score = lambda s: s["conversion"]  # noqa: E731
    names = [h.name for h in heads]
    best: dict = {"auc": -1.0, "state": None}
    val_targets = _targets(data.val)

    def validate() -> dict[str, float]:
        outputs = _outputs(model, data.val)
        val_auc = auc(score({k: v.numpy()[:, 0] for k, v in outputs.items()}), data.val.conversion)
        if val_auc > best["auc"]:
            best.update(auc=val_auc, state={k: v.clone() for k, v in model.state_dict().items()})
        return {h.name: float(h.loss(outputs[h.name], val_targets[h.name])) for h in heads}

    steps = -(-len(data.train) // BATCH_SIZE)
    config = StrategyConfig("weighted", LEARNING_RATE, weights=weights)
    result = train(model, heads, config, epochs, lambda e: _batches(data.train, e, seed, names), steps, validate, log)
    model.load_state_dict(best["state"])
    model.train(False)
    val, test = _scores(model, data.val), _scores(model, data.test)
    out = lambda s, split: metrics(score(s), split)  # noqa: E731
    test_metrics = out(test, data.test)
    if kind == "mutual":  # the served network would be one of the pair
        test_metrics["auc_true_single"] = auc(test["a"], data.test.true_conversion)
    return Run(model, result.history, result.seconds, out(val, data.val), test_metrics)


@dataclass
class Results:
    """Every trial of the experiment, by configuration."""

    primary: Trial
    multi_head: dict[float, Trial]
    unified: dict[float, Trial]
    mutual: dict[float, Trial]
    data: ConversionData
    epochs: int


def seed_of(k: int) -> int:
    return SEED + 1000 * k


def run_experiment(seeds: int, data: ConversionData, epochs: int = EPOCHS, weights: Sequence[float] = AUX_WEIGHTS,
                   consistency: Sequence[float] = CONSISTENCY_WEIGHTS, log: Callable[[str], None] = print) -> Results:
    quiet = lambda _: None  # noqa: E731
    seed_list = [seed_of(k) for k in range(seeds)]

    def runner(label: str, kind: str, weight: float):
        def one(seed: int):
            run = train_model(kind, weight, data, seed, epochs, quiet)
            return run.test_metrics, run.history, run.seconds, {}
        return label, one

    configs = {("primary", 0.0): runner("(c) primary alone", "primary", 0.0)}
    configs.update({("multi-head", w): runner(f"(a) multi-head, click weight {w:g}", "multi-head", w) for w in weights})
    configs.update({("unified", w): runner(f"(b) unified head, click weight {w:g}", "unified", w) for w in weights})
    configs.update({("mutual", w): runner(f"two networks, consistency weight {w:g}", "mutual", w) for w in consistency})
    trials = run_trials(configs, seed_list, log)
    of = lambda kind: {w: t for (k, w), t in trials.items() if k == kind}  # noqa: E731
    return Results(primary=trials[("primary", 0.0)], multi_head=of("multi-head"), unified=of("unified"),
                   mutual=of("mutual"), data=data, epochs=epochs)


# --------------------------------------------------------------------------- export

def export(run: Run, data: ConversionData, model_dir: Path = MODEL_DIR, weight: float = SERVED_WEIGHT,
           epochs: int = EPOCHS) -> None:
    """Write model.json, 1/model.onnx and 1/reference.json of the served multi-head model."""
    version_dir = model_dir / "1"
    n = onnx_tools.REFERENCE_COUNT
    x = torch.from_numpy(data.test.features[:n])
    path = version_dir / "model.onnx"
    model = run.model.eval()
    onnx_tools.export(model, x[:2], path, "features", ["conversion_logit", "click_logit"])
    with torch.no_grad():
        conversion, click = (t.numpy() for t in model(x))
    onnx_tools.verify(path, {"features": x.numpy()}, {"conversion_logit": conversion, "click_logit": click})
    binary = lambda name, served: {"name": name, "output": f"{name}_logit", "kind": "binary",  # noqa: E731
                                   "activation": "sigmoid", "threshold": THRESHOLDS[name], "loss": "bce", "served": served}
    manifest = {
        "name": NAME,
        "description": "Sparse, noisy conversion labels learned with the help of dense click labels: a shared trunk "
                       "with a served conversion head and a click head that is trained but not served.",
        "intraOpThreads": INTRA_OP_THREADS,
        "inputs": [{"name": "features", "dataType": "float32", "shape": [-1, len(COLUMNS)]}],
        "members": None,
        "features": {"source": "inline", "input": "features", "columns": list(COLUMNS)},
        "heads": [binary("conversion", True), binary("click", False)],
        "batching": BATCHING,
        "loss": {"combination": "weighted", "weights": {"conversion": 1.0, "click": weight}},
        "training": {"strategy": "weighted", "seed": SEED, "epochs": epochs, "learningRate": LEARNING_RATE,
                     "selection": "epoch with the best validation AUC", "kit": "models/training"},
    }
    dump_json(manifest, model_dir / "model.json")
    reference = {
        "model": NAME, "version": 1, "framework": FRAMEWORK,
        "inputs": {"features": {"shape": [n, len(COLUMNS)], "data": Float32Array(data.test.features[:n])}},
        "outputs": {"conversion_logit": {"shape": list(conversion.shape), "data": Float32Array(conversion)},
                    "click_logit": {"shape": list(click.shape), "data": Float32Array(click)}},
    }
    dump_json(reference, version_dir / "reference.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("multi-head", "unified", "primary", "mutual"), default="multi-head")
    parser.add_argument("--weight", type=float, default=SERVED_WEIGHT, help="click (or consistency) loss weight")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--export", action="store_true", help="write the trained model into models/conversion")
    args = parser.parse_args()
    if args.export and args.kind != "multi-head":
        parser.error("--export writes the multi-head model")
    data = load_data()
    run = train_model(args.kind, args.weight, data, SEED, args.epochs)
    print(json.dumps({"kind": args.kind, "weight": args.weight, "validation": run.val_metrics,
                      "test": run.test_metrics, "seconds": round(run.seconds, 1)}, indent=2))
    if args.export:
        export(run, data, weight=args.weight, epochs=args.epochs)


if __name__ == "__main__":
    main()
