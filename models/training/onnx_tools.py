"""ONNX export and verification.

No ONNX runtime is needed to check an export: :func:`evaluate` is a small NumPy interpreter for
the handful of operators the kit's models export to. :func:`verify` runs the checker, checks
the graph's interface (names, opset, dynamic batch axis) and compares the interpreter's outputs
with PyTorch's on the reference inputs, so a wrong export fails the run instead of the tests.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

OPSET = 17
BATCH_AXIS = "batch"
REFERENCE_COUNT = 32
#: Largest difference between PyTorch and the interpreter accepted by :func:`verify`.
TOLERANCE = 1e-4


def b64(data: bytes) -> str:
    """Base64 text of raw bytes."""
    return base64.b64encode(data).decode("ascii")


def export(model: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
           output_names: Sequence[str], prefix: str | None = None) -> None:
    """Export ``model`` (eval mode, opset 17, dynamic batch axis) and optionally prefix names.

    ``prefix`` renames every node, initializer and intermediate value (not the graph's inputs
    and outputs), so several member graphs can be fused into one without name clashes.
    """
    buffer = io.BytesIO()
    dynamic = {name: {0: BATCH_AXIS} for name in [input_name, *output_names]}
    torch.onnx.export(model.eval(), (example,), buffer, opset_version=OPSET, input_names=[input_name],
                      output_names=list(output_names), dynamic_axes=dynamic, do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    if prefix:
        _prefix_names(proto.graph, prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def _prefix_names(graph: onnx.GraphProto, prefix: str) -> None:
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    rename = lambda name: name if not name or name in keep else f"{prefix}/{name.lstrip('/')}"  # noqa: E731
    for init in graph.initializer:
        init.name = rename(init.name)
    for index, node in enumerate(graph.node):
        node.name = rename(node.name or f"{node.op_type}_{index}")
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for info in graph.value_info:
        info.name = rename(info.name)


def graph_names(path: Path) -> set[str]:
    """Every node, initializer and value name of a graph except its inputs and outputs."""
    graph = onnx.load(str(path)).graph
    interface = {v.name for v in graph.input} | {v.name for v in graph.output}
    names = {n.name for n in graph.node} | {i.name for i in graph.initializer}
    names |= {v for n in graph.node for v in [*n.input, *n.output]}
    return names - interface - {""}


# --------------------------------------------------------------------------- interpreter

def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, strides=(1, 1), pads=(0, 0, 0, 0),
          dilations=(1, 1), group=1, **_: object) -> np.ndarray:
    if group != 1 or tuple(dilations) != (1, 1):
        raise NotImplementedError("Conv: only group=1, dilation=1")
    top, left, bottom, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    windows = windows[:, :, ::strides[0], ::strides[1]]
    out = np.einsum("nchwij,ocij->nohw", windows, w)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _max_pool(x: np.ndarray, *, kernel_shape, strides=(1, 1), pads=(0, 0, 0, 0), ceil_mode=0,
              dilations=(1, 1), **_: object) -> np.ndarray:
    if ceil_mode or tuple(dilations) != (1, 1):
        raise NotImplementedError("MaxPool: only ceil_mode=0, dilation=1")
    top, left, bottom, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(xp, tuple(kernel_shape), axis=(2, 3))
    return windows[:, :, ::strides[0], ::strides[1]].max(axis=(-2, -1))


def _gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, *, alpha=1.0, beta=1.0, transA=0,
          transB=0) -> np.ndarray:
    out = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    return out if c is None else out + beta * c


def _flatten(x: np.ndarray, *, axis=1) -> np.ndarray:
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


#: The operators the kit's exports contain; anything else fails verification loudly.
_OPS: dict[str, Callable[..., np.ndarray]] = {
    "Conv": _conv,
    "MaxPool": _max_pool,
    "Gemm": _gemm,
    "Flatten": _flatten,
    "Relu": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "ReduceMean": lambda x, axes=None, keepdims=1: x.mean(axis=None if axes is None else tuple(axes),
                                                           keepdims=bool(keepdims)),
    "Sub": lambda a, b: a - b,
    "Div": lambda a, b: a / b,
    "Gather": lambda x, i, axis=0: np.take(x, i.astype(np.int64), axis=axis),
    "Concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
}


def evaluate(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``model`` in float64 NumPy and return its outputs by name."""
    values: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        values[init.name] = array.astype(np.float64) if array.dtype.kind == "f" else array
    for node in model.graph.node:
        if node.op_type not in _OPS:
            raise NotImplementedError(f"interpreter has no {node.op_type}")
        args = [values[name] if name else None for name in node.input]
        values[node.output[0]] = _OPS[node.op_type](*args, **_attrs(node))
    return {o.name: values[o.name] for o in model.graph.output}


# --------------------------------------------------------------------------- verification

def verify(path: Path, inputs: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    """Check an exported file and return the largest |interpreter - PyTorch| over its outputs.

    Raises ``AssertionError`` if the checker fails, the opset is not 17, the input/output names
    differ from ``inputs``/``expected``, the batch axis is not the dynamic ``batch`` dimension,
    or any output differs from PyTorch's by more than :data:`TOLERANCE`.
    """
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == OPSET, f"{path.name}: opset {opsets}"
    graph = model.graph
    assert [v.name for v in graph.input] == list(inputs), f"{path.name}: inputs {[v.name for v in graph.input]}"
    assert [v.name for v in graph.output] == list(expected), f"{path.name}: outputs {[v.name for v in graph.output]}"
    for value, reference in [*zip(graph.input, inputs.values()), *zip(graph.output, expected.values())]:
        dims = value.type.tensor_type.shape.dim
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, f"{value.name}: not float32"
        assert dims[0].dim_param == BATCH_AXIS, f"{value.name}: batch axis is not dynamic"
        assert [d.dim_value for d in dims[1:]] == list(reference.shape[1:]), f"{value.name}: shape {dims}"
    outputs = evaluate(model, inputs)
    worst = max(float(np.abs(outputs[name] - ref).max()) for name, ref in expected.items())
    assert worst <= TOLERANCE, f"{path.name}: interpreter differs from PyTorch by {worst}"
    return worst
