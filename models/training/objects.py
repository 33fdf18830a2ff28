"""The ``objects`` model: three heads trained separately on frozen ResNet-18 features.

Three teams share one pretrained backbone and each trains its own small head on the features
it computes: the object's class, its bounding box and its colour. Each head is exported as its
own ONNX file over the backbone's output; the deployable member a team would ship is the
backbone composed with its head (``mhs compose``), made by the build, never committed.

    cd models && /usr/bin/python3 -m training.objects            # train, print metrics
    cd models && /usr/bin/python3 -m training.objects --export   # also write models/objects/
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from . import objects_data, onnx_backbone, onnx_tools, pngio
from .common import FRAMEWORK, MODELS_DIR, Float32Array, dump_json, setup_torch

SEED = 11
TRAIN, VALIDATION, TEST = 3000, 500, 1000
CACHE_DIR = Path(os.environ.get("OBJECTS_FEATURE_CACHE") or Path(tempfile.gettempdir()) / "multiheadserve-objects")
BATCH = 25


def splits() -> dict[str, objects_data.ObjectsData]:
    """The three splits, each from its own seed so that changing one size leaves the others."""
    return {
        "train": objects_data.generate(TRAIN, SEED),
        "validation": objects_data.generate(VALIDATION, SEED + 1),
        "test": objects_data.generate(TEST, SEED + 2),
    }


def feature_maps(name: str, data: objects_data.ObjectsData, backbone: onnx_backbone.PretrainedBackbone) -> np.ndarray:
    """The backbone's last feature map [N, 512, 7, 7] for a split, computed once and cached on disk.

    The backbone is frozen, so features are computed once per image; the cache (outside the
    repository) is keyed by the split's size and seed and by the backbone file's size.
    """
    key = f"{name}-{len(data)}-{SEED}-{onnx_backbone.backbone_path().stat().st_size}"
    path = CACHE_DIR / f"{key}.npy"
    if path.exists():
        return np.load(path)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    maps = np.empty((len(data), onnx_backbone.FEATURES, 7, 7), dtype=np.float32)
    started = time.time()
    with torch.no_grad():
        for start in range(0, len(data), BATCH):
            x = onnx_backbone.pixels_to_input(data.images[start:start + BATCH])
            maps[start:start + BATCH] = backbone(x, onnx_backbone.BACKBONE_MAP).numpy()
    print(json.dumps({"features": name, "images": len(data), "seconds": round(time.time() - started, 1)}), flush=True)
    np.save(path.with_suffix(".tmp.npy"), maps)
    os.replace(path.with_suffix(".tmp.npy"), path)
    return maps


# --------------------------------------------------------------------------- heads

#: Each head as its team ships it: name, ONNX input (the backbone value it reads), ONNX output.
HEADS = {
    "class": {"input": "features", "backbone": onnx_backbone.BACKBONE_OUTPUT, "output": "class_logits"},
    "bbox": {"input": "feature_map", "backbone": onnx_backbone.BACKBONE_MAP, "output": "bbox"},
    "colour": {"input": "features", "backbone": onnx_backbone.BACKBONE_OUTPUT, "output": "colour_logits"},
}
#: Each team's own training settings: seed, epochs, learning rate.
SETTINGS = {
    "class": {"seed": 101, "epochs": 15, "lr": 1e-3},
    "bbox": {"seed": 202, "epochs": 40, "lr": 2e-3},
    "colour": {"seed": 303, "epochs": 15, "lr": 1e-3},
}
HEAD_BATCH = 64
ACCURACY_TARGET, IOU_TARGET, COLOUR_TARGET = 0.95, 0.75, 0.95
REFERENCE_IMAGES = 8


class ClassifierHead(torch.nn.Module):
    """Pooled features [N, 512, 1, 1] to logits: a two-layer perceptron."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(onnx_backbone.FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class BoxHead(torch.nn.Module):
    """The last feature map [N, 512, 7, 7] to a normalised ``x_min, y_min, x_max, y_max`` box.

    It reads the map before the global pool: pooled features keep little of where the object is
    (a probe on them reached a mean IoU of about 0.69), the 7x7 grid keeps it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(onnx_backbone.FEATURES, 16, 1), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(16 * 49, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4), torch.nn.Sigmoid())

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.net(feature_map)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two xyxy box tensors."""
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(dim=1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def head_inputs(maps: np.ndarray, head: str) -> torch.Tensor:
    """What a head reads, from the cached 7x7 maps: the map itself, or the backbone's pooled output."""
    tensor = torch.from_numpy(maps)
    return tensor if HEADS[head]["input"] == "feature_map" else tensor.mean(dim=(2, 3), keepdim=True)


def targets(data: objects_data.ObjectsData, head: str) -> torch.Tensor:
    return torch.from_numpy({"class": data.labels, "bbox": data.boxes, "colour": data.colours}[head])


def loss_of(head: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if head == "bbox":
        return torch.nn.functional.smooth_l1_loss(output, target, beta=0.05)
    return torch.nn.functional.cross_entropy(output, target)


def metrics(head: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        output = model.eval()(x)
    result = {"loss": float(loss_of(head, output, y))}
    if head == "bbox":
        iou = box_iou(output, y)
        result.update(mean_iou=float(iou.mean()), iou_at_0_5=float((iou >= 0.5).float().mean()))
    else:
        result["accuracy"] = float((output.argmax(dim=1) == y).float().mean())
    return result


def train_head(head: str, maps: dict[str, np.ndarray], data: dict[str, objects_data.ObjectsData]) -> tuple[torch.nn.Module, dict]:
    """One team's training run: its own seed, model, Adam optimizer and cosine schedule."""
    settings = SETTINGS[head]
    setup_torch(settings["seed"])
    model = BoxHead() if head == "bbox" else ClassifierHead(len(objects_data.CLASSES if head == "class" else objects_data.COLOURS))
    x = {split: head_inputs(maps[split], head) for split in maps}
    y = {split: targets(data[split], head) for split in data}
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"], weight_decay=1e-4)
    steps = settings["epochs"] * -(-len(y["train"]) // HEAD_BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(settings["seed"])
    for _ in range(settings["epochs"]):
        model.train()
        order = torch.randperm(len(y["train"]), generator=generator)
        for start in range(0, len(order), HEAD_BATCH):
            index = order[start:start + HEAD_BATCH]
            loss = loss_of(head, model(x["train"][index]), y["train"][index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    report = {split: metrics(head, model, x[split], y[split]) for split in ("validation", "test")}
    report["settings"] = settings
    report["parameters"] = sum(p.numel() for p in model.parameters())
    return model.eval(), report


# --------------------------------------------------------------------------- export

OBJECTS_DIR = MODELS_DIR / "objects"
VERSION_DIR = OBJECTS_DIR / "1"
HEADS_DIR = VERSION_DIR / "heads"
#: The served input: RGB pixel values 0..255, NCHW; the member graphs hold the backbone's own normalisation.
INPUT = onnx_backbone.PREPROCESS_INPUT


def export_heads(heads: dict[str, torch.nn.Module], maps: np.ndarray) -> None:
    """Each head as its own ONNX file over the backbone value it reads (opset 17, dynamic batch), verified."""
    for head, model in heads.items():
        spec = HEADS[head]
        x = head_inputs(maps, head)
        path = HEADS_DIR / f"{head}.onnx"
        onnx_tools.export(model, x[:2], path, spec["input"], [spec["output"]])
        with torch.no_grad():
            expected = model(x).numpy()
        onnx_tools.verify(path, {spec["input"]: x.numpy()}, {spec["output"]: expected})


def manifest(reports: dict[str, dict]) -> dict:
    size = objects_data.IMAGE_SIZE
    return {
        "name": "objects",
        "description": "Three teams' heads on one pretrained ResNet-18 backbone (object class, bounding box, colour), "
                       "each deployed as its own complete model and fused at load so the backbone runs once.",
        "intraOpThreads": 1,
        "inputs": [{"name": INPUT, "dataType": "float32", "shape": [-1, 3, size, size]}],
        "members": [f"{head}.onnx" for head in HEADS],
        "features": {
            "source": "image",
            "input": INPUT,
            "image": {"width": size, "height": size, "channels": 3, "layout": "nchw", "resize": "bilinear",
                      "scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        },
        "heads": [
            {"name": "class", "output": "class_logits", "kind": "classification", "activation": "softmax",
             "labels": "labels.txt", "topK": 3, "loss": "softmax_cross_entropy", "served": True},
            {"name": "bbox", "output": "bbox", "kind": "bbox", "activation": "none", "boxFormat": "xyxy",
             "normalized": True, "loss": "smooth_l1", "served": True},
            {"name": "colour", "output": "colour_logits", "kind": "classification", "activation": "softmax",
             "labels": "colours.txt", "topK": 1, "loss": "softmax_cross_entropy", "served": True},
        ],
        "batching": {"enabled": True, "maxBatchSize": 16, "maxQueueDelayMicroseconds": 0,
                     "preferredBatchSizes": [8, 16], "maxQueueSize": 1024, "instances": 2},
        "loss": {"combination": "sum", "weights": {head: 1.0 for head in HEADS}},
        "training": {"strategy": "frozen-backbone", "seed": SEED, "kit": "models/training",
                     "backbone": f"{onnx_backbone.PACKAGE} {onnx_backbone.PACKAGE_VERSION}",
                     "heads": {head: reports[head]["settings"] for head in HEADS}},
    }


def reference(backbone: onnx_backbone.PretrainedBackbone, heads: dict[str, torch.nn.Module],
              test: objects_data.ObjectsData) -> dict:
    """The first test images as a client sends them, and every head's raw output computed from their pixels."""
    pixels = test.images[:REFERENCE_IMAGES]
    with torch.no_grad():
        maps = backbone(onnx_backbone.pixels_to_input(pixels), onnx_backbone.BACKBONE_MAP).numpy()
        outputs = {HEADS[head]["output"]: heads[head](head_inputs(maps, head)).numpy() for head in HEADS}
    return {
        "model": "objects", "version": 1, "framework": FRAMEWORK,
        "images": [pngio.encode_base64(p) for p in pixels],
        "labels": [objects_data.CLASSES[i] for i in test.labels[:len(pixels)]],
        "colours": [objects_data.COLOUR_NAMES[i] for i in test.colours[:len(pixels)]],
        "boxes": {"shape": [len(pixels), 4], "data": Float32Array(test.boxes[:len(pixels)])},
        "outputs": {name: {"shape": list(value.shape), "data": Float32Array(value)} for name, value in outputs.items()},
    }


def write_report(reports: dict[str, dict]) -> None:
    c, b, k = reports["class"]["test"], reports["bbox"]["test"], reports["colour"]["test"]
    passed = c["accuracy"] >= ACCURACY_TARGET and b["mean_iou"] >= IOU_TARGET and k["accuracy"] >= COLOUR_TARGET
    rows = "\n".join(
        f"| `{head}` | {HEADS[head]['input']} ({HEADS[head]['backbone']}) | {reports[head]['parameters']:,} | "
        f"{reports[head]['settings']['epochs']} | {reports[head]['settings']['lr']} | {reports[head]['settings']['seed']} | "
        + (f"mean IoU {reports[head]['test']['mean_iou']:.4f}, IoU >= 0.5 for {reports[head]['test']['iou_at_0_5']:.2%}"
           if head == "bbox" else f"accuracy {reports[head]['test']['accuracy']:.2%}") + " |"
        for head in HEADS)
    text = f"""# objects: training report

Generated by `/usr/bin/python3 -m training.objects --export` (run from `models/`); do not edit by hand.

**Backbone.** The ImageNet-trained ResNet-18 trunk of the NuGet package
`{onnx_backbone.PACKAGE}` {onnx_backbone.PACKAGE_VERSION} (MIT), a CNTK export at opset 8, with the
package's input normalisation (`ResNetPreprocess.onnx`: RGB to BGR, minus a per-pixel mean image). It is
frozen: the kit runs it in PyTorch with the weights read from the ONNX files (`onnx_backbone.py`) and
computes every image's features once. The package is restored by the build and never committed.

**Data.** Synthetic {objects_data.IMAGE_SIZE}x{objects_data.IMAGE_SIZE} RGB scenes: one object per image,
of one of {len(objects_data.CLASSES)} classes ({", ".join(objects_data.CLASSES)}), one of
{len(objects_data.COLOURS)} named colours ({", ".join(objects_data.COLOUR_NAMES)}, each jittered and shaded),
{objects_data.MIN_SIZE}..{objects_data.MAX_SIZE} px, anywhere in the image, over a muted gradient with soft
blobs and noise. The box is the object's tight pixel extent, normalised `x_min, y_min, x_max, y_max`.
{TRAIN:,} training, {VALIDATION:,} validation and {TEST:,} held-out test images (seeds {SEED}, {SEED + 1},
{SEED + 2}); every number below is measured on the held-out test images.

**Heads.** Three teams, three separate training runs (own seed, own Adam optimizer with weight decay
1e-4 and a cosine decay, batch {HEAD_BATCH}), each on the frozen features:

| head | reads | parameters | epochs | learning rate | seed | held-out quality |
|---|---|---|---|---|---|---|
{rows}

`class` and `colour` are two-layer perceptrons on the 512 pooled features (`{onnx_backbone.BACKBONE_OUTPUT}`,
[N, 512, 1, 1]), trained with cross-entropy. `bbox` reads the last 7x7 feature map before the pool
(`{onnx_backbone.BACKBONE_MAP}`, [N, 512, 7, 7]: a 1x1 convolution to 16 channels, a perceptron and a
sigmoid), trained with smooth L1 (beta 0.05): the pooled features keep too little of where the object is
(a probe on them reached a mean IoU of about 0.69).

Acceptance: class accuracy >= {ACCURACY_TARGET:.0%}, mean box IoU >= {IOU_TARGET}, colour accuracy
>= {COLOUR_TARGET:.0%}: measured {c["accuracy"]:.2%}, {b["mean_iou"]:.4f} and {k["accuracy"]:.2%},
**{"passed" if passed else "FAILED"}**.

## What is committed, what is built

Only the heads (`1/heads/*.onnx`, a few hundred KB together), the manifest, the labels and the
reference outputs. A team's deployable model is the backbone composed with its head, made from the
restored package by the build (`src/MultiHeadServe.Cli/ObjectsMembers.targets`) or by hand:

```sh
mhs compose backbone.onnx ResNetPreprocess.onnx ResNet18.onnx --map {onnx_backbone.PREPROCESS_OUTPUT}={onnx_backbone.BACKBONE_INPUT} --dynamic-batch
mhs compose 1/class.onnx  backbone.onnx 1/heads/class.onnx
mhs compose 1/bbox.onnx   backbone.onnx 1/heads/bbox.onnx --map {onnx_backbone.BACKBONE_MAP}=feature_map --backbone-outputs None
mhs compose 1/colour.onnx backbone.onnx 1/heads/colour.onnx
```

The service fuses the three members at load; with computation deduplication the backbone's nodes
and weights appear once in the fused graph.
"""
    # ONNX Runtime is not in this kit: what fusing saved is measured by the service's benchmark and kept here.
    text += FUSION_SAVINGS
    (OBJECTS_DIR / "REPORT.md").write_text(text, encoding="utf-8")


FUSION_SAVINGS = """
## What fusing saved

Measured by the service's benchmark on a 2-core machine (CPU, ONNX Runtime 1.31, single-threaded sessions; other
work used about 45% of the machine meanwhile), reproducible with
`dotnet run -c Release --project tests/MultiHeadServe.Benchmarks -- --models objects --scenarios raw,multihead,unbatched,separate,plain --batch-sizes 1,8`:

| | the three members (an ensemble of complete models) | fused, backbone deduplicated | fused / members |
|---|---|---|---|
| file size | 193.3 MB (3 x 64.4 MB) | 64.8 MB | 0.34x |
| one run, batch 1 | 57.6 ms one after another (58.5 ms side by side) | 19.2 ms | 0.33x |
| one run, batch 8 | 448.0 ms one after another (460.7 ms side by side) | 151.8 ms | 0.34x |
| served, 16 clients | 16 predictions/s from three single-model APIs | 54 predictions/s from one multi-head call | 3.25x |

Batching buys little here on a CPU: the raw sweep's best batch costs ONNX Runtime 18.7 ms of CPU per image
against 19.5 ms alone (1.04x, its ceiling), and the served call measured 1.10x (16 clients) and 1.00x (32
clients) with batching on against off. On a GPU, where a batch of 8 costs little more than one image, it is
where the gain would be.
"""


def write(backbone: onnx_backbone.PretrainedBackbone, heads: dict[str, torch.nn.Module], reports: dict[str, dict],
          data: dict[str, objects_data.ObjectsData]) -> None:
    """Write the heads, model.json, labels, reference.json and REPORT.md into models/objects/."""
    export_heads(heads, feature_maps("test", data["test"], backbone)[:64])
    dump_json(manifest(reports), OBJECTS_DIR / "model.json")
    (OBJECTS_DIR / "labels.txt").write_text("\n".join(objects_data.CLASSES) + "\n", encoding="utf-8")
    (OBJECTS_DIR / "colours.txt").write_text("\n".join(objects_data.COLOUR_NAMES) + "\n", encoding="utf-8")
    dump_json(reference(backbone, heads, data["test"]), VERSION_DIR / "reference.json")
    write_report(reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", action="store_true", help="write the heads, manifest and reference into models/objects/")
    args = parser.parse_args()
    setup_torch(SEED)
    backbone = onnx_backbone.PretrainedBackbone().eval()
    data = splits()
    maps = {name: feature_maps(name, split, backbone) for name, split in data.items()}
    heads, reports = {}, {}
    for head in HEADS:
        heads[head], reports[head] = train_head(head, maps, data)
        print(json.dumps({"head": head, **reports[head]}), flush=True)
    if args.export:
        write(backbone, heads, reports, data)


if __name__ == "__main__":
    main()
