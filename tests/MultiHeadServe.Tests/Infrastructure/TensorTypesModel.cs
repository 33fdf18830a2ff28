using System.Text.Json.Nodes;
using MultiHeadServe.Onnx;
using MultiHeadServe.Onnx.Tests;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// A small model, <c>tensors</c>, whose outputs have three element types, in a temporary repository: four inline
/// features in; <c>score</c> (FP32 [N, 1]) and <c>logits</c> (FP32 [N, 3]), both served as regression heads with no
/// scaling (so /v1 answers the raw floats); <c>class_index</c> (INT64 [N]) = arg-max of the logits + 2^40, a value no
/// float can hold exactly; and <c>positive</c> (BOOL [N, 3]) = logits &gt; 0.
/// </summary>
internal static class TensorTypesModel
{
    public const string Name = "tensors";

    /// <summary>What <c>class_index</c> adds to the arg-max: beyond 2^24, so a trip through float32 would show.</summary>
    public const long IndexOffset = 1L << 40;

    public static TempRepository Create()
    {
        var repository = new TempRepository();
        var folder = Path.Combine(repository.Path, Name);
        Directory.CreateDirectory(Path.Combine(folder, "1"));
        var model = new ModelBuilder()
            .Input("features", TensorElementType.Float32, "batch", 4)
            .Output("score", TensorElementType.Float32, "batch", 1)
            .Output("logits", TensorElementType.Float32, "batch", 3)
            .Output("class_index", TensorElementType.Int64, "batch")
            .Output("positive", TensorElementType.Bool, "batch", 3)
            .Indices("offset", IndexOffset)
            .Node("MatMul", ["features", "w_score"], ["score"])
            .Node("MatMul", ["features", "w_logits"], ["logits"])
            .Node("ArgMax", ["logits"], ["argmax"], null, ModelBuilder.IntAttribute("axis", 1), ModelBuilder.IntAttribute("keepdims", 0))
            .Node("Add", ["argmax", "offset"], ["class_index"])
            .Node("Greater", ["logits", "zero"], ["positive"]);
        model.Graph.Initializer.Add(ModelBuilder.FloatTensor("w_score", [4, 1], [0.5f, -0.25f, 0.125f, 1.5f]));
        model.Graph.Initializer.Add(ModelBuilder.FloatTensor("w_logits", [4, 3], [0.3f, -0.7f, 0.2f, -0.4f, 0.9f, 0.1f, 0.6f, 0.05f, -0.8f, -0.2f, 0.35f, 0.45f]));
        model.Graph.Initializer.Add(ModelBuilder.FloatTensor("zero", [1], [0f]));
        new OnnxModel(model.Build()).Save(Path.Combine(folder, "1", "model.onnx"));

        var manifest = new JsonObject
        {
            ["name"] = Name,
            ["description"] = "Outputs of three element types, for the Open Inference Protocol's tests.",
            ["intraOpThreads"] = 1,
            ["inputs"] = new JsonArray(new JsonObject { ["name"] = "features", ["dataType"] = "float32", ["shape"] = new JsonArray(-1, 4) }),
            ["features"] = new JsonObject { ["source"] = "inline", ["input"] = "features", ["columns"] = new JsonArray("a", "b", "c", "d") },
            ["heads"] = new JsonArray(
                new JsonObject { ["name"] = "score", ["output"] = "score", ["kind"] = "regression", ["activation"] = "none", ["loss"] = "mse", ["served"] = true },
                new JsonObject { ["name"] = "logits", ["output"] = "logits", ["kind"] = "regression", ["activation"] = "none", ["loss"] = "mse", ["served"] = true }),
            ["batching"] = new JsonObject { ["enabled"] = true, ["maxBatchSize"] = 8, ["maxQueueDelayMicroseconds"] = 0, ["maxQueueSize"] = 64, ["instances"] = 1 },
        };
        File.WriteAllText(Path.Combine(folder, "model.json"), manifest.ToJsonString());
        return repository;
    }

    /// <summary>Rows of features with logits of both signs.</summary>
    public static float[][] Rows { get; } =
    [
        [1f, 2f, 3f, 4f],
        [-1.5f, 0.25f, 2f, -3f],
        [0.1f, -0.2f, 0.3f, -0.4f],
    ];
}
