"""The pretrained ResNet-18 backbone, run in PyTorch with the weights read from its ONNX files.

The backbone is the ImageNet-trained ResNet-18 trunk that the NuGet package
``Microsoft.ML.DnnImageFeaturizer.ResNet18`` ships as ONNX (a CNTK export, opset 8), with its
input normalisation (``ResNetPreprocess.onnx``: RGB to BGR, minus a per-pixel mean image). The
build restores the package; nothing of it is committed. :class:`OnnxGraphModule` turns an ONNX
graph of the few operators these files use into a PyTorch module, node by node, so the kit
computes the exact features ONNX Runtime computes from the served member files (the C# tests
compare the two through ``reference.json``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import Tensor

PACKAGE = "microsoft.ml.dnnimagefeaturizer.resnet18"
PACKAGE_VERSION = "0.23.1"
#: The backbone's graph input and output, as the package names them.
BACKBONE_INPUT = "Input247"
BACKBONE_OUTPUT = "Pooling395_Output_0"
#: The last feature map before the global average pool, [N, 512, 7, 7].
BACKBONE_MAP = "ReLU393_Output_0"
#: The preprocessing graph's input (RGB pixel values 0..255, NCHW) and output (the backbone's input).
PREPROCESS_INPUT = "OriginalInput"
PREPROCESS_OUTPUT = "PreprocessedInput"
FEATURES = 512


def package_dir() -> Path:
    """The restored package: ``$NUGET_PACKAGES`` or NuGet's default global packages folder."""
    root = Path(os.environ.get("NUGET_PACKAGES") or Path.home() / ".nuget" / "packages")
    folder = root / PACKAGE / PACKAGE_VERSION / "tools" / "DnnImageModels"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} not found: build the repository once (dotnet build) so NuGet restores {PACKAGE} {PACKAGE_VERSION}, "
            "or point NUGET_PACKAGES at the packages folder that holds it.")
    return folder


def backbone_path() -> Path:
    return package_dir() / "ResNet18Onnx" / "ResNet18.onnx"


def preprocess_path() -> Path:
    return package_dir() / "ResNetPrepOnnx" / "ResNetPreprocess.onnx"


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _padded(x: Tensor, pads, value: float = 0.0) -> Tensor:
    """Apply ONNX 2-D pads ``[top, left, bottom, right]`` (CNTK writes asymmetric ones)."""
    top, left, bottom, right = (int(p) for p in pads)
    if top == left == bottom == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _check_auto_pad(node: onnx.NodeProto, attrs: dict) -> None:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError(f"{node.name}: auto_pad {attrs['auto_pad']!r} is not supported")


class OnnxGraphModule(torch.nn.Module):
    """A PyTorch module that evaluates an ONNX graph of Conv, BatchNormalization (inference),
    Relu, Add, Sub, MaxPool, AveragePool, Split and Concat nodes. Initializers become buffers
    (frozen weights); anything else raises, so an unexpected file fails loudly."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        self.nodes = list(graph.node)
        stored = {t.name for t in graph.initializer}
        self.input_name = next(i.name for i in graph.input if i.name not in stored)
        self.output_name = graph.output[0].name
        self.names = {}
        for index, tensor in enumerate(graph.initializer):
            key = f"w{index}"
            self.names[tensor.name] = key
            self.register_buffer(key, torch.from_numpy(numpy_helper.to_array(tensor).copy()))
        self.attrs = [_attrs(node) for node in self.nodes]
        unsupported = {n.op_type for n in self.nodes} - set(_OPS)
        if unsupported:
            raise NotImplementedError(f"operators not supported: {sorted(unsupported)}")

    def forward(self, x: Tensor, output: str | None = None) -> Tensor:
        """The graph output, or the intermediate value named ``output``."""
        values: dict[str, Tensor] = {self.input_name: x}
        for name, key in self.names.items():
            values[name] = getattr(self, key)
        for node, attrs in zip(self.nodes, self.attrs):
            inputs = [values[name] if name else None for name in node.input]
            outputs = _OPS[node.op_type](node, attrs, *inputs)
            if isinstance(outputs, Tensor):
                outputs = (outputs,)
            for name, value in zip(node.output, outputs):
                values[name] = value
        return values[output or self.output_name]


def _conv(node, attrs, x, w, b=None):
    _check_auto_pad(node, attrs)
    x = _padded(x, attrs.get("pads", (0, 0, 0, 0)))
    return F.conv2d(x, w, b, stride=tuple(attrs.get("strides", (1, 1))), dilation=tuple(attrs.get("dilations", (1, 1))),
                    groups=int(attrs.get("group", 1)))


def _batch_norm(node, attrs, x, scale, bias, mean, var):
    if int(attrs.get("spatial", 1)) != 1:
        raise NotImplementedError(f"{node.name}: BatchNormalization spatial=0")
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=float(attrs.get("epsilon", 1e-5)))


def _max_pool(node, attrs, x):
    _check_auto_pad(node, attrs)
    if int(attrs.get("ceil_mode", 0)) or int(attrs.get("storage_order", 0)):
        raise NotImplementedError(f"{node.name}: MaxPool ceil_mode/storage_order")
    x = _padded(x, attrs.get("pads", (0, 0, 0, 0)), value=float("-inf"))
    return F.max_pool2d(x, tuple(attrs["kernel_shape"]), stride=tuple(attrs.get("strides", (1, 1))))


def _average_pool(node, attrs, x):
    _check_auto_pad(node, attrs)
    if any(int(p) for p in attrs.get("pads", (0, 0, 0, 0))) or int(attrs.get("ceil_mode", 0)):
        raise NotImplementedError(f"{node.name}: AveragePool with pads or ceil_mode")
    return F.avg_pool2d(x, tuple(attrs["kernel_shape"]), stride=tuple(attrs.get("strides", (1, 1))))


def _split(node, attrs, x, split=None):
    sizes = attrs.get("split") if split is None else split.tolist()
    axis = int(attrs.get("axis", 0))
    if sizes is None:
        return torch.chunk(x, len(node.output), dim=axis)
    return torch.split(x, [int(s) for s in sizes], dim=axis)


_OPS = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "Relu": lambda node, attrs, x: torch.relu(x),
    "Add": lambda node, attrs, a, b: a + b,
    "Sub": lambda node, attrs, a, b: a - b,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "Split": _split,
    "Concat": lambda node, attrs, *xs: torch.cat(xs, dim=int(attrs["axis"])),
}


class PretrainedBackbone(torch.nn.Module):
    """Preprocessing then ResNet-18: RGB pixel values 0..255 (float NCHW) to features [N, 512, 1, 1].

    The served member files compute exactly this: the preprocessing graph composed with the
    backbone, then a head.
    """

    def __init__(self) -> None:
        super().__init__()
        self.preprocess = OnnxGraphModule(onnx.load(str(preprocess_path())))
        self.resnet = OnnxGraphModule(onnx.load(str(backbone_path())))
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, pixels: Tensor, output: str | None = None) -> Tensor:
        return self.resnet(self.preprocess(pixels), output)


def pixels_to_input(images: np.ndarray) -> Tensor:
    """uint8 NHWC images to the float NCHW pixel values (0..255) the served model is fed."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous()
