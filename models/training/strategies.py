"""Multi-task loss strategies and the training loop they share.

A multi-head model here is a shared trunk followed by one head per output. Four strategies
decide how the heads' losses train it:

``sum``
    One Adam optimizer on ``L = sum_i L_i``.
``weighted``
    One Adam optimizer on ``L = sum_i w_i L_i`` with fixed weights. For two heads
    ``--alpha A`` means ``w = (A, 1 - A)``; for more heads the first head gets ``A`` and the
    others share ``1 - A`` equally. ``--weights name=w,...`` sets every weight explicitly.
``uncertainty``
    Kendall, Gal & Cipolla (2018): one learned log-variance ``s_i`` per head and
    ``L = sum_i c_i exp(-s_i) L_i + 0.5 s_i`` with ``c_i = 0.5`` for regression and bbox heads
    (Gaussian likelihood) and ``c_i = 1`` for classification and binary heads (softmax
    likelihood). The ``s_i`` are trained jointly, with their own learning rate.
``disjoint``
    One Adam optimizer per head over that head's parameters, each with its own learning rate,
    plus one for the trunk. A head's parameters only ever see the gradient of the head's own
    loss. The trunk's gradient is formed at the shared representation ``z``: each head's
    gradient ``g_i = dL_i/dz`` is rescaled to unit L2 norm over the batch, the rescaled
    gradients are summed and that sum is back-propagated through the trunk. Every head
    therefore has the same say in the trunk whatever the scale of its loss.
``gradnorm``
    Chen et al. (2018): learned task weights ``w_i`` (summing to the number of heads) in
    ``L = sum_i w_i L_i``. After each step the weights move so that every head's weighted
    gradient norm ``w_i ||dL_i/dz||`` approaches the mean norm times ``r_i ** alpha``, where
    ``r_i`` is the head's loss relative to its first-step loss, normalised by the mean: a head
    that trains more slowly gets more weight. The norms are taken at the shared
    representation ``z`` (as ``disjoint`` does) rather than at the last shared layer's weights.

Two options isolate what ``disjoint`` bundles. ``head_lr`` with any other strategy gives each
head's parameters their own learning rate inside the one Adam optimizer (parameter groups).
``balance_trunk=False`` makes ``disjoint`` pass the plain sum of the heads' gradients to the
trunk. (Separate Adam optimizers at equal rates without the balancing are the plain sum: Adam's
update is per parameter, so splitting the parameters between optimizers changes nothing.)
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import torch
from torch import Tensor, nn

STRATEGIES = ("sum", "weighted", "uncertainty", "gradnorm", "disjoint")

#: Likelihood factor ``c_i`` of the uncertainty weighting per head kind.
UNCERTAINTY_FACTOR = {"regression": 0.5, "bbox": 0.5, "classification": 1.0, "binary": 1.0}


@dataclass(frozen=True)
class Head:
    """One output of a multi-head model as the trainer sees it."""

    name: str
    kind: str  # classification | binary | regression | bbox
    loss: Callable[[Tensor, Tensor], Tensor]


class MultiHeadModel(Protocol):
    """What the trainer needs from a model: an ``nn.Module`` with trunk and heads as separate calls."""

    def parameters(self) -> Iterator[nn.Parameter]:
        """Every trainable parameter (``nn.Module`` provides it)."""

    def train(self, mode: bool = True) -> nn.Module:
        """Switch to training mode (``nn.Module`` provides it)."""

    def trunk(self, x: Tensor) -> Tensor:
        """Shared representation ``z`` of a batch."""

    def heads(self, z: Tensor) -> dict[str, Tensor]:
        """Every head's output for the shared representation."""

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Parameters of the shared trunk."""

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        """Parameters that belong to head ``name`` alone."""


@dataclass
class StrategyConfig:
    """A strategy and its hyper-parameters, as chosen on the command line."""

    name: str
    lr: float
    weights: dict[str, float] | None = None  # weighted
    head_lr: dict[str, float] | None = None  # disjoint
    log_variance_lr: float = 0.02  # uncertainty
    balance_trunk: bool = True  # disjoint: unit-norm head gradients at the trunk
    gradnorm_alpha: float = 1.5  # gradnorm: the asymmetry exponent (the paper's synthetic-task value)
    gradnorm_lr: float = 0.025  # gradnorm: Adam learning rate of the task weights (the paper's)
    label: str | None = None  # overrides describe() in reports

    def describe(self) -> str:
        """Short human-readable label used in reports."""
        if self.label:
            return self.label
        if self.name == "weighted" and self.weights:
            return "weighted (" + ", ".join(f"{k}={v:g}" for k, v in self.weights.items()) + ")"
        if self.name == "disjoint" and self.head_lr:
            return "disjoint (lr " + ", ".join(f"{k}={v:g}" for k, v in self.head_lr.items()) + ")"
        return self.name


def _parse_pairs(text: str, head_names: Sequence[str]) -> dict[str, float]:
    """``"a=1,b=2"`` -> ``{"a": 1.0, "b": 2.0}``, requiring exactly one value per head."""
    pairs: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name not in head_names or not value:
            raise argparse.ArgumentTypeError(f"expected name=value with name in {list(head_names)}")
        pairs[name] = float(value)
    missing = set(head_names) - set(pairs)
    if missing:
        raise argparse.ArgumentTypeError(f"missing heads {sorted(missing)}")
    return pairs


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must lie in [0, 1]")
    return value


def add_strategy_arguments(parser: argparse.ArgumentParser, head_names: Sequence[str], default_lr: float) -> None:
    """Add ``--strategy`` and its options to a model's command line."""
    example = ",".join(f"{name}={1 / len(head_names):.2g}" for name in head_names)
    group = parser.add_argument_group("loss strategy")
    group.add_argument("--strategy", choices=STRATEGIES, default="sum")
    group.add_argument("--alpha", type=_unit_interval, default=0.5,
                       help=f"weighted: weight of the first head ({head_names[0]}); the others share 1-alpha")
    group.add_argument("--weights", type=lambda text: _parse_pairs(text, head_names), default=None,
                       help=f"weighted: explicit per-head weights, e.g. {example}")
    group.add_argument("--lr", type=float, default=default_lr, help="learning rate (trunk for disjoint)")
    group.add_argument("--head-lr", type=lambda text: _parse_pairs(text, head_names), default=None,
                       help="per-head learning rates, e.g. " + ",".join(f"{n}=1e-3" for n in head_names)
                       + " (disjoint: per-head optimizers; otherwise parameter groups of the one optimizer)")
    group.add_argument("--no-balance-trunk", action="store_true",
                       help="disjoint: pass the plain sum of the heads' gradients to the trunk")
    group.add_argument("--log-variance-lr", type=float, default=0.02,
                       help="uncertainty: learning rate of the log-variances")


