using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// Three small tabular models over one <c>features</c> input, shaped like the ranking demo's members
/// (click-through logit, dwell time, revenue): each a two-layer perceptron, the revenue model reading only
/// some of the columns through a Gather, as members that filter columns do.
/// </summary>
internal static class RankingMembers
{
    public const int Columns = 6;

    public static ModelProto Click() => Perceptron("click_logit", seed: 0.1f);

    public static ModelProto Dwell() => Perceptron("dwell", seed: 0.2f);

    public static ModelProto Revenue() =>
        new ModelBuilder(producer: "pytorch")
            .Input("features", TensorElementType.Float32, "batch", Columns)
            .Output("revenue", TensorElementType.Float32, "batch", 1)
            .Indices("columns", 0, 2, 4)
            .Weights("fc1.weight", [3, 4], 0.3f)
            .Weights("fc1.bias", [4], 0.01f)
            .Weights("fc2.weight", [4, 1], 0.05f)
            .Weights("fc2.bias", [1], 0.5f)
            .Node("Gather", ["features", "columns"], ["/Gather_output_0"], "/Gather", ModelBuilder.IntAttribute("axis", 1))
            .Node("MatMul", ["/Gather_output_0", "fc1.weight"], ["/fc1/MatMul_output_0"], "/fc1/MatMul")
            .Node("Add", ["/fc1/MatMul_output_0", "fc1.bias"], ["/fc1/Add_output_0"], "/fc1/Add")
            .Node("Relu", ["/fc1/Add_output_0"], ["/Relu_output_0"], "/Relu")
            .Node("MatMul", ["/Relu_output_0", "fc2.weight"], ["/fc2/MatMul_output_0"], "/fc2/MatMul")
            .Node("Add", ["/fc2/MatMul_output_0", "fc2.bias"], ["revenue"], "/fc2/Add")
            .Build();

    public static IReadOnlyList<(string Prefix, ModelProto Model)> All() =>
        [("click", Click()), ("dwell", Dwell()), ("revenue", Revenue())];

    // Same internal names in every member, as one exporter produces them: fusion must keep them apart.
    private static ModelProto Perceptron(string output, float seed) =>
        new ModelBuilder(producer: "pytorch")
            .Input("features", TensorElementType.Float32, "batch", Columns)
            .Output(output, TensorElementType.Float32, "batch", 1)
            .Weights("fc1.weight", [Columns, 4], seed)
            .Weights("fc1.bias", [4], 0.01f)
            .Weights("fc2.weight", [4, 1], seed)
            .Weights("fc2.bias", [1], 0.5f)
            .ValueInfo("/Relu_output_0", TensorElementType.Float32, "batch", 4)
            .Node("MatMul", ["features", "fc1.weight"], ["/fc1/MatMul_output_0"], "/fc1/MatMul")
            .Node("Add", ["/fc1/MatMul_output_0", "fc1.bias"], ["/fc1/Add_output_0"], "/fc1/Add")
            .Node("Relu", ["/fc1/Add_output_0"], ["/Relu_output_0"], "/Relu")
            .Node("MatMul", ["/Relu_output_0", "fc2.weight"], ["/fc2/MatMul_output_0"], "/fc2/MatMul")
            .Node("Add", ["/fc2/MatMul_output_0", "fc2.bias"], [output], "/fc2/Add")
            .Metadata("trained_on", "2024-05")
            .Build();
}
