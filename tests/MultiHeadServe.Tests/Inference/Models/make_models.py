"""Builds the small ONNX models the engine tests run.

Run with Debian's python3-onnx:  /usr/bin/python3 make_models.py
The weights follow closed formulas that the C# tests recompute, so every expected output is derived
in the test itself rather than stored.
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]
HERE = Path(__file__).parent


def linear_weights(rows: int, cols: int, a: float, b: float) -> np.ndarray:
    """W[i, j] = a * (i + 1) - b * j, the formula the tests mirror."""
    i = np.arange(rows, dtype=np.float32)[:, None]
    j = np.arange(cols, dtype=np.float32)[None, :]
    return (a * (i + 1) - b * j).astype(np.float32)


def bias(cols: int, c: float) -> np.ndarray:
    """b[j] = c * (j + 1)."""
    return (c * (np.arange(cols, dtype=np.float32) + 1)).astype(np.float32)


def save(graph: onnx.GraphProto, name: str) -> None:
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="multiheadserve-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / name)


def linear() -> None:
    """y = x @ W + b with x: [batch, 4], W: [4, 3]."""
    w = numpy_helper.from_array(linear_weights(4, 3, 0.1, 0.05), "W")
    b = numpy_helper.from_array(bias(3, 0.01), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [w, b],
    )
    save(graph, "linear.onnx")


def two_heads() -> None:
    """A shared input, two heads: logits = x @ W1 + b1 ([batch, 3]); box = sigmoid(x @ W2 + b2) ([batch, 4])."""
    init = [
        numpy_helper.from_array(linear_weights(4, 3, 0.2, 0.1), "W1"),
        numpy_helper.from_array(bias(3, -0.02), "B1"),
        numpy_helper.from_array(linear_weights(4, 4, -0.05, 0.03), "W2"),
        numpy_helper.from_array(bias(4, 0.04), "B2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h1"]),
        helper.make_node("Add", ["h1", "B1"], ["logits"]),
        helper.make_node("MatMul", ["x", "W2"], ["h2"]),
        helper.make_node("Add", ["h2", "B2"], ["h3"]),
        helper.make_node("Sigmoid", ["h3"], ["box"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("box", TensorProto.FLOAT, ["batch", 4]),
        ],
        init,
    )
    save(graph, "two_heads.onnx")


def element_types() -> None:
    """One input per element type, each through an op whose result the test predicts exactly."""
    cases = [
        ("f16", TensorProto.FLOAT16, "Mul", np.array([2.0], dtype=np.float16)),
        ("i64", TensorProto.INT64, "Add", np.array([7], dtype=np.int64)),
        ("i32", TensorProto.INT32, "Add", np.array([-3], dtype=np.int32)),
        ("u8", TensorProto.UINT8, "Add", np.array([1], dtype=np.uint8)),
    ]
    nodes, inputs, outputs, init = [], [], [], []
    for name, dtype, op, constant in cases:
        init.append(numpy_helper.from_array(constant, f"{name}_k"))
        nodes.append(helper.make_node(op, [f"{name}_in", f"{name}_k"], [f"{name}_out"]))
        inputs.append(helper.make_tensor_value_info(f"{name}_in", dtype, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info(f"{name}_out", dtype, ["batch", 2]))
    nodes.append(helper.make_node("Not", ["bool_in"], ["bool_out"]))
    inputs.append(helper.make_tensor_value_info("bool_in", TensorProto.BOOL, ["batch", 2]))
    outputs.append(helper.make_tensor_value_info("bool_out", TensorProto.BOOL, ["batch", 2]))
    save(helper.make_graph(nodes, "element_types", inputs, outputs, init), "element_types.onnx")


def slow() -> None:
    """A long chain of MatMuls over one shared weight: a run that takes seconds, for cancellation tests."""
    w = numpy_helper.from_array((np.eye(256, dtype=np.float32) * 0.999), "W")
    nodes, previous = [], "x"
    for k in range(400):
        nodes.append(helper.make_node("MatMul", [previous, "W"], [f"h{k}"]))
        previous = f"h{k}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])],
        [w],
    )
    save(graph, "slow.onnx")


if __name__ == "__main__":
    linear()
    two_heads()
    element_types()
    slow()