def strategy_from_args(args: argparse.Namespace, head_names: Sequence[str]) -> StrategyConfig:
    """Turn parsed command-line options into a :class:`StrategyConfig`."""
    config = StrategyConfig(name=args.strategy, lr=args.lr, log_variance_lr=args.log_variance_lr)
    if args.strategy == "weighted":
        config.weights = args.weights or alpha_weights(args.alpha, head_names)
    if args.strategy == "disjoint":
        config.head_lr = args.head_lr or {name: args.lr for name in head_names}
        config.balance_trunk = not args.no_balance_trunk
    elif args.head_lr:
        config.head_lr = args.head_lr
    return config


def alpha_weights(alpha: float, head_names: Sequence[str]) -> dict[str, float]:
    """``--alpha`` generalised to k heads: the first head gets alpha, the rest share 1-alpha."""
    rest = (1.0 - alpha) / (len(head_names) - 1)
    return {name: (alpha if i == 0 else rest) for i, name in enumerate(head_names)}


class UncertaintyWeighting(nn.Module):
    """Learned log-variances ``s_i`` and the Kendall et al. combination of the head losses."""

    def __init__(self, heads: Sequence[Head]) -> None:
        super().__init__()
        self.names = [h.name for h in heads]
        self.factors = [UNCERTAINTY_FACTOR[h.kind] for h in heads]
        self.log_variances = nn.Parameter(torch.zeros(len(heads)))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        total = torch.zeros(())
        for i, (name, factor) in enumerate(zip(self.names, self.factors)):
            s = self.log_variances[i]
            total = total + factor * torch.exp(-s) * losses[name] + 0.5 * s
        return total

    def values(self) -> dict[str, float]:
        """Current ``s_i`` per head."""
        return {n: float(v) for n, v in zip(self.names, self.log_variances.detach())}


def _cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay to zero: large steps early, fine convergence at the end, no tuning knob."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))


@dataclass
class EpochRecord:
    """Losses of one epoch: training (mean over the epoch's batches) and validation."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    log_variances: dict[str, float] | None = None
    task_weights: dict[str, float] | None = None


@dataclass
class TrainResult:
    """Everything a training run leaves behind besides the trained model itself."""

    strategy: StrategyConfig
    history: list[EpochRecord] = field(default_factory=list)
    log_variances: dict[str, float] | None = None
    task_weights: dict[str, float] | None = None
    seconds: float = 0.0


class Trainer:
    """Runs one strategy on one multi-head model."""

    def __init__(self, model: MultiHeadModel, heads: Sequence[Head], config: StrategyConfig, total_steps: int) -> None:
        if config.name not in STRATEGIES:
            raise ValueError(f"unknown strategy {config.name!r}")
        self.model = model
        self.heads = list(heads)
        self.config = config
        self.uncertainty = UncertaintyWeighting(heads) if config.name == "uncertainty" else None
        self.optimizers: list[torch.optim.Optimizer] = []
        if config.name == "disjoint":
            head_lr = config.head_lr or {h.name: config.lr for h in heads}
            self.optimizers.append(torch.optim.Adam(model.trunk_parameters(), lr=config.lr))
            self.optimizers += [torch.optim.Adam(model.head_parameters(h.name), lr=head_lr[h.name]) for h in heads]
        else:
            if config.head_lr:
                groups = [{"params": model.trunk_parameters(), "lr": config.lr}]
                groups += [{"params": model.head_parameters(h.name), "lr": config.head_lr[h.name]} for h in heads]
                assert sum(len(g["params"]) for g in groups) == len(list(model.parameters())), \
                    "trunk and head parameters must cover the model"
            else:
                groups = [{"params": list(model.parameters()), "lr": config.lr}]
            if self.uncertainty is not None:
                groups.append({"params": list(self.uncertainty.parameters()), "lr": config.log_variance_lr})
            self.optimizers.append(torch.optim.Adam(groups))
        self.schedules = [_cosine_schedule(o, total_steps) for o in self.optimizers]
        self.task_weights: nn.Parameter | None = None
        if config.name == "gradnorm":
            self.task_weights = nn.Parameter(torch.ones(len(heads)))
            self.weight_optimizer = torch.optim.Adam([self.task_weights], lr=config.gradnorm_lr)
            self.initial_losses: Tensor | None = None

    def head_losses(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each head's own (unweighted) loss."""
        return {h.name: h.loss(outputs[h.name], targets[h.name]) for h in self.heads}

    def step(self, x: Tensor, targets: dict[str, Tensor]) -> dict[str, float]:
        """One optimisation step; returns the heads' unweighted losses for the curves."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        if self.config.name == "disjoint":
            losses = self._disjoint_backward(x, targets)
        elif self.config.name == "gradnorm":
            losses = self._gradnorm_backward(x, targets)
        else:
            losses = self.head_losses(self.model.heads(self.model.trunk(x)), targets)
            self._combine(losses).backward()
        for optimizer, schedule in zip(self.optimizers, self.schedules):
            optimizer.step()
            schedule.step()
        if self.task_weights is not None:
            self.weight_optimizer.step()
            with torch.no_grad():
                # Renormalise so the weights only share out a fixed total (the paper's constraint).
                self.task_weights.clamp_(min=1e-3)
                self.task_weights.mul_(len(self.heads) / self.task_weights.sum())
        return {name: float(loss.detach()) for name, loss in losses.items()}

    def _combine(self, losses: dict[str, Tensor]) -> Tensor:
        if self.uncertainty is not None:
            return self.uncertainty(losses)
        weights = self.config.weights or {}
        return sum(weights.get(name, 1.0) * loss for name, loss in losses.items())

    def _disjoint_backward(self, x: Tensor, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-head gradients for the heads, unit-norm-balanced gradient for the trunk."""
        z = self.model.trunk(x)
        z_head = z.detach().requires_grad_(True)
        losses = self.head_losses(self.model.heads(z_head), targets)
        trunk_grad = torch.zeros_like(z)
        for head in self.heads:
            params = self.model.head_parameters(head.name)
            grads = torch.autograd.grad(losses[head.name], [z_head, *params], retain_graph=True)
            for param, grad in zip(params, grads[1:]):
                param.grad = grad
            trunk_grad += grads[0] / (grads[0].norm() + 1e-12) if self.config.balance_trunk else grads[0]
        z.backward(trunk_grad)
        return losses

    def _gradnorm_backward(self, x: Tensor, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        """Weighted sum for the network; the GradNorm objective's gradient for the task weights."""
        assert self.task_weights is not None
        z = self.model.trunk(x)
        losses = self.head_losses(self.model.heads(z), targets)
        stacked = torch.stack([losses[h.name] for h in self.heads])
        norms = torch.stack([torch.autograd.grad(losses[h.name], z, retain_graph=True)[0].norm() for h in self.heads])
        if self.initial_losses is None:
            self.initial_losses = stacked.detach().clamp(min=1e-12)
        ratio = stacked.detach() / self.initial_losses
        weighted_norms = self.task_weights * norms.detach()
        target = (weighted_norms.mean() * (ratio / ratio.mean()) ** self.config.gradnorm_alpha).detach()
        self.weight_optimizer.zero_grad(set_to_none=True)
        (weighted_norms - target).abs().sum().backward()
        (self.task_weights.detach() * stacked).sum().backward()
        return losses

    def weights(self) -> dict[str, float] | None:
        """Current GradNorm task weights per head."""
        if self.task_weights is None:
            return None
        return {h.name: float(w) for h, w in zip(self.heads, self.task_weights.detach())}


def train(model: MultiHeadModel, heads: Sequence[Head], config: StrategyConfig, epochs: int,
          batches: Callable[[int], Iterable[tuple[Tensor, dict[str, Tensor]]]], steps_per_epoch: int,
          validate: Callable[[], dict[str, float]], log: Callable[[str], None] = print) -> TrainResult:
    """Train ``model`` for ``epochs`` epochs and record per-head loss curves.

    ``batches(epoch)`` yields the epoch's (input, targets) batches; ``validate()`` returns each
    head's unweighted loss on the validation split with the model in eval mode.
    """
    start = time.perf_counter()
    trainer = Trainer(model, heads, config, total_steps=epochs * steps_per_epoch)
    result = TrainResult(strategy=config)
    for epoch in range(1, epochs + 1):
        model.train()
        sums = {h.name: 0.0 for h in heads}
        count = 0
        for x, targets in batches(epoch):
            for name, value in trainer.step(x, targets).items():
                sums[name] += value
            count += 1
        model.train(False)
        with torch.no_grad():
            val = validate()
        record = EpochRecord(epoch, {k: v / count for k, v in sums.items()}, val,
                             trainer.uncertainty.values() if trainer.uncertainty else None, trainer.weights())
        result.history.append(record)
        log(f"  [{config.describe()}] epoch {epoch}/{epochs} "
            + " ".join(f"{k}: train {record.train[k]:.4g} val {record.val[k]:.4g}" for k in sums)
            + (" s=" + ",".join(f"{v:.2f}" for v in record.log_variances.values()) if record.log_variances else "")
            + (" w=" + ",".join(f"{v:.2f}" for v in record.task_weights.values()) if record.task_weights else ""))
    result.log_variances = trainer.uncertainty.values() if trainer.uncertainty else None
    result.task_weights = trainer.weights()
    result.seconds = time.perf_counter() - start
    return result
